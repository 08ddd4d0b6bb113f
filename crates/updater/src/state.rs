//! The update state machine and the small JSON file that keeps it across restarts and reboots
//! (`/var/lib/keel/updater/state.json`), with the record of releases that failed their trial.
//!
//!  * `Idle` → `Checking` → `Idle` (nothing to take) or `Downloading` (from 0 bytes);
//!  * `Downloading` → `Downloading` (progress, never backwards) → `Verifying` (all written)
//!    → `Staged`;
//!  * `Staged`, `WaitingForWindow`, `WaitingForLock` → one another or `Rebooting`, or `Idle`
//!    when unstaged (the release was pulled before the reboot, or the operator cancelled);
//!  * `Rebooting` → `Idle` (the new slot was marked good) or `Failed` (rolled back);
//!  * any state → `Failed`; `Failed` → `Checking` or `Idle`.
//!
//! Every state from `Downloading` to `Rebooting` names the release it is about, and a
//! transition may not change it. [`UpdateState::transition`] refuses everything else, so a
//! daemon bug shows up as an error instead of a state file that lies.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::utc::UtcTime;
use crate::version::Version;

/// Where the daemon keeps its state.
pub const DEFAULT_PATH: &str = "/var/lib/keel/updater/state.json";

/// Where the updater is in taking a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum UpdateState {
    /// Nothing under way.
    Idle,
    /// Asking the repository what the channel offers.
    Checking,
    /// Writing `version` into the inactive slot.
    Downloading {
        /// The release.
        version: Version,
        /// Bytes written so far.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
    /// Checking what was written against the signed digests.
    Verifying {
        /// The release.
        version: Version,
    },
    /// Written, verified, and armed to boot next.
    Staged {
        /// The release.
        version: Version,
    },
    /// Staged; waiting for the reboot lock.
    WaitingForLock {
        /// The release.
        version: Version,
    },
    /// Staged; waiting for the reboot window.
    WaitingForWindow {
        /// The release.
        version: Version,
        /// When the window opens.
        until: UtcTime,
    },
    /// Rebooting into `version` (kept across the reboot until the boot has an outcome).
    Rebooting {
        /// The release.
        version: Version,
    },
    /// The last attempt failed.
    Failed {
        /// Why, in words.
        why: String,
    },
}

/// A transition the machine does not make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the update cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The state it was in.
    pub from: Box<UpdateState>,
    /// The state asked for.
    pub to: Box<UpdateState>,
}

impl UpdateState {
    /// The release this state is about, from `Downloading` to `Rebooting`.
    pub fn version(&self) -> Option<&Version> {
        use UpdateState::*;
        match self {
            Downloading { version, .. }
            | Verifying { version }
            | Staged { version }
            | WaitingForLock { version }
            | WaitingForWindow { version, .. }
            | Rebooting { version } => Some(version),
            Idle | Checking | Failed { .. } => None,
        }
    }

    /// Whether a release is staged and waits only for the reboot.
    pub fn is_staged(&self) -> bool {
        use UpdateState::*;
        matches!(
            self,
            Staged { .. } | WaitingForLock { .. } | WaitingForWindow { .. }
        )
    }

    /// Whether the machine may go from `self` to `to`.
    pub fn allows(&self, to: &UpdateState) -> bool {
        use UpdateState::*;
        let same_release = || self.version() == to.version();
        match (self, to) {
            (_, Failed { .. }) => true,
            (Idle | Failed { .. }, Checking) => true,
            (Failed { .. }, Idle) => true,
            (Checking, Idle) => true,
            (Checking, Downloading { done: 0, total, .. }) => *total > 0,
            (
                Downloading { done, total, .. },
                Downloading {
                    done: d2,
                    total: t2,
                    ..
                },
            ) => same_release() && t2 == total && d2 >= done && d2 <= t2,
            (Downloading { done, total, .. }, Verifying { .. }) => same_release() && done == total,
            (Verifying { .. }, Staged { .. }) => same_release(),
            (Staged { .. } | WaitingForLock { .. } | WaitingForWindow { .. }, Staged { .. })
            | (
                Staged { .. } | WaitingForLock { .. } | WaitingForWindow { .. },
                WaitingForLock { .. } | WaitingForWindow { .. } | Rebooting { .. },
            ) => same_release(),
            (Staged { .. } | WaitingForLock { .. } | WaitingForWindow { .. }, Idle) => true,
            (Rebooting { .. }, Idle) => true,
            _ => false,
        }
    }

    /// Go to `to`, or refuse.
    pub fn transition(&self, to: UpdateState) -> Result<UpdateState, IllegalTransition> {
        if self.allows(&to) {
            Ok(to)
        } else {
            Err(IllegalTransition {
                from: Box::new(self.clone()),
                to: Box::new(to),
            })
        }
    }
}

impl fmt::Display for UpdateState {
    /// As `updater status` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use UpdateState::*;
        match self {
            Idle => write!(f, "idle"),
            Checking => write!(f, "checking"),
            Downloading {
                version,
                done,
                total,
            } => {
                let pct = if *total == 0 {
                    0
                } else {
                    u128::from(*done) * 100 / u128::from(*total)
                };
                write!(
                    f,
                    "downloading {version}: {pct}% ({} of {} MiB)",
                    done >> 20,
                    total >> 20
                )
            }
            Verifying { version } => write!(f, "verifying {version}"),
            Staged { version } => write!(f, "staged {version}"),
            WaitingForLock { version } => {
                write!(f, "staged {version}, waiting for the reboot lock")
            }
            WaitingForWindow { version, until } => {
                write!(
                    f,
                    "staged {version}, waiting for the reboot window at {until}"
                )
            }
            Rebooting { version } => write!(f, "rebooting into {version}"),
            Failed { why } => write!(f, "failed: {why}"),
        }
    }
}

/// A release that failed its trial, or was given up on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRelease {
    /// When it was recorded.
    pub at: UtcTime,
    /// Why, in words.
    pub why: String,
}

/// Releases that are not tried again automatically.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FailedReleases(BTreeMap<Version, FailedRelease>);

impl FailedReleases {
    /// Record `version` as failed (a later record replaces an earlier one).
    pub fn record(&mut self, version: Version, at: UtcTime, why: impl Into<String>) {
        self.0.insert(
            version,
            FailedRelease {
                at,
                why: why.into(),
            },
        );
    }

    /// The record of `version`, if it failed.
    pub fn get(&self, version: &Version) -> Option<&FailedRelease> {
        self.0.get(version)
    }

    /// Drop the record of `version` (an operator's retry); whether there was one.
    pub fn forget(&mut self, version: &Version) -> bool {
        self.0.remove(version).is_some()
    }

    /// All records, oldest version first.
    pub fn iter(&self) -> impl Iterator<Item = (&Version, &FailedRelease)> {
        self.0.iter()
    }

    /// Whether none are recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The last look at the channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheck {
    /// When.
    pub at: UtcTime,
    /// The channel asked.
    pub channel: String,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The contents of the state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Where the machine is.
    pub state: UpdateState,
    /// The newest release the channel offered at the last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<Version>,
    /// The last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<LastCheck>,
    /// Releases not to try again.
    #[serde(default, skip_serializing_if = "FailedReleases::is_empty")]
    pub failed: FailedReleases,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            state: UpdateState::Idle,
            newest: None,
            last_check: None,
            failed: FailedReleases::default(),
        }
    }
}

/// The state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading failed.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The contents are not a state file.
    #[error("{}: not an updater state file: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: serde_json::Error,
    },
    /// Writing failed.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

impl StateFile {
    /// Move the machine to `to`, or refuse and change nothing.
    pub fn transition(&mut self, to: UpdateState) -> Result<(), IllegalTransition> {
        self.state = self.state.transition(to)?;
        Ok(())
    }

    /// The file's JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("state serialises");
        s.push('\n');
        s
    }

    /// Read the state file; `None` when there is none (a node that never checked).
    pub fn load(path: &Path) -> Result<Option<StateFile>, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StateError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| StateError::Parse {
                path: path.to_path_buf(),
                source,
            })
    }

    /// Write the state file whole or not at all: a temporary file beside it, synced, renamed
    /// over it, and the directory synced. Creates the directory if needed.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let write = |source| StateError::Write {
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(write)?;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(write)?;
        f.write_all(self.to_json().as_bytes()).map_err(write)?;
        f.sync_all().map_err(write)?;
        std::fs::rename(&tmp, path).map_err(write)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write)
    }
}

#[cfg(test)]
mod tests;
