//! Planning tests: order, defaults per spec line, what is skipped.

use super::*;
use crate::{load, MapFetcher};

fn plan_of(json: &str) -> Plan {
    plan(&load(json.as_bytes(), &MapFetcher::new()).unwrap_or_else(|r| panic!("{r}")))
}

fn kinds(p: &Plan) -> Vec<String> {
    p.ops
        .iter()
        .map(|op| match op {
            Op::Group { spec, .. } => format!("group {}", spec.name),
            Op::User { spec, .. } => format!("user {}", spec.name),
            Op::Directory { path, .. } => format!("dir {path}"),
            Op::File { path, .. } => format!("file {path}"),
            Op::Link { path, hard, .. } => {
                format!("{} {path}", if *hard { "hard" } else { "sym" })
            }
            Op::Unit { name, .. } => format!("unit {name}"),
            Op::Dropin { unit, name, .. } => format!("dropin {unit}/{name}"),
            Op::Mask { name, mask, .. } => format!("mask={mask} {name}"),
            Op::Enable { name, enabled, .. } => format!("enabled={enabled} {name}"),
            Op::Networkd { path, .. } => format!("networkd {path}"),
            Op::Presets { lines } => format!("presets {}", lines.join("|")),
        })
        .collect()
}

#[test]
fn v3_order_depth_then_hard_links() {
    let p = plan_of(
        r#"{"ignition":{"version":"3.3.0"},
        "storage":{"files":[{"path":"/a/b/c"},{"path":"/x"}],
          "directories":[{"path":"/a/b"}],
          "links":[{"path":"/h","target":"/a/b/c","hard":true},{"path":"/a/s","target":"b"}]},
        "systemd":{"units":[{"name":"u.service","enabled":true,"contents":"[Install]\nWantedBy=multi-user.target","dropins":[{"name":"d.conf","contents":"[Service]\n"}]}]},
        "passwd":{"users":[{"name":"u"}],"groups":[{"name":"g"}]}}"#,
    );
    assert_eq!(
        kinds(&p),
        [
            "group g",
            "user u",
            "file /x",
            "dir /a/b",
            "sym /a/s",
            "file /a/b/c",
            "hard /h",
            "dropin u.service/d.conf",
            "unit u.service",
            "enabled=true u.service",
            "presets enable u.service",
        ]
    );
}

#[test]
fn v2_defaults_and_order() {
    let p = plan_of(
        r#"{"ignition":{"version":"2.2.0"},
        "storage":{"files":[{"filesystem":"root","path":"/etc/f","contents":{"source":"data:,x"}}],
          "directories":[{"filesystem":"root","path":"/a/b/c"},{"filesystem":"root","path":"/a"}]},
        "systemd":{"units":[{"name":"docker.service","enable":true,"dropins":[{"name":"e.conf","contents":""}]},
                            {"name":"docker.service","mask":false}]},
        "networkd":{"units":[{"name":"00-eth0.network","contents":"[Match]\nName=eth0"}]}}"#,
    );
    assert_eq!(
        kinds(&p),
        [
            "dir /a",
            "dir /a/b/c",
            "file /etc/f",
            "enabled=true docker.service",
            "networkd /etc/systemd/network/00-eth0.network",
            "presets enable docker.service",
        ]
    );
    match &p.ops[2] {
        Op::File {
            overwrite, mode, ..
        } => {
            assert!(*overwrite, "2.x files overwrite by default");
            assert_eq!(*mode, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v3_overwrite_defaults_false_and_special_bits_dropped() {
    let p = plan_of(
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/f","mode":2541}]}}"#,
    );
    match &p.ops[0] {
        Op::File {
            overwrite, mode, ..
        } => {
            assert!(!*overwrite);
            assert_eq!(*mode, Some(0o755));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn disks_and_kargs_are_skipped() {
    let p = plan_of(
        r#"{"ignition":{"version":"3.3.0"},"storage":{
          "disks":[{"device":"/dev/vdb","partitions":[{"label":"data"}]}],
          "filesystems":[{"device":"/dev/disk/by-partlabel/data","format":"xfs","path":"/var/data"}]},
          "kernelArguments":{"shouldExist":["quiet"]}}"#,
    );
    let what: Vec<&str> = p.skipped.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(
        what,
        [
            "disk /dev/vdb",
            "xfs filesystem on /dev/disk/by-partlabel/data",
            "kernel arguments"
        ]
    );
    assert_eq!(p.skipped[0].at, "$.storage.disks[0]");
    assert!(p.ops.is_empty());
    assert_eq!(p.notes.len(), 1);
}

#[test]
fn v2_filesystems_map_or_skip() {
    let p = plan_of(
        r#"{"ignition":{"version":"2.1.0"},"storage":{
          "filesystems":[{"name":"data","mount":{"device":"/dev/vdb","format":"ext4"}},
                         {"name":"sys","path":"/sysroot"},
                         {"name":"oem","mount":{"device":"/dev/disk/by-label/OEM","format":"ext4"}}],
          "files":[{"filesystem":"data","path":"/x"},{"filesystem":"sys","path":"/y"},{"filesystem":"oem","path":"/grub.cfg"}]}}"#,
    );
    assert_eq!(
        kinds(&p),
        ["file /sysroot/y", "file /usr/share/oem/grub.cfg"]
    );
    assert!(p.skipped.iter().any(|s| s.at == "$.storage.files[0]"));
}
