//! Files, directories and links: written into the root through the pass's tree, with the
//! config's mode and owner, or the kept node's.

use std::path::Path;

use super::prepare::Fetched;
use super::run::Run;
use super::tree::Meta;
use super::{conflict, io_err, ActionKind, ApplyError};
use crate::plan::OwnerRef;

impl Run {
    pub(super) fn directory(
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
    pub(super) fn file(
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
    pub(super) fn link(
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
