//! The accounts every Keel node has, as Container Linux had them: the `core` user (uid 500,
//! locked password, in `sudo`, `wheel`, `docker` and `systemd-journal`) and the `wheel` group,
//! written into the Debian tree's /etc/passwd, shadow, group and gshadow. Ignition then only
//! adds keys (or changes what a config names) for `core`, as on Flatcar. The sudo and sshd rules
//! that go with them are shipped files (see `os.rs`): `core`, `%sudo` and `%wheel` run anything
//! as root without a password; sshd takes keys only for root and never an empty password.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The admin user's name, uid and gid (Container Linux's).
pub const CORE: (&str, u32) = ("core", 500);
/// Groups `core` is a member of (they must exist once [`add`] has run).
pub const CORE_GROUPS: &[&str] = &["sudo", "wheel", "docker", "systemd-journal"];
/// The group added for sudo's `%wheel` rule; Debian has none.
const WHEEL: &str = "wheel";

/// The four account databases, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Databases {
    /// /etc/passwd
    pub passwd: String,
    /// /etc/shadow
    pub shadow: String,
    /// /etc/group
    pub group: String,
    /// /etc/gshadow
    pub gshadow: String,
}

const FILES: [&str; 4] = ["etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"];

/// Add `core` and `wheel` to the tree's account databases.
pub fn add(tree: &Path) -> Result<()> {
    let read = |rel: &str| {
        let p = tree.join(rel);
        fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let dbs = Databases {
        passwd: read(FILES[0])?,
        shadow: read(FILES[1])?,
        group: read(FILES[2])?,
        gshadow: read(FILES[3])?,
    };
    let out = with_core(&dbs).context("adding the core user and the wheel group")?;
    for (rel, text) in FILES
        .iter()
        .zip([out.passwd, out.shadow, out.group, out.gshadow])
    {
        let p = tree.join(rel);
        fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

fn names(db: &str) -> impl Iterator<Item = &str> {
    db.lines().filter_map(|l| l.split(':').next())
}

fn ids(db: &str) -> impl Iterator<Item = u32> + '_ {
    db.lines()
        .filter_map(|l| l.split(':').nth(2))
        .filter_map(|f| f.parse().ok())
}

fn push_line(db: &mut String, line: &str) {
    if !db.is_empty() && !db.ends_with('\n') {
        db.push('\n');
    }
    db.push_str(line);
    db.push('\n');
}

/// Add `member` to the member list (field `field`) of group `group` in a group-style database.
fn add_member(db: &str, group: &str, field: usize, member: &str) -> Result<String> {
    let mut found = false;
    let mut out = String::new();
    for line in db.lines() {
        let mut f: Vec<String> = line.split(':').map(str::to_string).collect();
        if f.first().map(String::as_str) == Some(group) && f.len() > field {
            found = true;
            let mut members: Vec<&str> = f[field].split(',').filter(|m| !m.is_empty()).collect();
            if !members.contains(&member) {
                members.push(member);
            }
            f[field] = members.join(",");
        }
        push_line(&mut out, &f.join(":"));
    }
    if !found {
        bail!("group {group} is not in the database");
    }
    Ok(out)
}

/// The databases with `core` and `wheel` added: `wheel` gets the highest free system gid (as
/// `groupadd -r` picks it), `core` uid and gid 500. Refuses a tree where either name or id 500
/// is taken, rather than guess.
pub fn with_core(dbs: &Databases) -> Result<Databases> {
    let (name, id) = CORE;
    let mut out = dbs.clone();
    if names(&dbs.passwd).any(|n| n == name) || ids(&dbs.passwd).any(|u| u == id) {
        bail!("/etc/passwd already has a user named {name} or with uid {id}");
    }
    if names(&dbs.group).any(|n| n == name) || ids(&dbs.group).any(|g| g == id) {
        bail!("/etc/group already has a group named {name} or with gid {id}");
    }
    if !names(&dbs.group).any(|n| n == WHEEL) {
        let used: Vec<u32> = ids(&dbs.group).collect();
        let Some(gid) = (100..1000).rev().find(|g| !used.contains(g)) else {
            bail!("no free system gid for the {WHEEL} group");
        };
        push_line(&mut out.group, &format!("{WHEEL}:x:{gid}:"));
        push_line(&mut out.gshadow, &format!("{WHEEL}:!::"));
    }
    push_line(&mut out.group, &format!("{name}:x:{id}:"));
    push_line(&mut out.gshadow, &format!("{name}:!::"));
    push_line(
        &mut out.passwd,
        &format!("{name}:x:{id}:{id}:Keel Admin:/home/{name}:/bin/bash"),
    );
    // Locked (`*`): no password login at all until an operator or Ignition sets a hash.
    push_line(&mut out.shadow, &format!("{name}:*::0:99999:7:::"));
    for g in CORE_GROUPS {
        out.group = add_member(&out.group, g, 3, name)?;
        out.gshadow = add_member(&out.gshadow, g, 3, name)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn debian() -> Databases {
        Databases {
            passwd: "root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n".into(),
            shadow: "root:*:19000:0:99999:7:::\n".into(),
            group: "root:x:0:\nsudo:x:27:\ndocker:x:102:\nsystemd-journal:x:999:\nsystemd-network:x:998:\n".into(),
            gshadow: "root:*::\nsudo:*::\ndocker:!::\nsystemd-journal:!::\nsystemd-network:!::\n".into(),
        }
    }

    #[test]
    fn core_is_added_locked_and_in_its_groups() {
        let out = with_core(&debian()).unwrap();
        assert!(out
            .passwd
            .ends_with("core:x:500:500:Keel Admin:/home/core:/bin/bash\n"));
        assert!(out.shadow.ends_with("core:*::0:99999:7:::\n"));
        assert!(out.group.contains("sudo:x:27:core\n"), "{}", out.group);
        assert!(out.group.contains("docker:x:102:core\n"));
        assert!(out.group.contains("systemd-journal:x:999:core\n"));
        // 999 and 998 are taken: wheel gets 997, as groupadd -r would give it.
        assert!(out.group.contains("wheel:x:997:core\n"), "{}", out.group);
        assert!(out.group.ends_with("core:x:500:\n"));
        assert!(out.gshadow.contains("sudo:*::core\n"));
        assert!(out.gshadow.contains("wheel:!::core\n"));
        assert!(out.gshadow.contains("core:!::\n"));
    }

    #[test]
    fn an_existing_wheel_group_is_kept_and_core_joins_it() {
        let mut dbs = debian();
        dbs.group.push_str("wheel:x:10:alice\n");
        dbs.gshadow.push_str("wheel:!::alice\n");
        let out = with_core(&dbs).unwrap();
        assert!(
            out.group.contains("wheel:x:10:alice,core\n"),
            "{}",
            out.group
        );
        assert_eq!(out.group.matches("wheel:").count(), 1);
    }

    #[test]
    fn a_taken_name_or_id_is_refused() {
        let mut dbs = debian();
        dbs.passwd.push_str("games:x:500:60::/:/bin/false\n");
        let err = with_core(&dbs).unwrap_err().to_string();
        assert!(err.contains("uid 500"), "{err}");

        let mut dbs = debian();
        dbs.group = dbs.group.replace("docker:x:102:\n", "");
        let err = with_core(&dbs).unwrap_err().to_string();
        assert!(err.contains("docker"), "{err}");
    }
}
