//! Which release-signing key this build trusts: chosen when it is compiled, never at run time.
//!
//! `build.rs` picks one of three [`TrustMode`]s:
//!
//! | build | [`TRUST`] | trusts | the TEST key |
//! |---|---|---|---|
//! | `--features test-keys` | [`TrustMode::Test`] | only the repository's public TEST key | trusted, with a warning on every run |
//! | `KEEL_TRUSTED_KEY=/abs/key.pub.pem` | [`TrustMode::Production`] | only that key | refused everywhere |
//! | neither | [`TrustMode::Unconfigured`] | no compiled-in key (`coreos-install -k KEYFILE`) | refused everywhere |
//!
//! A malformed `KEEL_TRUSTED_KEY`, the TEST key given as `KEEL_TRUSTED_KEY`, or both the feature
//! and the variable, fail the build. [`check_trust`] is the one decision every program makes
//! before it trusts a key, whether compiled in or given at run time.

use std::fmt;

use crate::keys::PublicKey;

include!(concat!(env!("OUT_DIR"), "/trust.rs"));

/// How this build was told which key to trust (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustMode {
    /// Built with the feature `test-keys`: trusts only the repository's public TEST key.
    Test,
    /// Built with `KEEL_TRUSTED_KEY`: trusts only that key and refuses the TEST key.
    Production,
    /// Built with neither: no compiled-in key; the TEST key is refused.
    Unconfigured,
}

/// This build's trust mode.
pub const TRUST: TrustMode = MODE;

/// This build's trust mode (the same as [`TRUST`]).
pub fn trust_mode() -> TrustMode {
    TRUST
}

impl TrustMode {
    /// What to call a program of such a build in a message: "this production installer" etc.
    pub fn build_name(self) -> &'static str {
        match self {
            TrustMode::Test => "test build",
            TrustMode::Production => "production build",
            TrustMode::Unconfigured => "build without a trusted key",
        }
    }

    /// The key this mode trusts when nothing else is given at run time.
    pub fn compiled_key(self) -> Option<PublicKey> {
        match self {
            TrustMode::Test => Some(PublicKey::test()),
            TrustMode::Production => PRODUCTION_KEY.map(|raw| {
                PublicKey::from_bytes(&raw).expect("build.rs parsed KEEL_TRUSTED_KEY as a key")
            }),
            TrustMode::Unconfigured => None,
        }
    }
}

/// One line saying what this build trusts, for `--version` output and startup banners:
/// `test build: trusts only Keel's public TEST key (id …); anyone can sign what it accepts`.
impl fmt::Display for TrustMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrustMode::Test => write!(
                f,
                "test build: trusts only Keel's public TEST key (id {}); anyone can sign what it accepts",
                PublicKey::test().id()
            ),
            TrustMode::Production => match self.compiled_key() {
                Some(key) => write!(
                    f,
                    "production build: trusts only the release key {} (KEEL_TRUSTED_KEY={})",
                    key.id(),
                    PRODUCTION_KEY_SOURCE.unwrap_or("?")
                ),
                None => f.write_str("production build"),
            },
            TrustMode::Unconfigured => f.write_str(
                "build without a trusted key (neither KEEL_TRUSTED_KEY nor the feature test-keys): \
                 the key must be given at run time",
            ),
        }
    }
}

/// A key may not be trusted by this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The TEST key outside a TEST build.
    #[error(
        "key {key_id} is Keel's public TEST key; anyone can sign with it, and this {} refuses it \
         (only a test build, made with `--features test-keys`, trusts it)",
        .mode.build_name()
    )]
    TestKeyRefused {
        /// The key's id.
        key_id: String,
        /// The build that refuses it.
        mode: TrustMode,
    },
}

/// Whether a build in `mode` may trust `key` (compiled in or given at run time): the TEST key only
/// in a TEST build; any other key in any build (a run-time `-k` names it explicitly).
pub fn check_trust(mode: TrustMode, key: &PublicKey) -> Result<(), TrustError> {
    if key.is_test() && mode != TrustMode::Test {
        return Err(TrustError::TestKeyRefused {
            key_id: key.id(),
            mode,
        });
    }
    Ok(())
}

/// The build-time decision of `build.rs`, compiled here too so its every case is unit-tested.
#[cfg(test)]
#[path = "../build/decide.rs"]
mod decide;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::test_secret;
    use crate::SecretKey;

    #[test]
    fn only_a_test_build_trusts_the_test_key_and_every_build_trusts_other_keys() {
        let test = PublicKey::test();
        let other = SecretKey(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32])).public();
        assert_eq!(test_secret().public(), test);
        for (mode, test_ok) in [
            (TrustMode::Test, true),
            (TrustMode::Production, false),
            (TrustMode::Unconfigured, false),
        ] {
            assert_eq!(check_trust(mode, &test).is_ok(), test_ok, "{mode:?}");
            check_trust(mode, &other).unwrap();
        }
        let err = check_trust(TrustMode::Production, &test)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Keel's public TEST key")
                && err.contains("this production build refuses it"),
            "{err}"
        );
    }

    #[test]
    fn this_build_trusts_what_its_mode_says() {
        let key = TRUST.compiled_key();
        // The feature `test-keys` and a TEST build are the same thing.
        assert_eq!(trust_mode() == TrustMode::Test, cfg!(feature = "test-keys"));
        match trust_mode() {
            TrustMode::Test => {
                assert_eq!(key, Some(PublicKey::test()));
                assert!(TRUST
                    .to_string()
                    .starts_with("test build: trusts only Keel's public TEST key (id "));
            }
            TrustMode::Production => {
                let key = key.unwrap();
                assert!(!key.is_test());
                assert!(TRUST.to_string().contains(&key.id()));
            }
            TrustMode::Unconfigured => assert_eq!(key, None),
        }
        // Whatever the build, the compiled-in key passes its own check.
        if let Some(key) = key {
            check_trust(TRUST, &key).unwrap();
        }
    }

    #[test]
    fn the_build_decides_the_mode_and_refuses_bad_combinations() {
        use super::decide::{decide, Decision};
        use std::path::Path;
        let test_pem = crate::keys::TEST_PUBLIC_PEM;
        let other_pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAn2DSwoDdF73fEbiWH6yxZ36QlniN4K73gF4bAeMMOdo=\n-----END PUBLIC KEY-----\n";
        let files = |p: &Path| match p.to_str() {
            Some("/k/prod.pub.pem") => Ok(other_pem.to_string()),
            Some("/k/test.pub.pem") => Ok(test_pem.to_string()),
            Some("/k/garbage.pem") => Ok("-----BEGIN PUBLIC KEY-----\nxx\n".to_string()),
            _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        let run =
            |feature: bool, key: Option<&str>| decide(feature, key.map(Path::new), files, test_pem);
        assert_eq!(run(true, None), Ok(Decision::Test));
        assert_eq!(run(false, None), Ok(Decision::Unconfigured));
        let Ok(Decision::Production(raw)) = run(false, Some("/k/prod.pub.pem")) else {
            panic!("a good KEEL_TRUSTED_KEY makes a production build");
        };
        assert_eq!(
            PublicKey::from_bytes(&raw),
            Some(PublicKey::from_pem(other_pem, "x").unwrap())
        );
        for (feature, key, want) in [
            (true, "/k/prod.pub.pem", "were both given"),
            (
                false,
                "/k/test.pub.pem",
                "is the repository's public TEST key",
            ),
            (
                false,
                "/k/garbage.pem",
                "is not an Ed25519 public key in PEM",
            ),
            (
                false,
                "/k/missing.pem",
                "KEEL_TRUSTED_KEY=/k/missing.pem: reading it",
            ),
            (false, "k/prod.pub.pem", "is a relative path"),
        ] {
            let err = run(feature, Some(key)).unwrap_err();
            assert!(err.contains(want), "{feature} {key}: {err}");
        }
    }
}
