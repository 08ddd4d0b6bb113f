//! Library-level apply into a temporary root: overwrite and append semantics per spec line,
//! links, units (enable, disable, mask), networkd, owners by name, skipped disk storage,
//! and that nothing is ever written outside the root.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use ignition::{apply, load, parse, ActionKind, ApplyError, MapFetcher, Outcome};

fn run(root: &Path, json: &str) -> Result<Outcome, ApplyError> {
    let f = MapFetcher::new();
    let cfg = load(json.as_bytes(), &f).unwrap_or_else(|r| panic!("{r}"));
    apply(&cfg, root, &f)
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn v2_files_replace_by_default_v3_files_do_not() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(root.join("etc/motd"), "old").unwrap();
    run(
        root,
        r#"{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/motd","contents":{"source":"data:,new"},"mode":384}]}}"#,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/motd")).unwrap(), "new");
    assert_eq!(mode(&root.join("etc/motd")), 0o600);

    let err = run(
        root,
        r#"{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,newer"}}]}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("$.storage.files[0]"), "{err}");
    assert!(err.to_string().contains("overwrite is false"), "{err}");
    assert_eq!(fs::read_to_string(root.join("etc/motd")).unwrap(), "new");

    // No source and no overwrite: the file is kept, only the mode changes.
    run(
        root,
        r#"{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/motd","mode":420}]}}"#,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/motd")).unwrap(), "new");
    assert_eq!(mode(&root.join("etc/motd")), 0o644);
}

#[test]
fn append_in_both_lines_keeps_the_existing_mode() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    fs::set_permissions(root.join("etc/hosts"), fs::Permissions::from_mode(0o640)).unwrap();
    run(
        root,
        r#"{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/hosts","append":true,"contents":{"source":"data:,10.0.0.1%20a%0A"}}]}}"#,
    )
    .unwrap();
    run(
        root,
        r#"{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/etc/hosts","append":[{"source":"data:,10.0.0.2%20b%0A"}]}]}}"#,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(root.join("etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n10.0.0.1 a\n10.0.0.2 b\n"
    );
    assert_eq!(mode(&root.join("etc/hosts")), 0o640);
    // Appending to a file that does not exist creates it.
    run(
        root,
        r#"{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/etc/new","append":[{"source":"data:,x"}]}]}}"#,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(root.join("etc/new")).unwrap(), "x");
}

#[test]
fn directories_and_links() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let out = run(
        root,
        r#"{"ignition":{"version":"3.3.0"},"storage":{
            "directories":[{"path":"/var/lib/keel","mode":448}],
            "files":[{"path":"/opt/bin/tool","mode":493,"contents":{"source":"data:,%23!/bin/sh%0A"}}],
            "links":[{"path":"/usr/local/bin/tool","target":"/opt/bin/tool"},
                     {"path":"/opt/bin/tool-hard","target":"/opt/bin/tool","hard":true},
                     {"path":"/etc/localtime","target":"../usr/share/zoneinfo/UTC"}]}}"#,
    )
    .unwrap();
    assert_eq!(mode(&root.join("var/lib/keel")), 0o700);
    assert_eq!(mode(&root.join("var/lib")), 0o755, "parents are 0755");
    assert_eq!(mode(&root.join("opt/bin/tool")), 0o755);
    assert_eq!(
        fs::read_link(root.join("usr/local/bin/tool")).unwrap(),
        Path::new("/opt/bin/tool")
    );
    assert_eq!(
        fs::read_link(root.join("etc/localtime")).unwrap(),
        Path::new("../usr/share/zoneinfo/UTC"),
        "symlink targets are verbatim, even dangling"
    );
    let a = fs::metadata(root.join("opt/bin/tool")).unwrap();
    let b = fs::metadata(root.join("opt/bin/tool-hard")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert!(out
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::CreateHardLink));
}

#[test]
fn symlinks_in_the_tree_cannot_lead_writes_outside_the_root() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    let root = t.path().join("root");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&root).unwrap();
    symlink("../outside", root.join("escape")).unwrap();
    let err = run(
        &root,
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[
            {"path":"/ok","contents":{"source":"data:,fine"}},
            {"path":"/escape/pwned","contents":{"source":"data:,x"}}]}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("outside the root"), "{err}");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(
        !root.join("ok").exists(),
        "refused before anything was written"
    );

    // An absolute symlink is followed inside the root, as at boot.
    fs::create_dir_all(root.join("real/etc")).unwrap();
    symlink("/real/etc", root.join("etc")).unwrap();
    run(
        &root,
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/issue","contents":{"source":"data:,hi"}}]}}"#,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(root.join("real/etc/issue")).unwrap(),
        "hi"
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);

    // A symlink at the file's own path is replaced, not written through (2.x overwrite).
    symlink("/../../outside/target", root.join("real/etc/motd")).unwrap();
    run(
        &root,
        r#"{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/etc/motd","contents":{"source":"data:,m"}}]}}"#,
    )
    .unwrap();
    assert!(fs::symlink_metadata(root.join("real/etc/motd"))
        .unwrap()
        .is_file());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn units_enable_disable_and_mask() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    let vendor = root.join("usr/lib/systemd/system");
    fs::create_dir_all(&vendor).unwrap();
    fs::write(
        vendor.join("getty@.service"),
        "[Service]\nExecStart=/sbin/agetty %I\n[Install]\nWantedBy=getty.target\n",
    )
    .unwrap();
    fs::write(
        vendor.join("sshd.service"),
        "[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    symlink(
        "/usr/lib/systemd/system/sshd.service",
        wants.join("sshd.service"),
    )
    .unwrap();

    run(
        root,
        r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[
            {"name":"app.service","enabled":true,"contents":"[Service]\nExecStart=/bin/app\n[Install]\nWantedBy=multi-user.target\nRequiredBy=app.target\nAlias=application.service\n",
             "dropins":[{"name":"10-env.conf","contents":"[Service]\nEnvironment=A=1\n"},{"name":"20-empty.conf","contents":""}]},
            {"name":"getty@ttyS0.service","enabled":true},
            {"name":"sshd.service","enabled":false},
            {"name":"kdump.service","mask":true}]}}"#,
    )
    .unwrap();
    let sys = root.join("etc/systemd/system");
    assert_eq!(
        fs::read_link(sys.join("multi-user.target.wants/app.service")).unwrap(),
        Path::new("/etc/systemd/system/app.service")
    );
    assert!(fs::read_link(sys.join("app.target.requires/app.service")).is_ok());
    assert!(fs::read_link(sys.join("application.service")).is_ok());
    assert_eq!(
        fs::read_to_string(sys.join("app.service.d/10-env.conf")).unwrap(),
        "[Service]\nEnvironment=A=1\n"
    );
    assert_eq!(
        fs::read_to_string(sys.join("app.service.d/20-empty.conf")).unwrap(),
        "",
        "3.x writes empty drop-ins"
    );
    assert_eq!(
        fs::read_link(sys.join("getty.target.wants/getty@ttyS0.service")).unwrap(),
        Path::new("/usr/lib/systemd/system/getty@.service"),
        "instances link to their template"
    );
    assert!(
        fs::symlink_metadata(wants.join("sshd.service")).is_err(),
        "enabled: false removes the link"
    );
    assert_eq!(
        fs::read_link(sys.join("kdump.service")).unwrap(),
        Path::new("/dev/null")
    );
    let preset =
        fs::read_to_string(root.join("etc/systemd/system-preset/20-ignition.preset")).unwrap();
    assert_eq!(
        preset,
        "enable app.service\nenable getty@.service ttyS0\ndisable sshd.service\n"
    );

    // 3.x mask: false removes the mask.
    run(
        root,
        r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"kdump.service","mask":false}]}}"#,
    )
    .unwrap();
    assert!(fs::symlink_metadata(sys.join("kdump.service")).is_err());
}

#[test]
fn v2_networkd_units() {
    let t = tempfile::tempdir().unwrap();
    run(
        t.path(),
        r#"{"ignition":{"version":"2.2.0"},"networkd":{"units":[
            {"name":"00-eth0.network","contents":"[Match]\nName=eth0\n\n[Network]\nAddress=10.0.0.2/24\n",
             "dropins":[{"name":"mtu.conf","contents":"[Link]\nMTUBytes=1400\n"}]}]}}"#,
    )
    .unwrap();
    let dir = t.path().join("etc/systemd/network");
    assert!(fs::read_to_string(dir.join("00-eth0.network"))
        .unwrap()
        .contains("Address=10.0.0.2/24"));
    assert_eq!(mode(&dir.join("00-eth0.network")), 0o644);
    assert_eq!(
        fs::read_to_string(dir.join("00-eth0.network.d/mtu.conf")).unwrap(),
        "[Link]\nMTUBytes=1400\n"
    );
}

#[test]
fn owners_by_name_resolve_against_the_roots_accounts() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\ndocker:x:233:\n").unwrap();
    let out = run(
        root,
        r#"{"ignition":{"version":"3.0.0"},
          "passwd":{"groups":[{"name":"ops","gid":4000}],
                    "users":[{"name":"alice","groups":["docker","ops"],"shell":"/bin/zsh","gecos":"Alice"}]},
          "storage":{"files":[{"path":"/srv/report","user":{"name":"alice"},"group":{"name":"ops"},"contents":{"source":"data:,r"}}]}}"#,
    )
    .unwrap();
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("alice:x:1000:1000:Alice:/home/alice:/bin/zsh\n"),
        "{passwd}"
    );
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.contains("docker:x:233:alice\n"), "{group}");
    assert!(group.contains("ops:x:4000:alice\n"), "{group}");
    if is_root() {
        let m = fs::metadata(root.join("srv/report")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 4000));
        assert_eq!(fs::metadata(root.join("home/alice")).unwrap().uid(), 1000);
    } else {
        assert!(out.warnings.iter().any(|w| w.contains("not permitted")));
    }

    let err = run(
        root,
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/x","user":{"name":"nobody-here"}}]}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("nobody-here"), "{err}");
}

#[test]
fn disk_storage_is_skipped_and_reported() {
    let t = tempfile::tempdir().unwrap();
    let out = run(
        t.path(),
        r#"{"ignition":{"version":"3.4.0"},"storage":{
            "disks":[{"device":"/dev/vdb","wipeTable":true,"partitions":[{"label":"data","number":1}]}],
            "filesystems":[{"device":"/dev/disk/by-partlabel/data","format":"ext4","path":"/var/data","label":"data"}],
            "luks":[{"name":"secret","device":"/dev/vdc"}],
            "files":[{"path":"/etc/keel","contents":{"source":"data:,1"}}]}}"#,
    )
    .unwrap();
    let ats: Vec<&str> = out.skipped.iter().map(|s| s.at.as_str()).collect();
    assert_eq!(
        ats,
        [
            "$.storage.disks[0]",
            "$.storage.filesystems[0]",
            "$.storage.luks[0]"
        ]
    );
    assert_eq!(fs::read_to_string(t.path().join("etc/keel")).unwrap(), "1");
}

#[test]
fn an_invalid_config_reports_everything_and_cannot_be_applied() {
    let err = parse(
        br#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"a"},{"path":"/b","mode":"420"}]},"systemd":{"units":[{"name":"x"}]}}"#,
    )
    .unwrap_err();
    let lines: Vec<String> = err.errors().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            "error: $.storage.files[1].mode: expected an integer, found string",
            "error: $.storage.files[0].path: path not absolute: \"a\"",
            "error: $.systemd.units[0].name: invalid systemd unit extension: \"x\"",
        ]
    );
}

#[test]
fn account_files_behind_symlinks_are_read_inside_the_root() {
    // /etc/passwd and /etc/group are symlinks into the root: their accounts are kept (the
    // links are replaced by regular files, as before).
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("usr/share/base")).unwrap();
    fs::write(
        root.join("usr/share/base/passwd"),
        "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500::/home/core:/bin/bash\n",
    )
    .unwrap();
    fs::write(
        root.join("usr/share/base/group"),
        "root:x:0:\ncore:x:500:\n",
    )
    .unwrap();
    symlink("../usr/share/base/passwd", root.join("etc/passwd")).unwrap();
    symlink("/usr/share/base/group", root.join("etc/group")).unwrap();
    run(
        root,
        r#"{"ignition":{"version":"3.0.0"},"passwd":{"users":[{"name":"alice","noCreateHome":true}]}}"#,
    )
    .unwrap();
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
    assert!(passwd.contains("\ncore:x:500:500:"), "{passwd}");
    assert!(passwd.contains("\nalice:x:1000:1000:"), "{passwd}");
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.contains("core:x:500:"), "{group}");
}
