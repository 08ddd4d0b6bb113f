//! Runs the built `ignition` binary on every config in `shared/ignition-examples` and checks
//! what a user would see.
//!
//! File names say what to expect: `*-iNN-*` configs are invalid (validate and apply fail,
//! naming the JSON path, and nothing is written); `*-vNN-*` configs are valid (validate
//! passes, apply writes into a temporary root, and every file, directory, link, unit,
//! drop-in, networkd unit, user, group and SSH key the config declares is there with the
//! right contents and mode). The expectations are read from the config's raw JSON here,
//! independently of the library's model.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ignition-examples")
}

fn examples() -> Vec<PathBuf> {
    let dir = examples_dir();
    let mut out: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no examples in {}", dir.display());
    out
}

fn ignition(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ignition"))
        .args(args)
        .output()
        .expect("running ignition")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `-iNN-` invalid, `-vNN-` valid.
fn expect_valid(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    let tag = name.split('-').nth(1).unwrap_or("");
    match tag.chars().next() {
        Some('v') => true,
        Some('i') => false,
        _ => panic!("example {name} has no -vNN- or -iNN- tag"),
    }
}

/// The JSON paths the invalid examples we know about must name.
fn known_error_path(name: &str) -> Option<&'static str> {
    match name {
        "s2-i01-relative-path.json" => Some("$.storage.files[0].path"),
        "s3-i07-relative-path.json" => Some("$.storage.directories[0].path"),
        _ => None,
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|v| !v.is_null())
}

fn list<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut cur = v;
    for p in path {
        match get(cur, p) {
            Some(next) => cur = next,
            None => return Vec::new(),
        }
    }
    cur.as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    get(v, key).and_then(Value::as_str)
}

fn b(v: &Value, key: &str) -> Option<bool> {
    get(v, key).and_then(Value::as_bool)
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Decodes a `data:` source as the spec says (percent-encoded or base64), then gunzips.
fn expected_bytes(contents: &Value) -> Option<Vec<u8>> {
    let src = s(contents, "source")?;
    let raw = ignition::resource::decode_data_url(src).ok()?;
    if s(contents, "compression") == Some("gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .unwrap();
        Some(out)
    } else {
        Some(raw)
    }
}

fn check_applied(cfg: &Value, root: &Path, name: &str) {
    let v2 = s(&cfg["ignition"], "version").unwrap().starts_with("2.");
    let at = |p: &str| root.join(p.trim_start_matches('/'));
    let on_root = |e: &Value| !v2 || s(e, "filesystem") == Some("root");

    for f in list(cfg, &["storage", "files"]) {
        if !on_root(f) {
            continue;
        }
        let path = s(f, "path").unwrap();
        let host = at(path);
        let meta = fs::symlink_metadata(&host)
            .unwrap_or_else(|e| panic!("{name}: file {path} missing: {e}"));
        assert!(meta.is_file(), "{name}: {path} is not a regular file");
        let want_mode = get(f, "mode").map_or(0o644, |m| m.as_u64().unwrap() as u32 & 0o777);
        assert_eq!(mode_of(&host), want_mode, "{name}: mode of {path}");
        let appends = b(f, "append") == Some(true) || !list(f, &["append"]).is_empty();
        if let (Some(c), false) = (get(f, "contents"), appends) {
            if let Some(want) = expected_bytes(c) {
                assert_eq!(fs::read(&host).unwrap(), want, "{name}: contents of {path}");
            }
        }
    }
    for d in list(cfg, &["storage", "directories"]) {
        if !on_root(d) {
            continue;
        }
        let path = s(d, "path").unwrap();
        let host = at(path);
        assert!(host.is_dir(), "{name}: directory {path} missing");
        let want_mode = get(d, "mode").map_or(0o755, |m| m.as_u64().unwrap() as u32 & 0o777);
        assert_eq!(mode_of(&host), want_mode, "{name}: mode of {path}");
    }
    for l in list(cfg, &["storage", "links"]) {
        if !on_root(l) {
            continue;
        }
        let path = s(l, "path").unwrap();
        let target = s(l, "target").unwrap();
        let host = at(path);
        if b(l, "hard") == Some(true) {
            let a = fs::metadata(&host).unwrap();
            let t = fs::metadata(at(target)).unwrap();
            assert_eq!(
                a.ino(),
                t.ino(),
                "{name}: {path} is a hard link to {target}"
            );
        } else {
            assert_eq!(
                fs::read_link(&host).unwrap(),
                Path::new(target),
                "{name}: symlink {path}"
            );
        }
    }

    let preset =
        fs::read_to_string(at("/etc/systemd/system-preset/20-ignition.preset")).unwrap_or_default();
    for u in list(cfg, &["systemd", "units"]) {
        let unit = s(u, "name").unwrap();
        let unit_path = at(&format!("/etc/systemd/system/{unit}"));
        if b(u, "mask") == Some(true) {
            assert_eq!(fs::read_link(&unit_path).unwrap(), Path::new("/dev/null"));
        } else if let Some(c) = s(u, "contents").filter(|c| !c.is_empty()) {
            assert_eq!(fs::read_to_string(&unit_path).unwrap(), c, "{name}: {unit}");
            assert_eq!(mode_of(&unit_path), 0o644);
        }
        for d in list(u, &["dropins"]) {
            let Some(c) = s(d, "contents").filter(|c| !c.is_empty()) else {
                continue;
            };
            let dn = s(d, "name").unwrap();
            let p = at(&format!("/etc/systemd/system/{unit}.d/{dn}"));
            assert_eq!(fs::read_to_string(&p).unwrap(), c, "{name}: drop-in {dn}");
        }
        let enabled = match (b(u, "enable"), b(u, "enabled")) {
            (_, Some(false)) => Some(false),
            (Some(true), _) | (_, Some(true)) => Some(true),
            _ => None,
        };
        if enabled == Some(true) {
            assert!(
                preset.lines().any(|l| l == format!("enable {unit}")),
                "{name}: preset enables {unit}:\n{preset}"
            );
            let contents = s(u, "contents").unwrap_or("");
            for line in contents.lines() {
                if let Some(targets) = line.strip_prefix("WantedBy=") {
                    for t in targets.split_whitespace() {
                        let link = at(&format!("/etc/systemd/system/{t}.wants/{unit}"));
                        assert_eq!(
                            fs::read_link(&link)
                                .unwrap_or_else(|e| panic!("{name}: {}: {e}", link.display())),
                            Path::new(&format!("/etc/systemd/system/{unit}")),
                        );
                    }
                }
            }
        }
    }
    for u in list(cfg, &["networkd", "units"]) {
        let unit = s(u, "name").unwrap();
        if let Some(c) = s(u, "contents").filter(|c| !c.is_empty()) {
            let p = at(&format!("/etc/systemd/network/{unit}"));
            assert_eq!(fs::read_to_string(p).unwrap(), c, "{name}: networkd {unit}");
        }
    }

    let passwd = fs::read_to_string(at("/etc/passwd")).unwrap_or_default();
    let shadow = fs::read_to_string(at("/etc/shadow")).unwrap_or_default();
    let group = fs::read_to_string(at("/etc/group")).unwrap_or_default();
    for g in list(cfg, &["passwd", "groups"]) {
        let gname = s(g, "name").unwrap();
        let line = group
            .lines()
            .find(|l| l.split(':').next() == Some(gname))
            .unwrap_or_else(|| panic!("{name}: group {gname} missing:\n{group}"));
        if let Some(gid) = get(g, "gid") {
            assert_eq!(line.split(':').nth(2).unwrap(), gid.to_string());
        }
    }
    for u in list(cfg, &["passwd", "users"]) {
        let uname = s(u, "name").unwrap();
        let line = passwd
            .lines()
            .find(|l| l.split(':').next() == Some(uname))
            .unwrap_or_else(|| panic!("{name}: user {uname} missing:\n{passwd}"));
        let fields: Vec<&str> = line.split(':').collect();
        let uid: u32 = fields[2].parse().unwrap();
        if let Some(want) = get(u, "uid").and_then(Value::as_u64) {
            assert_eq!(uid as u64, want, "{name}: uid of {uname}");
        } else {
            assert!(uid >= 1000, "{name}: {uname} gets a uid >= 1000, got {uid}");
        }
        let shadow_line = shadow
            .lines()
            .find(|l| l.split(':').next() == Some(uname))
            .unwrap_or_else(|| panic!("{name}: {uname} missing from shadow"));
        if let Some(h) = s(u, "passwordHash").filter(|h| !h.is_empty()) {
            assert_eq!(
                shadow_line.split(':').nth(1),
                Some(h),
                "{name}: hash of {uname}"
            );
        }
        let home = fields[5];
        let home_host = at(home);
        if b(u, "noCreateHome") != Some(true) {
            assert!(home_host.is_dir(), "{name}: home {home} of {uname}");
            if is_root() {
                assert_eq!(fs::metadata(&home_host).unwrap().uid(), uid);
            }
        }
        let keys = list(u, &["sshAuthorizedKeys"]);
        if !keys.is_empty() {
            let ak = home_host.join(".ssh/authorized_keys");
            let text =
                fs::read_to_string(&ak).unwrap_or_else(|e| panic!("{name}: {}: {e}", ak.display()));
            for k in keys {
                let k = k.as_str().unwrap();
                assert!(text.lines().any(|l| l == k), "{name}: key {k} for {uname}");
            }
            assert_eq!(mode_of(&ak), 0o600);
            assert_eq!(mode_of(&home_host.join(".ssh")), 0o700);
            if is_root() {
                assert_eq!(fs::metadata(&ak).unwrap().uid(), uid);
            }
        }
    }
}

#[test]
fn every_example_behaves_as_its_name_says() {
    for path in examples() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let file = path.to_str().unwrap();
        let validate = ignition(&["validate", file]);
        let root = tempfile::tempdir().unwrap();
        let apply = ignition(&["apply", "--root", root.path().to_str().unwrap(), file]);
        if expect_valid(&path) {
            assert!(
                validate.status.success(),
                "{name}: validate failed:\n{}",
                stderr(&validate)
            );
            assert!(
                !stderr(&validate).contains("error:"),
                "{name}: {}",
                stderr(&validate)
            );
            assert!(
                apply.status.success(),
                "{name}: apply failed:\n{}",
                stderr(&apply)
            );
            let cfg: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
            check_applied(&cfg, root.path(), &name);
        } else {
            for (what, out) in [("validate", &validate), ("apply", &apply)] {
                assert_eq!(out.status.code(), Some(1), "{name}: {what} must fail");
                let err = stderr(out);
                let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: $")).collect();
                assert!(
                    !lines.is_empty(),
                    "{name}: {what} names a JSON path:\n{err}"
                );
                if let Some(p) = known_error_path(&name) {
                    assert!(
                        lines
                            .iter()
                            .any(|l| l.starts_with(&format!("error: {p}: "))),
                        "{name}: {what} must name {p}:\n{err}"
                    );
                }
            }
            assert_eq!(
                fs::read_dir(root.path()).unwrap().count(),
                0,
                "{name}: nothing may be applied"
            );
        }
    }
}

#[test]
fn users_example_creates_accounts_like_useradd() {
    for name in ["s2-v06-examples-users.json", "s3-v05-examples-users.json"] {
        let path = examples_dir().join(name);
        if !path.exists() {
            continue;
        }
        let root = tempfile::tempdir().unwrap();
        let out = ignition(&[
            "apply",
            "--root",
            root.path().to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let passwd = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("jenkins:x:1000:1000::/home/jenkins:/bin/bash\n"),
            "{passwd}"
        );
        assert!(
            passwd.contains("systemUser:x:1001:1001::/home/systemUser:/bin/bash\n"),
            "the explicit uid 1000 is kept for jenkins:\n{passwd}"
        );
        let group = fs::read_to_string(root.path().join("etc/group")).unwrap();
        assert!(group.contains("jenkins:x:1000:\n") && group.contains("systemUser:x:1001:\n"));
        let shadow = fs::read_to_string(root.path().join("etc/shadow")).unwrap();
        assert!(shadow.contains("systemUser:$superSecretPasswordHash.:"));
        assert!(shadow.contains("jenkins:*:"), "no hash: locked");
        let frag = root
            .path()
            .join("home/systemUser/.ssh/authorized_keys.d/ignition");
        assert_eq!(
            fs::read_to_string(frag).unwrap(),
            "ssh-rsa veryLongRSAPublicKey\n"
        );
        assert_eq!(mode_of(&root.path().join("home/jenkins")), 0o700);
    }
}

#[test]
fn ct_docker_dropin_is_written_and_enabled_by_preset() {
    let path = examples_dir().join("s2-v16-ct-docker-flags.json");
    if !path.exists() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A vendor docker.service, as the OS image ships it.
    let vendor = root.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&vendor).unwrap();
    fs::write(
        vendor.join("docker.service"),
        "[Service]\nExecStart=/usr/bin/dockerd $DOCKER_OPTS\n\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let out = ignition(&[
        "apply",
        "--root",
        root.path().to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(
            root.path()
                .join("etc/systemd/system/docker.service.d/20-clct-docker.conf")
        )
        .unwrap(),
        "[Service]\nEnvironment=\"DOCKER_OPTS=--debug\""
    );
    assert_eq!(
        fs::read_link(
            root.path()
                .join("etc/systemd/system/multi-user.target.wants/docker.service")
        )
        .unwrap(),
        Path::new("/usr/lib/systemd/system/docker.service"),
        "enabled against the vendor unit"
    );
    assert!(!root
        .path()
        .join("etc/systemd/system/docker.service")
        .exists());
}

#[test]
fn v3_hostname_overwrite_replaces_an_existing_file_and_default_refuses() {
    let path = examples_dir().join("s3-v04-examples-hostname-overwrite.json");
    if !path.exists() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    fs::write(root.path().join("etc/hostname"), "localhost\n").unwrap();
    let out = ignition(&[
        "apply",
        "--root",
        root.path().to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "core1"
    );

    // Without overwrite, spec 3.x refuses to replace it (as Ignition does).
    let cfg = root.path().join("no-overwrite.json");
    fs::write(
        &cfg,
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,core2"}}]}}"#,
    )
    .unwrap();
    let out = ignition(&[
        "apply",
        "--root",
        root.path().to_str().unwrap(),
        cfg.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("overwrite is false"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "core1"
    );
}
