//! A channel's update repository: a TUF repository that any static HTTP server can serve, from
//! which the updater takes new releases (`updater::repo`).
//!
//! ```text
//! OUT/update/<channel>/metadata/1.root.json        the root (every later N.root.json stays too)
//! OUT/update/<channel>/metadata/N.targets.json     the releases' files, with sizes and SHA-256
//! OUT/update/<channel>/metadata/N.snapshot.json
//! OUT/update/<channel>/metadata/timestamp.json     the newest edition; expires soonest
//! OUT/update/<channel>/targets/<sha256>.<version>/usr.squashfs   the slot payload
//! OUT/update/<channel>/targets/<sha256>.<version>/vmlinuz        the kernel
//! OUT/update/<channel>/targets/<sha256>.<version>/initrd.img     the initramfs
//! OUT/update/<channel>/targets/<sha256>.manifest.json            the releases ([`release::manifest`])
//! ```
//!
//! Each release is three TUF targets named `<version>/<file>`; with consistent snapshots (which
//! Keel requires) tough stores each under its SHA-256, so a file's URL names its contents and a
//! resumed download can only ever continue the same bytes. [`publish`] adds one release: it
//! loads the repository already there (checked against the same root, expired or not), keeps
//! its releases, lists the new one last in `manifest.json`, bumps every role's version, signs
//! with the given keys ([`crate::tuf_keys`]) and writes the targets first and `timestamp.json`
//! last, so a server never lists a file it does not have. Metadata expires ([`Expiry`]: the
//! timestamp after 7 days, the rest after 30, unless re-published sooner), and version numbers
//! only grow, so a node that has seen an edition refuses every older one.

use std::collections::HashMap;
use std::fs;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use jiff::{SignedDuration, Timestamp};
use release::manifest::{self, Added, Artifact, Manifest, Release, MANIFEST_TARGET};
use tough::editor::RepositoryEditor;
use tough::schema::{Hashes, Target};
use tough::{ExpirationEnforcement, IntoVec, Repository, RepositoryLoader, TargetName};
use url::Url;

use crate::tuf_keys::{runtime, SigningKeys};

/// The metadata directory of a repository.
pub const METADATA_DIR: &str = "metadata";
/// The targets directory of a repository.
pub const TARGETS_DIR: &str = "targets";

/// The repository of `channel` under an output directory: `OUT/update/<channel>`.
pub fn channel_dir(out: &Path, channel: &str) -> PathBuf {
    out.join("update").join(channel)
}

/// How long each role's metadata stays valid after it is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    /// `timestamp.json`: the shortest, so a frozen mirror is noticed soon.
    pub timestamp: SignedDuration,
    /// `N.snapshot.json`.
    pub snapshot: SignedDuration,
    /// `N.targets.json`.
    pub targets: SignedDuration,
}

impl Default for Expiry {
    /// 7 days for the timestamp, 30 for the snapshot and targets.
    fn default() -> Self {
        let days = |d: i64| SignedDuration::from_hours(24 * d);
        Expiry {
            timestamp: days(7),
            snapshot: days(30),
            targets: days(30),
        }
    }
}

/// One release to add to a channel's repository.
#[derive(Clone, Debug)]
pub struct Publish<'a> {
    /// The repository (`OUT/update/<channel>`, see [`channel_dir`]); created if missing.
    pub repo: &'a Path,
    /// The channel, checked against an existing manifest.
    pub channel: &'a str,
    /// The release's version.
    pub version: &'a str,
    /// The slot payload (`work/usr.squashfs`).
    pub payload: &'a Path,
    /// The kernel.
    pub kernel: &'a Path,
    /// The initramfs.
    pub initrd: &'a Path,
    /// The keys to sign with.
    pub keys: &'a SigningKeys,
    /// How long the new metadata stays valid.
    pub expiry: Expiry,
    /// The signing time (expiries count from it).
    pub now: Timestamp,
}

/// What [`publish`] did.
#[derive(Clone, Debug)]
pub struct Published {
    /// The release as the manifest lists it.
    pub release: Release,
    /// Whether it was new or already listed (then the metadata was only signed anew).
    pub added: Added,
    /// How many releases the channel lists now.
    pub releases: usize,
    /// The new edition's timestamp version.
    pub timestamp_version: u64,
}

/// The file URL of a directory (with its trailing `/`).
fn dir_url(dir: &Path) -> Result<Url> {
    let abs = fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))?;
    Url::from_directory_path(&abs)
        .map_err(|()| anyhow::anyhow!("{} cannot be a file URL", abs.display()))
}

/// The repository at `repo`, checked against `root` (expired metadata allowed: publishing
/// again is how it is refreshed).
async fn load(root: &[u8], repo: &Path) -> Result<Repository> {
    RepositoryLoader::new(
        &root,
        dir_url(&repo.join(METADATA_DIR))?,
        dir_url(&repo.join(TARGETS_DIR))?,
    )
    .expiration_enforcement(ExpirationEnforcement::Unsafe)
    .load()
    .await
    .with_context(|| {
        format!(
            "loading the update repository in {} (it must have been signed with the same TUF \
             root)",
            repo.display()
        )
    })
}

/// The manifest of a loaded repository, or a new one if it has none.
async fn read_manifest(repo: &Repository, channel: &str) -> Result<Manifest> {
    let name = TargetName::new(MANIFEST_TARGET)?;
    let Some(stream) = repo.read_target(&name).await? else {
        return Ok(Manifest::new(channel));
    };
    let bytes = stream.into_vec().await.context("reading manifest.json")?;
    Ok(Manifest::parse(&bytes, channel)?)
}

/// A file as a TUF target: its length and SHA-256, read in one synchronous pass (tough's
/// `Target::from_path` reads 8 KiB per blocking task, several times slower on a slot payload).
fn target_of(path: &Path) -> Result<Target> {
    use std::io::Read;
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut length = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                digest.update(&buf[..n]);
                length += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(Target {
        length,
        hashes: Hashes {
            sha256: digest.finish().as_ref().to_vec().into(),
            _extra: HashMap::new(),
        },
        custom: HashMap::new(),
        _extra: HashMap::new(),
    })
}

/// Where a target is stored with consistent snapshots, as tough's client asks for it:
/// `<targets>/<sha256 hex>.<name>` (so `<sha256>.0.2.0/usr.squashfs`).
pub fn stored_path(targets: &Path, name: &str, sha256: &[u8]) -> PathBuf {
    targets.join(format!("{}.{name}", hex::encode(sha256)))
}

/// Copy `src` to where target `name` is stored, through a temporary name; a file already there
/// has the same digest in its name and is kept if its size matches.
fn copy_target(src: &Path, targets: &Path, name: &str, target: &Target) -> Result<()> {
    let dest = stored_path(targets, name, &target.hashes.sha256);
    if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == target.length) {
        return Ok(());
    }
    let dir = dest.parent().context("a target has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dest.with_extension("part");
    fs::copy(src, &tmp)
        .with_context(|| format!("copying {} to {}", src.display(), tmp.display()))?;
    fs::rename(&tmp, &dest).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

/// One more than `version`.
fn next(version: NonZeroU64) -> NonZeroU64 {
    version.saturating_add(1)
}

/// Add a release to a channel's repository and sign a new edition of it (see the module doc).
pub fn publish(p: &Publish) -> Result<Published> {
    for (what, name) in [("version", p.version), ("channel", p.channel)] {
        ensure!(
            release::layout::valid_version(name),
            "{what} {name:?} is not a plain name (letters, digits, . - _ +)"
        );
    }
    runtime()?.block_on(publish_async(p))
}

async fn publish_async(p: &Publish<'_>) -> Result<Published> {
    let root = p.keys.root_bytes()?;
    let consistent = serde_json::from_slice::<tough::schema::Signed<tough::schema::Root>>(&root)
        .with_context(|| format!("{} is not a TUF root", p.keys.root.display()))?
        .signed
        .consistent_snapshot;
    if !consistent {
        bail!(
            "{}: Keel's update repositories use consistent snapshots (every file stored under \
             its digest, so a resumed download can only continue the same bytes); this root \
             turns them off",
            p.keys.root.display()
        );
    }
    let metadata = p.repo.join(METADATA_DIR);
    let targets = p.repo.join(TARGETS_DIR);
    for dir in [&metadata, &targets] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let one = NonZeroU64::MIN;
    let (mut editor, mut manifest, versions) = if metadata.join("timestamp.json").is_file() {
        let repo = load(&root, p.repo).await?;
        let manifest = read_manifest(&repo, p.channel).await?;
        let versions = [
            next(repo.targets().signed.version),
            next(repo.snapshot().signed.version),
            next(repo.timestamp().signed.version),
        ];
        let editor = RepositoryEditor::from_repo(&p.keys.root, repo).await?;
        (editor, manifest, versions)
    } else {
        let editor = RepositoryEditor::new(&p.keys.root)
            .await
            .with_context(|| format!("reading {}", p.keys.root.display()))?;
        (editor, Manifest::new(p.channel), [one, one, one])
    };

    let files = [
        (manifest::PAYLOAD, p.payload),
        (manifest::KERNEL, p.kernel),
        (manifest::INITRD, p.initrd),
    ];
    let mut found = Vec::new();
    for (file, path) in files {
        let target = target_of(path)?;
        let artifact = Artifact {
            target: manifest::target_name(p.version, file),
            size: target.length,
            sha256: hex::encode(&target.hashes.sha256),
        };
        found.push((artifact, target, path));
    }
    let mut artifacts = found.iter().map(|(a, _, _)| a.clone());
    let mut artifact = || artifacts.next().expect("three files");
    let release = Release {
        version: p.version.to_string(),
        payload: artifact(),
        kernel: artifact(),
        initrd: artifact(),
        rollout: None,
    };
    let added = manifest.add(release.clone())?;
    for (artifact, target, _) in &found {
        editor.add_target(artifact.target.as_str(), target.clone())?;
    }
    let staged = p.repo.join(".manifest.json.new");
    fs::write(&staged, manifest.to_json())
        .with_context(|| format!("writing {}", staged.display()))?;
    let manifest_target = target_of(&staged)?;
    editor.add_target(MANIFEST_TARGET, manifest_target.clone())?;

    let expires = |d: SignedDuration| -> Result<Timestamp> {
        Ok(p.now
            .checked_add(d)?
            .round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))?)
    };
    let [targets_version, snapshot_version, timestamp_version] = versions;
    editor
        .targets_version(targets_version)?
        .targets_expires(expires(p.expiry.targets)?)?
        .snapshot_version(snapshot_version)
        .snapshot_expires(expires(p.expiry.snapshot)?)
        .timestamp_version(timestamp_version)
        .timestamp_expires(expires(p.expiry.timestamp)?);
    let signed = editor.sign(&p.keys.sources()).await.with_context(|| {
        format!(
            "signing the update repository with the keys in {} (the targets, snapshot and \
             timestamp keys must be the ones its root.json names)",
            p.keys.dir.display()
        )
    })?;

    // Files first, metadata after (timestamp.json last): a server never lists what it lacks.
    for (artifact, target, path) in &found {
        copy_target(path, &targets, &artifact.target, target)?;
    }
    copy_target(&staged, &targets, MANIFEST_TARGET, &manifest_target)?;
    fs::remove_file(&staged).with_context(|| format!("removing {}", staged.display()))?;
    signed
        .write(&metadata)
        .await
        .with_context(|| format!("writing the metadata into {}", metadata.display()))?;
    Ok(Published {
        release,
        added,
        releases: manifest.releases.len(),
        timestamp_version: timestamp_version.get(),
    })
}

/// The TEST keys and small release files, for tests here and in the updater's (feature
/// `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// The repository's public TEST key set (`crates/release/keys/tuf`).
    pub fn test_keys() -> SigningKeys {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../release/keys/tuf");
        SigningKeys::from_dir(&dir).expect("the TEST TUF keys")
    }

    /// Write a release's three files into `dir` (`usr.squashfs` of `payload_size` bytes whose
    /// contents depend on `seed`, a small kernel and initramfs); their paths.
    pub fn release_files(dir: &Path, seed: u8, payload_size: usize) -> [PathBuf; 3] {
        fs::create_dir_all(dir).unwrap();
        let payload: Vec<u8> = (0..payload_size)
            .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
            .collect();
        let files = [
            (manifest::PAYLOAD, payload),
            (manifest::KERNEL, vec![seed; 3000]),
            (manifest::INITRD, vec![seed.wrapping_add(1); 5000]),
        ];
        files.map(|(name, bytes)| {
            let path = dir.join(name);
            fs::write(&path, bytes).unwrap();
            path
        })
    }

    /// A key set in `dir` whose root is the TEST root with one change: the targets role has a
    /// fresh key of its own (the root signed again with the TEST root key). A node trusting the
    /// TEST root accepts its timestamp and snapshot but not its targets metadata.
    pub fn keys_with_other_targets_key(dir: &Path) -> SigningKeys {
        use tough::editor::signed::SignedRole;
        use tough::key_source::{KeySource, LocalKeySource};
        use tough::schema::{KeyHolder, RoleType, Root, Signed};
        let test = test_keys();
        let fresh = dir.join("fresh");
        crate::tuf_keys::generate(&fresh, "2100-01-01T00:00:00Z".parse().unwrap()).unwrap();
        let read =
            |p: &Path| -> Signed<Root> { serde_json::from_slice(&fs::read(p).unwrap()).unwrap() };
        let mut root = read(&test.root).signed;
        let other = read(&fresh.join(crate::tuf_keys::ROOT_JSON)).signed;
        let new_id = other.roles[&RoleType::Targets].keyids[0].clone();
        let old_id = root.roles[&RoleType::Targets].keyids[0].clone();
        root.keys.remove(&old_id);
        root.keys
            .insert(new_id.clone(), other.keys[&new_id].clone());
        root.roles.get_mut(&RoleType::Targets).unwrap().keyids = vec![new_id];
        let signer: Box<dyn KeySource> = Box::new(LocalKeySource {
            path: test.dir.join("root.pk8"),
        });
        let signed = runtime()
            .unwrap()
            .block_on(SignedRole::new(
                root.clone(),
                &KeyHolder::Root(root),
                &[signer],
                &aws_lc_rs::rand::SystemRandom::new(),
            ))
            .unwrap();
        fs::write(dir.join(crate::tuf_keys::ROOT_JSON), signed.buffer()).unwrap();
        for (from, file) in [
            (&test.dir, "snapshot.pk8"),
            (&test.dir, "timestamp.pk8"),
            (&fresh, "targets.pk8"),
        ] {
            fs::copy(from.join(file), dir.join(file)).unwrap();
        }
        SigningKeys::from_dir(dir).unwrap()
    }

    /// Publish release `version` (files from [`release_files`] with `seed`) into `repo` with
    /// `keys`, signed at `now`.
    pub fn publish_release(
        repo: &Path,
        channel: &str,
        version: &str,
        seed: u8,
        keys: &SigningKeys,
        now: Timestamp,
    ) -> Published {
        let files = release_files(&repo.with_extension(format!("src-{version}")), seed, 70_000);
        publish(&Publish {
            repo,
            channel,
            version,
            payload: &files[0],
            kernel: &files[1],
            initrd: &files[2],
            keys,
            expiry: Expiry::default(),
            now,
        })
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_second_release_is_appended_and_the_first_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = channel_dir(tmp.path(), "beta");
        let keys = test_keys();
        let now = Timestamp::now();
        let first = publish_release(&repo, "beta", "0.1.0", 1, &keys, now);
        assert_eq!((first.added, first.releases), (Added::New, 1));
        assert_eq!(first.timestamp_version, 1);
        let second = publish_release(&repo, "beta", "0.2.0", 2, &keys, now);
        assert_eq!((second.added, second.releases), (Added::New, 2));
        assert_eq!(second.timestamp_version, 2);
        // The same release again: listed once, the metadata signed anew.
        let again = publish_release(&repo, "beta", "0.2.0", 2, &keys, now);
        assert_eq!((again.added, again.releases), (Added::AlreadyListed, 2));
        assert_eq!(again.timestamp_version, 3);
        // Another build under a published version is refused.
        let files = release_files(&tmp.path().join("other"), 9, 1000);
        let err = publish(&Publish {
            repo: &repo,
            channel: "beta",
            version: "0.2.0",
            payload: &files[0],
            kernel: &files[1],
            initrd: &files[2],
            keys: &keys,
            expiry: Expiry::default(),
            now,
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("already published"), "{err:#}");

        let meta = names(&repo.join(METADATA_DIR));
        assert_eq!(
            meta,
            [
                "1.root.json",
                "1.snapshot.json",
                "1.targets.json",
                "2.snapshot.json",
                "2.targets.json",
                "3.snapshot.json",
                "3.targets.json",
                "timestamp.json"
            ]
        );
        // Each file under its digest; both releases' files are there.
        let loaded = runtime()
            .unwrap()
            .block_on(load(&keys.root_bytes().unwrap(), &repo))
            .unwrap();
        let manifest = runtime()
            .unwrap()
            .block_on(read_manifest(&loaded, "beta"))
            .unwrap();
        let versions: Vec<&str> = manifest
            .releases
            .iter()
            .map(|r| r.version.as_str())
            .collect();
        assert_eq!(versions, ["0.1.0", "0.2.0"]);
        for release in &manifest.releases {
            for (_, a) in release.artifacts() {
                let digest = hex::decode(&a.sha256).unwrap();
                let path = stored_path(&repo.join(TARGETS_DIR), &a.target, &digest);
                let (dir, file) = a.target.split_once('/').unwrap();
                assert!(path.ends_with(format!("{}.{dir}/{file}", a.sha256)));
                assert_eq!(fs::metadata(&path).unwrap().len(), a.size, "{}", a.target);
                let target = loaded
                    .targets()
                    .signed
                    .targets
                    .get(&TargetName::new(a.target.as_str()).unwrap())
                    .unwrap();
                assert_eq!(hex::encode(&target.hashes.sha256), a.sha256);
            }
        }
        // Expiries count from the signing time: 7 days for the timestamp, 30 for the others.
        let in_days = |t: Timestamp| ((t.as_second() - now.as_second()) as f64 / 86400.0).round();
        assert_eq!(in_days(loaded.timestamp().signed.expires), 7.0);
        assert_eq!(in_days(loaded.snapshot().signed.expires), 30.0);
        assert_eq!(in_days(loaded.targets().signed.expires), 30.0);
        assert!(!repo.join(".manifest.json.new").exists());
        // tough's client finds a payload where it was stored, and it verifies.
        let name = TargetName::new("0.1.0/usr.squashfs").unwrap();
        let got = runtime().unwrap().block_on(async {
            let stream = loaded.read_target(&name).await.unwrap().unwrap();
            stream.into_vec().await.unwrap()
        });
        assert_eq!(got.len() as u64, manifest.releases[0].payload.size);
    }

    #[test]
    fn another_channel_or_other_keys_cannot_extend_a_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = channel_dir(tmp.path(), "beta");
        let keys = test_keys();
        publish_release(&repo, "beta", "0.1.0", 1, &keys, Timestamp::now());
        let files = release_files(&tmp.path().join("src"), 2, 1000);
        let other = tmp.path().join("other-keys");
        crate::tuf_keys::generate(&other, "2100-01-01T00:00:00Z".parse().unwrap()).unwrap();
        let other = SigningKeys::from_dir(&other).unwrap();
        for (channel, keys, want) in [
            ("stable", &keys, "channel \"beta\"'s, not \"stable\"'s"),
            ("beta", &other, "signed with the same TUF root"),
        ] {
            let err = publish(&Publish {
                repo: &repo,
                channel,
                version: "0.2.0",
                payload: &files[0],
                kernel: &files[1],
                initrd: &files[2],
                keys,
                expiry: Expiry::default(),
                now: Timestamp::now(),
            })
            .unwrap_err();
            assert!(format!("{err:#}").contains(want), "{want}: {err:#}");
        }
    }
}
