//! Table-driven tests of parse + validate: each error kind, with the JSON path it names.

use super::*;
use crate::report::Severity;

fn v3(body: &str) -> String {
    format!(r#"{{"ignition":{{"version":"3.4.0"}},{body}}}"#)
}

fn v30(body: &str) -> String {
    format!(r#"{{"ignition":{{"version":"3.0.0"}},{body}}}"#)
}

fn v2(body: &str) -> String {
    format!(r#"{{"ignition":{{"version":"2.2.0"}},{body}}}"#)
}

fn errors(doc: &str) -> Vec<(String, Kind)> {
    match parse(doc.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(r) => r.errors().map(|e| (e.path.clone(), e.kind)).collect(),
    }
}

fn warnings(doc: &str) -> Vec<(String, Kind)> {
    let cfg = parse(doc.as_bytes()).unwrap_or_else(|r| panic!("{doc}\n{r}"));
    cfg.warnings
        .iter()
        .map(|e| (e.path.clone(), e.kind))
        .collect()
}

struct Case {
    name: &'static str,
    doc: String,
    path: &'static str,
    kind: Kind,
}

fn case(name: &'static str, doc: String, path: &'static str, kind: Kind) -> Case {
    Case {
        name,
        doc,
        path,
        kind,
    }
}

#[test]
fn each_error_kind_names_its_path() {
    let sha512 = "a".repeat(128);
    let cases = vec![
        case("empty", String::new(), "$", Kind::EmptyConfig),
        case("cloud-config", "#cloud-config\nusers: []".into(), "$", Kind::NotAConfig),
        case("script", "#!/bin/sh\necho".into(), "$", Kind::NotAConfig),
        case("bad json", "{\"ignition\": {".into(), "$", Kind::InvalidJson),
        case("no version", r#"{"storage":{}}"#.into(), "$.ignition.version", Kind::InvalidVersion),
        case("short version", r#"{"ignition":{"version":"3.0"}}"#.into(), "$.ignition.version", Kind::InvalidVersion),
        case("unknown version", r#"{"ignition":{"version":"4.0.0"}}"#.into(), "$.ignition.version", Kind::UnsupportedVersion),
        case("experimental", r#"{"ignition":{"version":"3.5.0-experimental"}}"#.into(), "$.ignition.version", Kind::UnsupportedVersion),
        case(
            "mode as string",
            v3(r#""storage":{"files":[{"path":"/a","mode":"0644"}]}"#),
            "$.storage.files[0].mode",
            Kind::TypeMismatch,
        ),
        case(
            "files not a list",
            v3(r#""storage":{"files":{"path":"/a"}}"#),
            "$.storage.files",
            Kind::TypeMismatch,
        ),
        case(
            "relative file path",
            v3(r#""storage":{"files":[{"path":"etc/hostname"}]}"#),
            "$.storage.files[0].path",
            Kind::PathNotAbsolute,
        ),
        case(
            "relative dir path 2.x",
            v2(r#""storage":{"directories":[{"filesystem":"root","path":"var/x"}]}"#),
            "$.storage.directories[0].path",
            Kind::PathNotAbsolute,
        ),
        case(
            "missing path",
            v3(r#""storage":{"links":[{"target":"/x"}]}"#),
            "$.storage.links[0].path",
            Kind::PathMissing,
        ),
        case(
            "unclean path 3.x",
            v3(r#""storage":{"files":[{"path":"/etc//hostname"}]}"#),
            "$.storage.files[0].path",
            Kind::PathNotClean,
        ),
        case(
            "dotdot path 3.x",
            v3(r#""storage":{"files":[{"path":"/etc/../root/x"}]}"#),
            "$.storage.files[0].path",
            Kind::PathNotClean,
        ),
        case(
            "mode too big",
            v3(r#""storage":{"files":[{"path":"/a","mode":4096}]}"#),
            "$.storage.files[0].mode",
            Kind::IllegalMode,
        ),
        case(
            "negative mode",
            v2(r#""storage":{"directories":[{"filesystem":"root","path":"/a","mode":-1}]}"#),
            "$.storage.directories[0].mode",
            Kind::IllegalMode,
        ),
        case(
            "id and name",
            v3(r#""storage":{"files":[{"path":"/a","user":{"id":1,"name":"core"}}]}"#),
            "$.storage.files[0].user",
            Kind::IdAndName,
        ),
        case(
            "2.x no filesystem",
            v2(r#""storage":{"files":[{"path":"/a"}]}"#),
            "$.storage.files[0].filesystem",
            Kind::NoFilesystem,
        ),
        case(
            "2.x append and overwrite",
            v2(r#""storage":{"files":[{"filesystem":"root","path":"/a","append":true,"overwrite":true}]}"#),
            "$.storage.files[0].overwrite",
            Kind::AppendAndOverwrite,
        ),
        case(
            "3.x overwrite without source",
            v3(r#""storage":{"files":[{"path":"/a","overwrite":true}]}"#),
            "$.storage.files[0].overwrite",
            Kind::OverwriteWithoutSource,
        ),
        case(
            "duplicate path across kinds",
            v3(r#""storage":{"files":[{"path":"/a"}],"directories":[{"path":"/a"}]}"#),
            "$.storage.directories[0].path",
            Kind::Duplicate,
        ),
        case(
            "path below a link",
            v3(r#""storage":{"links":[{"path":"/a","target":"/b"}],"files":[{"path":"/a/c"}]}"#),
            "$.storage.files[0].path",
            Kind::PathIncludesLink,
        ),
        case(
            "file conflicts with unit",
            v3(r#""storage":{"files":[{"path":"/etc/systemd/system/a.service"}]},"systemd":{"units":[{"name":"a.service","contents":"[Unit]"}]}"#),
            "$.storage.files[0].path",
            Kind::ConflictsWithUnit,
        ),
        case(
            "link target required 3.3+",
            v3(r#""storage":{"links":[{"path":"/a"}]}"#),
            "$.storage.links[0].target",
            Kind::LinkTargetRequired,
        ),
        case(
            "hard link to a directory",
            v3(r#""storage":{"directories":[{"path":"/d"}],"links":[{"path":"/l","target":"/d","hard":true}]}"#),
            "$.storage.links[0].target",
            Kind::HardLinkToDirectory,
        ),
        case(
            "bad compression",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"data:,x","compression":"xz"}}]}"#),
            "$.storage.files[0].contents.compression",
            Kind::InvalidCompression,
        ),
        case(
            "malformed hash",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"data:,x","verification":{"hash":"abc"}}}]}"#),
            "$.storage.files[0].contents.verification.hash",
            Kind::MalformedHash,
        ),
        case(
            "sha256 before 3.1",
            v30(&format!(
                r#""storage":{{"files":[{{"path":"/a","contents":{{"source":"data:,x","verification":{{"hash":"sha256-{}"}}}}}}]}}"#,
                "b".repeat(64)
            )),
            "$.storage.files[0].contents.verification.hash",
            Kind::UnknownHashFunction,
        ),
        case(
            "hash wrong size",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"data:,x","verification":{"hash":"sha512-abcd"}}}]}"#),
            "$.storage.files[0].contents.verification.hash",
            Kind::HashSize,
        ),
        case(
            "hash without source",
            v3(&format!(
                r#""storage":{{"files":[{{"path":"/a","contents":{{"verification":{{"hash":"sha512-{sha512}"}}}}}}]}}"#
            )),
            "$.storage.files[0].contents.verification.hash",
            Kind::HashWithoutSource,
        ),
        case(
            "unsupported scheme",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"ftp://host/x"}}]}"#),
            "$.storage.files[0].contents.source",
            Kind::UnsupportedScheme,
        ),
        case(
            "oem in 3.x",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"oem:///x"}}]}"#),
            "$.storage.files[0].contents.source",
            Kind::UnsupportedScheme,
        ),
        case(
            "tftp in 2.0",
            r#"{"ignition":{"version":"2.0.0"},"storage":{"files":[{"filesystem":"root","path":"/a","contents":{"source":"tftp://h/x"}}]}}"#.into(),
            "$.storage.files[0].contents.source",
            Kind::UnsupportedScheme,
        ),
        case(
            "bad data url",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"data:,hello world"}}]}"#),
            "$.storage.files[0].contents.source",
            Kind::InvalidUrl,
        ),
        case(
            "merge source required 3.1+",
            r#"{"ignition":{"version":"3.4.0","config":{"merge":[{}]}}}"#.into(),
            "$.ignition.config.merge[0].source",
            Kind::SourceRequired,
        ),
        case(
            "headers on data url",
            v3(r#""storage":{"files":[{"path":"/a","contents":{"source":"data:,x","httpHeaders":[{"name":"A","value":"b"}]}}]}"#),
            "$.storage.files[0].contents.httpHeaders",
            Kind::HttpHeader,
        ),
        case(
            "proxy scheme",
            r#"{"ignition":{"version":"3.4.0","proxy":{"httpProxy":"socks5://p:1"}}}"#.into(),
            "$.ignition.proxy.httpProxy",
            Kind::ProxyScheme,
        ),
        case(
            "unit extension",
            v3(r#""systemd":{"units":[{"name":"foo.conf","contents":"[Unit]"}]}"#),
            "$.systemd.units[0].name",
            Kind::UnitExtension,
        ),
        case(
            "unit name missing",
            v3(r#""systemd":{"units":[{"contents":"[Unit]"}]}"#),
            "$.systemd.units[0].name",
            Kind::NameMissing,
        ),
        case(
            "dropin extension",
            v3(r#""systemd":{"units":[{"name":"a.service","dropins":[{"name":"x","contents":"[Service]"}]}]}"#),
            "$.systemd.units[0].dropins[0].name",
            Kind::DropinExtension,
        ),
        case(
            "unit contents",
            v3(r#""systemd":{"units":[{"name":"a.service","contents":"[Unit\nA=b"}]}"#),
            "$.systemd.units[0].contents",
            Kind::UnitContents,
        ),
        case(
            "duplicate units 3.x",
            v3(r#""systemd":{"units":[{"name":"a.service","mask":true},{"name":"a.service","mask":true}]}"#),
            "$.systemd.units[1].name",
            Kind::Duplicate,
        ),
        case(
            "networkd extension",
            v2(r#""networkd":{"units":[{"name":"eth0.conf","contents":"[Match]"}]}"#),
            "$.networkd.units[0].name",
            Kind::NetworkdExtension,
        ),
        case(
            "networkd dropin extension",
            v2(r#""networkd":{"units":[{"name":"eth0.network","dropins":[{"name":"x.txt","contents":"[Match]"}]}]}"#),
            "$.networkd.units[0].dropins[0].name",
            Kind::DropinExtension,
        ),
        case(
            "user name missing",
            v3(r#""passwd":{"users":[{"uid":1000}]}"#),
            "$.passwd.users[0].name",
            Kind::NameMissing,
        ),
        case(
            "duplicate ssh key",
            v3(r#""passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k","k"]}]}"#),
            "$.passwd.users[0].sshAuthorizedKeys[1]",
            Kind::Duplicate,
        ),
        case(
            "duplicate users",
            v3(r#""passwd":{"users":[{"name":"a"},{"name":"a"}]}"#),
            "$.passwd.users[1].name",
            Kind::Duplicate,
        ),
        case(
            "2.0 create with user-level field",
            r#"{"ignition":{"version":"2.1.0"},"passwd":{"users":[{"name":"a","uid":5,"create":{"uid":6}}]}}"#.into(),
            "$.passwd.users[0].uid",
            Kind::CreateConflict,
        ),
        case(
            "disk device required",
            v3(r#""storage":{"disks":[{"partitions":[{"label":"x"}]}]}"#),
            "$.storage.disks[0].device",
            Kind::Storage,
        ),
        case(
            "partition label too long",
            v3(&format!(
                r#""storage":{{"disks":[{{"device":"/dev/vda","partitions":[{{"label":"{}"}}]}}]}}"#,
                "l".repeat(37)
            )),
            "$.storage.disks[0].partitions[0].label",
            Kind::Storage,
        ),
        case(
            "partition numbers collide",
            v3(r#""storage":{"disks":[{"device":"/dev/vda","partitions":[{"number":1},{"number":1}]}]}"#),
            "$.storage.disks[0].partitions[1].number",
            Kind::Storage,
        ),
        case(
            "bad guid",
            v3(r#""storage":{"disks":[{"device":"/dev/vda","partitions":[{"number":1,"typeGuid":"linux"}]}]}"#),
            "$.storage.disks[0].partitions[0].typeGuid",
            Kind::Storage,
        ),
        case(
            "raid level",
            v3(r#""storage":{"raid":[{"name":"md","level":"raid7","devices":["/dev/a"]}]}"#),
            "$.storage.raid[0].level",
            Kind::Storage,
        ),
        case(
            "filesystem format",
            v3(r#""storage":{"filesystems":[{"device":"/dev/vdb","format":"ntfs"}]}"#),
            "$.storage.filesystems[0].format",
            Kind::Storage,
        ),
        case(
            "ext4 label length",
            v3(r#""storage":{"filesystems":[{"device":"/dev/vdb","format":"ext4","label":"seventeen-chars-x"}]}"#),
            "$.storage.filesystems[0].label",
            Kind::Storage,
        ),
        case(
            "2.x filesystem without mount or path",
            v2(r#""storage":{"filesystems":[{"name":"data"}]}"#),
            "$.storage.filesystems[0]",
            Kind::Storage,
        ),
        case(
            "luks name with slash",
            v3(r#""storage":{"luks":[{"name":"a/b","device":"/dev/vdb"}]}"#),
            "$.storage.luks[0].name",
            Kind::Storage,
        ),
    ];
    for c in cases {
        let errs = errors(&c.doc);
        assert!(
            errs.iter().any(|(p, k)| p == c.path && *k == c.kind),
            "{}: expected {:?} at {}, got {:?}\n{}",
            c.name,
            c.kind,
            c.path,
            errs,
            c.doc
        );
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let doc = v3(r#""storage":{"files":[
            {"path":"rel","mode":99999},
            {"path":"/ok","contents":{"source":"gopher://x"}}],
          "directories":[{"path":"also/rel"}]},
        "systemd":{"units":[{"name":"bad"}]}"#);
    let errs = errors(&doc);
    let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.storage.files[0].path",
            "$.storage.files[0].mode",
            "$.storage.files[1].contents.source",
            "$.storage.directories[0].path",
            "$.systemd.units[0].name",
        ]
    );
}

#[test]
fn type_errors_do_not_shift_later_indexes_or_repeat() {
    let doc = v3(r#""storage":{"files":[42,{"path":"rel"},{"path":7}]}"#);
    let errs = errors(&doc);
    assert_eq!(
        errs,
        [
            ("$.storage.files[0]".to_string(), Kind::TypeMismatch),
            ("$.storage.files[2].path".to_string(), Kind::TypeMismatch),
            ("$.storage.files[1].path".to_string(), Kind::PathNotAbsolute),
        ]
    );
}

#[test]
fn invalid_json_reports_line_and_column() {
    let r =
        parse(b"{\n  \"ignition\": {\"version\": \"3.0.0\"},\n  \"storage\": [,]\n}").unwrap_err();
    let e = &r.entries[0];
    assert_eq!(e.kind, Kind::InvalidJson);
    assert!(e.message.contains("line 3 column"), "{}", e.message);
}

#[test]
fn unknown_keys_warn_and_never_fail() {
    let w = warnings(&v3(
        r#""storage":{"files":[{"path":"/a","colour":"blue"}]},"networkd":{"units":[]},"filesystem":[]"#,
    ));
    assert!(w.contains(&("$.storage.files[0].colour".into(), Kind::UnusedKey)));
    assert!(
        w.contains(&("$.networkd".into(), Kind::UnusedKey)),
        "networkd is 2.x only"
    );
    assert!(w.contains(&("$.filesystem".into(), Kind::UnusedKey)));
}

#[test]
fn keys_from_later_versions_are_unused() {
    let w = warnings(&v30(r#""kernelArguments":{"shouldExist":["quiet"]}"#));
    assert_eq!(w, [("$.kernelArguments".into(), Kind::UnusedKey)]);
    let w = warnings(&v2(
        r#""storage":{"disks":[{"device":"/dev/vda","partitions":[{"sizeMiB":5}]}]}"#,
    ));
    assert_eq!(w[0].0, "$.storage.disks[0].partitions[0].sizeMiB");
}

/// A type both spec lines share knows each line's keys: a 2.x-only key is unused in 3.x and
/// the other way round, and a key's minor version is its line's.
#[test]
fn shared_raw_types_know_each_lines_keys() {
    let w = warnings(&v3(
        r#""storage":{"files":[{"path":"/a","filesystem":"root","append":[]}],
            "disks":[{"device":"/dev/vda","partitions":[{"label":"a","size":8}]}]}"#,
    ));
    assert_eq!(
        w,
        [
            ("$.storage.files[0].filesystem".into(), Kind::UnusedKey),
            (
                "$.storage.disks[0].partitions[0].size".into(),
                Kind::UnusedKey
            )
        ]
    );
    let w = warnings(&v2(
        r#""passwd":{"groups":[{"name":"g","shouldExist":false}]},
            "storage":{"luks":[]}"#,
    ));
    assert_eq!(
        w,
        [
            ("$.passwd.groups[0].shouldExist".into(), Kind::UnusedKey),
            ("$.storage.luks".into(), Kind::UnusedKey)
        ]
    );
    let cfg = parse(
        br#"{"ignition":{"version":"2.0.0"},"storage":{"raid":[{"name":"md0","level":"raid1","devices":["/dev/a","/dev/b"],"options":["x"]}]}}"#,
    )
    .unwrap();
    assert!(cfg.warnings[0].message.contains("added in minor version 2"));
    assert!(cfg.storage.raid[0].options.is_empty());
}

/// The lift keeps 2.x's JSON paths: referenced configs under `append`, appended contents
/// at `contents`; filesystems keep their names and shapes, networkd units their paths.
#[test]
fn lifted_2x_configs_keep_their_paths() {
    let cfg = parse(
        br#"{"ignition":{"version":"2.2.0","config":{"append":[{"source":"data:,%7B%7D"}]}},
        "storage":{"filesystems":[{"name":"oem","mount":{"device":"/dev/vda6","format":"ext4","create":{"force":true,"options":["-m0"]}}},
                                  {"name":"sys","path":"/sysroot"}],
          "files":[{"filesystem":"oem","path":"/x","append":true,"mode":420,"contents":{"source":"data:,y"}}]},
        "networkd":{"units":[{"name":"a.network","contents":"[Match]\nName=eth0"}]}}"#,
    )
    .unwrap();
    assert_eq!(
        cfg.ignition.merge[0].at.to_string(),
        "$.ignition.config.append[0]"
    );
    let f = &cfg.storage.files[0];
    assert_eq!(f.append[0].at.to_string(), "$.storage.files[0].contents");
    assert_eq!(f.node.filesystem.as_deref(), Some("oem"));
    let fs = &cfg.storage.filesystems;
    assert_eq!(
        (fs[0].name.as_deref(), fs[0].has_mount, fs[0].has_create),
        (Some("oem"), true, true)
    );
    assert_eq!(
        (fs[0].wipe_filesystem, fs[0].options.clone()),
        (Some(true), vec!["-m0".to_string()])
    );
    assert_eq!(fs[0].device.as_deref(), Some("/dev/vda6"));
    assert_eq!(
        (fs[1].has_mount, fs[1].path.as_deref()),
        (false, Some("/sysroot"))
    );
    assert_eq!(cfg.networkd[0].at.to_string(), "$.networkd.units[0]");
}

#[test]
fn keys_match_case_insensitively_with_a_warning() {
    let cfg = parse(br#"{"Ignition":{"Version":"3.0.0"},"storage":{"files":[{"PATH":"/etc/x"}]}}"#)
        .unwrap();
    assert_eq!(cfg.storage.files[0].node.path.as_deref(), Some("/etc/x"));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.path == "$.storage.files[0].PATH" && w.message.contains("did you mean path")));
}

#[test]
fn warnings_that_do_not_fail() {
    let w = warnings(&v3(r#""storage":{"files":[{"path":"/a","mode":2541}]},
           "systemd":{"units":[{"name":"a.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true"}]}"#));
    assert!(w.contains(&("$.storage.files[0].mode".into(), Kind::SpecialModeBits)));
    assert!(w.contains(&("$.systemd.units[0].enabled".into(), Kind::NoInstallSection)));
    let w = warnings(&v2(
        r#""storage":{"files":[{"filesystem":"root","path":"/a","mode":420},{"filesystem":"root","path":"/a"}]}"#,
    ));
    assert_eq!(
        w,
        [
            ("$.storage.files[1].mode".into(), Kind::ModeUnset),
            ("$.storage.files[1].path".into(), Kind::Duplicate)
        ],
        "2.x: last wins"
    );
}

#[test]
fn every_supported_version_parses() {
    for v in crate::parse::version::SUPPORTED {
        let doc = format!(r#"{{"ignition":{{"version":"{v}"}}}}"#);
        let cfg = parse(doc.as_bytes()).unwrap_or_else(|r| panic!("{v}: {r}"));
        assert_eq!(cfg.version, *v);
    }
}

#[test]
fn translation_of_2x_specifics() {
    let cfg = parse(
        br#"{"ignition":{"version":"2.0.0"},
        "storage":{"files":[{"filesystem":"root","path":"/etc/motd","contents":{"source":"data:,hi"}}]},
        "systemd":{"units":[{"name":"a.service","enable":true},{"name":"b.service","enable":true}]},
        "passwd":{"users":[{"name":"u","create":{"uid":1500,"groups":["wheel"],"shell":"/bin/sh"}}]}}"#,
    )
    .unwrap();
    assert_eq!(cfg.units[0].enabled, Some(true));
    let u = &cfg.users[0];
    assert_eq!((u.uid, u.shell.as_deref()), (Some(1500), Some("/bin/sh")));
    assert_eq!(u.groups, ["wheel"]);
    assert!(cfg.warnings.iter().all(|w| w.severity == Severity::Warning));

    let cfg = parse(
        br#"{"ignition":{"version":"2.2.0"},
        "storage":{"files":[{"filesystem":"root","path":"/etc/x","append":true,"contents":{"source":"data:,more"}}]},
        "systemd":{"units":[{"name":"a.service","enable":true,"enabled":false}]}}"#,
    )
    .unwrap();
    let f = &cfg.storage.files[0];
    assert!(f.contents.is_none());
    assert_eq!(f.append.len(), 1);
    assert_eq!(f.node.overwrite, Some(false));
    assert_eq!(cfg.units[0].enabled, Some(false), "enabled: false wins");
}

#[test]
fn real_world_configs_are_valid() {
    // Shapes produced by Butane and ct.
    let docs = [
        r#"{"ignition":{"version":"3.3.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA"]}]},"storage":{"files":[{"path":"/etc/systemd/network/10-eth0.network","contents":{"compression":"","source":"data:,%5BMatch%5D%0AName%3Deth0%0A"},"mode":420}]}}"#,
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"compression":"gzip","source":"data:;base64,H4sIAAAAAAAC/8pIzcnJBwQAAP//hqYQNgUAAAA="},"mode":420}],"links":[{"path":"/etc/localtime","target":"../usr/share/zoneinfo/UTC"}]}}"#,
        r#"{"ignition":{"config":{},"security":{"tls":{}},"timeouts":{},"version":"2.2.0"},"networkd":{"units":[{"contents":"[Match]\nName=eth0\n\n[Network]\nDHCP=yes","name":"00-eth0.network"}]},"passwd":{},"storage":{"files":[{"filesystem":"root","path":"/etc/hostname","contents":{"source":"data:,core1","verification":{}},"mode":420}]},"systemd":{}}"#,
    ];
    for d in docs {
        if let Err(r) = parse(d.as_bytes()) {
            panic!("{d}\n{r}");
        }
    }
}

/// Unit and drop-in texts may start with text before their first section header, as in
/// Ignition (go-systemd's lexer skips it) and systemd; so may spec 2.x networkd units.
#[test]
fn unit_text_may_start_before_its_first_section() {
    let lead = r"Raises the open-file limit for the database.\n# (see ulimit)\n";
    for doc in [
        v3(&format!(
            r#""systemd":{{"units":[{{"name":"db.service","contents":"{lead}[Service]\nExecStart=/bin/db","dropins":[{{"name":"limits.conf","contents":"{lead}[Service]\nLimitNOFILE=65536"}}]}}]}}"#
        )),
        v2(&format!(
            r#""systemd":{{"units":[{{"name":"db.service","dropins":[{{"name":"limits.conf","contents":"{lead}[Service]\nLimitNOFILE=65536"}}]}}]}},
               "networkd":{{"units":[{{"name":"10-a.network","contents":"{lead}[Match]\nName=eth0"}}]}}"#
        )),
    ] {
        assert_eq!(errors(&doc), [], "{doc}");
    }
    assert_eq!(
        errors(&v3(
            r#""systemd":{"units":[{"name":"a.service","dropins":[{"name":"x.conf","contents":"[Service] extra\nA=b"}]}]}"#
        )),
        [(
            "$.systemd.units[0].dropins[0].contents".to_string(),
            Kind::UnitContents
        )]
    );
}

/// Spec 2.x `filesystems[].name` is optional (only what refers to a filesystem needs it);
/// a node on a filesystem nothing defines is an error at its `filesystem`, or a warning while
/// a referenced config may still define it.
#[test]
fn v2_filesystem_names_are_optional_and_references_must_resolve() {
    let nameless = v2(
        r#""storage":{"filesystems":[{"mount":{"device":"/dev/vdb","format":"ext4"}}],
        "files":[{"filesystem":"root","path":"/a","mode":420}]}"#,
    );
    assert_eq!(errors(&nameless), []);
    let cfg = parse(nameless.as_bytes()).unwrap();
    assert_eq!(cfg.storage.filesystems[0].name, None);

    let undefined = v2(
        r#""storage":{"filesystems":[{"mount":{"device":"/dev/vdb","format":"ext4"}}],
        "files":[{"filesystem":"root","path":"/a","mode":420},{"filesystem":"data","path":"/b","mode":420}],
        "links":[{"filesystem":"data","path":"/l","target":"/a"}]}"#,
    );
    assert_eq!(
        errors(&undefined),
        [
            (
                "$.storage.files[1].filesystem".to_string(),
                Kind::UndefinedFilesystem
            ),
            (
                "$.storage.links[0].filesystem".to_string(),
                Kind::UndefinedFilesystem
            )
        ]
    );

    let referencing = r#"{"ignition":{"version":"2.2.0","config":{"append":[{"source":"http://cfg/c"}]}},
        "storage":{"files":[{"filesystem":"data","path":"/b","mode":420}]}}"#;
    assert_eq!(
        warnings(referencing),
        [(
            "$.storage.files[0].filesystem".to_string(),
            Kind::UndefinedFilesystem
        )]
    );
}
