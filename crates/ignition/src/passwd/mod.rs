//! Pure edits of `/etc/passwd`, `/etc/group`, `/etc/shadow` and `/etc/gshadow` text, doing
//! what `groupadd`/`useradd`/`usermod` do when Ignition runs them with `--root`.
//!
//!  * [`Db::parse`] reads the four files (lines it does not understand are kept verbatim);
//!  * [`Db::ensure_group`], [`Db::ensure_user`], [`Db::remove_user`], [`Db::remove_group`]
//!    change the in-memory tables;
//!  * [`Db::render`] writes them back.
//!
//! Defaults follow useradd: the next free uid/gid ≥ 1000 (system accounts: the highest free
//! id below 1000), a private group named after the user with gid = uid when free, home
//! `/home/NAME`, shell `/bin/bash`, password `*` (locked) unless a hash is given. Ids that
//! other entries of the same config ask for explicitly are never handed out ([`Reserved`]).

use std::collections::HashSet;

/// Why an account edit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswdError {
    /// An explicit uid already belongs to another user.
    #[error("UID {uid} is not unique (used by {other})")]
    UidTaken {
        /// The uid.
        uid: u32,
        /// Its owner.
        other: String,
    },
    /// An explicit gid already belongs to another group.
    #[error("GID {gid} is not unique (used by {other})")]
    GidTaken {
        /// The gid.
        gid: u32,
        /// Its owner.
        other: String,
    },
    /// `primaryGroup` names a group that does not exist.
    #[error("primary group {0:?} does not exist")]
    NoSuchGroup(String),
    /// No free id is left in the range.
    #[error("no free {0} left")]
    Exhausted(&'static str),
}

/// A line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// Password field (normally `x`).
    pub password: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// GECOS.
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// A line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Password field (normally `x`).
    pub password: String,
    /// gid.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// A line of /etc/shadow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    /// Login name.
    pub name: String,
    /// Password hash (`*` or `!` = locked).
    pub hash: String,
    /// The remaining seven fields, as written.
    pub rest: Vec<String>,
}

/// A line of /etc/gshadow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GshadowEntry {
    /// Group name.
    pub name: String,
    /// Password hash.
    pub hash: String,
    /// Administrators.
    pub admins: String,
    /// Members.
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line<T> {
    Entry(T),
    Other(String),
}

fn entries<T>(lines: &[Line<T>]) -> impl Iterator<Item = &T> {
    lines.iter().filter_map(|l| match l {
        Line::Entry(e) => Some(e),
        Line::Other(_) => None,
    })
}

fn entries_mut<T>(lines: &mut [Line<T>]) -> impl Iterator<Item = &mut T> {
    lines.iter_mut().filter_map(|l| match l {
        Line::Entry(e) => Some(e),
        Line::Other(_) => None,
    })
}

fn parse_lines<T>(text: &str, f: impl Fn(&[&str]) -> Option<T>) -> Vec<Line<T>> {
    text.lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            if l.starts_with('#') || l.starts_with('+') || l.starts_with('-') {
                return Line::Other(l.to_string());
            }
            f(&fields).map_or_else(|| Line::Other(l.to_string()), Line::Entry)
        })
        .collect()
}

fn render_lines<T>(lines: &[Line<T>], f: impl Fn(&T) -> String) -> String {
    let mut out = String::new();
    for l in lines {
        match l {
            Line::Entry(e) => out.push_str(&f(e)),
            Line::Other(s) => out.push_str(s),
        }
        out.push('\n');
    }
    out
}

fn members(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// Ids that the config asks for explicitly, so automatic allocation skips them.
#[derive(Debug, Clone, Default)]
pub struct Reserved {
    /// Reserved uids.
    pub uids: HashSet<u32>,
    /// Reserved gids.
    pub gids: HashSet<u32>,
}

/// A group to ensure (groupadd / groupmod).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSpec {
    /// Name.
    pub name: String,
    /// Explicit gid.
    pub gid: Option<u32>,
    /// Password hash.
    pub password_hash: Option<String>,
    /// System group (gid below 1000 when allocated).
    pub system: bool,
}

/// A user to ensure (useradd / usermod).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSpec {
    /// Login name.
    pub name: String,
    /// Explicit uid.
    pub uid: Option<u32>,
    /// GECOS.
    pub gecos: Option<String>,
    /// Home directory (default `/home/NAME`).
    pub home_dir: Option<String>,
    /// Primary group, by name or number.
    pub primary_group: Option<String>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Do not create a private group; use `users` (gid 100).
    pub no_user_group: bool,
    /// Login shell (default `/bin/bash`).
    pub shell: Option<String>,
    /// System account.
    pub system: bool,
    /// Password hash (`Some("")` locks the account).
    pub password_hash: Option<String>,
}

/// What an account edit did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new entry.
    Created,
    /// An existing entry was changed.
    Modified,
    /// Nothing to do.
    Unchanged,
}

/// The result of [`Db::ensure_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOutcome {
    /// What happened.
    pub change: Change,
    /// The user's entry after the edit.
    pub entry: PasswdEntry,
    /// Supplementary groups that did not exist and were created.
    pub created_groups: Vec<String>,
    /// A private group named after the user existed already and became the primary group.
    pub reused_group: bool,
}

/// The account databases of one root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Db {
    passwd: Vec<Line<PasswdEntry>>,
    group: Vec<Line<GroupEntry>>,
    shadow: Vec<Line<ShadowEntry>>,
    gshadow: Option<Vec<Line<GshadowEntry>>>,
}

/// Rendered files: passwd, group, shadow, and gshadow if the root has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// /etc/passwd.
    pub passwd: String,
    /// /etc/group.
    pub group: String,
    /// /etc/shadow.
    pub shadow: String,
    /// /etc/gshadow (only when it existed).
    pub gshadow: Option<String>,
}

const UID_MIN: u32 = 1000;
const UID_MAX: u32 = 60000;
const SYS_MIN: u32 = 101;
const SYS_MAX: u32 = 999;
const DEFAULT_SHELL: &str = "/bin/bash";
const USERS_GID: u32 = 100;

fn next_id(used: &HashSet<u32>, system: bool) -> Option<u32> {
    if system {
        (SYS_MIN..=SYS_MAX).rev().find(|id| !used.contains(id))
    } else {
        let max = used
            .iter()
            .copied()
            .filter(|id| (UID_MIN..=UID_MAX).contains(id))
            .max();
        match max {
            Some(m) if m < UID_MAX => Some(m + 1),
            Some(_) => (UID_MIN..=UID_MAX).find(|id| !used.contains(id)),
            None => Some(UID_MIN),
        }
    }
}

impl Db {
    /// Reads the files' text (`gshadow` is `None` when the root has none).
    pub fn parse(passwd: &str, group: &str, shadow: &str, gshadow: Option<&str>) -> Self {
        Db {
            passwd: parse_lines(passwd, |f| {
                (f.len() == 7).then_some(())?;
                Some(PasswdEntry {
                    name: f[0].to_string(),
                    password: f[1].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    gecos: f[4].to_string(),
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                })
            }),
            group: parse_lines(group, |f| {
                (f.len() == 4).then_some(())?;
                Some(GroupEntry {
                    name: f[0].to_string(),
                    password: f[1].to_string(),
                    gid: f[2].parse().ok()?,
                    members: members(f[3]),
                })
            }),
            shadow: parse_lines(shadow, |f| {
                (f.len() >= 2 && !f[0].is_empty()).then_some(())?;
                Some(ShadowEntry {
                    name: f[0].to_string(),
                    hash: f[1].to_string(),
                    rest: f[2..].iter().map(|s| s.to_string()).collect(),
                })
            }),
            gshadow: gshadow.map(|text| {
                parse_lines(text, |f| {
                    (f.len() == 4).then_some(())?;
                    Some(GshadowEntry {
                        name: f[0].to_string(),
                        hash: f[1].to_string(),
                        admins: f[2].to_string(),
                        members: members(f[3]),
                    })
                })
            }),
        }
    }

    /// Writes the tables back as text.
    pub fn render(&self) -> Files {
        Files {
            passwd: render_lines(&self.passwd, |e| {
                format!(
                    "{}:{}:{}:{}:{}:{}:{}",
                    e.name, e.password, e.uid, e.gid, e.gecos, e.home, e.shell
                )
            }),
            group: render_lines(&self.group, |e| {
                format!(
                    "{}:{}:{}:{}",
                    e.name,
                    e.password,
                    e.gid,
                    e.members.join(",")
                )
            }),
            shadow: render_lines(&self.shadow, |e| {
                let mut s = format!("{}:{}", e.name, e.hash);
                for r in &e.rest {
                    s.push(':');
                    s.push_str(r);
                }
                s
            }),
            gshadow: self.gshadow.as_ref().map(|g| {
                render_lines(g, |e| {
                    format!("{}:{}:{}:{}", e.name, e.hash, e.admins, e.members.join(","))
                })
            }),
        }
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        entries(&self.passwd).find(|e| e.name == name)
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        entries(&self.group).find(|e| e.name == name)
    }

    /// The shadow entry of `name`.
    pub fn shadow(&self, name: &str) -> Option<&ShadowEntry> {
        entries(&self.shadow).find(|e| e.name == name)
    }

    fn used_uids(&self, reserved: &Reserved) -> HashSet<u32> {
        entries(&self.passwd)
            .map(|e| e.uid)
            .chain(reserved.uids.iter().copied())
            .collect()
    }

    fn used_gids(&self, reserved: &Reserved) -> HashSet<u32> {
        entries(&self.group)
            .map(|e| e.gid)
            .chain(reserved.gids.iter().copied())
            .collect()
    }

    fn add_group(&mut self, name: &str, gid: u32, hash: Option<&str>) {
        let in_gshadow = self.gshadow.is_some();
        let password = match hash {
            Some(h) if !in_gshadow && !h.is_empty() => h.to_string(),
            _ => "x".to_string(),
        };
        self.group.push(Line::Entry(GroupEntry {
            name: name.to_string(),
            password,
            gid,
            members: Vec::new(),
        }));
        if let Some(gs) = &mut self.gshadow {
            gs.push(Line::Entry(GshadowEntry {
                name: name.to_string(),
                hash: hash.filter(|h| !h.is_empty()).unwrap_or("!").to_string(),
                admins: String::new(),
                members: Vec::new(),
            }));
        }
    }

    /// groupadd (new group) or groupmod (existing group). Returns the change and the gid.
    pub fn ensure_group(
        &mut self,
        spec: &GroupSpec,
        reserved: &Reserved,
    ) -> Result<(Change, u32), PasswdError> {
        if let Some(gid) = spec.gid {
            if let Some(other) = entries(&self.group).find(|e| e.gid == gid && e.name != spec.name)
            {
                return Err(PasswdError::GidTaken {
                    gid,
                    other: other.name.clone(),
                });
            }
        }
        let has_gshadow = self.gshadow.is_some();
        if let Some(existing) = entries_mut(&mut self.group).find(|e| e.name == spec.name) {
            let mut change = Change::Unchanged;
            if let Some(gid) = spec.gid.filter(|g| *g != existing.gid) {
                existing.gid = gid;
                change = Change::Modified;
            }
            let gid = existing.gid;
            if let (Some(h), false) = (&spec.password_hash, has_gshadow) {
                if existing.password != *h {
                    existing.password = h.clone();
                    change = Change::Modified;
                }
            }
            if let (Some(h), Some(gs)) = (&spec.password_hash, &mut self.gshadow) {
                if let Some(e) = entries_mut(gs).find(|e| e.name == spec.name) {
                    if e.hash != *h {
                        e.hash = h.clone();
                        change = Change::Modified;
                    }
                }
            }
            return Ok((change, gid));
        }
        let gid = match spec.gid {
            Some(g) => g,
            None => {
                let mut used = self.used_gids(reserved);
                used.remove(&u32::MAX);
                next_id(&used, spec.system).ok_or(PasswdError::Exhausted("gid"))?
            }
        };
        self.add_group(&spec.name, gid, spec.password_hash.as_deref());
        Ok((Change::Created, gid))
    }

    fn add_member(&mut self, group: &str, user: &str) -> bool {
        let mut changed = false;
        if let Some(g) = entries_mut(&mut self.group).find(|e| e.name == group) {
            if !g.members.iter().any(|m| m == user) {
                g.members.push(user.to_string());
                changed = true;
            }
        }
        if let Some(gs) = &mut self.gshadow {
            if let Some(g) = entries_mut(gs).find(|e| e.name == group) {
                if !g.members.iter().any(|m| m == user) {
                    g.members.push(user.to_string());
                }
            }
        }
        changed
    }

    fn resolve_group(&self, g: &str) -> Option<u32> {
        self.group(g).map(|e| e.gid).or_else(|| {
            g.parse::<u32>()
                .ok()
                .filter(|gid| entries(&self.group).any(|e| e.gid == *gid))
        })
    }

    /// useradd (new user) or usermod (existing user). `today` is days since the epoch, for
    /// the shadow "last changed" field.
    pub fn ensure_user(
        &mut self,
        spec: &UserSpec,
        reserved: &Reserved,
        today: u64,
    ) -> Result<UserOutcome, PasswdError> {
        if let Some(uid) = spec.uid {
            if let Some(other) = entries(&self.passwd).find(|e| e.uid == uid && e.name != spec.name)
            {
                return Err(PasswdError::UidTaken {
                    uid,
                    other: other.name.clone(),
                });
            }
        }
        let primary = match &spec.primary_group {
            Some(g) => Some(
                self.resolve_group(g)
                    .ok_or_else(|| PasswdError::NoSuchGroup(g.clone()))?,
            ),
            None => None,
        };
        let mut created_groups = Vec::new();
        let mut reused_group = false;
        let exists = self.user(&spec.name).is_some();
        let change = if exists {
            let e = entries_mut(&mut self.passwd)
                .find(|e| e.name == spec.name)
                .expect("user exists");
            let before = e.clone();
            if let Some(uid) = spec.uid {
                e.uid = uid;
            }
            if let Some(g) = &spec.gecos {
                e.gecos = g.clone();
            }
            if let Some(h) = &spec.home_dir {
                e.home = h.clone();
            }
            if let Some(s) = &spec.shell {
                e.shell = s.clone();
            }
            if let Some(gid) = primary {
                e.gid = gid;
            }
            if *e == before {
                Change::Unchanged
            } else {
                Change::Modified
            }
        } else {
            let uid = match spec.uid {
                Some(u) => u,
                None => next_id(&self.used_uids(reserved), spec.system)
                    .ok_or(PasswdError::Exhausted("uid"))?,
            };
            let gid = match primary {
                Some(g) => g,
                None if spec.no_user_group => self.group("users").map_or(USERS_GID, |g| g.gid),
                None => match self.group(&spec.name) {
                    Some(g) => {
                        reused_group = true;
                        g.gid
                    }
                    None => {
                        let mut used = self.used_gids(reserved);
                        if spec.uid.is_some() && !entries(&self.group).any(|g| g.gid == uid) {
                            // The gid reserved for this user's own private group.
                            used.remove(&uid);
                        }
                        let gid = if used.contains(&uid) {
                            next_id(&used, spec.system).ok_or(PasswdError::Exhausted("gid"))?
                        } else {
                            uid
                        };
                        self.add_group(&spec.name, gid, None);
                        gid
                    }
                },
            };
            self.passwd.push(Line::Entry(PasswdEntry {
                name: spec.name.clone(),
                password: "x".into(),
                uid,
                gid,
                gecos: spec.gecos.clone().unwrap_or_default(),
                home: spec
                    .home_dir
                    .clone()
                    .unwrap_or_else(|| format!("/home/{}", spec.name)),
                shell: spec.shell.clone().unwrap_or_else(|| DEFAULT_SHELL.into()),
            }));
            Change::Created
        };

        // shadow
        let hash = match spec.password_hash.as_deref() {
            Some("") => Some("*".to_string()),
            Some(h) => Some(h.to_string()),
            None => None,
        };
        let mut shadow_changed = false;
        let shadow_entry = entries_mut(&mut self.shadow).find(|e| e.name == spec.name);
        let exists_in_shadow = shadow_entry.is_some();
        if let (Some(e), Some(h)) = (shadow_entry, &hash) {
            if e.hash != *h {
                e.hash = h.clone();
                shadow_changed = true;
            }
        }
        if !exists_in_shadow {
            let rest = ["", "0", "99999", "7", "", "", ""]
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    if i == 0 {
                        today.to_string()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            self.shadow.push(Line::Entry(ShadowEntry {
                name: spec.name.clone(),
                hash: hash.unwrap_or_else(|| "*".into()),
                rest,
            }));
            shadow_changed = true;
        }

        // supplementary groups
        let mut groups_changed = false;
        for g in &spec.groups {
            if self.group(g).is_none() {
                let used = self.used_gids(reserved);
                let gid = next_id(&used, true).ok_or(PasswdError::Exhausted("gid"))?;
                self.add_group(g, gid, None);
                created_groups.push(g.clone());
            }
            groups_changed |= self.add_member(g, &spec.name);
        }

        let change = match change {
            Change::Unchanged if shadow_changed || groups_changed => Change::Modified,
            c => c,
        };
        Ok(UserOutcome {
            change,
            entry: self.user(&spec.name).expect("user exists").clone(),
            created_groups,
            reused_group,
        })
    }

    /// userdel: removes the user, its shadow entry and its group memberships. Returns the
    /// removed entry.
    pub fn remove_user(&mut self, name: &str) -> Option<PasswdEntry> {
        let entry = self.user(name)?.clone();
        self.passwd
            .retain(|l| !matches!(l, Line::Entry(e) if e.name == name));
        self.shadow
            .retain(|l| !matches!(l, Line::Entry(e) if e.name == name));
        for g in entries_mut(&mut self.group) {
            g.members.retain(|m| m != name);
        }
        if let Some(gs) = &mut self.gshadow {
            for g in entries_mut(gs) {
                g.members.retain(|m| m != name);
            }
        }
        // useradd's private group goes too, when nobody else uses it.
        let private = self
            .group(name)
            .is_some_and(|g| g.gid == entry.gid && g.members.is_empty())
            && !entries(&self.passwd).any(|u| u.gid == entry.gid);
        if private {
            self.remove_group(name);
        }
        Some(entry)
    }

    /// groupdel. Returns true when the group existed.
    pub fn remove_group(&mut self, name: &str) -> bool {
        let before = self.group.len();
        self.group
            .retain(|l| !matches!(l, Line::Entry(e) if e.name == name));
        if let Some(gs) = &mut self.gshadow {
            gs.retain(|l| !matches!(l, Line::Entry(e) if e.name == name));
        }
        self.group.len() != before
    }
}

#[cfg(test)]
mod tests;
