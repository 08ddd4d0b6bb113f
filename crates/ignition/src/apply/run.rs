//! One pass over the plan's operations, dry or real (the [`Tree`] decides): the pass's
//! state, paths, owners, and the dispatch of each step. The operations are in the sibling
//! modules: files (and directories and links), accounts, units.

use std::path::{Path, PathBuf};

use super::prepare::Step;
use super::root::Root;
use super::tree::{Part, Tree};
use super::{io_err, reserved, root_err, Action, ActionKind, ApplyError, Outcome};
use crate::passwd::{Db, Reserved};
use crate::plan::{Op, OwnerRef, Skipped};

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
    /// A pass over `steps`; its outcome starts with what the plan skipped and its notes.
    pub(super) fn new(
        root: Root,
        tree: Tree,
        steps: &[Step],
        skipped: &[Skipped],
        notes: &[String],
        today: u64,
    ) -> Run {
        Run {
            root,
            tree,
            db: None,
            reserved: reserved(steps.iter().map(|s| &s.op)),
            today,
            out: Outcome {
                skipped: skipped.to_vec(),
                warnings: notes.to_vec(),
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
    pub(super) fn owner(
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

    /// Runs one step.
    pub(super) fn step(&mut self, step: &Step) -> Result<(), ApplyError> {
        let fetched = step.fetched.as_ref();
        match &step.op {
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
}
