//! The build-time trust decision, shared by `build.rs` (which acts on it) and the library's unit
//! tests (which check it for every combination; see `trust.rs`).

use std::path::Path;

use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::VerifyingKey;

/// What a build trusts.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// `--features test-keys`.
    Test,
    /// `KEEL_TRUSTED_KEY`: the key's raw bytes.
    Production([u8; 32]),
    /// Neither.
    Unconfigured,
}

fn parse(text: &str, what: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(text.trim()).map_err(|_| {
        format!(
            "{what} is not an Ed25519 public key in PEM (make one with \
             `openssl pkey -in key.pem -pubout -out key.pub.pem` from a key made by \
             `openssl genpkey -algorithm ed25519 -out key.pem`)"
        )
    })
}

/// Decide from the feature `test-keys`, `$KEEL_TRUSTED_KEY` (read through `read`) and the TEST
/// public key's PEM. An error is the whole message of a failed build.
pub fn decide(
    test_feature: bool,
    trusted: Option<&Path>,
    read: impl Fn(&Path) -> std::io::Result<String>,
    test_pem: &str,
) -> Result<Decision, String> {
    let test_key = parse(test_pem, "the repository's TEST key keys/test-key.pub.pem")?;
    match (test_feature, trusted) {
        (true, Some(path)) => Err(format!(
            "KEEL_TRUSTED_KEY={} and the feature `test-keys` were both given: a build is either a \
             TEST build (`--features test-keys`, trusts only the public TEST key) or a production \
             build (KEEL_TRUSTED_KEY, no `test-keys`), not both",
            path.display()
        )),
        (true, None) => Ok(Decision::Test),
        (false, None) => Ok(Decision::Unconfigured),
        (false, Some(path)) => {
            let what = format!("KEEL_TRUSTED_KEY={}", path.display());
            if !path.is_absolute() {
                return Err(format!(
                    "{what} is a relative path; give an absolute one (build scripts do not run \
                     in the directory cargo was started from)"
                ));
            }
            let text = read(path).map_err(|e| format!("{what}: reading it: {e}"))?;
            let key = parse(&text, &what)?;
            if key == test_key {
                return Err(format!(
                    "{what} is the repository's public TEST key (keys/test-key.pub.pem); anyone \
                     can sign with it, so a production build cannot trust it. Give the public \
                     half of your own release key, or make a TEST build with \
                     `--features test-keys` and no KEEL_TRUSTED_KEY"
                ));
            }
            Ok(Decision::Production(key.to_bytes()))
        }
    }
}
