//! A [`ValidConfig`] → an ordered list of operations ([`Op`]), without touching any file.
//! Planning checks nothing: the config's type says it passed every check.
//!
//! Order (as Ignition's files stage): groups, users (with their SSH keys), then files,
//! directories and links, then systemd units (drop-ins, unit, mask, enable), then networkd
//! units (2.x), then the preset file.
//!  * spec 3.x: files, directories and symlinks sorted by path depth (config order within a
//!    depth), hard links last, so a hard link can point at a deeper file;
//!  * spec 2.x: directories by depth, then files in config order, then links in config order,
//!    so for a duplicated path the last entry wins.
//!
//! Defaults that depend on the spec line are resolved here: `overwrite` is true for 2.x files
//! and false otherwise. Defaults that depend on what is already on disk (mode and owner of an
//! existing file that is kept) are left to `apply`. Modes are 0644 for files and 0755 for
//! directories when unset, in both lines (as Flatcar does for 2.x; Container Linux used 0000);
//! setuid/setgid/sticky bits are dropped.
//!
//! Storage that needs real disks (disks, RAID, filesystems, LUKS) and kernel arguments
//! become [`Skipped`] entries: `apply --root` works on a directory tree. A real-disk apply can
//! be added as another consumer of the same plan.

use std::collections::HashMap;

use crate::model::*;
use crate::passwd::{GroupSpec, UserSpec};
use crate::units;
use crate::validate::ValidConfig;

/// Who owns a node, as the config says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    /// Not set: root for new nodes, unchanged for kept ones.
    Unset,
    /// A numeric id.
    Id(u32),
    /// A name to look up in the root's /etc/passwd or /etc/group.
    Name(String),
}

impl OwnerRef {
    fn from(o: &Owner) -> Self {
        match (&o.id, &o.name) {
            (Some(id), _) => OwnerRef::Id(*id as u32),
            (None, Some(n)) => OwnerRef::Name(n.clone()),
            (None, None) => OwnerRef::Unset,
        }
    }
}

/// One step of applying a config.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// groupadd/groupmod, or groupdel when `remove`.
    Group {
        /// Config path.
        at: String,
        /// The group.
        spec: GroupSpec,
        /// `shouldExist: false`.
        remove: bool,
    },
    /// useradd/usermod (+ home, + SSH keys), or userdel when `remove`.
    User {
        /// Config path.
        at: String,
        /// The user.
        spec: UserSpec,
        /// Create the home directory for a new user.
        create_home: bool,
        /// SSH keys to install (none: leave keys alone).
        ssh_keys: Vec<String>,
        /// `shouldExist: false`.
        remove: bool,
    },
    /// A directory.
    Directory {
        /// Config path.
        at: String,
        /// Absolute path in the root.
        path: String,
        /// Mode (None: 0755 for a new directory, unchanged for an existing one).
        mode: Option<u32>,
        /// Owner user.
        user: OwnerRef,
        /// Owner group.
        group: OwnerRef,
        /// Replace a non-directory at the path.
        overwrite: bool,
    },
    /// A regular file.
    File {
        /// Config path.
        at: String,
        /// Absolute path in the root.
        path: String,
        /// Contents (None or no source: keep an existing file, else create an empty one).
        contents: Option<Resource>,
        /// Data appended after the contents.
        append: Vec<Resource>,
        /// Mode (None: 0644 for a new file, unchanged for a kept one).
        mode: Option<u32>,
        /// Owner user.
        user: OwnerRef,
        /// Owner group.
        group: OwnerRef,
        /// Replace whatever is at the path.
        overwrite: bool,
    },
    /// A hard or symbolic link.
    Link {
        /// Config path.
        at: String,
        /// Absolute path in the root.
        path: String,
        /// Target (verbatim for symlinks; a path in the root for hard links).
        target: String,
        /// Hard link.
        hard: bool,
        /// Owner user (symlinks only).
        user: OwnerRef,
        /// Owner group (symlinks only).
        group: OwnerRef,
        /// Replace whatever is at the path.
        overwrite: bool,
    },
    /// Write `/etc/systemd/system/NAME`.
    Unit {
        /// Config path.
        at: String,
        /// Unit name.
        name: String,
        /// Unit text.
        contents: String,
    },
    /// Write `/etc/systemd/system/UNIT.d/NAME`.
    Dropin {
        /// Config path.
        at: String,
        /// Unit name.
        unit: String,
        /// Drop-in name.
        name: String,
        /// Drop-in text.
        contents: String,
    },
    /// Mask (symlink to /dev/null) or unmask (remove such a symlink).
    Mask {
        /// Config path.
        at: String,
        /// Unit name.
        name: String,
        /// Mask (true) or unmask (false).
        mask: bool,
    },
    /// Create or remove the unit's enablement symlinks.
    Enable {
        /// Config path.
        at: String,
        /// Unit name.
        name: String,
        /// Enable (true) or disable (false).
        enabled: bool,
        /// Unit text from the config (None: find the unit in the root).
        contents: Option<String>,
        /// Drop-in texts from the config (their `[Install]` counts too).
        dropins: Vec<String>,
    },
    /// Write a networkd unit or drop-in (`/etc/systemd/network/...`).
    Networkd {
        /// Config path.
        at: String,
        /// Absolute path in the root.
        path: String,
        /// Text.
        contents: String,
    },
    /// Add lines to the preset file.
    Presets {
        /// `enable NAME` / `disable NAME` lines.
        lines: Vec<String>,
    },
}

/// Something the config asks for that `apply --root` does not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Config path.
    pub at: String,
    /// What it is.
    pub what: String,
    /// Why it is skipped.
    pub reason: String,
}

/// The operations for a config, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Operations, in order.
    pub ops: Vec<Op>,
    /// Entries that need a real boot.
    pub skipped: Vec<Skipped>,
    /// Notes for the person applying.
    pub notes: Vec<String>,
}

const NEEDS_DISK: &str = "needs a real disk; applied only at boot";

fn depth(p: &str) -> usize {
    p.split('/').filter(|c| !c.is_empty()).count()
}

fn mode(m: Option<i64>) -> Option<u32> {
    m.map(|m| (m as u32) & 0o777)
}

/// Where a spec 2.x node lands: `Some(prefix)`, or `None` when its filesystem needs a disk.
/// (The last filesystem of the name wins; validation made sure there is one.)
fn v2_prefix(node: &Node, filesystems: &[Filesystem]) -> Option<String> {
    let name = node.filesystem.as_deref().unwrap_or("root");
    if name == "root" {
        return Some(String::new());
    }
    let fs = filesystems
        .iter()
        .rev()
        .find(|f| f.name.as_deref() == Some(name))?;
    if let Some(p) = &fs.path {
        return Some(p.trim_end_matches('/').to_string());
    }
    (name == "oem").then(|| "/usr/share/oem".to_string())
}

/// Plans `cfg`.
pub fn plan(cfg: &ValidConfig) -> Plan {
    let v2 = cfg.version.is_v2();
    let mut p = Plan::default();
    let skip = |p: &mut Plan, at: String, what: String, reason: &str| {
        p.skipped.push(Skipped {
            at,
            what,
            reason: reason.to_string(),
        })
    };

    // Storage that needs disks.
    for d in &cfg.storage.disks {
        let what = format!("disk {}", d.device.as_deref().unwrap_or("?"));
        skip(&mut p, d.at.to_string(), what, NEEDS_DISK);
    }
    for r in &cfg.storage.raid {
        let what = format!("RAID array {}", r.name.as_deref().unwrap_or("?"));
        skip(&mut p, r.at.to_string(), what, NEEDS_DISK);
    }
    for f in &cfg.storage.filesystems {
        if v2 && !f.has_mount {
            continue; // an already-mounted path: nothing to create
        }
        let what = format!(
            "{} filesystem on {}",
            f.format.as_deref().unwrap_or("?"),
            f.device.as_deref().unwrap_or("?")
        );
        skip(&mut p, f.at.to_string(), what, NEEDS_DISK);
        if let (false, Some(mp)) = (v2, &f.path) {
            if f.format.as_deref() != Some("swap") && f.format.as_deref() != Some("none") {
                p.notes.push(format!(
                    "entries below {mp} are written into the directory tree; at boot they would land on the filesystem on {}",
                    f.device.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    for l in &cfg.storage.luks {
        let what = format!("LUKS volume {}", l.name.as_deref().unwrap_or("?"));
        skip(&mut p, l.at.to_string(), what, NEEDS_DISK);
    }
    let ka = &cfg.kernel_arguments;
    if !ka.should_exist.is_empty() || !ka.should_not_exist.is_empty() {
        skip(
            &mut p,
            ka.at.to_string(),
            "kernel arguments".into(),
            "needs the boot loader configuration; applied only at boot",
        );
    }

    // Accounts.
    for g in &cfg.groups {
        p.ops.push(Op::Group {
            at: g.at.to_string(),
            spec: GroupSpec {
                name: g.name.clone().unwrap_or_default(),
                gid: g.gid.map(|g| g as u32),
                password_hash: g.password_hash.clone(),
                system: g.system == Some(true),
            },
            remove: g.should_exist == Some(false),
        });
    }
    for u in &cfg.users {
        p.ops.push(Op::User {
            at: u.at.to_string(),
            spec: UserSpec {
                name: u.name.clone().unwrap_or_default(),
                uid: u.uid.map(|u| u as u32),
                gecos: u.gecos.clone(),
                home_dir: u.home_dir.clone(),
                primary_group: u.primary_group.clone(),
                groups: u.groups.clone(),
                no_user_group: u.no_user_group == Some(true),
                shell: u.shell.clone(),
                system: u.system == Some(true),
                password_hash: u.password_hash.clone(),
            },
            create_home: u.no_create_home != Some(true),
            ssh_keys: u.ssh_authorized_keys.clone(),
            remove: u.should_exist == Some(false),
        });
    }

    // Files, directories, links.
    let fss = &cfg.storage.filesystems;
    let place = |p: &mut Plan, node: &Node| -> Option<String> {
        let path = node.path.clone().unwrap_or_default();
        if !v2 {
            return Some(path);
        }
        match v2_prefix(node, fss) {
            Some(prefix) => Some(format!("{prefix}{path}")),
            None => {
                p.skipped.push(Skipped {
                    at: node.at.to_string(),
                    what: format!(
                        "{path} on filesystem {:?}",
                        node.filesystem.as_deref().unwrap_or("")
                    ),
                    reason: NEEDS_DISK.to_string(),
                });
                None
            }
        }
    };
    let mut dirs = Vec::new();
    for d in &cfg.storage.directories {
        if let Some(path) = place(&mut p, &d.node) {
            dirs.push(Op::Directory {
                at: d.node.at.to_string(),
                path,
                mode: mode(d.mode),
                user: OwnerRef::from(&d.node.user),
                group: OwnerRef::from(&d.node.group),
                overwrite: d.node.overwrite == Some(true),
            });
        }
    }
    let mut files = Vec::new();
    for f in &cfg.storage.files {
        if let Some(path) = place(&mut p, &f.node) {
            files.push(Op::File {
                at: f.node.at.to_string(),
                path,
                contents: f.contents.clone(),
                append: f.append.clone(),
                mode: mode(f.mode),
                user: OwnerRef::from(&f.node.user),
                group: OwnerRef::from(&f.node.group),
                overwrite: f.node.overwrite.unwrap_or(v2),
            });
        }
    }
    let mut links = Vec::new();
    let mut hard_links = Vec::new();
    for l in &cfg.storage.links {
        let Some(path) = place(&mut p, &l.node) else {
            continue;
        };
        let target = l.target.clone().unwrap_or_default();
        let hard = l.hard == Some(true);
        let op = Op::Link {
            at: l.node.at.to_string(),
            path,
            target,
            hard,
            user: OwnerRef::from(&l.node.user),
            group: OwnerRef::from(&l.node.group),
            overwrite: l.node.overwrite == Some(true),
        };
        if hard && !v2 {
            hard_links.push(op);
        } else {
            links.push(op);
        }
    }
    let op_path = |op: &Op| match op {
        Op::Directory { path, .. } | Op::File { path, .. } | Op::Link { path, .. } => depth(path),
        _ => 0,
    };
    if v2 {
        dirs.sort_by_key(op_path);
        p.ops.extend(dirs);
        p.ops.extend(files);
        p.ops.extend(links);
    } else {
        let mut nodes: Vec<Op> = files.into_iter().chain(dirs).chain(links).collect();
        nodes.sort_by_key(op_path);
        p.ops.extend(nodes);
        p.ops.extend(hard_links);
    }

    // systemd units: entries with the same name (2.x only) are merged.
    let mut merged: Vec<Unit> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for u in &cfg.units {
        let name = u.name.clone().unwrap_or_default();
        match index.get(&name) {
            Some(&i) => {
                let m = &mut merged[i];
                if u.enabled.is_some() {
                    m.enabled = u.enabled;
                }
                if u.mask.is_some() {
                    m.mask = u.mask;
                }
                if u.contents.is_some() {
                    m.contents = u.contents.clone();
                }
                m.dropins.extend(u.dropins.iter().cloned());
            }
            None => {
                index.insert(name, merged.len());
                merged.push(u.clone());
            }
        }
    }
    let mut presets = Vec::new();
    for u in &merged {
        let name = u.name.clone().unwrap_or_default();
        let at = u.at.to_string();
        for d in &u.dropins {
            let contents = d.contents.clone().unwrap_or_default();
            if d.contents.is_none() || (v2 && contents.is_empty()) {
                continue;
            }
            p.ops.push(Op::Dropin {
                at: d.at.to_string(),
                unit: name.clone(),
                name: d.name.clone().unwrap_or_default(),
                contents,
            });
        }
        let contents = u.contents.clone().filter(|c| !c.is_empty());
        if let Some(c) = &contents {
            p.ops.push(Op::Unit {
                at: at.clone(),
                name: name.clone(),
                contents: c.clone(),
            });
        }
        match u.mask {
            Some(true) => p.ops.push(Op::Mask {
                at: at.clone(),
                name: name.clone(),
                mask: true,
            }),
            Some(false) if !v2 => p.ops.push(Op::Mask {
                at: at.clone(),
                name: name.clone(),
                mask: false,
            }),
            _ => {}
        }
        if let Some(enabled) = u.enabled {
            presets.push((name.clone(), enabled));
            if !(enabled && u.mask == Some(true)) {
                p.ops.push(Op::Enable {
                    at,
                    name,
                    enabled,
                    contents,
                    dropins: u
                        .dropins
                        .iter()
                        .filter_map(|d| d.contents.clone())
                        .collect(),
                });
            } else {
                p.notes
                    .push(format!("{name} is masked, so it is not enabled"));
            }
        }
    }

    // networkd (2.x).
    for f in crate::units::networkd::files(&cfg.networkd) {
        p.ops.push(Op::Networkd {
            at: f.at,
            path: f.path,
            contents: f.contents,
        });
    }

    if !presets.is_empty() {
        p.ops.push(Op::Presets {
            lines: units::preset_lines(&presets),
        });
    }
    p
}

#[cfg(test)]
mod tests;
