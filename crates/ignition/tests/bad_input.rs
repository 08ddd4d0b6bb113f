//! Issue 9, "Bad input that gets through": configs (and roots) that used to pass `validate`
//! and then made `apply` stop half-way, write where the config never pointed, delete what
//! was not the user's, or wrap numbers silently. Each test names the contract it guards:
//!  * what `apply` would refuse because of the config alone, `validate` refuses first, with
//!    the JSON path;
//!  * what only the root can reveal makes `apply` fail before its first write.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ignition::{apply, load, parse, ApplyError, MapFetcher, Outcome};

/// The error lines of `json` (`$.path: message`); empty when it is valid.
fn errors(json: &str) -> Vec<String> {
    match parse(json.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(r) => r
            .errors()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    }
}

/// Asserts that `json` is refused with an error at `path` whose message contains `needle`.
fn assert_refused(json: &str, path: &str, needle: &str) {
    let errs = errors(json);
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(needle)),
        "expected an error at {path} containing {needle:?}, got {errs:#?}\nfor {json}"
    );
}

fn assert_valid(json: &str) {
    let errs = errors(json);
    assert!(errs.is_empty(), "{json}\n{errs:#?}");
}

fn run(root: &Path, json: &str) -> Result<Outcome, ApplyError> {
    let f = MapFetcher::new();
    let cfg = load(json.as_bytes(), &f).unwrap_or_else(|r| panic!("{r}"));
    apply(&cfg, root, &f)
}

/// Everything in the tree: path → kind, mode, owner and contents or link target.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else {
                format!("file {:?}", String::from_utf8_lossy(&fs::read(&p).unwrap()))
            };
            let mode = m.permissions().mode() & 0o7777;
            out.insert(
                p.strip_prefix(root).unwrap().to_path_buf(),
                format!("{what} {mode:o} {}:{}", m.uid(), m.gid()),
            );
        }
    }
    out
}

/// A root with accounts, a vendor unit dir and a few files.
fn populated_root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
    fs::create_dir_all(r.join("usr/sbin")).unwrap();
    fs::write(r.join("usr/sbin/tool"), "binary").unwrap();
    fs::write(
        r.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\ncore:x:500:500::/home/core:/bin/bash\n",
    )
    .unwrap();
    fs::write(r.join("etc/group"), "root:x:0:\ncore:x:500:\n").unwrap();
    fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(r.join("etc/hostname"), "old\n").unwrap();
    t
}

// --- 1. validate refuses what apply would refuse; apply writes nothing on failure ---

#[test]
fn validate_refuses_a_nul_byte_in_a_path() {
    for (doc, path) in [
        (
            r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/ok"},{"path":"/etc/a\u0000b"}]}}"#,
            "$.storage.files[1].path",
        ),
        (
            r#"{"ignition":{"version":"3.3.0"},"storage":{"directories":[{"path":"/var/a\u0000"}]}}"#,
            "$.storage.directories[0].path",
        ),
        (
            r#"{"ignition":{"version":"3.3.0"},"storage":{"links":[{"path":"/l","target":"/x\u0000y"}]}}"#,
            "$.storage.links[0].target",
        ),
        (
            r#"{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root","path":"/a\u0000"}]}}"#,
            "$.storage.files[0].path",
        ),
        (
            r#"{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"u","homeDir":"/home/u\u0000"}]}}"#,
            "$.passwd.users[0].homeDir",
        ),
        (
            r#"{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"a.service","dropins":[{"name":"x\u0000.conf","contents":""}]}]}}"#,
            "$.systemd.units[0].dropins[0].name",
        ),
    ] {
        assert_refused(doc, path, "NUL");
    }
}

#[test]
fn names_longer_than_file_systems_take_are_refused_and_the_longest_one_applies() {
    let name = |n: usize| "n".repeat(n);
    let doc = |n: usize| {
        format!(
            r#"{{"ignition":{{"version":"3.0.0"}},"storage":{{"files":[{{"path":"/etc/{}","contents":{{"source":"data:,x"}}}}]}}}}"#,
            name(n)
        )
    };
    assert_refused(
        &doc(256),
        "$.storage.files[0].path",
        "longer than 255 bytes",
    );
    let t = tempfile::tempdir().unwrap();
    run(t.path(), &doc(255)).unwrap();
    assert_eq!(
        fs::read_to_string(t.path().join("etc").join(name(255))).unwrap(),
        "x"
    );
    let long = format!("/{}", vec![name(200); 21].join("/"));
    assert_refused(
        &format!(
            r#"{{"ignition":{{"version":"3.0.0"}},"storage":{{"directories":[{{"path":"{long}"}}]}}}}"#
        ),
        "$.storage.directories[0].path",
        "longer than 4095 bytes",
    );
}

#[test]
fn validate_refuses_a_node_below_a_file_of_the_same_config() {
    for v in ["3.0.0", "3.4.0"] {
        let doc = format!(
            r#"{{"ignition":{{"version":"{v}"}},"storage":{{
                "files":[{{"path":"/etc/a","contents":{{"source":"data:,x"}}}},{{"path":"/etc/a/b"}}],
                "directories":[{{"path":"/etc/a/c/d"}}]}}}}"#
        );
        assert_refused(&doc, "$.storage.files[1].path", "below the file /etc/a");
        assert_refused(
            &doc,
            "$.storage.directories[0].path",
            "below the file /etc/a",
        );
    }
    // The order in the config does not matter, and spec 2.x compares within a filesystem.
    assert_refused(
        r#"{"ignition":{"version":"2.2.0"},"storage":{"files":[
            {"filesystem":"root","path":"/etc/a/b"},{"filesystem":"root","path":"/etc/a"}]}}"#,
        "$.storage.files[0].path",
        "below the file /etc/a",
    );
    assert_valid(
        r#"{"ignition":{"version":"2.2.0"},"storage":{
            "filesystems":[{"name":"data","path":"/srv"}],
            "files":[{"filesystem":"root","path":"/etc/a"},{"filesystem":"data","path":"/etc/a/b"}]}}"#,
    );
    // A prefix of the name is not a parent.
    assert_valid(
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/a"},{"path":"/etc/ab"}]}}"#,
    );
    // Spec 2.x: a node below a link of the same config (links are made last, so the link
    // would find a directory there and fail).
    assert_refused(
        r#"{"ignition":{"version":"2.2.0"},"storage":{
            "links":[{"filesystem":"root","path":"/opt","target":"/var/opt"}],
            "files":[{"filesystem":"root","path":"/opt/x"}]}}"#,
        "$.storage.files[0].path",
        "link",
    );
}

#[test]
fn validate_refuses_two_users_with_one_uid_and_two_groups_with_one_gid() {
    for v in ["2.1.0", "3.0.0", "3.4.0"] {
        let doc = format!(
            r#"{{"ignition":{{"version":"{v}"}},"passwd":{{
                "users":[{{"name":"alice","uid":1001}},{{"name":"bob","uid":1001}},{{"name":"carol","uid":1002}}],
                "groups":[{{"name":"ops","gid":3000}},{{"name":"dev","gid":3000}}]}}}}"#
        );
        assert_refused(&doc, "$.passwd.users[1].uid", "alice");
        assert_refused(&doc, "$.passwd.groups[1].gid", "ops");
        assert_eq!(errors(&doc).len(), 2, "{:#?}", errors(&doc));
    }
    // A user that is being removed does not hold its uid.
    assert_valid(
        r#"{"ignition":{"version":"3.2.0"},"passwd":{"users":[
            {"name":"old","uid":1001,"shouldExist":false},{"name":"new","uid":1001}]}}"#,
    );
}

#[test]
fn validate_refuses_account_fields_that_would_corrupt_passwd() {
    let doc = r#"{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"u",
        "gecos":"x\nevil::0:0::/root:/bin/sh","homeDir":"/home/a:b","shell":"/bin/sh\n",
        "passwordHash":"$6$a:b"}],
        "groups":[{"name":"g","passwordHash":"a\nb"}]}}"#;
    for path in [
        "$.passwd.users[0].gecos",
        "$.passwd.users[0].homeDir",
        "$.passwd.users[0].shell",
        "$.passwd.users[0].passwordHash",
        "$.passwd.groups[0].passwordHash",
    ] {
        assert_refused(doc, path, "cannot contain");
    }
}

#[test]
fn apply_writes_nothing_when_a_later_step_fails() {
    let cases = [
        (
            "an owner the root does not know",
            r#"{"ignition":{"version":"3.0.0"},"passwd":{"groups":[{"name":"ops"}]},
              "storage":{"files":[{"path":"/etc/first","contents":{"source":"data:,1"}},
                                  {"path":"/srv/x/report","user":{"name":"ghost"}}]}}"#,
            "ghost",
        ),
        (
            "a uid the root already gives to another user",
            r#"{"ignition":{"version":"3.0.0"},"passwd":{"groups":[{"name":"ops"}],"users":[{"name":"admin","uid":0}]},
              "storage":{"files":[{"path":"/etc/first","contents":{"source":"data:,1"}}]}}"#,
            "UID 0",
        ),
        (
            "a hard link to nothing",
            r#"{"ignition":{"version":"3.0.0"},"passwd":{"users":[{"name":"alice"}]},
              "storage":{"files":[{"path":"/etc/first","contents":{"source":"data:,1"}}],
                         "links":[{"path":"/srv/hard","target":"/srv/missing","hard":true}]}}"#,
            "$.storage.links[0]",
        ),
        (
            "a file below a file of the root",
            r#"{"ignition":{"version":"3.0.0"},"passwd":{"groups":[{"name":"ops"}]},
              "storage":{"files":[{"path":"/etc/first","contents":{"source":"data:,1"}},
                                  {"path":"/etc/hostname/x","contents":{"source":"data:,1"}}]}}"#,
            "$.storage.files[1]",
        ),
        (
            "a unit of the root whose Alias= leaves the unit directory",
            r#"{"ignition":{"version":"3.0.0"},"passwd":{"groups":[{"name":"ops"}]},
              "storage":{"files":[{"path":"/etc/first","contents":{"source":"data:,1"}}]},
              "systemd":{"units":[{"name":"evil.service","enabled":true}]}}"#,
            "Alias=../../../etc",
        ),
    ];
    for (what, json, needle) in cases {
        let t = populated_root();
        fs::write(
            t.path().join("usr/lib/systemd/system/evil.service"),
            "[Service]\nExecStart=/bin/true\n[Install]\nAlias=../../../etc\n",
        )
        .unwrap();
        let before = snapshot(t.path());
        let err = run(t.path(), json).expect_err(what);
        assert!(err.to_string().contains(needle), "{what}: {err}");
        assert_eq!(
            snapshot(t.path()),
            before,
            "{what}: nothing may be written when apply fails ({err})"
        );
    }
}

// --- 2. [Install] names are unit names ---

fn unit_doc(name: &str, install: &str) -> String {
    let install = install.replace('\n', "\\n");
    format!(
        r#"{{"ignition":{{"version":"3.2.0"}},"systemd":{{"units":[{{"name":"{name}","enabled":true,
            "contents":"[Service]\nExecStart=/bin/true\n[Install]\n{install}\n"}}]}}}}"#
    )
}

#[test]
fn install_names_are_checked_as_systemd_does() {
    let at = "$.systemd.units[0].contents";
    let refused = [
        ("app.service", "Alias=../../../etc", "Alias=../../../etc"),
        (
            "app.service",
            "Alias=/etc/x.service",
            "Alias=/etc/x.service",
        ),
        ("app.service", "WantedBy=../../etc.target", "WantedBy="),
        (
            "app.service",
            "RequiredBy=multi-user",
            "RequiredBy=multi-user",
        ),
        (
            "app.service",
            "WantedBy=a..b.target",
            "WantedBy=a..b.target",
        ),
        ("app.service", "WantedBy=sp ace.target", "WantedBy="),
        ("app.service", "Alias=app.socket", "same suffix"),
        (
            "app.service",
            "Alias=other@.service",
            "Alias=other@.service",
        ),
        ("app@.service", "Alias=other.service", "Alias=other.service"),
        ("app@a.service", "Alias=other@b.service", "instance"),
        ("data.mount", "Alias=other.mount", "not allowed"),
        ("app.service", "Alias=%H.service", "%H"),
    ];
    for (name, install, needle) in refused {
        let doc = unit_doc(name, install);
        assert_refused(&doc, at, needle);
        assert_refused(&doc, at, name);
    }
    let long = format!("WantedBy={}.target", "a".repeat(250));
    assert_refused(&unit_doc("app.service", &long), at, "long");

    for (name, install) in [
        (
            "app.service",
            "WantedBy=multi-user.target\nAlias=application.service",
        ),
        (
            "app.service",
            "RequiredBy=a.target b.target\nAlias=app.service",
        ),
        (
            "app@.service",
            "WantedBy=multi-user.target\nAlias=other@.service",
        ),
        ("app@x.service", "Alias=other@x.service other@.service"),
        (
            "app@.service",
            "WantedBy=getty.target\nAlias=%p-alt@.service",
        ),
        ("sys-fs-x.device", "Alias=dev-y.device"),
        ("a:b_c\\\\x2d.service", "WantedBy=sockets.target"),
        ("app.service", "Also=whatever\nWantedBy="),
    ] {
        assert_valid(&unit_doc(name, install));
    }

    // A drop-in's [Install] counts too, and disabling checks the names it would remove.
    assert_refused(
        r#"{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"app.service","enabled":false,
            "dropins":[{"name":"x.conf","contents":"[Install]\nAlias=../../../etc\n"}]}]}}"#,
        "$.systemd.units[0].dropins[0].contents",
        "Alias=../../../etc",
    );
    // Spec 2.x too.
    assert_refused(
        r#"{"ignition":{"version":"2.2.0"},"systemd":{"units":[{"name":"app.service","enable":true,
            "contents":"[Install]\nAlias=../../../etc\n"}]}}"#,
        at,
        "Alias=../../../etc",
    );
}

#[test]
fn an_alias_can_no_longer_replace_etc() {
    let t = populated_root();
    let doc = unit_doc("app.service", "Alias=../../../etc");
    let f = MapFetcher::new();
    assert!(load(doc.as_bytes(), &f).is_err());
    assert!(fs::symlink_metadata(t.path().join("etc")).unwrap().is_dir());
}

// --- 3. removing a user removes only its own home ---

fn remove_user(root: &Path, name: &str) -> Outcome {
    run(
        root,
        &format!(
            r#"{{"ignition":{{"version":"3.2.0"}},"passwd":{{"users":[{{"name":"{name}","shouldExist":false}}]}}}}"#
        ),
    )
    .unwrap()
}

fn add_user(root: &Path, name: &str, uid: u32, home: &str) {
    let mut passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    passwd.push_str(&format!("{name}:x:{uid}:{uid}::{home}:/bin/sh\n"));
    fs::write(root.join("etc/passwd"), passwd).unwrap();
}

#[test]
fn removing_a_user_keeps_a_home_outside_home_or_var_home() {
    let t = populated_root();
    let r = t.path();
    add_user(r, "svc", 998, "/usr/sbin");
    if is_root() {
        std::os::unix::fs::chown(r.join("usr/sbin"), Some(998), Some(998)).unwrap();
    }
    let out = remove_user(r, "svc");
    assert_eq!(
        fs::read_to_string(r.join("usr/sbin/tool")).unwrap(),
        "binary"
    );
    assert!(
        !fs::read_to_string(r.join("etc/passwd"))
            .unwrap()
            .contains("svc:"),
        "the account itself is removed"
    );
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("/usr/sbin") && w.contains("kept")),
        "{:?}",
        out.warnings
    );
}

#[test]
fn removing_a_user_removes_its_own_home_below_home_only() {
    let t = populated_root();
    let r = t.path();
    let me = fs::metadata(r).unwrap().uid();
    // Its own home: removed.
    fs::create_dir_all(r.join("home/bob/.ssh")).unwrap();
    add_user(r, "bob", me, "/home/bob");
    remove_user(r, "bob");
    assert!(!r.join("home/bob").exists(), "bob's own home is removed");

    // /var/home, reached through /home -> var/home as on Fedora CoreOS: removed.
    fs::remove_dir(r.join("home")).unwrap();
    fs::create_dir_all(r.join("var/home/dan")).unwrap();
    symlink("var/home", r.join("home")).unwrap();
    add_user(r, "dan", me, "/home/dan");
    remove_user(r, "dan");
    assert!(!r.join("var/home/dan").exists());

    // A home that is a symlink out of /home: kept.
    symlink("/usr/sbin", r.join("var/home/eve")).unwrap();
    add_user(r, "eve", me, "/home/eve");
    let out = remove_user(r, "eve");
    assert!(r.join("usr/sbin/tool").exists());
    assert!(out.warnings.iter().any(|w| w.contains("kept")), "{out:?}");

    // /home itself, or a path that climbs out of it: kept.
    add_user(r, "fay", me, "/home/../usr/sbin");
    remove_user(r, "fay");
    add_user(r, "gus", me, "/home");
    remove_user(r, "gus");
    assert!(r.join("usr/sbin/tool").exists());
    assert!(r.join("var/home").is_dir());

    // Someone else's directory below /home: kept.
    if is_root() {
        fs::create_dir_all(r.join("var/home/shared")).unwrap();
        std::os::unix::fs::chown(r.join("var/home/shared"), Some(4242), Some(4242)).unwrap();
        add_user(r, "hal", 4243, "/home/shared");
        let out = remove_user(r, "hal");
        assert!(r.join("var/home/shared").is_dir());
        assert!(
            out.warnings.iter().any(|w| w.contains("owned by uid 4242")),
            "{out:?}"
        );
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

// --- 4. numbers out of range ---

#[test]
fn ids_that_mean_no_change_or_do_not_fit_are_refused() {
    for id in ["4294967295", "4294967296", "-1"] {
        let doc = format!(
            r#"{{"ignition":{{"version":"3.2.0"}},
              "passwd":{{"users":[{{"name":"u","uid":{id}}}],"groups":[{{"name":"g","gid":{id}}}]}},
              "storage":{{"files":[{{"path":"/f","user":{{"id":{id}}},"group":{{"id":{id}}}}}]}}}}"#
        );
        for path in [
            "$.passwd.users[0].uid",
            "$.passwd.groups[0].gid",
            "$.storage.files[0].user.id",
            "$.storage.files[0].group.id",
        ] {
            assert_refused(&doc, path, "4294967294");
        }
    }
    assert_valid(
        r#"{"ignition":{"version":"3.2.0"},"passwd":{"users":[{"name":"u","uid":4294967294}]}}"#,
    );
}

#[test]
fn partition_sizes_whose_bytes_overflow_are_refused() {
    let part = |fields: &str| {
        format!(
            r#"{{"ignition":{{"version":"3.2.0"}},"storage":{{"disks":[{{"device":"/dev/vdb",
                "partitions":[{{"label":"p",{fields}}}]}}]}}}}"#
        )
    };
    // 2^44 MiB is 2^64 bytes.
    assert_refused(
        &part(r#""sizeMiB":17592186044416"#),
        "$.storage.disks[0].partitions[0].sizeMiB",
        "bytes",
    );
    assert_refused(
        &part(r#""startMiB":17592186044416"#),
        "$.storage.disks[0].partitions[0].startMiB",
        "bytes",
    );
    assert_refused(
        &part(r#""startMiB":9223372036854775807,"sizeMiB":1"#),
        "$.storage.disks[0].partitions[0].startMiB",
        "bytes",
    );
    assert_refused(
        &part(r#""startMiB":17592186044415,"sizeMiB":1"#),
        "$.storage.disks[0].partitions[0].sizeMiB",
        "bytes",
    );
    assert_valid(&part(r#""startMiB":1,"sizeMiB":17592186044414"#));
    assert_refused(
        &part(r#""number":4294967297"#),
        "$.storage.disks[0].partitions[0].number",
        "out of range",
    );
    // Spec 2.x sectors (512 bytes).
    assert_refused(
        r#"{"ignition":{"version":"2.2.0"},"storage":{"disks":[{"device":"/dev/vdb",
            "partitions":[{"label":"p","size":36028797018963968}]}]}}"#,
        "$.storage.disks[0].partitions[0].size",
        "bytes",
    );
}

#[test]
fn huge_timeouts_are_accepted_and_clamped_with_a_warning() {
    let cfg = parse(
        br#"{"ignition":{"version":"3.2.0","timeouts":{"httpResponseHeaders":9223372036854775807,"httpTotal":9223372036854775807}}}"#,
    )
    .unwrap();
    let w: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("$.ignition.timeouts.httpResponseHeaders") && w.contains("clamped")),
        "{w:?}"
    );
}
