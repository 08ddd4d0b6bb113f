//! A channel's manifest: the `manifest.json` target of the channel's TUF update repository, the
//! list of releases a node may update to.
//!
//! `image-build` writes it (`update_repo`), the updater reads it (`updater::repo`). It is a TUF
//! target like the files it names, so it is signed, expires and cannot be rolled back with the
//! rest of the repository's metadata; the sizes and digests it repeats must agree with the
//! repository's own (the updater checks). Each release is three targets, named by version:
//!
//! ```json
//! {
//!   "schema": 1,
//!   "channel": "stable",
//!   "releases": [
//!     {
//!       "version": "0.2.0",
//!       "payload": {"target": "0.2.0/usr.squashfs", "size": 251658240, "sha256": "…"},
//!       "kernel":  {"target": "0.2.0/vmlinuz", "size": 8123456, "sha256": "…"},
//!       "initrd":  {"target": "0.2.0/initrd.img", "size": 9012345, "sha256": "…"}
//!     }
//!   ]
//! }
//! ```
//!
//! Releases are listed in the order they were published. A release may carry a `rollout` plan
//! (not written yet: a placeholder for the waves the updater's policy will read). Unknown fields
//! are ignored, so a newer image-build may add some; a newer `schema` is refused.

use serde::{Deserialize, Serialize};

use crate::layout;

/// The manifest's TUF target name.
pub const MANIFEST_TARGET: &str = "manifest.json";
/// The manifest format this code writes and reads.
pub const SCHEMA: u32 = 1;
/// A release's slot payload (the OS image written to the inactive USR partition).
pub const PAYLOAD: &str = "usr.squashfs";
/// A release's kernel (as on the ESP: `keel/<slot>/vmlinuz`).
pub const KERNEL: &str = "vmlinuz";
/// A release's initramfs (as on the ESP: `keel/<slot>/initrd.img`).
pub const INITRD: &str = "initrd.img";

/// The TUF target name of a release's file: `<version>/<file>`.
pub fn target_name(version: &str, file: &str) -> String {
    format!("{version}/{file}")
}

/// A channel's manifest (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The format, [`SCHEMA`].
    pub schema: u32,
    /// The channel (`stable`, `beta`, `alpha`): a node refuses another channel's manifest.
    pub channel: String,
    /// The releases, oldest first.
    pub releases: Vec<Release>,
}

/// One release of the channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Its version.
    pub version: String,
    /// The slot payload, [`PAYLOAD`].
    pub payload: Artifact,
    /// The kernel, [`KERNEL`].
    pub kernel: Artifact,
    /// The initramfs, [`INITRD`].
    pub initrd: Artifact,
    /// The rollout plan (placeholder; nothing writes one yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<serde_json::Value>,
}

/// One file of a release: its TUF target name, size and SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The TUF target name, `<version>/<file>`.
    pub target: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, 64 lower-case hex digits.
    pub sha256: String,
}

/// A manifest that cannot be read or extended.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON of the manifest's shape.
    #[error("the channel manifest is not valid: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written by a newer image-build.
    #[error("the channel manifest has schema {0}; this program reads schema {SCHEMA}")]
    Schema(u32),
    /// Another channel's manifest.
    #[error("the manifest is channel {found:?}'s, not {wanted:?}'s")]
    Channel {
        /// The channel asked for.
        wanted: String,
        /// The channel the manifest names.
        found: String,
    },
    /// A release entry that breaks the rules.
    #[error("release {version:?} in the channel manifest: {why}")]
    Invalid {
        /// The release.
        version: String,
        /// What is wrong.
        why: String,
    },
    /// A version published again with other contents.
    #[error(
        "version {0} is already published in this channel with other contents; a version names \
         one set of files for good, so publish the new build under a new version"
    )]
    Conflict(String),
}

/// What [`Manifest::add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// The release is new.
    New,
    /// The same release was already listed.
    AlreadyListed,
}

impl Manifest {
    /// An empty manifest of `channel`.
    pub fn new(channel: &str) -> Self {
        Manifest {
            schema: SCHEMA,
            channel: channel.to_string(),
            releases: Vec::new(),
        }
    }

    /// Read a manifest and check it is `channel`'s and every release follows the rules.
    pub fn parse(bytes: &[u8], channel: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        if manifest.schema != SCHEMA {
            return Err(ManifestError::Schema(manifest.schema));
        }
        if manifest.channel != channel {
            return Err(ManifestError::Channel {
                wanted: channel.to_string(),
                found: manifest.channel,
            });
        }
        for release in &manifest.releases {
            release.check()?;
        }
        Ok(manifest)
    }

    /// The manifest as the repository holds it (pretty JSON).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        out.push(b'\n');
        out
    }

    /// The release of `version`, if listed.
    pub fn release(&self, version: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.version == version)
    }

    /// List `release` last, unless that very release is listed already; the same version with
    /// other contents is refused.
    pub fn add(&mut self, release: Release) -> Result<Added, ManifestError> {
        release.check()?;
        match self.release(&release.version) {
            Some(listed) if *listed == release => Ok(Added::AlreadyListed),
            Some(_) => Err(ManifestError::Conflict(release.version)),
            None => {
                self.releases.push(release);
                Ok(Added::New)
            }
        }
    }
}

impl Release {
    /// Its three files, each with its file name ([`PAYLOAD`], [`KERNEL`], [`INITRD`]).
    pub fn artifacts(&self) -> [(&'static str, &Artifact); 3] {
        [
            (PAYLOAD, &self.payload),
            (KERNEL, &self.kernel),
            (INITRD, &self.initrd),
        ]
    }

    fn check(&self) -> Result<(), ManifestError> {
        let invalid = |why: String| ManifestError::Invalid {
            version: self.version.clone(),
            why,
        };
        if !layout::valid_version(&self.version) {
            return Err(invalid(
                "the version is not a plain name (letters, digits, . - _ +)".to_string(),
            ));
        }
        for (file, artifact) in self.artifacts() {
            let name = target_name(&self.version, file);
            if artifact.target != name {
                return Err(invalid(format!(
                    "its {file} is target {:?}, not {name:?}",
                    artifact.target
                )));
            }
            let hex = artifact.sha256.as_bytes();
            if hex.len() != 64 || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(invalid(format!(
                    "the SHA-256 of {name} is not 64 lower-case hex digits"
                )));
            }
            if artifact.size == 0 {
                return Err(invalid(format!("{name} is empty")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A valid release of `version` whose digests all start with `digit`.
    pub fn release(version: &str, digit: char) -> Release {
        let artifact = |file: &str, size| Artifact {
            target: target_name(version, file),
            size,
            sha256: digit.to_string().repeat(64),
        };
        Release {
            version: version.to_string(),
            payload: artifact(PAYLOAD, 1000),
            kernel: artifact(KERNEL, 100),
            initrd: artifact(INITRD, 200),
            rollout: None,
        }
    }

    #[test]
    fn a_manifest_round_trips_and_keeps_the_publication_order() {
        let mut m = Manifest::new("beta");
        assert_eq!(m.add(release("0.2.0", 'a')).unwrap(), Added::New);
        assert_eq!(m.add(release("0.1.9", 'b')).unwrap(), Added::New);
        assert_eq!(m.add(release("0.2.0", 'a')).unwrap(), Added::AlreadyListed);
        let err = m.add(release("0.2.0", 'c')).unwrap_err().to_string();
        assert!(err.contains("already published"), "{err}");
        let back = Manifest::parse(&m.to_json(), "beta").unwrap();
        assert_eq!(back, m);
        let versions: Vec<&str> = back.releases.iter().map(|r| r.version.as_str()).collect();
        assert_eq!(versions, ["0.2.0", "0.1.9"]);
        assert_eq!(
            back.release("0.1.9").unwrap().kernel.target,
            "0.1.9/vmlinuz"
        );
    }

    #[test]
    fn another_channel_a_newer_schema_or_a_bad_entry_is_refused() {
        let mut m = Manifest::new("beta");
        m.add(release("0.2.0", 'a')).unwrap();
        let err = Manifest::parse(&m.to_json(), "stable").unwrap_err();
        assert!(matches!(err, ManifestError::Channel { .. }), "{err}");
        let mut newer = m.clone();
        newer.schema = 2;
        let err = Manifest::parse(&newer.to_json(), "beta").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the channel manifest has schema 2; this program reads schema 1"
        );
        type Break = fn(&mut Release);
        let cases: [(Break, &str); 4] = [
            (
                |r| r.payload.target = "0.1.0/usr.squashfs".into(),
                "not \"0.2.0/usr.squashfs\"",
            ),
            (
                |r| r.kernel.sha256 = "A".repeat(64),
                "not 64 lower-case hex digits",
            ),
            (|r| r.initrd.size = 0, "0.2.0/initrd.img is empty"),
            (|r| r.version = "../x".into(), "not a plain name"),
        ];
        for (edit, want) in cases {
            let mut bad = m.clone();
            edit(&mut bad.releases[0]);
            let err = Manifest::parse(&bad.to_json(), "beta")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        // Fields a newer image-build adds are ignored.
        let mut value: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        value["releases"][0]["notes"] = "hello".into();
        value["signed_by"] = "someone".into();
        Manifest::parse(&serde_json::to_vec(&value).unwrap(), "beta").unwrap();
    }
}
