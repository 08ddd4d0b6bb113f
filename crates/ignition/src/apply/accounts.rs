//! Groups and users: the account files (through [`Db`]), home directories (created from
//! `/etc/skel`, removed only when safe) and SSH keys.

use std::path::{Path, PathBuf};

use super::run::Run;
use super::tree::Part;
use super::{conflict, io_err, ActionKind, ApplyError};
use crate::passwd::{Change, Db, GroupSpec, PasswdEntry, UserSpec};

/// Where removable homes live (relative to the root), as userdel's safe default.
const HOME_DIRS: &[&str] = &["home", "var/home"];

impl Run {
    pub(super) fn db(&mut self, at: &str) -> Result<&mut Db, ApplyError> {
        if self.db.is_none() {
            let mut texts = Vec::new();
            for name in ["passwd", "group", "shadow", "gshadow"] {
                texts.push(self.read_followed(at, &format!("/etc/{name}"))?);
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
            let host = self.resolve(at, &format!("/etc/{name}"), true)?;
            let old = self.tree.lstat(&host).filter(|m| m.is_file());
            let mode = old.map_or(default_mode, |m| m.mode);
            let owner = old.map(|m| (m.uid, m.gid));
            self.write_host(at, &host, &[Part::bytes(text)], mode, owner)?;
        }
        Ok(())
    }

    pub(super) fn group(
        &mut self,
        at: &str,
        spec: &GroupSpec,
        remove: bool,
    ) -> Result<(), ApplyError> {
        if remove {
            if self.db(at)?.remove_group(&spec.name) {
                self.act(ActionKind::RemoveGroup, &spec.name, "");
            }
        } else {
            let reserved = self.reserved.clone();
            let (change, gid) = self
                .db(at)?
                .ensure_group(spec, &reserved)
                .map_err(|source| ApplyError::Passwd {
                    at: at.into(),
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

    pub(super) fn user(
        &mut self,
        at: &str,
        spec: &UserSpec,
        create_home: bool,
        ssh_keys: &[String],
        remove: bool,
    ) -> Result<(), ApplyError> {
        if remove {
            if let Some(e) = self.db(at)?.remove_user(&spec.name) {
                self.save_db(at)?;
                match self.removable_home(at, &e) {
                    Ok(Some(host)) => {
                        self.tree.remove(&host).map_err(io_err(at, &host))?;
                        self.act(
                            ActionKind::RemoveUser,
                            &spec.name,
                            format!("and {}", e.home),
                        );
                    }
                    Ok(None) => self.act(ActionKind::RemoveUser, &spec.name, ""),
                    Err(why) => {
                        self.warn(format!(
                            "{at}: kept the home directory {} of the removed user {}: {why}",
                            e.home, spec.name
                        ));
                        self.act(ActionKind::RemoveUser, &spec.name, "");
                    }
                }
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
            let home = self.resolve(at, &e.home, true)?;
            if self.tree.lstat(&home).is_none() {
                self.tree.mkdir(&home, 0o700).map_err(io_err(at, &home))?;
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

    /// The home `userdel --remove` may delete, as its safe behaviour: a directory below
    /// `/home` or `/var/home` once every symlink is followed inside the root (not those
    /// directories themselves), owned by the user's uid. `Ok(None)`: there is no home;
    /// `Err`: why it is kept.
    fn removable_home(&mut self, at: &str, e: &PasswdEntry) -> Result<Option<PathBuf>, String> {
        if !e.home.starts_with('/') {
            return Err("it is not an absolute path".into());
        }
        let host = self
            .resolve_dir(at, &e.home, false)
            .map_err(|err| err.to_string())?;
        let rel = host
            .strip_prefix(self.root.dir())
            .unwrap_or(&host)
            .to_path_buf();
        let below = HOME_DIRS
            .iter()
            .any(|d| rel.starts_with(d) && rel != Path::new(d));
        if !below {
            return Err(format!(
                "it is /{} in the root, not a directory below /home or /var/home",
                rel.display()
            ));
        }
        let Some(m) = self.tree.lstat(&host) else {
            return Ok(None);
        };
        if !m.is_dir() {
            return Err("it is not a directory".into());
        }
        if m.uid != e.uid {
            return Err(format!(
                "it is owned by uid {}, not by the user's uid {}",
                m.uid, e.uid
            ));
        }
        Ok(Some(host))
    }

    fn copy_skel(&mut self, at: &str, home: &Path, uid: u32, gid: u32) -> Result<(), ApplyError> {
        let Ok(skel) = self.resolve_dir(at, "/etc/skel", false) else {
            return Ok(());
        };
        if !self.tree.lstat(&skel).is_some_and(|m| m.is_dir()) {
            return Ok(());
        }
        let mut stack = vec![(skel, home.to_path_buf())];
        while let Some((from, to)) = stack.pop() {
            for name in self.tree.list(&from).map_err(io_err(at, &from))? {
                let src = from.join(&name);
                let dst = to.join(&name);
                let Some(m) = self.tree.lstat(&src) else {
                    continue;
                };
                if m.is_dir() {
                    self.tree.mkdir(&dst, m.mode).map_err(io_err(at, &dst))?;
                    stack.push((src, dst.clone()));
                } else if m.is_symlink() {
                    let t = self.tree.read_link(&src).map_err(io_err(at, &src))?;
                    self.tree.symlink(&t, &dst).map_err(io_err(at, &dst))?;
                } else if m.is_file() {
                    let parts = self.tree.parts_of(&src);
                    self.write_host(at, &dst, &parts, m.mode, None)?;
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
            let host = self.resolve(at, &dir, true)?;
            match self.tree.lstat(&host) {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    return Err(conflict(at, &dir, "exists and is not a directory"));
                }
                None => {
                    self.tree.mkdir(&host, 0o700).map_err(io_err(at, &host))?;
                    self.chown(at, &host, uid, gid)?;
                }
            }
        }
        let mut fragment = keys.join("\n");
        fragment.push('\n');
        let frag_path = format!("{ssh}/authorized_keys.d/ignition");
        let host = self.resolve(at, &frag_path, true)?;
        self.write_host(at, &host, &[Part::bytes(fragment)], 0o600, owner)?;

        let main_path = format!("{ssh}/authorized_keys");
        let host = self.resolve(at, &main_path, true)?;
        let existing = self.read_text(at, &host)?.unwrap_or_default();
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
        self.write_host(at, &host, &[Part::bytes(text)], 0o600, owner)?;
        self.act(
            ActionKind::WriteAuthorizedKeys,
            main_path,
            format!("{} keys, also in {frag_path}", keys.len()),
        );
        Ok(())
    }
}
