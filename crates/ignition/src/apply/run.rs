//! One pass over the plan's operations, dry or real (the [`Tree`] decides): the pass's
//! state, owners, and files, directories and links. Accounts and units are in the sibling
//! modules.

use std::path::{Path, PathBuf};

use super::root::Root;
use super::tree::{Meta, Part, Tree};
use super::{
    conflict, io_err, reserved, root_err, Action, ActionKind, ApplyError, Fetched, Outcome,
};
use crate::passwd::{Db, Reserved};
use crate::plan::{Op, OwnerRef, Plan};

/// The state of one pass.
pub(super) struct Run {
    pub(super) root: Root,
    pub(super) tree: Tree,
    pub(super) db: Option<Db>,
    pub(super) reserved: Reserved,
    pub(super) today: u64,
    out: Outcome,
    chown_warned: bool,
}

impl Run {
    pub(super) fn new(root: Root, tree: Tree, plan: &Plan, today: u64) -> Run {
        Run {
            root,
            tree,
            db: None,
            reserved: reserved(&plan.ops),
            today,
            out: Outcome {
                skipped: plan.skipped.clone(),
                warnings: plan.notes.clone(),
                ..Default::default()
            },
            chown_warned: false,
        }
    }

    /// What the pass did, and its tree.
    pub(super) fn finish(self) -> (Outcome, Tree) {
        (self.out, self.tree)
    }

    pub(super) fn act(
        &mut self,
        kind: ActionKind,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) {
        let a = Action {
            kind,
            target: target.into(),
            detail: detail.into(),
        };
        if !self.tree.is_dry() {
            tracing::info!("{a}");
        }
        self.out.actions.push(a);
    }

    pub(super) fn warn(&mut self, w: String) {
        if !self.tree.is_dry() {
            tracing::warn!("{w}");
        }
        self.out.warnings.push(w);
    }

    /// The host path of `path` for writing (parents followed, and created when `create`).
    pub(super) fn resolve(
        &mut self,
        at: &str,
        path: &str,
        create: bool,
    ) -> Result<PathBuf, ApplyError> {
        self.root
            .resolve_in(path, create, &mut self.tree)
            .map_err(root_err(at))
    }

    /// The host path of the directory `path`, every component followed.
    pub(super) fn resolve_dir(
        &mut self,
        at: &str,
        path: &str,
        create: bool,
    ) -> Result<PathBuf, ApplyError> {
        self.root
            .resolve_dir_in(path, create, &mut self.tree)
            .map_err(root_err(at))
    }

    /// The text of the regular file at `host`, if there is one.
    pub(super) fn read_text(&self, at: &str, host: &Path) -> Result<Option<String>, ApplyError> {
        Ok(self
            .tree
            .read(host)
            .map_err(io_err(at, host))?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The text of the file at `path`, following symlinks (the last one too) inside the
    /// root: the account files and the preset file are read where they point, and then
    /// written as regular files in their place.
    pub(super) fn read_followed(
        &mut self,
        at: &str,
        path: &str,
    ) -> Result<Option<String>, ApplyError> {
        let host = self
            .root
            .resolve_followed_in(path, &mut self.tree)
            .map_err(root_err(at))?;
        self.read_text(at, &host)
    }

    /// Writes `parts` to `host` (atomically, replacing whatever is there).
    pub(super) fn write_host(
        &mut self,
        at: &str,
        host: &Path,
        parts: &[Part],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), ApplyError> {
        let owned = self
            .tree
            .write(host, parts, mode, owner)
            .map_err(io_err(at, host))?;
        if !owned {
            self.chown_denied(host);
        }
        Ok(())
    }

    fn chown_denied(&mut self, path: &Path) {
        if !self.chown_warned {
            self.chown_warned = true;
            self.warn(format!(
                "not permitted to change owners (run as root to apply ownership); first seen at {}",
                path.display()
            ));
        }
    }

    pub(super) fn chown(
        &mut self,
        at: &str,
        path: &Path,
        uid: u32,
        gid: u32,
    ) -> Result<(), ApplyError> {
        match self.tree.chown(path, uid, gid) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                self.chown_denied(path);
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

    pub(super) fn op(&mut self, op: &Op, fetched: Option<&Fetched>) -> Result<(), ApplyError> {
        match op {
            Op::Group { at, spec, remove } => self.group(at, spec, *remove),
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
            } => self.directory(at, path, *mode, user, group, *overwrite),
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
                self.file(at, path, *mode, user, group, *overwrite, fetched)
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
            Op::Unit { at, name, contents } => self.unit(at, name, contents),
            Op::Dropin {
                at,
                unit,
                name,
                contents,
            } => self.dropin(at, unit, name, contents),
            Op::Mask { at, name, mask } => self.mask(at, name, *mask),
            Op::Enable {
                at,
                name,
                enabled,
                contents,
                dropins,
            } => self.enable(at, name, *enabled, contents.as_deref(), dropins),
            Op::Networkd { at, path, contents } => self.networkd(at, path, contents),
            Op::Presets { lines } => self.presets(lines),
        }
    }

    fn directory(
        &mut self,
        at: &str,
        path: &str,
        mode: Option<u32>,
        user: &OwnerRef,
        group: &OwnerRef,
        overwrite: bool,
    ) -> Result<(), ApplyError> {
        let host = self.resolve(at, path, true)?;
        match self.tree.lstat(&host) {
            Some(m) if m.is_dir() => {
                if let Some(mode) = mode {
                    self.tree.set_mode(&host, mode).map_err(io_err(at, &host))?;
                }
                if let Some((u, g)) = self.owner(at, user, group, Some((m.uid, m.gid)))? {
                    if (u, g) != (m.uid, m.gid) {
                        self.chown(at, &host, u, g)?;
                    }
                }
                let detail = mode.map(|m| format!("mode {m:04o}")).unwrap_or_default();
                self.act(ActionKind::UpdateDirectory, path, detail);
                return Ok(());
            }
            Some(_) if !overwrite => {
                return Err(conflict(
                    at,
                    path,
                    "a non-directory exists there already and overwrite is false",
                ))
            }
            Some(_) => self.tree.remove(&host).map_err(io_err(at, &host))?,
            None => {}
        }
        let mode = mode.unwrap_or(0o755);
        self.tree.mkdir(&host, mode).map_err(io_err(at, &host))?;
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

    #[allow(clippy::too_many_arguments)]
    fn file(
        &mut self,
        at: &str,
        path: &str,
        mode: Option<u32>,
        user: &OwnerRef,
        group: &OwnerRef,
        overwrite: bool,
        fetched: &Fetched,
    ) -> Result<(), ApplyError> {
        let host = self.resolve(at, path, true)?;
        let meta = self.tree.lstat(&host);
        let existing_file = meta.filter(Meta::is_file);
        let (mut parts, keep, kind) = match (&fetched.contents, existing_file) {
            (Some(c), _) if overwrite || meta.is_none() => {
                (vec![c.clone()], None, ActionKind::WriteFile)
            }
            (Some(_), _) => {
                return Err(conflict(
                    at,
                    path,
                    "a file exists there already and overwrite is false",
                ))
            }
            (None, Some(m)) if !overwrite => {
                (self.tree.parts_of(&host), Some(m), ActionKind::UpdateFile)
            }
            (None, _) if overwrite || meta.is_none() => (Vec::new(), None, ActionKind::WriteFile),
            (None, _) => {
                return Err(conflict(
                    at,
                    path,
                    "a non-regular node exists there already and overwrite is false",
                ))
            }
        };
        parts.extend(fetched.append.iter().cloned());
        let mode = mode.or(keep.map(|m| m.mode & 0o777)).unwrap_or(0o644);
        let owner = self.owner(at, user, group, keep.map(|m| (m.uid, m.gid)))?;
        self.write_host(at, &host, &parts, mode, owner)?;
        let mut detail = format!("mode {mode:04o}");
        if !self.tree.is_dry() {
            if let Ok(m) = std::fs::symlink_metadata(&host) {
                detail.push_str(&format!(", {} bytes", m.len()));
            }
        }
        if let Some((u, g)) = owner {
            detail.push_str(&format!(", owner {u}:{g}"));
        }
        self.act(kind, path, detail);
        Ok(())
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
        let host = self.resolve(at, path, true)?;
        let meta = self.tree.lstat(&host);
        if hard {
            let target_path = if target.starts_with('/') {
                target.to_string()
            } else {
                let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
                format!("{parent}/{target}")
            };
            let target_host = self.resolve(at, &target_path, false)?;
            let Some(tmeta) = self.tree.lstat(&target_host) else {
                return Err(conflict(
                    at,
                    path,
                    &format!("hard link target {target} does not exist"),
                ));
            };
            if tmeta.is_dir() {
                return Err(conflict(at, path, "hard link target is a directory"));
            }
            if let Some(m) = &meta {
                if m.id == tmeta.id {
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
                self.tree.remove(&host).map_err(io_err(at, &host))?;
            }
            self.tree
                .hard_link(&target_host, &host)
                .map_err(io_err(at, &host))?;
            self.act(ActionKind::CreateHardLink, path, format!("=> {target}"));
            return Ok(());
        }
        if let Some(m) = &meta {
            let same = m.is_symlink()
                && self
                    .tree
                    .read_link(&host)
                    .is_ok_and(|t| t == Path::new(target));
            if same {
                if let Some((u, g)) = self.owner(at, user, group, Some((m.uid, m.gid)))? {
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
            self.tree.remove(&host).map_err(io_err(at, &host))?;
        }
        self.tree
            .symlink(Path::new(target), &host)
            .map_err(io_err(at, &host))?;
        if let Some((u, g)) = self.owner(at, user, group, None)? {
            self.chown(at, &host, u, g)?;
        }
        self.act(ActionKind::CreateSymlink, path, format!("-> {target}"));
        Ok(())
    }
}
