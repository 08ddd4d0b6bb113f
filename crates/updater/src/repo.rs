//! The channel's update repository, read through TUF (tough's client): which releases a node
//! may take, each file with the size and SHA-256 the repository signs.
//!
//! `image-build` publishes the repository (`image_build::update_repo`); any static HTTP server
//! serves it, `metadata/` and `targets/` under one base URL ([`Source::from_base`]). [`load`]:
//!
//!  1. starts trust from the root compiled into this build ([`TrustedRoot::compiled`]:
//!     `release::tuf`, the TEST root only in a TEST build) and follows the repository's newer
//!     roots, each signed by the one before;
//!  2. fetches `timestamp.json`, the snapshot and the targets metadata, each checked against
//!     the keys the root names, its expiry, and what the node saw before: tough keeps the last
//!     metadata it accepted in the datastore ([`DEFAULT_DATASTORE`] on ROOT), and refuses an
//!     older version of any role, so a mirror cannot roll a node back to an old edition;
//!  3. reads the signed `manifest.json` target ([`release::manifest`]), refuses another
//!     channel's, and checks each release's files against the targets metadata;
//!  4. gives the releases as [`Offer`]s: for each file its URL (under its digest, as tough
//!     stores it with consistent snapshots), size and SHA-256, for `crate::payload` to fetch
//!     and verify.
//!
//! Every refusal is a [`RepoError`] that names the cause: expired metadata, a rollback, a
//! signature by keys this node does not trust, contents that do not match their digest.
//! tough is async; [`load`] runs it on a current-thread runtime of its own, over an HTTP
//! transport of Keel's (reqwest; tough's own would bring a second reqwest) that also reads
//! `file://` URLs.

use std::path::{Path, PathBuf};

use release::manifest::{Artifact, Manifest, Release, MANIFEST_TARGET};
use release::TrustMode;
use tough::error::Error as ToughError;
use tough::schema::RoleType;
use tough::{IntoVec, Repository, RepositoryLoader, TargetName};
use url::Url;

mod transport;

pub use transport::HttpTransport;

/// Where the TUF datastore (the last metadata accepted, the latest time seen) lives on ROOT.
pub const DEFAULT_DATASTORE: &str = "/var/lib/keel/updater/tuf";

/// A TUF root this node may start trust from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedRoot(Vec<u8>);

impl TrustedRoot {
    /// The root compiled into this build (`release::tuf::compiled_root`).
    pub fn compiled() -> Result<Self, RepoError> {
        release::tuf::compiled_root()
            .map(|root| TrustedRoot(root.to_vec()))
            .ok_or(RepoError::NoRoot)
    }

    /// A root given as bytes, allowed for a build of trust `mode` (`release::tuf::check_root`:
    /// the TEST root only in a TEST build).
    pub fn from_bytes(bytes: &[u8], mode: TrustMode) -> Result<Self, RepoError> {
        release::tuf::check_root(mode, bytes)?;
        Ok(TrustedRoot(bytes.to_vec()))
    }

    /// The root's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Where a channel's repository is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The metadata directory's URL (ending in `/`).
    pub metadata: Url,
    /// The targets directory's URL (ending in `/`).
    pub targets: Url,
    /// The channel; the manifest must name it.
    pub channel: String,
}

impl Source {
    /// The repository `image-build` wrote under `base` (`<base>/metadata/`, `<base>/targets/`).
    pub fn from_base(base: &Url, channel: &str) -> Result<Self, RepoError> {
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let join = |dir: &str| {
            base.join(dir).map_err(|e| RepoError::Url {
                url: format!("{base}{dir}"),
                why: e.to_string(),
            })
        };
        Ok(Source {
            metadata: join("metadata/")?,
            targets: join("targets/")?,
            channel: channel.to_string(),
        })
    }
}

/// One file of a release as the repository signs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFile {
    /// Its TUF target name (`<version>/<file>`).
    pub name: String,
    /// Where to fetch it: under its digest, so the bytes behind the URL never change.
    pub url: Url,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// A release the channel offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// Its version.
    pub version: String,
    /// The slot payload (the OS image for the USR partition).
    pub payload: TargetFile,
    /// The kernel.
    pub kernel: TargetFile,
    /// The initramfs.
    pub initrd: TargetFile,
    /// Its rollout plan, as published (`crate::wave` reads it), if any.
    pub rollout: Option<serde_json::Value>,
}

/// What the channel offers now.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    /// The channel's name.
    pub name: String,
    /// Its releases, in the order they were published.
    pub releases: Vec<Offer>,
    /// The version of the `timestamp.json` accepted (grows with every edition).
    pub edition: u64,
    /// When the metadata accepted expires (the earliest of its roles).
    pub expires: jiff::Timestamp,
}

/// The repository was refused, or could not be read; each names the cause.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The build trusts no TUF root.
    #[error(
        "this updater trusts no TUF root, so it cannot check any update: it was built without \
         KEEL_TUF_ROOT (production) or the feature test-keys (tests)"
    )]
    NoRoot,
    /// A root that this build may not trust.
    #[error(transparent)]
    Root(#[from] release::tuf::RootError),
    /// A URL that cannot be formed.
    #[error("bad URL {url}: {why}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The datastore directory cannot be made.
    #[error("preparing the TUF datastore {}: {source}", path.display())]
    Datastore {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Metadata past its expiry.
    #[error(
        "the repository's {role} metadata has expired: the mirror serves a stale or frozen \
         copy, or this node's clock is wrong; refusing it"
    )]
    Expired {
        /// The expired role.
        role: String,
    },
    /// Metadata older than what this node has seen.
    #[error(
        "rollback refused: the repository offers {role} version {offered}, but this node has \
         already seen version {seen} (a mirror serving old metadata, or an attack)"
    )]
    Rollback {
        /// The role.
        role: String,
        /// The version the node has seen.
        seen: u64,
        /// The older version offered.
        offered: u64,
    },
    /// Metadata not signed by keys the root trusts.
    #[error(
        "the repository's {role} metadata is not signed by the keys this node trusts for it; \
         refusing it ({detail})"
    )]
    Signature {
        /// The role.
        role: String,
        /// tough's words.
        detail: String,
    },
    /// Bytes that do not match the digest or size their metadata gives.
    #[error(
        "{what} does not match the digest or size the repository signs; refusing it ({detail})"
    )]
    Tampered {
        /// What was fetched.
        what: String,
        /// tough's words.
        detail: String,
    },
    /// The clock went back behind the latest time this node has seen.
    #[error(
        "this node's clock went back ({detail}); TUF refuses to judge expiry with it. Fix the \
         clock (or, if the last known time is wrong, remove latest_known_time.json from the \
         datastore)"
    )]
    ClockBackward {
        /// tough's words.
        detail: String,
    },
    /// The repository could not be fetched.
    #[error("fetching the update repository: {0}")]
    Fetch(String),
    /// The root does not use consistent snapshots.
    #[error(
        "the repository's root turns consistent snapshots off; Keel needs every file stored \
         under its digest, so a resumed download can only continue the same bytes"
    )]
    NotConsistent,
    /// The repository lists no manifest.
    #[error("the repository lists no {MANIFEST_TARGET}: no releases")]
    NoManifest,
    /// The manifest is not valid.
    #[error(transparent)]
    Manifest(#[from] release::manifest::ManifestError),
    /// The manifest and the targets metadata disagree.
    #[error("release {version}: {why}")]
    Disagree {
        /// The release.
        version: String,
        /// What disagrees.
        why: String,
    },
    /// Anything else tough refused.
    #[error("the update repository: {0}")]
    Other(String),
    /// The async runtime could not start.
    #[error("starting the async runtime for TUF: {0}")]
    Runtime(std::io::Error),
}

/// The tough error inside an error's chain, if any (a transport error can carry one).
fn tough_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a ToughError> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<ToughError>() {
            if !matches!(t, ToughError::Transport { .. }) {
                return Some(t);
            }
        }
        cause = c.source();
    }
    None
}

/// Name the cause of a refusal; `what` is what was being read.
fn classify(e: ToughError, what: &str) -> RepoError {
    let inner = tough_cause(&e).unwrap_or(&e);
    let detail = inner.to_string();
    match inner {
        ToughError::ExpiredMetadata { role, .. } => RepoError::Expired {
            role: role.to_string(),
        },
        ToughError::OlderMetadata {
            role,
            current_version,
            new_version,
            ..
        } => RepoError::Rollback {
            role: role.to_string(),
            seen: *current_version,
            offered: *new_version,
        },
        ToughError::OlderSnapshotInTimestamp {
            snapshot_new,
            snapshot_old,
            ..
        } => RepoError::Rollback {
            role: RoleType::Snapshot.to_string(),
            seen: *snapshot_old,
            offered: *snapshot_new,
        },
        ToughError::SnapshotRoleRollback {
            role,
            old_role_version,
            new_role_version,
            ..
        } => RepoError::Rollback {
            role: role.clone(),
            seen: *old_role_version,
            offered: *new_role_version,
        },
        ToughError::VerifyMetadata { role, .. } => RepoError::Signature {
            role: role.to_string(),
            detail,
        },
        ToughError::VerifyRoleMetadata { role, .. } => RepoError::Signature {
            role: role.clone(),
            detail,
        },
        ToughError::VerifyTrustedMetadata { .. } => RepoError::Signature {
            role: RoleType::Root.to_string(),
            detail,
        },
        ToughError::HashMismatch { .. } | ToughError::MaxSizeExceeded { .. } => {
            RepoError::Tampered {
                what: what.to_string(),
                detail,
            }
        }
        ToughError::SystemTimeSteppedBackward { .. } => RepoError::ClockBackward { detail },
        _ if matches!(e, ToughError::Transport { .. }) => RepoError::Fetch(format!("{what}: {e}")),
        _ => RepoError::Other(format!("{what}: {e}")),
    }
}

/// The URL of a target as tough stores it with consistent snapshots:
/// `<targets>/<sha256 hex>.<name>`.
pub fn target_url(targets: &Url, name: &TargetName, sha256: &[u8]) -> Result<Url, RepoError> {
    let file = format!("{}.{}", hex::encode(sha256), name.resolved());
    let url = targets.join(&file).map_err(|e| RepoError::Url {
        url: format!("{targets}{file}"),
        why: e.to_string(),
    })?;
    if !url.as_str().starts_with(targets.as_str()) {
        return Err(RepoError::Url {
            url: url.to_string(),
            why: format!("target {} escapes {targets}", name.raw()),
        });
    }
    Ok(url)
}

/// One file of a manifest release, checked against the targets metadata.
fn target_file(
    repo: &Repository,
    targets: &Url,
    release: &Release,
    artifact: &Artifact,
) -> Result<TargetFile, RepoError> {
    let disagree = |why: String| RepoError::Disagree {
        version: release.version.clone(),
        why,
    };
    let name = TargetName::new(artifact.target.as_str())
        .map_err(|e| disagree(format!("target name {:?}: {e}", artifact.target)))?;
    let target = repo.targets().signed.targets.get(&name).ok_or_else(|| {
        disagree(format!(
            "{} is not in the targets metadata",
            artifact.target
        ))
    })?;
    let sha256: [u8; 32] = target.hashes.sha256.as_ref().try_into().map_err(|_| {
        disagree(format!(
            "{} has no SHA-256 in the metadata",
            artifact.target
        ))
    })?;
    if target.length != artifact.size || hex::encode(sha256) != artifact.sha256 {
        return Err(disagree(format!(
            "the manifest gives {} as {} bytes, SHA-256 {}, the targets metadata as {} bytes, \
             SHA-256 {}",
            artifact.target,
            artifact.size,
            artifact.sha256,
            target.length,
            hex::encode(sha256)
        )));
    }
    Ok(TargetFile {
        name: artifact.target.clone(),
        url: target_url(targets, &name, &sha256)?,
        size: target.length,
        sha256,
    })
}

async fn load_async(
    root: &TrustedRoot,
    source: &Source,
    datastore: &Path,
) -> Result<Channel, RepoError> {
    let repo = RepositoryLoader::new(
        &root.bytes(),
        source.metadata.clone(),
        source.targets.clone(),
    )
    .transport(HttpTransport::new().map_err(|e| RepoError::Fetch(e.to_string()))?)
    .datastore(datastore)
    .load()
    .await
    .map_err(|e| classify(e, &format!("the metadata at {}", source.metadata)))?;
    if !repo.root().signed.consistent_snapshot {
        return Err(RepoError::NotConsistent);
    }
    let name = TargetName::new(MANIFEST_TARGET).map_err(|e| RepoError::Other(e.to_string()))?;
    let what = format!("{MANIFEST_TARGET} from {}", source.targets);
    let stream = repo
        .read_target(&name)
        .await
        .map_err(|e| classify(e, &what))?
        .ok_or(RepoError::NoManifest)?;
    let bytes = stream.into_vec().await.map_err(|e| classify(e, &what))?;
    let manifest = Manifest::parse(&bytes, &source.channel)?;
    let mut releases = Vec::new();
    for release in &manifest.releases {
        let file = |a: &Artifact| target_file(&repo, &source.targets, release, a);
        releases.push(Offer {
            version: release.version.clone(),
            payload: file(&release.payload)?,
            kernel: file(&release.kernel)?,
            initrd: file(&release.initrd)?,
            rollout: release.rollout.clone(),
        });
    }
    let expires = [
        repo.timestamp().signed.expires,
        repo.snapshot().signed.expires,
        repo.targets().signed.expires,
    ]
    .into_iter()
    .min()
    .expect("three roles");
    Ok(Channel {
        name: manifest.channel,
        releases,
        edition: repo.timestamp().signed.version.get(),
        expires,
    })
}

/// Load the channel's repository from `source`, trusting `root`, with the metadata seen before
/// (and the floor it sets) in `datastore` (created if missing, mode 0700); see the module doc.
pub fn load(root: &TrustedRoot, source: &Source, datastore: &Path) -> Result<Channel, RepoError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(datastore)
        .map_err(|source| RepoError::Datastore {
            path: datastore.to_path_buf(),
            source,
        })?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RepoError::Runtime)?
        .block_on(load_async(root, source, datastore))
}

#[cfg(test)]
mod tests;
