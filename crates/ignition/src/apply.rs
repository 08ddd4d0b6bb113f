//! Executes a [`Plan`] against a directory tree. The only module that writes.
//!
//! Stages, so that a failure leaves as little behind as possible:
//!  1. fetch every resource (file contents, appended data) through the [`Fetcher`],
//!     decompress and verify its hash — nothing is written if any of that fails;
//!  2. preflight: an entry with `overwrite: false` whose path already holds something it
//!     may not replace fails the whole apply before anything is written;
//!  3. run the operations in plan order.
//!
//! Every path goes through [`Root`], so nothing is written outside the root, not even
//! through symlinks already in the tree. Owners given by name are looked up in the root's
//! `/etc/passwd` and `/etc/group` (after the config's own users and groups are created).
//! When the process may not chown (not root), ownership is skipped with a warning.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fetch::{fetch_resource, FetchError, Fetcher};
use crate::merge::fetch_options;
use crate::model::{Config, Resource};
use crate::passwd::{Change, Db, PasswdError, Reserved};
use crate::plan::{plan, Op, OwnerRef, PlanError, Skipped};
use crate::report::Report;
use crate::root::{Root, RootError};
use crate::units;

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

/// A config whose resources are all fetched and verified, and whose nodes passed the
/// preflight against the root: what is left can only fail on I/O. See [`prepare`].
pub struct Prepared {
    plan: crate::plan::Plan,
    root: Root,
    data: Vec<Option<Fetched>>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("plan", &self.plan)
            .field("root", &self.root.dir())
            .finish_non_exhaustive()
    }
}

/// Stages 1 and 2 of [`apply`]: plans `cfg`, fetches every resource and runs the preflight,
/// without writing anything. [`Prepared::run`] then writes. First boot puts the disk work in
/// between, so a config whose files cannot be fetched never touches a disk.
pub fn prepare(cfg: &Config, root: &Path, fetcher: &dyn Fetcher) -> Result<Prepared, ApplyError> {
    let plan = plan(cfg)?;
    let root = Root::new(root).map_err(|source| ApplyError::Io {
        at: "$".into(),
        path: root.to_path_buf(),
        source,
    })?;
    let opts = fetch_options(cfg, fetcher).map_err(ApplyError::Config)?;

    // 1. Fetch everything first.
    let fetch = |r: &Resource| {
        fetch_resource(fetcher, r, cfg.version, &opts).map_err(|source| ApplyError::Fetch {
            at: r.at.key("source").to_string(),
            source,
        })
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
                let append = append.iter().map(fetch).collect::<Result<Vec<_>, _>>()?;
                Some(Fetched { contents, append })
            }
            _ => None,
        });
    }

    // 2. Preflight.
    for (op, fetched) in plan.ops.iter().zip(&data) {
        preflight(&root, op, fetched.as_ref())?;
    }
    Ok(Prepared { plan, root, data })
}

impl Prepared {
    /// Stage 3 of [`apply`]: runs the operations in plan order.
    pub fn run(self, options: &ApplyOptions) -> Result<Outcome, ApplyError> {
        let Prepared { plan, root, data } = self;
        let today = options.today.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86400)
        });
        let mut run = Run {
            root,
            db: None,
            reserved: reserved(&plan.ops),
            today,
            out: Outcome {
                skipped: plan.skipped.clone(),
                warnings: plan.notes.clone(),
                ..Default::default()
            },
            chown_warned: false,
        };
        for s in &plan.skipped {
            tracing::warn!(at = %s.at, what = %s.what, "skipped: {}", s.reason);
        }
        for (op, fetched) in plan.ops.iter().zip(data) {
            run.op(op, fetched)?;
        }
        Ok(run.out)
    }
}

struct Fetched {
    contents: Option<Vec<u8>>,
    append: Vec<Vec<u8>>,
}

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

fn preflight(root: &Root, op: &Op, fetched: Option<&Fetched>) -> Result<(), ApplyError> {
    let (at, path, overwrite) = match op {
        Op::File {
            at,
            path,
            overwrite,
            ..
        }
        | Op::Directory {
            at,
            path,
            overwrite,
            ..
        }
        | Op::Link {
            at,
            path,
            overwrite,
            ..
        } => (at, path, *overwrite),
        _ => return Ok(()),
    };
    let host = root.resolve(path, false).map_err(root_err(at))?;
    if overwrite {
        return Ok(());
    }
    let Ok(meta) = fs::symlink_metadata(&host) else {
        return Ok(());
    };
    match op {
        Op::File { .. } => {
            if !meta.is_file() {
                return Err(conflict(
                    at,
                    path,
                    "a non-regular node exists there already and overwrite is false",
                ));
            }
            if fetched.is_some_and(|f| f.contents.is_some()) {
                return Err(conflict(
                    at,
                    path,
                    "a file exists there already and overwrite is false",
                ));
            }
        }
        Op::Directory { .. } if !meta.is_dir() => {
            return Err(conflict(
                at,
                path,
                "a non-directory exists there already and overwrite is false",
            ));
        }
        Op::Link {
            target,
            hard: false,
            ..
        } => {
            let same = meta.file_type().is_symlink()
                && fs::read_link(&host).is_ok_and(|t| t == Path::new(target));
            if !same {
                return Err(conflict(
                    at,
                    path,
                    "something else exists there already and overwrite is false",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

struct Run {
    root: Root,
    db: Option<Db>,
    reserved: Reserved,
    today: u64,
    out: Outcome,
    chown_warned: bool,
}

fn read_opt(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Run {
    fn act(&mut self, kind: ActionKind, target: impl Into<String>, detail: impl Into<String>) {
        let a = Action {
            kind,
            target: target.into(),
            detail: detail.into(),
        };
        tracing::info!("{a}");
        self.out.actions.push(a);
    }

    fn warn(&mut self, w: String) {
        tracing::warn!("{w}");
        self.out.warnings.push(w);
    }

    fn db(&mut self, at: &str) -> Result<&mut Db, ApplyError> {
        if self.db.is_none() {
            let mut texts = Vec::new();
            for name in ["passwd", "group", "shadow", "gshadow"] {
                let p = self
                    .root
                    .resolve(&format!("/etc/{name}"), false)
                    .map_err(root_err(at))?;
                texts.push(read_opt(&p).map_err(io_err(at, &p))?);
            }
            self.db = Some(Db::parse(
                texts[0].as_deref().unwrap_or(""),
                texts[1].as_deref().unwrap_or(""),
                texts[2].as_deref().unwrap_or(""),
                texts[3].as_deref(),
            ));
        }
        Ok(self.db.as_mut().expect("loaded"))
    }

    fn save_db(&mut self, at: &str) -> Result<(), ApplyError> {
        let files = self.db.as_ref().expect("loaded").render();
        let mut list = vec![
            ("passwd", files.passwd, 0o644),
            ("group", files.group, 0o644),
            ("shadow", files.shadow, 0o600),
        ];
        if let Some(g) = files.gshadow {
            list.push(("gshadow", g, 0o600));
        }
        for (name, text, default_mode) in list {
            let host = self
                .root
                .resolve(&format!("/etc/{name}"), true)
                .map_err(root_err(at))?;
            let old = fs::symlink_metadata(&host).ok().filter(|m| m.is_file());
            let mode = old.as_ref().map_or(default_mode, |m| m.mode() & 0o7777);
            let owner = old.as_ref().map(|m| (m.uid(), m.gid()));
            self.write_host(at, &host, text.as_bytes(), mode, owner)?;
        }
        Ok(())
    }

    /// Writes `data` to `host` through a temporary file and a rename, so an existing symlink
    /// at `host` is replaced, never followed.
    fn write_host(
        &mut self,
        at: &str,
        host: &Path,
        data: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), ApplyError> {
        let dir = host.parent().expect("resolved paths have a parent");
        let name = host.file_name().expect("resolved paths have a name");
        let tmp = dir.join(format!(
            ".{}.ignition-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&tmp);
        {
            use std::io::Write;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_err(at, &tmp))?;
            f.write_all(data).map_err(io_err(at, &tmp))?;
            f.sync_all().map_err(io_err(at, &tmp))?;
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err(at, &tmp))?;
        if let Some((uid, gid)) = owner {
            self.chown(at, &tmp, uid, gid)?;
        }
        if fs::symlink_metadata(host).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(host).map_err(io_err(at, host))?;
        }
        fs::rename(&tmp, host).map_err(io_err(at, host))?;
        Ok(())
    }

    fn chown(&mut self, at: &str, path: &Path, uid: u32, gid: u32) -> Result<(), ApplyError> {
        match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                if !self.chown_warned {
                    self.chown_warned = true;
                    self.warn(format!(
                        "not permitted to change owners (run as root to apply ownership); first seen at {}",
                        path.display()
                    ));
                }
                Ok(())
            }
            Err(e) => Err(io_err(at, path)(e)),
        }
    }

    fn uid(&mut self, at: &str, o: &OwnerRef) -> Result<Option<u32>, ApplyError> {
        match o {
            OwnerRef::Unset => Ok(None),
            OwnerRef::Id(id) => Ok(Some(*id)),
            OwnerRef::Name(n) => match self.db(at)?.user(n) {
                Some(e) => Ok(Some(e.uid)),
                None if n == "root" => Ok(Some(0)),
                None => Err(ApplyError::UnknownOwner {
                    at: at.into(),
                    what: "user",
                    file: "passwd",
                    name: n.clone(),
                }),
            },
        }
    }

    fn gid(&mut self, at: &str, o: &OwnerRef) -> Result<Option<u32>, ApplyError> {
        match o {
            OwnerRef::Unset => Ok(None),
            OwnerRef::Id(id) => Ok(Some(*id)),
            OwnerRef::Name(n) => match self.db(at)?.group(n) {
                Some(e) => Ok(Some(e.gid)),
                None if n == "root" => Ok(Some(0)),
                None => Err(ApplyError::UnknownOwner {
                    at: at.into(),
                    what: "group",
                    file: "group",
                    name: n.clone(),
                }),
            },
        }
    }

    /// The owner to set: explicit ids win, then `keep` (an existing node's owner), then
    /// root (only set when something was given or kept).
    fn owner(
        &mut self,
        at: &str,
        user: &OwnerRef,
        group: &OwnerRef,
        keep: Option<(u32, u32)>,
    ) -> Result<Option<(u32, u32)>, ApplyError> {
        let (u, g) = (self.uid(at, user)?, self.gid(at, group)?);
        Ok(match (u, g, keep) {
            (None, None, None) => None,
            (u, g, k) => Some((
                u.or(k.map(|k| k.0)).unwrap_or(0),
                g.or(k.map(|k| k.1)).unwrap_or(0),
            )),
        })
    }

    fn op(&mut self, op: &Op, fetched: Option<Fetched>) -> Result<(), ApplyError> {
        match op {
            Op::Group { at, spec, remove } => {
                if *remove {
                    if self.db(at)?.remove_group(&spec.name) {
                        self.act(ActionKind::RemoveGroup, &spec.name, "");
                    }
                } else {
                    let reserved = self.reserved.clone();
                    let (change, gid) =
                        self.db(at)?
                            .ensure_group(spec, &reserved)
                            .map_err(|source| ApplyError::Passwd {
                                at: at.clone(),
                                source,
                            })?;
                    let kind = match change {
                        Change::Created => ActionKind::CreateGroup,
                        Change::Modified => ActionKind::ModifyGroup,
                        Change::Unchanged => ActionKind::Unchanged,
                    };
                    self.act(kind, &spec.name, format!("gid {gid}"));
                }
                self.save_db(at)
            }
            Op::User {
                at,
                spec,
                create_home,
                ssh_keys,
                remove,
            } => self.user(at, spec, *create_home, ssh_keys, *remove),
            Op::Directory {
                at,
                path,
                mode,
                user,
                group,
                overwrite,
            } => {
                let host = self.root.resolve(path, true).map_err(root_err(at))?;
                let meta = fs::symlink_metadata(&host).ok();
                match meta {
                    Some(m) if m.is_dir() => {
                        if let Some(mode) = mode {
                            fs::set_permissions(&host, fs::Permissions::from_mode(*mode))
                                .map_err(io_err(at, &host))?;
                        }
                        if let Some((u, g)) =
                            self.owner(at, user, group, Some((m.uid(), m.gid())))?
                        {
                            if (u, g) != (m.uid(), m.gid()) {
                                self.chown(at, &host, u, g)?;
                            }
                        }
                        let detail = mode.map(|m| format!("mode {m:04o}")).unwrap_or_default();
                        self.act(ActionKind::UpdateDirectory, path, detail);
                        return Ok(());
                    }
                    Some(_) if !*overwrite => {
                        return Err(conflict(
                            at,
                            path,
                            "a non-directory exists there already and overwrite is false",
                        ))
                    }
                    Some(_) => remove_any(&host).map_err(io_err(at, &host))?,
                    None => {}
                }
                let mode = mode.unwrap_or(0o755);
                fs::create_dir(&host).map_err(io_err(at, &host))?;
                fs::set_permissions(&host, fs::Permissions::from_mode(mode))
                    .map_err(io_err(at, &host))?;
                if let Some((u, g)) = self.owner(at, user, group, None)? {
                    self.chown(at, &host, u, g)?;
                }
                self.act(
                    ActionKind::CreateDirectory,
                    path,
                    format!("mode {mode:04o}"),
                );
                Ok(())
            }
            Op::File {
                at,
                path,
                mode,
                user,
                group,
                overwrite,
                ..
            } => {
                let fetched = fetched.expect("files are fetched");
                let host = self.root.resolve(path, true).map_err(root_err(at))?;
                let meta = fs::symlink_metadata(&host).ok();
                let existing_file = meta.as_ref().filter(|m| m.is_file());
                let (mut data, keep, kind) = match (&fetched.contents, existing_file) {
                    (Some(c), _) if *overwrite || meta.is_none() => {
                        (c.clone(), None, ActionKind::WriteFile)
                    }
                    (Some(_), _) => {
                        return Err(conflict(
                            at,
                            path,
                            "a file exists there already and overwrite is false",
                        ))
                    }
                    (None, Some(m)) if !*overwrite => (
                        fs::read(&host).map_err(io_err(at, &host))?,
                        Some(m.clone()),
                        ActionKind::UpdateFile,
                    ),
                    (None, _) if *overwrite || meta.is_none() => {
                        (Vec::new(), None, ActionKind::WriteFile)
                    }
                    (None, _) => {
                        return Err(conflict(
                            at,
                            path,
                            "a non-regular node exists there already and overwrite is false",
                        ))
                    }
                };
                for a in &fetched.append {
                    data.extend_from_slice(a);
                }
                let mode = mode
                    .or(keep.as_ref().map(|m| m.mode() & 0o777))
                    .unwrap_or(0o644);
                let owner =
                    self.owner(at, user, group, keep.as_ref().map(|m| (m.uid(), m.gid())))?;
                self.write_host(at, &host, &data, mode, owner)?;
                let mut detail = format!("mode {mode:04o}, {} bytes", data.len());
                if let Some((u, g)) = owner {
                    detail.push_str(&format!(", owner {u}:{g}"));
                }
                self.act(kind, path, detail);
                Ok(())
            }
            Op::Link {
                at,
                path,
                target,
                hard,
                user,
                group,
                overwrite,
            } => self.link(at, path, target, *hard, user, group, *overwrite),
            Op::Unit { at, name, contents } => {
                let path = format!("{}/{name}", units::UNIT_DIR);
                let host = self.root.resolve(&path, true).map_err(root_err(at))?;
                self.write_host(at, &host, contents.as_bytes(), 0o644, None)?;
                self.act(ActionKind::WriteUnit, path, "");
                Ok(())
            }
            Op::Dropin {
                at,
                unit,
                name,
                contents,
            } => {
                let path = format!("{}/{unit}.d/{name}", units::UNIT_DIR);
                let host = self.root.resolve(&path, true).map_err(root_err(at))?;
                self.write_host(at, &host, contents.as_bytes(), 0o644, None)?;
                self.act(ActionKind::WriteDropin, path, "");
                Ok(())
            }
            Op::Mask { at, name, mask } => {
                let path = format!("{}/{name}", units::UNIT_DIR);
                let host = self.root.resolve(&path, true).map_err(root_err(at))?;
                let is_masked = fs::read_link(&host).is_ok_and(|t| t == Path::new("/dev/null"));
                if *mask {
                    if !is_masked {
                        remove_any(&host).map_err(io_err(at, &host))?;
                        std::os::unix::fs::symlink("/dev/null", &host)
                            .map_err(io_err(at, &host))?;
                    }
                    self.act(ActionKind::MaskUnit, path, "-> /dev/null");
                } else if is_masked {
                    fs::remove_file(&host).map_err(io_err(at, &host))?;
                    self.act(ActionKind::UnmaskUnit, path, "");
                }
                Ok(())
            }
            Op::Enable {
                at,
                name,
                enabled,
                contents,
                dropins,
            } => self.enable(at, name, *enabled, contents.as_deref(), dropins),
            Op::Networkd { at, path, contents } => {
                let host = self.root.resolve(path, true).map_err(root_err(at))?;
                self.write_host(at, &host, contents.as_bytes(), 0o644, None)?;
                self.act(ActionKind::WriteNetworkd, path, "");
                Ok(())
            }
            Op::Presets { lines } => {
                let at = "$.systemd.units";
                let host = self
                    .root
                    .resolve(units::PRESET_FILE, true)
                    .map_err(root_err(at))?;
                let mut text = read_opt(&host)
                    .map_err(io_err(at, &host))?
                    .unwrap_or_default();
                let mut added = 0;
                for l in lines {
                    if !text.lines().any(|x| x == l) {
                        if !text.is_empty() && !text.ends_with('\n') {
                            text.push('\n');
                        }
                        text.push_str(l);
                        text.push('\n');
                        added += 1;
                    }
                }
                self.write_host(at, &host, text.as_bytes(), 0o644, None)?;
                self.act(
                    ActionKind::WritePresets,
                    units::PRESET_FILE,
                    format!("{added} new lines"),
                );
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn link(
        &mut self,
        at: &str,
        path: &str,
        target: &str,
        hard: bool,
        user: &OwnerRef,
        group: &OwnerRef,
        overwrite: bool,
    ) -> Result<(), ApplyError> {
        let host = self.root.resolve(path, true).map_err(root_err(at))?;
        let meta = fs::symlink_metadata(&host).ok();
        if hard {
            let target_path = if target.starts_with('/') {
                target.to_string()
            } else {
                let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                format!("{parent}/{target}")
            };
            let target_host = self
                .root
                .resolve(&target_path, false)
                .map_err(root_err(at))?;
            let tmeta = fs::symlink_metadata(&target_host).map_err(io_err(at, &target_host))?;
            if tmeta.is_dir() {
                return Err(conflict(at, path, "hard link target is a directory"));
            }
            if let Some(m) = &meta {
                if m.ino() == tmeta.ino() && m.dev() == tmeta.dev() {
                    self.act(ActionKind::Unchanged, path, format!("=> {target}"));
                    return Ok(());
                }
                if !overwrite {
                    return Err(conflict(
                        at,
                        path,
                        "something else exists there already and overwrite is false",
                    ));
                }
                remove_any(&host).map_err(io_err(at, &host))?;
            }
            fs::hard_link(&target_host, &host).map_err(io_err(at, &host))?;
            self.act(ActionKind::CreateHardLink, path, format!("=> {target}"));
            return Ok(());
        }
        if let Some(m) = &meta {
            let same = m.file_type().is_symlink()
                && fs::read_link(&host).is_ok_and(|t| t == Path::new(target));
            if same {
                if let Some((u, g)) = self.owner(at, user, group, Some((m.uid(), m.gid())))? {
                    self.chown(at, &host, u, g)?;
                }
                self.act(ActionKind::Unchanged, path, format!("-> {target}"));
                return Ok(());
            }
            if !overwrite {
                return Err(conflict(
                    at,
                    path,
                    "something else exists there already and overwrite is false",
                ));
            }
            remove_any(&host).map_err(io_err(at, &host))?;
        }
        std::os::unix::fs::symlink(target, &host).map_err(io_err(at, &host))?;
        if let Some((u, g)) = self.owner(at, user, group, None)? {
            self.chown(at, &host, u, g)?;
        }
        self.act(ActionKind::CreateSymlink, path, format!("-> {target}"));
        Ok(())
    }

    /// Finds the unit file for `name` in the root: its path as the booted system sees it
    /// and its text.
    fn find_unit(&self, name: &str) -> Option<(String, String)> {
        let mut names = vec![name.to_string()];
        names.extend(units::template_of(name));
        for n in &names {
            for dir in
                std::iter::once(units::UNIT_DIR).chain(units::VENDOR_UNIT_DIRS.iter().copied())
            {
                let path = format!("{dir}/{n}");
                let Ok(host) = self.root.resolve(&path, false) else {
                    continue;
                };
                let Ok(m) = fs::symlink_metadata(&host) else {
                    continue;
                };
                if m.file_type().is_symlink() {
                    // A mask or an alias: not the unit file itself.
                    continue;
                }
                if let Ok(text) = fs::read_to_string(&host) {
                    return Some((path, text));
                }
            }
        }
        None
    }

    fn enable(
        &mut self,
        at: &str,
        name: &str,
        enabled: bool,
        contents: Option<&str>,
        dropins: &[String],
    ) -> Result<(), ApplyError> {
        let found = match contents {
            Some(c) => {
                // An instance written with contents is its own unit file.
                Some((format!("{}/{name}", units::UNIT_DIR), c.to_string()))
            }
            None => self.find_unit(name),
        };
        let mut install = found
            .as_ref()
            .map(|(_, text)| units::parse_install(text))
            .unwrap_or_default();
        for d in dropins {
            install.extend(units::parse_install(d));
        }
        if enabled {
            let Some((unit_path, _)) = &found else {
                self.warn(format!(
                    "{at}: unit {name} is not in the root (neither /etc/systemd/system nor /usr/lib/systemd/system); only a preset line enables it at boot"
                ));
                return Ok(());
            };
            if install.is_empty() {
                self.warn(format!(
                    "{at}: unit {name} has no WantedBy/RequiredBy/Alias in [Install]; only a preset line is written"
                ));
                return Ok(());
            }
            for l in units::enable_links(name, &install, unit_path) {
                let host = self.root.resolve(&l.link, true).map_err(root_err(at))?;
                let same = fs::read_link(&host).is_ok_and(|t| t == Path::new(&l.target));
                if !same {
                    remove_any(&host).map_err(io_err(at, &host))?;
                    std::os::unix::fs::symlink(&l.target, &host).map_err(io_err(at, &host))?;
                }
                self.act(ActionKind::EnableUnit, &l.link, format!("-> {}", l.target));
            }
            if !install.also.is_empty() {
                self.warn(format!(
                    "{at}: {name} lists Also={}; those units are not enabled by this config",
                    install.also.join(" ")
                ));
            }
        } else {
            // Remove every enablement link named after the unit, plus its aliases.
            let mut links: Vec<String> = units::enable_links(name, &install, "")
                .into_iter()
                .map(|l| l.link)
                .collect();
            if let Ok(dir) = self.root.resolve_dir(units::UNIT_DIR, false) {
                if let Ok(entries) = fs::read_dir(&dir) {
                    for e in entries.flatten() {
                        let n = e.file_name().to_string_lossy().to_string();
                        if (n.ends_with(".wants") || n.ends_with(".requires"))
                            && e.path().join(name).symlink_metadata().is_ok()
                        {
                            links.push(format!("{}/{n}/{name}", units::UNIT_DIR));
                        }
                    }
                }
            }
            links.sort();
            links.dedup();
            for l in links {
                let host = self.root.resolve(&l, false).map_err(root_err(at))?;
                if fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
                    fs::remove_file(&host).map_err(io_err(at, &host))?;
                    self.act(ActionKind::DisableUnit, l, "");
                }
            }
        }
        Ok(())
    }

    fn user(
        &mut self,
        at: &str,
        spec: &crate::passwd::UserSpec,
        create_home: bool,
        ssh_keys: &[String],
        remove: bool,
    ) -> Result<(), ApplyError> {
        if remove {
            if let Some(e) = self.db(at)?.remove_user(&spec.name) {
                self.save_db(at)?;
                if e.home.starts_with('/') && e.home != "/" {
                    let host = self.root.resolve(&e.home, false).map_err(root_err(at))?;
                    if fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                        fs::remove_dir_all(&host).map_err(io_err(at, &host))?;
                    }
                }
                self.act(ActionKind::RemoveUser, &spec.name, "");
            }
            return Ok(());
        }
        let reserved = self.reserved.clone();
        let today = self.today;
        let out = self
            .db(at)?
            .ensure_user(spec, &reserved, today)
            .map_err(|source| ApplyError::Passwd {
                at: at.into(),
                source,
            })?;
        self.save_db(at)?;
        for g in &out.created_groups {
            self.warn(format!(
                "{at}: group {g:?} did not exist in the root; created it as a system group"
            ));
        }
        if out.reused_group {
            self.warn(format!(
                "{at}: group {:?} already existed; it became the user's primary group",
                spec.name
            ));
        }
        let e = out.entry.clone();
        let kind = match out.change {
            Change::Created => ActionKind::CreateUser,
            Change::Modified => ActionKind::ModifyUser,
            Change::Unchanged => ActionKind::Unchanged,
        };
        self.act(
            kind,
            &spec.name,
            format!(
                "uid {}, gid {}, home {}, shell {}",
                e.uid, e.gid, e.home, e.shell
            ),
        );
        let needs_home = (out.change == Change::Created && create_home) || !ssh_keys.is_empty();
        if needs_home && e.home.starts_with('/') && e.home != "/" {
            let home = self.root.resolve(&e.home, true).map_err(root_err(at))?;
            if fs::symlink_metadata(&home).is_err() {
                fs::create_dir(&home).map_err(io_err(at, &home))?;
                fs::set_permissions(&home, fs::Permissions::from_mode(0o700))
                    .map_err(io_err(at, &home))?;
                self.chown(at, &home, e.uid, e.gid)?;
                self.copy_skel(at, &home, e.uid, e.gid)?;
                self.act(ActionKind::CreateHome, &e.home, "mode 0700");
            }
        }
        if !ssh_keys.is_empty() {
            self.authorized_keys(at, &e.home, ssh_keys, e.uid, e.gid)?;
        }
        Ok(())
    }

    fn copy_skel(&mut self, at: &str, home: &Path, uid: u32, gid: u32) -> Result<(), ApplyError> {
        let Ok(skel) = self.root.resolve_dir("/etc/skel", false) else {
            return Ok(());
        };
        if !skel.is_dir() {
            return Ok(());
        }
        let mut stack = vec![(skel, home.to_path_buf())];
        while let Some((from, to)) = stack.pop() {
            let entries = fs::read_dir(&from).map_err(io_err(at, &from))?;
            for e in entries.flatten() {
                let src = e.path();
                let dst = to.join(e.file_name());
                let m = fs::symlink_metadata(&src).map_err(io_err(at, &src))?;
                if m.is_dir() {
                    fs::create_dir(&dst).map_err(io_err(at, &dst))?;
                    fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode() & 0o7777))
                        .map_err(io_err(at, &dst))?;
                    stack.push((src, dst.clone()));
                } else if m.file_type().is_symlink() {
                    let t = fs::read_link(&src).map_err(io_err(at, &src))?;
                    std::os::unix::fs::symlink(t, &dst).map_err(io_err(at, &dst))?;
                } else if m.is_file() {
                    fs::copy(&src, &dst).map_err(io_err(at, &dst))?;
                } else {
                    continue;
                }
                self.chown(at, &dst, uid, gid)?;
            }
        }
        Ok(())
    }

    /// Writes the keys to `~/.ssh/authorized_keys.d/ignition` (as Flatcar and Fedora CoreOS
    /// do) and merges them into `~/.ssh/authorized_keys`, which sshd reads by default.
    fn authorized_keys(
        &mut self,
        at: &str,
        home: &str,
        keys: &[String],
        uid: u32,
        gid: u32,
    ) -> Result<(), ApplyError> {
        let owner = Some((uid, gid));
        let ssh = format!("{}/.ssh", home.trim_end_matches('/'));
        for dir in [ssh.clone(), format!("{ssh}/authorized_keys.d")] {
            let host = self.root.resolve(&dir, true).map_err(root_err(at))?;
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(conflict(at, &dir, "exists and is not a directory"));
                }
                Err(_) => {
                    fs::create_dir(&host).map_err(io_err(at, &host))?;
                    fs::set_permissions(&host, fs::Permissions::from_mode(0o700))
                        .map_err(io_err(at, &host))?;
                    self.chown(at, &host, uid, gid)?;
                }
            }
        }
        let mut fragment = keys.join("\n");
        fragment.push('\n');
        let frag_path = format!("{ssh}/authorized_keys.d/ignition");
        let host = self.root.resolve(&frag_path, true).map_err(root_err(at))?;
        self.write_host(at, &host, fragment.as_bytes(), 0o600, owner)?;

        let main_path = format!("{ssh}/authorized_keys");
        let host = self.root.resolve(&main_path, true).map_err(root_err(at))?;
        let existing = match fs::symlink_metadata(&host) {
            Ok(m) if m.is_file() => fs::read_to_string(&host).map_err(io_err(at, &host))?,
            _ => String::new(),
        };
        let mut text = existing.clone();
        for k in keys {
            if !existing.lines().any(|l| l.trim() == k.trim()) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(k);
                text.push('\n');
            }
        }
        self.write_host(at, &host, text.as_bytes(), 0o600, owner)?;
        self.act(
            ActionKind::WriteAuthorizedKeys,
            main_path,
            format!("{} keys, also in {frag_path}", keys.len()),
        );
        Ok(())
    }
}
