//! Executes a [`Plan`](crate::plan::Plan) against a directory tree. The only module that
//! writes.
//!
//! Stages, so that a failure leaves nothing behind (`prepare`):
//!  1. fetch every resource (file contents, appended data) through the [`Fetcher`],
//!     decompressing and hashing while it streams into a staging file in the root
//!     (`staging`), and verify the hash; each operation carries what was fetched for it;
//!  2. a dry run: every operation, in plan order, against an overlay of the root
//!     (the `tree` module's dry tree) that sees what the operations before it would have made. Whatever
//!     the config and the root decide — an owner the root does not know, a uid already
//!     taken, a node in the way with `overwrite: false`, a path below a file, a hard link to
//!     nothing, a unit of the root whose `[Install]` names are not unit names — fails here;
//!  3. the same operations for real. What is left to fail is the machine: I/O errors, a
//!     full disk, permissions.
//!
//! Power cuts: stage 3 keeps a write-ahead [`Journal`] in the root ([`progress`] has
//! its records). Before an operation first changes a path, the journal records what the path
//! was and moves a node that is replaced or removed aside; after the operation it records the
//! operation done. A rerun of the same config (first boot keeps its marker until the end)
//! skips the done operations, rolls the cut one back and goes on, so the result is that of
//! one uninterrupted run: nothing appended twice, no file of the config refused as "exists
//! already", no half-made account. Only one apply at a time may work in a root (the journal
//! locks it).
//!
//! Every path goes through [`Root`](root::Root), so nothing is written outside the root, not even
//! through symlinks already in the tree. Owners given by name are looked up in the root's
//! `/etc/passwd` and `/etc/group` (after the config's own users and groups are created).
//! When the process may not chown (not root), ownership is skipped with a warning.
//!
//! A pass over the operations (`run`) dispatches each to its area: `files` (files,
//! directories, links), `accounts` (users, groups, homes, SSH keys) and `units` (units,
//! enablement, presets, networkd files).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::fetch::{FetchError, Fetcher};
use crate::passwd::{PasswdError, Reserved};
use crate::plan::{Op, Skipped};
use crate::report::Report;
use crate::units::name::InstallError;
use crate::validate::ValidConfig;
use root::RootError;

mod accounts;
mod files;
mod journal;
mod prepare;
pub mod progress;
pub mod root;
mod run;
mod staging;
mod tree;
mod units;

pub use journal::{Journal, JournalError, Resume};
pub use prepare::{prepare, prepare_with, Prepared};

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Fetching the config's CAs failed.
    #[error("{0}")]
    Config(Report),
    /// A resource could not be fetched or verified (`at`: its `source`, or its
    /// `verification.hash` when the data does not match).
    #[error("{at}: {source}")]
    Fetch {
        /// Config path of the resource.
        at: String,
        /// Cause.
        source: FetchError,
    },
    /// A path cannot be used inside the root.
    #[error("{at}: {source}")]
    Root {
        /// Config path.
        at: String,
        /// Cause.
        source: RootError,
    },
    /// A node conflicts with what is already there.
    #[error("{at}: {path}: {reason}")]
    Conflict {
        /// Config path.
        at: String,
        /// Path in the root.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An owner name that the root does not know.
    #[error("{at}: no such {what} {name:?} in the root's /etc/{file}")]
    UnknownOwner {
        /// Config path.
        at: String,
        /// user or group.
        what: &'static str,
        /// passwd or group.
        file: &'static str,
        /// The name.
        name: String,
    },
    /// An account edit failed.
    #[error("{at}: {source}")]
    Passwd {
        /// Config path.
        at: String,
        /// Cause.
        source: PasswdError,
    },
    /// A unit's `[Install]` names that are not unit names (from a unit file of the root;
    /// validation catches those in the config).
    #[error("{at}: unit {unit} ({file}): [Install] {}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    InstallNames {
        /// Config path.
        at: String,
        /// The unit being enabled or disabled.
        unit: String,
        /// The unit file the names come from.
        file: String,
        /// Each bad name.
        errors: Vec<InstallError>,
    },
    /// The progress journal could not be read, written or acted on.
    #[error("progress journal: {0}")]
    Journal(#[from] JournalError),
    /// I/O on a host path.
    #[error("{at}: {path}: {source}")]
    Io {
        /// Config path.
        at: String,
        /// Host path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// What an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// groupadd.
    CreateGroup,
    /// groupmod.
    ModifyGroup,
    /// groupdel.
    RemoveGroup,
    /// useradd.
    CreateUser,
    /// usermod.
    ModifyUser,
    /// userdel.
    RemoveUser,
    /// Home directory created.
    CreateHome,
    /// authorized_keys written.
    WriteAuthorizedKeys,
    /// File written.
    WriteFile,
    /// File kept, data appended or attributes set.
    UpdateFile,
    /// Directory created.
    CreateDirectory,
    /// Existing directory's attributes set.
    UpdateDirectory,
    /// Symlink created.
    CreateSymlink,
    /// Hard link created.
    CreateHardLink,
    /// Unit file written.
    WriteUnit,
    /// Drop-in written.
    WriteDropin,
    /// Unit masked.
    MaskUnit,
    /// Mask removed.
    UnmaskUnit,
    /// Enablement link created.
    EnableUnit,
    /// Enablement link removed.
    DisableUnit,
    /// Preset lines written.
    WritePresets,
    /// networkd file written.
    WriteNetworkd,
    /// Left as it was.
    Unchanged,
}

/// One thing `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What.
    pub kind: ActionKind,
    /// On what (a path in the root, or an account name).
    pub target: String,
    /// Details (mode, owner, link target, ...).
    pub detail: String,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            ActionKind::CreateGroup => "created group",
            ActionKind::ModifyGroup => "modified group",
            ActionKind::RemoveGroup => "removed group",
            ActionKind::CreateUser => "created user",
            ActionKind::ModifyUser => "modified user",
            ActionKind::RemoveUser => "removed user",
            ActionKind::CreateHome => "created home",
            ActionKind::WriteAuthorizedKeys => "wrote SSH keys",
            ActionKind::WriteFile => "wrote file",
            ActionKind::UpdateFile => "updated file",
            ActionKind::CreateDirectory => "created directory",
            ActionKind::UpdateDirectory => "updated directory",
            ActionKind::CreateSymlink => "created symlink",
            ActionKind::CreateHardLink => "created hard link",
            ActionKind::WriteUnit => "wrote unit",
            ActionKind::WriteDropin => "wrote drop-in",
            ActionKind::MaskUnit => "masked",
            ActionKind::UnmaskUnit => "unmasked",
            ActionKind::EnableUnit => "enabled",
            ActionKind::DisableUnit => "disabled",
            ActionKind::WritePresets => "wrote presets",
            ActionKind::WriteNetworkd => "wrote networkd unit",
            ActionKind::Unchanged => "unchanged",
        };
        write!(f, "{verb} {}", self.target)?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// Entries that need a real boot and were not applied.
    pub skipped: Vec<Skipped>,
    /// Warnings for the person applying.
    pub warnings: Vec<String>,
}

/// Knobs for [`apply_with`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Days since the epoch for new shadow entries (default: today).
    pub today: Option<u64>,
    /// Test seam, `None` in real use: simulate a power cut after this many changes (journal
    /// records, moves, writes; see [`Journal::cut_after`]). Read where the journal is opened
    /// ([`apply_with`], first boot).
    pub cut_after: Option<usize>,
}

/// Applies a valid config (see [`crate::load`]) into `root`.
pub fn apply(cfg: &ValidConfig, root: &Path, fetcher: &dyn Fetcher) -> Result<Outcome, ApplyError> {
    apply_with(cfg, root, fetcher, &ApplyOptions::default())
}

/// [`apply`] with options. An interrupted apply of the same config into the same root is
/// resumed; the journal is deleted once the apply is complete.
pub fn apply_with(
    cfg: &ValidConfig,
    root: &Path,
    fetcher: &dyn Fetcher,
    options: &ApplyOptions,
) -> Result<Outcome, ApplyError> {
    let journal = Journal::open(root)?.cut_after(options.cut_after);
    let applied = prepare_with(cfg, root, fetcher, journal)?.run(options)?;
    applied.journal.discard()?;
    Ok(applied.outcome)
}

/// What [`Prepared::run`] leaves: what it did, and the journal, now marked complete, for
/// the caller to keep as the record that the config was applied or to
/// [discard](Journal::discard).
#[derive(Debug)]
pub struct Applied {
    /// What was done.
    pub outcome: Outcome,
    /// The journal (still locking the root).
    pub journal: Journal,
}

/// The config path of an operation.
fn op_at(op: &Op) -> &str {
    match op {
        Op::Group { at, .. }
        | Op::User { at, .. }
        | Op::Directory { at, .. }
        | Op::File { at, .. }
        | Op::Link { at, .. }
        | Op::Unit { at, .. }
        | Op::Dropin { at, .. }
        | Op::Mask { at, .. }
        | Op::Enable { at, .. }
        | Op::Networkd { at, .. } => at,
        Op::Presets { .. } => "$.systemd.units",
    }
}

/// Ids the config asks for explicitly, so automatic allocation skips them.
fn reserved<'a>(ops: impl IntoIterator<Item = &'a Op>) -> Reserved {
    let mut r = Reserved::default();
    for op in ops {
        match op {
            Op::User {
                spec,
                remove: false,
                ..
            } => {
                r.uids.extend(spec.uid);
                if spec.primary_group.is_none() && !spec.no_user_group {
                    // useradd gives the private group gid = uid when it can.
                    r.gids.extend(spec.uid);
                }
            }
            Op::Group {
                spec,
                remove: false,
                ..
            } => {
                r.gids.extend(spec.gid);
            }
            _ => {}
        }
    }
    r
}

fn io_err(at: &str, path: &Path) -> impl FnOnce(io::Error) -> ApplyError {
    let (at, path) = (at.to_string(), path.to_path_buf());
    move |source| ApplyError::Io { at, path, source }
}

fn root_err(at: &str) -> impl FnOnce(RootError) -> ApplyError {
    let at = at.to_string();
    move |source| ApplyError::Root { at, source }
}

fn conflict(at: &str, path: &str, reason: &str) -> ApplyError {
    ApplyError::Conflict {
        at: at.into(),
        path: path.into(),
        reason: reason.into(),
    }
}
