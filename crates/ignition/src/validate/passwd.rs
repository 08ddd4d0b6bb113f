//! Users and groups: names, ids, and the fields that are written into `/etc/passwd`,
//! `/etc/group` and `/etc/shadow` lines.

use std::collections::HashMap;

use super::V;
use crate::model::*;
use crate::report::{JsonPath, Kind};

impl V<'_> {
    pub(super) fn passwd(&mut self, users: &[User], groups: &[Group]) {
        for u in users {
            if u.name.as_deref().unwrap_or("").is_empty() {
                self.r.error(&u.at.key("name"), Kind::NameMissing);
            } else if let Some(n) = &u.name {
                if !valid_account_name(n) {
                    self.r.error_msg(
                        &u.at.key("name"),
                        Kind::NameMissing,
                        format!("invalid user name {n:?}"),
                    );
                }
            }
            self.id(u.uid, &u.at.key("uid"), "uid");
            if let Some(h) = &u.home_dir {
                self.abs_path(Some(h), &u.at.key("homeDir"));
            }
            if let Some(s) = &u.shell {
                if !s.starts_with('/') {
                    self.r.error_msg(
                        &u.at.key("shell"),
                        Kind::PathNotAbsolute,
                        format!("shell path not absolute: {s:?}"),
                    );
                }
            }
            for (key, value) in [
                ("gecos", &u.gecos),
                ("homeDir", &u.home_dir),
                ("shell", &u.shell),
                ("passwordHash", &u.password_hash),
            ] {
                self.account_field(value.as_deref(), &u.at.key(key), key);
            }
            if let Some(g) = &u.primary_group {
                self.group_name(g, &u.at.key("primaryGroup"));
            }
            for (i, g) in u.groups.iter().enumerate() {
                self.group_name(g, &u.at.key("groups").index(i));
            }
            for (i, key) in u.ssh_authorized_keys.iter().enumerate() {
                if key.contains('\n') {
                    self.r.warn_msg(
                        &u.at.key("sshAuthorizedKeys").index(i),
                        Kind::TypeMismatch,
                        "SSH key contains a newline; it is written as several lines",
                    );
                }
            }
            self.unique_strings(
                &u.ssh_authorized_keys,
                &u.at.key("sshAuthorizedKeys"),
                "SSH key",
            );
            self.unique_strings(&u.groups, &u.at.key("groups"), "group");
        }
        self.unique(
            users
                .iter()
                .filter_map(|u| Some((u.name.as_deref()?, u.at.key("name")))),
            "user",
        );
        self.unique_ids(
            users
                .iter()
                .filter(|u| u.should_exist != Some(false))
                .map(|u| (u.uid, &u.at, u.name.as_deref())),
            "uid",
            "user",
        );
        for g in groups {
            match g.name.as_deref() {
                None | Some("") => self.r.error(&g.at.key("name"), Kind::NameMissing),
                Some(n) if !valid_account_name(n) => self.r.error_msg(
                    &g.at.key("name"),
                    Kind::NameMissing,
                    format!("invalid group name {n:?}"),
                ),
                _ => {}
            }
            self.id(g.gid, &g.at.key("gid"), "gid");
            self.account_field(
                g.password_hash.as_deref(),
                &g.at.key("passwordHash"),
                "passwordHash",
            );
        }
        self.unique(
            groups
                .iter()
                .filter_map(|g| Some((g.name.as_deref()?, g.at.key("name")))),
            "group",
        );
        self.unique_ids(
            groups
                .iter()
                .filter(|g| g.should_exist != Some(false))
                .map(|g| (g.gid, &g.at, g.name.as_deref())),
            "gid",
            "group",
        );
    }

    /// Two accounts of the config asking for one id: useradd/groupadd would refuse the
    /// second (in both spec lines).
    fn unique_ids<'a>(
        &mut self,
        items: impl Iterator<Item = (Option<i64>, &'a JsonPath, Option<&'a str>)>,
        key: &str,
        what: &str,
    ) {
        let mut seen: HashMap<i64, (&JsonPath, Option<&str>)> = HashMap::new();
        for (id, at, name) in items {
            let Some(id) = id else { continue };
            if let Some((first, first_name)) = seen.get(&id) {
                self.r.error_msg(
                    &at.key(key),
                    Kind::Duplicate,
                    format!(
                        "{key} {id} is also given to {what} {:?} ({first})",
                        first_name.unwrap_or("")
                    ),
                );
            } else {
                seen.insert(id, (at, name));
            }
        }
    }

    /// A field that becomes part of a `:`-separated line.
    fn account_field(&mut self, value: Option<&str>, at: &JsonPath, key: &str) {
        if let Some(v) = value.filter(|v| v.contains([':', '\n', '\r', '\0'])) {
            self.r.error_msg(
                at,
                Kind::AccountField,
                format!("{key} {v:?} cannot contain \":\", a line break or a NUL byte (it would break the line it is written into)"),
            );
        }
    }

    /// A group named by a user (`primaryGroup` may also be a gid).
    fn group_name(&mut self, g: &str, at: &JsonPath) {
        if !valid_account_name(g) {
            self.r
                .error_msg(at, Kind::AccountField, format!("invalid group name {g:?}"));
        }
    }
}

/// A name that fits in passwd/group: no `:`, no newline, no `/`, not `.`/`..`.
fn valid_account_name(n: &str) -> bool {
    !n.is_empty()
        && n != "."
        && n != ".."
        && !n
            .chars()
            .any(|c| c == ':' || c == '/' || c == ',' || c.is_whitespace() || c.is_control())
}
