//! The TUF keys that sign a channel's update repository ([`crate::update_repo`]).
//!
//! A key directory holds, as `tuftool` and tough expect them:
//!
//! ```text
//! root.json        the signed root: which key signs which role (version 1, consistent snapshots)
//! root.pk8         Ed25519 secret keys, PKCS#8 DER, one per role (mode 0600)
//! targets.pk8
//! snapshot.pk8
//! timestamp.pk8
//! ```
//!
//! Publishing a release needs `root.json` and the targets, snapshot and timestamp keys; the root
//! key signs only a new root, so a real release keeps it offline and leaves it out of the
//! directory it gives `image-build`. [`generate`] makes a new set (the repository's public TEST set
//! in `crates/release/keys/tuf/` was made with it: `cargo run -p image-build --example
//! tuf_keys`). Whether a set may sign follows the build's trust ([`check_keys`]): the TEST set
//! only in a TEST build, since only a TEST build's updater trusts its root.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::num::NonZeroU64;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use release::TrustMode;
use tough::editor::signed::SignedRole;
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::{KeyHolder, RoleKeys, RoleType, Root};
use tough::sign::{parse_keypair, Sign};

/// The signed root in a key directory.
pub const ROOT_JSON: &str = "root.json";
/// The TUF specification version tough writes and reads.
pub const SPEC_VERSION: &str = "1.0.0";

/// The top-level roles, each with the file name of its secret key.
pub const ROLE_KEYS: [(RoleType, &str); 4] = [
    (RoleType::Root, "root.pk8"),
    (RoleType::Targets, "targets.pk8"),
    (RoleType::Snapshot, "snapshot.pk8"),
    (RoleType::Timestamp, "timestamp.pk8"),
];

/// A current-thread tokio runtime for tough's async API (image-build itself is synchronous).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime tough needs")
}

/// Make a new key set in `dir` (created if missing): one fresh Ed25519 key per top-level role
/// and `root.json`, signed by the root key, that names them (threshold 1 each, consistent
/// snapshots on) and expires at `expires`. Refuses to overwrite any file of an existing set.
pub fn generate(dir: &Path, expires: jiff::Timestamp) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in std::iter::once(ROOT_JSON).chain(ROLE_KEYS.iter().map(|(_, f)| *f)) {
        let path = dir.join(name);
        if path.exists() {
            bail!(
                "{} exists: not overwriting a key set (remove it first to make a new one)",
                path.display()
            );
        }
    }
    let rng = SystemRandom::new();
    let mut keys = HashMap::new();
    let mut roles = HashMap::new();
    for (role, file) in ROLE_KEYS {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating the {role} key"))?;
        let path = dir.join(file);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        out.write_all(pkcs8.as_ref())
            .and_then(|()| out.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
        let key = parse_keypair(pkcs8.as_ref())
            .with_context(|| format!("reading back the {role} key"))?
            .tuf_key();
        let id = key.key_id().context("computing a key id")?;
        keys.insert(id.clone(), key);
        roles.insert(
            role,
            RoleKeys {
                keyids: vec![id],
                threshold: NonZeroU64::MIN,
                _extra: HashMap::new(),
            },
        );
    }
    let root = Root {
        spec_version: SPEC_VERSION.to_string(),
        consistent_snapshot: true,
        version: NonZeroU64::MIN,
        expires,
        keys,
        roles,
        _extra: HashMap::new(),
    };
    let signer: Box<dyn KeySource> = Box::new(LocalKeySource {
        path: dir.join(ROLE_KEYS[0].1),
    });
    let signed = runtime()?
        .block_on(SignedRole::new(
            root.clone(),
            &KeyHolder::Root(root),
            &[signer],
            &rng,
        ))
        .context("signing root.json with the new root key")?;
    let path = dir.join(ROOT_JSON);
    fs::write(&path, signed.buffer()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The keys a repository is signed with: a key directory's `root.json` and its secret keys.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    /// The directory.
    pub dir: PathBuf,
    /// Its `root.json`.
    pub root: PathBuf,
    /// The secret keys found there.
    pub keys: Vec<PathBuf>,
}

impl SigningKeys {
    /// The key set in `dir`: `root.json` is required, and so are the targets, snapshot and
    /// timestamp keys; the root key may be absent (it stays offline).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let root = dir.join(ROOT_JSON);
        if !root.is_file() {
            bail!(
                "{} has no {ROOT_JSON}: not a TUF key directory (make one with `cargo run -p \
                 image-build --example tuf_keys -- DIR`)",
                dir.display()
            );
        }
        let mut keys = Vec::new();
        for (role, file) in ROLE_KEYS {
            let path = dir.join(file);
            if path.is_file() {
                keys.push(path);
            } else if role != RoleType::Root {
                bail!(
                    "{} is missing: the {role} key signs every new edition of the repository",
                    path.display()
                );
            }
        }
        Ok(SigningKeys {
            dir: dir.to_path_buf(),
            root,
            keys,
        })
    }

    /// tough's handles on the secret keys.
    pub fn sources(&self) -> Vec<Box<dyn KeySource>> {
        self.keys
            .iter()
            .map(|path| Box::new(LocalKeySource { path: path.clone() }) as Box<dyn KeySource>)
            .collect()
    }

    /// The bytes of `root.json`.
    pub fn root_bytes(&self) -> Result<Vec<u8>> {
        fs::read(&self.root).with_context(|| format!("reading {}", self.root.display()))
    }
}

/// Whether a build of trust `mode` may sign with `keys`: the repository's TEST root (or any root
/// sharing a key with it) only in a TEST build, as for the release signing key; in a production
/// build only the root it trusts (`KEEL_TUF_ROOT`), so its updaters accept what it publishes.
/// Signing with the TEST keys is said loudly.
pub fn check_keys(mode: TrustMode, keys: &SigningKeys) -> Result<()> {
    let bytes = keys.root_bytes()?;
    let what = format!("TUF keys {}", keys.dir.display());
    let test = release::tuf::uses_test_keys(&bytes)
        .with_context(|| format!("{what}: reading {ROOT_JSON}"))?;
    release::tuf::check_root(mode, &bytes)
        .with_context(|| format!("refusing to sign the update repository with {what}"))?;
    match (mode, release::tuf::compiled_root()) {
        (TrustMode::Production, Some(trusted)) if !release::tuf::same_keys(trusted, &bytes)? => {
            bail!(
                "refusing to sign the update repository with {what}: its root is not the one \
                 this production build trusts (KEEL_TUF_ROOT), so the updaters built with it \
                 would refuse the repository"
            )
        }
        _ => {}
    }
    if test {
        tracing::warn!(
            "SIGNING THE UPDATE REPOSITORY WITH KEEL'S PUBLIC TEST TUF KEYS ({}): anyone can sign \
             with them; only test builds trust them",
            keys.dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_set_has_a_key_per_role_and_a_root_signed_by_the_root_key() {
        let dir = tempfile::tempdir().unwrap();
        let expires: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
        generate(dir.path(), expires).unwrap();
        let text = fs::read_to_string(dir.path().join(ROOT_JSON)).unwrap();
        let root: tough::schema::Signed<Root> = serde_json::from_str(&text).unwrap();
        assert_eq!(root.signed.expires, expires);
        assert!(root.signed.consistent_snapshot);
        assert_eq!(root.signed.keys.len(), 4, "one key per role");
        assert_eq!(root.signed.roles.len(), 4);
        root.signed
            .verify_role(&root)
            .expect("root.json verifies against its own root key");
        for (_, file) in ROLE_KEYS {
            use std::os::unix::fs::PermissionsExt;
            let meta = fs::metadata(dir.path().join(file)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        }
        // Nothing is overwritten.
        let err = generate(dir.path(), expires).unwrap_err().to_string();
        assert!(err.contains("not overwriting"), "{err}");
        // The root key may stay offline; the other three are needed.
        fs::remove_file(dir.path().join("root.pk8")).unwrap();
        assert_eq!(SigningKeys::from_dir(dir.path()).unwrap().keys.len(), 3);
        fs::remove_file(dir.path().join("snapshot.pk8")).unwrap();
        let err = SigningKeys::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("snapshot.pk8 is missing"), "{err}");
    }

    #[test]
    fn only_a_test_build_signs_with_the_test_keys() {
        let test = SigningKeys::from_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../release/keys/tuf"),
        )
        .unwrap();
        check_keys(TrustMode::Test, &test).unwrap();
        for mode in [TrustMode::Production, TrustMode::Unconfigured] {
            let err = format!("{:#}", check_keys(mode, &test).unwrap_err());
            assert!(
                err.contains("refusing to sign the update repository")
                    && err.contains("Keel's public TEST keys"),
                "{err}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), "2100-01-01T00:00:00Z".parse().unwrap()).unwrap();
        let other = SigningKeys::from_dir(dir.path()).unwrap();
        check_keys(TrustMode::Test, &other).unwrap();
        check_keys(TrustMode::Unconfigured, &other).unwrap();
    }
}
