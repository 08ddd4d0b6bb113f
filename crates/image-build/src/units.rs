//! What Keel changes in the systemd units Debian ships: which units start at boot, which are
//! masked, and which dependencies are cut because a container host does not need them.
//!
//! Everything here is written into /usr, so every slot carries its own boot graph and an
//! update brings the new one along. Debian's own enablement links under /etc are removed for
//! the units Keel starts differently (they would otherwise land in ROOT's /etc as factory
//! defaults and outlive the slot that put them there).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Where units shipped in the OS image live.
const UNIT_DIR: &str = "usr/lib/systemd/system";

/// Units enabled from /usr: (wants directory, unit).
pub const ENABLED: &[(&str, &str)] = &[
    ("multi-user.target.wants", "keel-agent.service"),
    ("multi-user.target.wants", "keel-mark-good.service"),
    ("multi-user.target.wants", "containerd.service"),
    ("multi-user.target.wants", "docker.service"),
    ("multi-user.target.wants", "ssh.service"),
    ("multi-user.target.wants", "systemd-networkd.service"),
    ("sockets.target.wants", "docker.socket"),
    ("sockets.target.wants", "systemd-networkd.socket"),
    ("sysinit.target.wants", "apparmor.service"),
    (
        "network-online.target.wants",
        "systemd-networkd-wait-online.service",
    ),
    ("ssh.service.wants", "keel-ssh-keygen.service"),
];

/// Enablement links Debian's maintainer scripts left in /etc. Removed: Keel enables what it
/// starts from /usr (above), and starts the rest only when an operator asks.
pub const DEBIAN_LINKS_REMOVED: &[&str] = &[
    // Enabled from /usr instead.
    "multi-user.target.wants/containerd.service",
    "multi-user.target.wants/docker.service",
    "multi-user.target.wants/ssh.service",
    "sockets.target.wants/docker.socket",
    "sysinit.target.wants/apparmor.service",
    // Not started on a Keel node unless configured.
    "multi-user.target.wants/etcd.service",
    "etcd2.service",
    "multi-user.target.wants/e2scrub_reap.service",
    "multi-user.target.wants/remote-fs.target",
    "sysinit.target.wants/systemd-pstore.service",
    "timers.target.wants/apt-daily.timer",
    "timers.target.wants/apt-daily-upgrade.timer",
    "timers.target.wants/e2scrub_all.timer",
    "timers.target.wants/dpkg-db-backup.timer",
];

/// Units masked in /usr (linked to /dev/null): hardware and services a container host does
/// not have, whose start would cost boot time for nothing.
pub const MASKED: &[&str] = &[
    // Graphics: no GPU driver ships in the image.
    "modprobe@drm.service",
    // Loaded on first use anyway (the kernel loads them when /dev/loop-control or
    // /dev/mapper/control is opened); no need to spend a process on each at every boot.
    "modprobe@loop.service",
    "modprobe@dm_mod.service",
    // Boot-time pstore collection needs EFI variables storage of crash logs; off on Keel.
    "modprobe@efi_pstore.service",
    // Debian package maintenance: the OS image is read-only.
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.service",
    "dpkg-db-backup.timer",
];

/// A dependency cut from a Debian unit: `name` is removed from the `key=` lines of `unit`.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// The unit file under /usr/lib/systemd/system.
    pub unit: &'static str,
    /// `After`, `Wants`, `Requires`, ...
    pub keys: &'static [&'static str],
    /// The unit name removed from those lines.
    pub name: &'static str,
    /// Why, for the reader of this table.
    pub why: &'static str,
}

/// Dependencies Keel cuts.
pub const CUTS: &[Cut] = &[Cut {
    unit: "docker.service",
    keys: &["After", "Wants"],
    name: "network-online.target",
    why: "dockerd needs no network to start; waiting for DHCP put the whole engine behind it",
}];

/// Remove `name` from the `key=` lines of a unit file's text. Fails when no such line names it,
/// so a changed Debian unit is noticed at build time instead of silently keeping the old graph.
pub fn cut_dependency(text: &str, keys: &[&str], name: &str) -> Result<String, String> {
    let mut found = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if !keys.contains(&key.trim()) || !value.split_whitespace().any(|v| v == name) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        found = true;
        let kept: Vec<&str> = value.split_whitespace().filter(|v| *v != name).collect();
        if !kept.is_empty() {
            out.push_str(&format!("{}={}\n", key.trim(), kept.join(" ")));
        }
    }
    if found {
        Ok(out)
    } else {
        Err(format!("no {} line names {name}", keys.join("=/") + "="))
    }
}

fn link(target: &str, link: &Path) -> Result<()> {
    if let Some(dir) = link.parent() {
        fs::create_dir_all(dir)?;
    }
    let _ = fs::remove_file(link);
    symlink(target, link).with_context(|| format!("linking {} -> {target}", link.display()))
}

/// Apply the tables above to `tree` (before the factory split: /etc is still at `tree/etc`).
pub fn apply(tree: &Path) -> Result<()> {
    let units = tree.join(UNIT_DIR);
    for (wants, unit) in ENABLED {
        if !units.join(unit).exists() {
            bail!("cannot enable {unit}: {UNIT_DIR}/{unit} is not in the tree");
        }
        link(&format!("../{unit}"), &units.join(wants).join(unit))?;
    }
    for rel in DEBIAN_LINKS_REMOVED {
        let _ = fs::remove_file(tree.join("etc/systemd/system").join(rel));
    }
    for unit in MASKED {
        link("/dev/null", &units.join(unit))?;
    }
    for cut in CUTS {
        let path = units.join(cut.unit);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let edited = cut_dependency(&text, cut.keys, cut.name)
            .map_err(|e| anyhow::anyhow!("{}: {e} (Debian changed the unit?)", path.display()))?;
        fs::write(&path, edited).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "[Unit]\nDescription=Docker\nAfter=network-online.target docker.socket containerd.service\nWants=network-online.target containerd.service\nRequires=docker.socket\n";

    #[test]
    fn cut_removes_only_the_named_unit_from_the_named_keys() {
        let out = cut_dependency(DOCKER, &["After", "Wants"], "network-online.target").unwrap();
        assert!(
            out.contains("After=docker.socket containerd.service\n"),
            "{out}"
        );
        assert!(out.contains("Wants=containerd.service\n"), "{out}");
        assert!(out.contains("Requires=docker.socket\n"), "{out}");
        assert!(!out.contains("network-online"), "{out}");
    }

    #[test]
    fn a_line_left_empty_is_dropped_and_a_missing_dependency_is_an_error() {
        let out = cut_dependency("Wants=a.target\nAfter=b\n", &["Wants"], "a.target").unwrap();
        assert_eq!(out, "After=b\n");
        let err = cut_dependency(DOCKER, &["After"], "nothing.target").unwrap_err();
        assert!(err.contains("nothing.target"), "{err}");
    }

    #[test]
    fn apply_enables_masks_and_cuts_in_a_tree() {
        let d = tempfile::tempdir().unwrap();
        let units = d.path().join(UNIT_DIR);
        fs::create_dir_all(&units).unwrap();
        for (_, unit) in ENABLED {
            fs::write(units.join(unit), "[Unit]\n").unwrap();
        }
        fs::write(units.join("docker.service"), DOCKER).unwrap();
        let etc_wants = d.path().join("etc/systemd/system/multi-user.target.wants");
        fs::create_dir_all(&etc_wants).unwrap();
        symlink(
            "/lib/systemd/system/etcd.service",
            etc_wants.join("etcd.service"),
        )
        .unwrap();

        apply(d.path()).unwrap();

        let agent = units.join("multi-user.target.wants/keel-agent.service");
        assert_eq!(
            fs::read_link(agent).unwrap(),
            Path::new("../keel-agent.service")
        );
        assert_eq!(
            fs::read_link(units.join("modprobe@drm.service")).unwrap(),
            Path::new("/dev/null")
        );
        assert!(!etc_wants.join("etcd.service").exists());
        let docker = fs::read_to_string(units.join("docker.service")).unwrap();
        assert!(!docker.contains("network-online"), "{docker}");
    }

    #[test]
    fn apply_refuses_to_enable_a_unit_the_tree_lacks() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(UNIT_DIR)).unwrap();
        let err = apply(d.path()).unwrap_err().to_string();
        assert!(err.contains("keel-agent.service"), "{err}");
    }
}
