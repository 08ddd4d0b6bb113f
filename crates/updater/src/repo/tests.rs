//! Repositories published by image-build's `update_repo` into a tempdir, served on loopback.

use std::fs;

use image_build::update_repo::testing::{keys_with_other_targets_key, publish_release, test_keys};
use image_build::update_repo::{channel_dir, METADATA_DIR, TARGETS_DIR};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::*;
use crate::test_server::Server;

/// A published channel `beta` in a tempdir, served over HTTP.
struct Fixture {
    tmp: tempfile::TempDir,
    server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let server = Server::start(tmp.path());
        Fixture { tmp, server }
    }

    fn repo(&self) -> PathBuf {
        channel_dir(self.tmp.path(), "beta")
    }

    fn publish(&self, version: &str, seed: u8, now: Timestamp) {
        publish_release(&self.repo(), "beta", version, seed, &test_keys(), now);
    }

    fn source(&self, channel: &str) -> Source {
        let base = self.server.base.join("update/beta/").unwrap();
        Source::from_base(&base, channel).unwrap()
    }

    fn datastore(&self) -> PathBuf {
        self.tmp.path().join("var/lib/keel/updater/tuf")
    }

    fn load(&self) -> Result<Channel, RepoError> {
        load(&test_root(), &self.source("beta"), &self.datastore())
    }
}

fn test_root() -> TrustedRoot {
    TrustedRoot::from_bytes(release::tuf::TEST_ROOT, TrustMode::Test).unwrap()
}

#[test]
fn a_valid_repository_gives_its_releases_with_digest_addressed_urls() {
    let f = Fixture::new();
    f.publish("0.1.0", 1, Timestamp::now());
    f.publish("0.2.0", 2, Timestamp::now());
    let channel = f.load().unwrap();
    assert_eq!(channel.name, "beta");
    assert_eq!(channel.edition, 2);
    let versions: Vec<&str> = channel
        .releases
        .iter()
        .map(|r| r.version.as_str())
        .collect();
    assert_eq!(versions, ["0.1.0", "0.2.0"]);
    let offer = &channel.releases[1];
    assert_eq!(offer.payload.name, "0.2.0/usr.squashfs");
    assert_eq!(offer.kernel.name, "0.2.0/vmlinuz");
    assert_eq!(offer.initrd.name, "0.2.0/initrd.img");
    assert!(channel.expires > Timestamp::now() + SignedDuration::from_hours(6 * 24));
    // Each URL names the file's digest, and serves exactly the bytes signed.
    for file in [&offer.payload, &offer.kernel, &offer.initrd] {
        let digest = hex::encode(file.sha256);
        assert!(
            file.url
                .as_str()
                .contains(&format!("/targets/{digest}.0.2.0/")),
            "{}",
            file.url
        );
        let body = reqwest::blocking::get(file.url.clone())
            .unwrap()
            .bytes()
            .unwrap();
        assert_eq!(body.len() as u64, file.size);
        assert_eq!(Sha256::digest(&body)[..], file.sha256[..]);
    }
    // The datastore keeps what was accepted: the floor for the next check.
    assert!(f.datastore().join("timestamp.json").is_file());
}

#[test]
fn expired_metadata_is_refused() {
    let f = Fixture::new();
    // Signed eight days ago: the timestamp (seven days) has expired, the rest (30) not.
    f.publish(
        "0.1.0",
        1,
        Timestamp::now() - SignedDuration::from_hours(8 * 24),
    );
    let err = f.load().unwrap_err();
    assert!(
        matches!(&err, RepoError::Expired { role } if role == "timestamp"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("timestamp metadata has expired"),
        "{err}"
    );
}

#[test]
fn a_tampered_target_is_refused() {
    let f = Fixture::new();
    f.publish("0.1.0", 1, Timestamp::now());
    // Change one byte of manifest.json where it is stored (same length, other contents).
    let targets = f.repo().join(TARGETS_DIR);
    let manifest = fs::read_dir(&targets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".manifest.json"))
        .unwrap();
    let mut bytes = fs::read(&manifest).unwrap();
    let at = bytes.iter().position(|&b| b == b'0').unwrap();
    bytes[at] = b'9';
    fs::write(&manifest, bytes).unwrap();
    let err = f.load().unwrap_err();
    assert!(matches!(err, RepoError::Tampered { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("manifest.json from ") && msg.contains("does not match the digest"),
        "{msg}"
    );
}

#[test]
fn tampered_targets_metadata_is_refused() {
    let f = Fixture::new();
    f.publish("0.1.0", 1, Timestamp::now());
    // Grow the payload's signed length in 1.targets.json: the signature no longer covers it.
    let path = f.repo().join(METADATA_DIR).join("1.targets.json");
    let text = fs::read_to_string(&path).unwrap();
    let doctored = text.replacen("\"length\": 70000", "\"length\": 70001", 1);
    assert_ne!(text, doctored);
    fs::write(&path, doctored).unwrap();
    let err = f.load().unwrap_err();
    assert!(
        matches!(
            &err,
            RepoError::Tampered { .. } | RepoError::Signature { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn metadata_older_than_what_the_node_has_seen_is_refused() {
    let f = Fixture::new();
    f.publish("0.1.0", 1, Timestamp::now());
    let metadata = f.repo().join(METADATA_DIR);
    let old = f.tmp.path().join("old-metadata");
    fs::create_dir_all(&old).unwrap();
    for e in fs::read_dir(&metadata).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), old.join(e.file_name())).unwrap();
    }
    f.publish("0.2.0", 2, Timestamp::now());
    assert_eq!(f.load().unwrap().edition, 2);
    // A mirror goes back to the first edition (valid, signed, unexpired): refused.
    fs::remove_dir_all(&metadata).unwrap();
    fs::rename(&old, &metadata).unwrap();
    let err = f.load().unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Rollback {
                seen: 2,
                offered: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "rollback refused: the repository offers timestamp version 1, but this node has already \
         seen version 2 (a mirror serving old metadata, or an attack)"
    );
    // A node without that memory would take it: the datastore is the floor.
    let fresh = f.tmp.path().join("fresh-datastore");
    assert_eq!(
        load(&test_root(), &f.source("beta"), &fresh)
            .unwrap()
            .edition,
        1
    );
}

#[test]
fn metadata_signed_by_keys_the_node_does_not_trust_is_refused() {
    // Another key set altogether: the timestamp is the first thing refused.
    let f = Fixture::new();
    let rogue = f.tmp.path().join("rogue-keys");
    image_build::tuf_keys::generate(&rogue, "2100-01-01T00:00:00Z".parse().unwrap()).unwrap();
    let rogue = image_build::tuf_keys::SigningKeys::from_dir(&rogue).unwrap();
    publish_release(&f.repo(), "beta", "0.1.0", 1, &rogue, Timestamp::now());
    let err = f.load().unwrap_err();
    assert!(
        matches!(&err, RepoError::Signature { role, .. } if role == "timestamp"),
        "{err:?}"
    );

    // The trusted timestamp and snapshot keys, but targets signed by a key the root does not
    // name: the targets (the list of releases and digests) are refused.
    let f = Fixture::new();
    let keys = keys_with_other_targets_key(&f.tmp.path().join("half-rogue"));
    publish_release(&f.repo(), "beta", "0.1.0", 1, &keys, Timestamp::now());
    let err = f.load().unwrap_err();
    assert!(
        matches!(&err, RepoError::Signature { role, .. } if role == "targets"),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(
            "the repository's targets metadata is not signed by the keys this node trusts"
        ),
        "{err}"
    );
}

#[test]
fn another_channel_a_missing_repository_and_the_test_root_in_production_are_refused() {
    let f = Fixture::new();
    f.publish("0.1.0", 1, Timestamp::now());
    let err = load(&test_root(), &f.source("stable"), &f.datastore()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the manifest is channel \"beta\"'s, not \"stable\"'s"
    );
    let nowhere = Source::from_base(&f.server.base.join("update/alpha").unwrap(), "alpha").unwrap();
    let err = load(&test_root(), &nowhere, &f.datastore()).unwrap_err();
    assert!(matches!(err, RepoError::Fetch(_)), "{err:?}");
    for mode in [TrustMode::Production, TrustMode::Unconfigured] {
        let err = TrustedRoot::from_bytes(release::tuf::TEST_ROOT, mode).unwrap_err();
        assert!(err.to_string().contains("Keel's public TEST keys"), "{err}");
    }
    // The compiled-in root follows the build: the TEST root in a test build only.
    match release::TRUST {
        TrustMode::Test => assert_eq!(TrustedRoot::compiled().unwrap(), test_root()),
        _ => {
            if let Ok(root) = TrustedRoot::compiled() {
                assert_ne!(root, test_root());
            }
        }
    }
}

#[test]
fn a_base_url_with_or_without_its_slash_names_the_same_directories() {
    for base in ["http://h/update/beta", "http://h/update/beta/"] {
        let s = Source::from_base(&base.parse().unwrap(), "beta").unwrap();
        assert_eq!(s.metadata.as_str(), "http://h/update/beta/metadata/");
        assert_eq!(s.targets.as_str(), "http://h/update/beta/targets/");
    }
    let name = TargetName::new("0.2.0/usr.squashfs").unwrap();
    let url = target_url(&"http://h/t/".parse().unwrap(), &name, &[0xab; 32]).unwrap();
    assert_eq!(
        url.as_str(),
        format!("http://h/t/{}.0.2.0/usr.squashfs", "ab".repeat(32))
    );
}
