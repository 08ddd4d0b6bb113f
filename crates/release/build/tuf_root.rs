//! The build-time choice of the TUF root the updater trusts, shared by `build.rs` (which acts on
//! it) and the library (`src/tuf.rs`, which uses [`public_keys`] at run time and checks every
//! case of [`decide`] in its unit tests).

use std::collections::BTreeSet;
use std::path::Path;

/// Which root a build embeds.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// `--features test-keys`: the repository's TEST root (`keys/tuf/root.json`).
    Test,
    /// `KEEL_TUF_ROOT`: that file's bytes.
    Production(Vec<u8>),
    /// Neither: no root; the updater fetches no updates.
    Unconfigured,
}

/// The public keys (hex, lower case) a signed TUF `root.json` names, or why the bytes are no
/// such root.
pub fn public_keys(bytes: &[u8]) -> Result<BTreeSet<String>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let signed = doc
        .get("signed")
        .ok_or("no \"signed\" object: not signed TUF metadata")?;
    if signed.get("_type").and_then(|t| t.as_str()) != Some("root") {
        return Err("its \"signed\"._type is not \"root\": not a TUF root".to_string());
    }
    let keys = signed
        .get("keys")
        .and_then(|k| k.as_object())
        .filter(|k| !k.is_empty())
        .ok_or("the root names no keys")?;
    keys.iter()
        .map(|(id, key)| {
            key.pointer("/keyval/public")
                .and_then(|p| p.as_str())
                .map(|p| p.to_ascii_lowercase())
                .ok_or_else(|| format!("key {id} has no keyval.public"))
        })
        .collect()
}

/// Decide from the feature `test-keys`, `$KEEL_TUF_ROOT` (read through `read`) and the TEST
/// root's bytes. An error is the whole message of a failed build.
pub fn decide(
    test_feature: bool,
    root: Option<&Path>,
    read: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
    test_root: &[u8],
) -> Result<Decision, String> {
    let test_keys = public_keys(test_root)
        .map_err(|e| format!("the repository's TEST root keys/tuf/root.json: {e}"))?;
    match (test_feature, root) {
        (true, Some(path)) => Err(format!(
            "KEEL_TUF_ROOT={} and the feature `test-keys` were both given: a build is either a \
             TEST build (`--features test-keys`, trusts only the public TEST root) or a \
             production build (KEEL_TUF_ROOT, no `test-keys`), not both",
            path.display()
        )),
        (true, None) => Ok(Decision::Test),
        (false, None) => Ok(Decision::Unconfigured),
        (false, Some(path)) => {
            let what = format!("KEEL_TUF_ROOT={}", path.display());
            if !path.is_absolute() {
                return Err(format!(
                    "{what} is a relative path; give an absolute one (build scripts do not run \
                     in the directory cargo was started from)"
                ));
            }
            let bytes = read(path).map_err(|e| format!("{what}: reading it: {e}"))?;
            let keys = public_keys(&bytes).map_err(|e| format!("{what}: {e}"))?;
            if !keys.is_disjoint(&test_keys) {
                return Err(format!(
                    "{what} shares a key with the repository's public TEST root \
                     (keys/tuf/root.json); anyone can sign with those keys, so a production \
                     build cannot trust it. Give the root.json of your own key set \
                     (`cargo run -p image-build --example tuf_keys -- DIR`), or make a TEST \
                     build with `--features test-keys` and no KEEL_TUF_ROOT"
                ));
            }
            Ok(Decision::Production(bytes))
        }
    }
}
