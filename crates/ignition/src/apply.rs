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
use crate::model::{Config, Resource};
use crate::passwd::{PasswdError, Reserved};
use crate::plan::{plan, Op, PlanError, Skipped};
use crate::report::Report;
use crate::root::{Root, RootError};
use crate::unit_name::InstallError;

mod accounts;
mod run;
mod staging;
mod systemd;
mod tree;

use run::Run;
use staging::Staging;
use tree::{Part, Tree};

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The config cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Fetching the config's CAs failed.
    #[error("{0}")]
    Config(Report),
    /// A resource could not be fetched or verified.
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
}

/// Applies a validated config (whose references are resolved) into `root`.
pub fn apply(cfg: &Config, root: &Path, fetcher: &dyn Fetcher) -> Result<Outcome, ApplyError> {
    apply_with(cfg, root, fetcher, &ApplyOptions::default())
}

/// [`apply`] with options.
pub fn apply_with(
    cfg: &Config,
    root: &Path,
    fetcher: &dyn Fetcher,
    options: &ApplyOptions,
) -> Result<Outcome, ApplyError> {
    prepare(cfg, root, fetcher)?.run(options)
}

/// A config whose resources are all fetched and verified, and whose operations all
/// succeeded in a dry run against the root: what is left can only fail on I/O. See
/// [`prepare`].
pub struct Prepared {
    plan: crate::plan::Plan,
    root: Root,
    data: Vec<Option<Fetched>>,
    /// Holds the fetched contents until the run is over.
    _staging: Staging,
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
pub fn prepare(cfg: &Config, root: &Path, fetcher: &dyn Fetcher) -> Result<Prepared, ApplyError> {
    let plan = plan(cfg)?;
    let root = Root::new(root).map_err(|source| ApplyError::Io {
        at: "$".into(),
        path: root.to_path_buf(),
        source,
    })?;
    let opts = fetch_options(cfg, fetcher).map_err(ApplyError::Config)?;

    // 1. Fetch everything first, into staging files.
    let mut staging = Staging::new(root.dir());
    let mut fetch = |r: &Resource| {
        let at = r.at.key("source").to_string();
        let (mut file, path) = staging.file().map_err(|source| ApplyError::Io {
            at: at.clone(),
            path: staging.dir().to_path_buf(),
            source,
        })?;
        fetch_resource_to(fetcher, r, cfg.version, &opts, &mut file).map_err(|source| {
            ApplyError::Fetch {
                at: at.clone(),
                source,
            }
        })?;
        Ok::<_, ApplyError>(Part::File(path))
    };
    let mut data: Vec<Option<Fetched>> = Vec::with_capacity(plan.ops.len());
    for op in &plan.ops {
        data.push(match op {
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

    // 2. Everything, dry.
    let mut dry = Run::new(root.clone(), Tree::dry(), &plan, 0);
    for (op, fetched) in plan.ops.iter().zip(&data) {
        dry.op(op, fetched.as_ref())?;
    }
    Ok(Prepared {
        plan,
        root,
        data,
        _staging: staging,
    })
}

impl Prepared {
    /// Stage 3 of [`apply`]: runs the operations in plan order.
    pub fn run(self, options: &ApplyOptions) -> Result<Outcome, ApplyError> {
        let Prepared {
            plan,
            root,
            data,
            _staging,
        } = self;
        let today = options.today.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86400)
        });
        let mut run = Run::new(root, Tree::real(), &plan, today);
        for s in &plan.skipped {
            tracing::warn!(at = %s.at, what = %s.what, "skipped: {}", s.reason);
        }
        for (op, fetched) in plan.ops.iter().zip(&data) {
            run.op(op, fetched.as_ref())?;
        }
        Ok(run.into_outcome())
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
