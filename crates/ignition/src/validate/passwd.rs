//! Users and groups.

use super::V;
use crate::model::*;
use crate::report::Kind;

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
            if u.uid.is_some_and(|id| !(0..=u32::MAX as i64).contains(&id)) {
                self.r
                    .error_msg(&u.at.key("uid"), Kind::TypeMismatch, "uid out of range");
            }
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
            if g.gid.is_some_and(|id| !(0..=u32::MAX as i64).contains(&id)) {
                self.r
                    .error_msg(&g.at.key("gid"), Kind::TypeMismatch, "gid out of range");
            }
        }
        self.unique(
            groups
                .iter()
                .filter_map(|g| Some((g.name.as_deref()?, g.at.key("name")))),
            "group",
        );
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
