//! Executes a [`Plan`] against a directory tree. The only module that writes.
//!
//! Stages, so that a failure leaves nothing behind:
//!  1. fetch every resource (file contents, appended data) through the [`Fetcher`],
//!     decompressing and hashing while it streams into a staging file in the root
//!     ([`staging`]), and verify the hash;
//!  2. a dry run: every operation, in plan order, against an overlay of the root
//!     ([`tree::Tree::dry`]) that sees what the operations before it would have made. Whatever
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
//! Every path goes through [`Root`], so nothing is written outside the root, not even
//! through symlinks already in the tree. Owners given by name are looked up in the root's
//! `/etc/passwd` and `/etc/group` (after the config's own users and groups are created).
//! When the process may not chown (not root), ownership is skipped with a warning.
//!
//! The operations themselves live in [`run`] (nodes), [`accounts`] (users, groups, homes,
//! SSH keys) and [`systemd`] (units, enablement, presets).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::fetch::{fetch_resource_to, FetchError, Fetcher};
use crate::merge::fetch_options;
use crate::model::Resource;
use crate::passwd::{PasswdError, Reserved};
use crate::plan::{plan, Op, Skipped};
use crate::report::Report;
use crate::units::name::InstallError;
use crate::validate::ValidConfig;
use root::{Root, RootError};

mod accounts;
mod journal;
pub mod progress;
pub mod root;
mod run;
mod staging;
mod systemd;
mod tree;

pub use journal::{Journal, JournalError, Resume};
use run::Run;
use staging::Staging;
use tree::{Part, Tree};

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

/// A config whose resources are all fetched and verified, and whose operations all
/// succeeded in a dry run against the root: what is left can only fail on I/O. See
/// [`prepare`].
pub struct Prepared {
    plan: crate::plan::Plan,
    root: Root,
    data: Vec<Option<Fetched>>,
    /// Holds the fetched contents until the run is over.
    staging: Staging,
    journal: Journal,
    /// Operations an earlier, interrupted run did.
    done: usize,
    /// What the journal said, for the log.
    notes: Vec<String>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("plan", &self.plan)
            .field("root", &self.root.dir())
            .finish_non_exhaustive()
    }
}

/// Stages 1 and 2 of [`apply`]: plans `cfg`, fetches every resource and runs every
/// operation dry, without writing anything. [`Prepared::run`] then writes. First boot puts
/// the disk work in between, so a config that cannot be applied never touches a disk (the
/// dry run sees the root before its filesystems are mounted).
pub fn prepare(
    cfg: &ValidConfig,
    root: &Path,
    fetcher: &dyn Fetcher,
) -> Result<Prepared, ApplyError> {
    prepare_with(cfg, root, fetcher, Journal::open(root)?)
}

/// [`prepare`] with the root's journal, opened by the caller. What an earlier run of the
/// same config left is resumed first ([`Journal::resume`]: the cut operation rolled back),
/// and only the operations it did not finish are fetched, run dry and later run; another
/// config's journal is rolled back and dropped. These are the only writes before
/// [`Prepared::run`], besides the staging files.
pub fn prepare_with(
    cfg: &ValidConfig,
    root: &Path,
    fetcher: &dyn Fetcher,
    mut journal: Journal,
) -> Result<Prepared, ApplyError> {
    let plan = plan(cfg);
    let root = Root::new(root).map_err(|source| ApplyError::Io {
        at: "$".into(),
        path: root.to_path_buf(),
        source,
    })?;
    let resume = journal.resume(&progress::digest(cfg))?;
    let done = if resume.complete {
        plan.ops.len()
    } else {
        resume.done.min(plan.ops.len())
    };
    let opts = if done < plan.ops.len() {
        fetch_options(cfg, fetcher).map_err(ApplyError::Config)?
    } else {
        Default::default()
    };

    // 1. Fetch everything first, into staging files.
    let mut staging = Staging::new(root.dir());
    staging.clear().map_err(|source| ApplyError::Io {
        at: "$".into(),
        path: staging.dir().to_path_buf(),
        source,
    })?;
    let mut fetch = |r: &Resource| {
        let (mut file, path) = staging.file().map_err(|source| ApplyError::Io {
            at: r.at.key("source").to_string(),
            path: staging.dir().to_path_buf(),
            source,
        })?;
        fetch_resource_to(fetcher, r, cfg.version, &opts, &mut file).map_err(|source| {
            ApplyError::Fetch {
                at: source.path(r).to_string(),
                source,
            }
        })?;
        Ok::<_, ApplyError>(Part::File(path))
    };
    let mut data: Vec<Option<Fetched>> = Vec::with_capacity(plan.ops.len());
    for (i, op) in plan.ops.iter().enumerate() {
        data.push(match op {
            _ if i < done => None,
            Op::File {
                contents, append, ..
            } => {
                let contents = match contents {
                    Some(r) if r.source.is_some() => Some(fetch(r)?),
                    _ => None,
                };
                let append = append
                    .iter()
                    .map(&mut fetch)
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Fetched { contents, append })
            }
            _ => None,
        });
    }

    // 2. Everything (not done yet), dry.
    let mut dry = Run::new(root.clone(), Tree::dry(), &plan, 0);
    for (op, fetched) in plan.ops.iter().zip(&data).skip(done) {
        dry.op(op, fetched.as_ref())?;
    }
    Ok(Prepared {
        plan,
        root,
        data,
        staging,
        journal,
        done,
        notes: resume.notes,
    })
}

impl Prepared {
    /// The root's journal: first boot records its storage stage in it.
    pub fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Stage 3 of [`apply`]: runs the operations not done yet in plan order, each recorded
    /// in the journal, which is marked complete at the end.
    pub fn run(self, options: &ApplyOptions) -> Result<Applied, ApplyError> {
        let Prepared {
            plan,
            root,
            data,
            staging,
            mut journal,
            done,
            notes,
        } = self;
        let today = options.today.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86400)
        });
        for s in &plan.skipped {
            tracing::warn!(at = %s.at, what = %s.what, "skipped: {}", s.reason);
        }
        if let Err(e) = journal.begin() {
            keep_after_cut(&journal, staging);
            return Err(e.into());
        }
        let dir = root.dir().to_path_buf();
        let mut run = Run::new(root, Tree::journaled(journal), &plan, today);
        for n in notes {
            run.warn(n);
        }
        let mut result = Ok(());
        for (i, (op, fetched)) in plan.ops.iter().zip(&data).enumerate().skip(done) {
            let journal = run.tree.journal().expect("journaled");
            journal.begin_op(i);
            result = run.op(op, fetched.as_ref()).and_then(|()| {
                let journal = run.tree.journal().expect("journaled");
                journal.end_op().map_err(io_err(op_at(op), &dir))
            });
            if result.is_err() {
                break;
            }
        }
        let (outcome, tree) = run.finish();
        let mut journal = tree.into_journal().expect("journaled");
        if let Err(e) = result {
            keep_after_cut(&journal, staging);
            return Err(e);
        }
        if let Err(e) = journal.complete() {
            keep_after_cut(&journal, staging);
            return Err(e.into());
        }
        Ok(Applied { outcome, journal })
    }
}

/// After a simulated power cut nothing is cleaned up, as after a real one: the staging
/// directory stays for the next run to clear.
fn keep_after_cut(journal: &Journal, staging: Staging) {
    if journal.is_cut() {
        std::mem::forget(staging);
    }
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

/// A file's fetched data.
struct Fetched {
    contents: Option<Part>,
    append: Vec<Part>,
}

/// Ids the config asks for explicitly, so automatic allocation skips them.
fn reserved(ops: &[Op]) -> Reserved {
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
