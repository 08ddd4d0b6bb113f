//! Runs the built `ignition` binary on the crate's own example configs, kept in
//! `crates/ignition/tests/fixtures` (one `.json` per case, spec 2.x and 3.x), and checks what
//! a user would see.
//!
//! [`CASES`] lists every fixture with what it must do: a config that [`Expect::Applies`]
//! validates cleanly, and `apply` writes into a temporary root every file, directory, link,
//! unit, drop-in, networkd unit, user, group and SSH key it declares, with the right contents
//! and mode (read here from the config's raw JSON, not from the library's model; only
//! `data:` URLs are decoded with the library's decoder); a config [`Expect::RefusedAt`] a JSON
//! path fails `validate` and `apply` with an error naming that path, and nothing is written.
//! A few tests then check single fixtures against literal values (accounts, keys, drop-in,
//! hostname, decoded base64 contents).
//!
//! The list and the folder are kept in sync: a listed fixture that is missing, or a `.json`
//! in the folder that no case uses, fails the tests.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// What a fixture must do when validated and applied.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// `validate` passes and `apply` writes everything the config declares.
    Applies,
    /// `validate` and `apply` exit 1 with an error naming this JSON path; nothing is written.
    RefusedAt(&'static str),
}

/// One fixture file in `tests/fixtures` and what it must do.
struct Case {
    /// The file name inside `tests/fixtures`.
    file: &'static str,
    /// What validating and applying it must do.
    expect: Expect,
}

/// Every fixture. Each file in `tests/fixtures` is listed here exactly once.
const CASES: &[Case] = &[
    Case {
        file: "v2-start-service.json",
        expect: Expect::Applies,
    },
    Case {
        file: "v2-users.json",
        expect: Expect::Applies,
    },
    Case {
        file: "v2-docker-flags-dropin.json",
        expect: Expect::Applies,
    },
    Case {
        file: "v2-relative-file-path.json",
        expect: Expect::RefusedAt("$.storage.files[1].path"),
    },
    Case {
        file: "v3-hostname-overwrite.json",
        expect: Expect::Applies,
    },
    Case {
        file: "v3-users.json",
        expect: Expect::Applies,
    },
    Case {
        file: "v3-base64-contents.json",
        expect: Expect::Applies,
    },
    Case {
        file: "v3-relative-directory-path.json",
        expect: Expect::RefusedAt("$.storage.directories[0].path"),
    },
];

/// The folder holding the fixtures, inside this crate.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The path of a listed fixture; panics if `file` is not in [`CASES`] or is missing.
fn fixture(file: &str) -> PathBuf {
    assert!(
        CASES.iter().any(|c| c.file == file),
        "fixture {file} is not listed in CASES"
    );
    let path = fixtures_dir().join(file);
    assert!(path.is_file(), "fixture missing: {}", path.display());
    path
}

/// The names of the `.json` files in the fixtures folder.
fn json_files_in_fixtures_dir() -> BTreeSet<String> {
    let dir = fixtures_dir();
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Runs the built `ignition` binary.
fn ignition(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ignition"))
        .args(args)
        .output()
        .expect("running ignition")
}

/// Applies `config` into `root`.
fn apply(root: &Path, config: &Path) -> Output {
    ignition(&[
        "apply",
        "--root",
        root.to_str().unwrap(),
        config.to_str().unwrap(),
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
/// `None` when the contents have no source; panics on a source this test cannot decode (the
/// fixtures use `data:` URLs only), so no file's contents go unchecked.
fn expected_bytes(contents: &Value) -> Option<Vec<u8>> {
    let src = s(contents, "source")?;
    let raw = ignition::resource::decode_data_url(src)
        .unwrap_or_else(|e| panic!("fixture source {src:?} is not a decodable data URL: {e}"));
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

/// `validate` passes without errors, `apply` succeeds and writes what the config declares.
fn check_applies(path: &Path, name: &str) {
    let file = path.to_str().unwrap();
    let validate = ignition(&["validate", file]);
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
    let root = tempfile::tempdir().unwrap();
    let out = apply(root.path(), path);
    assert!(
        out.status.success(),
        "{name}: apply failed:\n{}",
        stderr(&out)
    );
    let cfg: Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    check_applied(&cfg, root.path(), name);
}

/// `validate` and `apply` exit 1 with an error naming `json_path`, and nothing is written.
fn check_refused(path: &Path, name: &str, json_path: &str) {
    let root = tempfile::tempdir().unwrap();
    let validate = ignition(&["validate", path.to_str().unwrap()]);
    let applied = apply(root.path(), path);
    for (what, out) in [("validate", &validate), ("apply", &applied)] {
        assert_eq!(out.status.code(), Some(1), "{name}: {what} must fail");
        let err = stderr(out);
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("error: {json_path}: "))),
            "{name}: {what} must name {json_path}:\n{err}"
        );
    }
    assert_eq!(
        fs::read_dir(root.path()).unwrap().count(),
        0,
        "{name}: nothing may be applied"
    );
}

#[test]
fn every_fixture_behaves_as_its_case_says() {
    for case in CASES {
        let path = fixture(case.file);
        match case.expect {
            Expect::Applies => check_applies(&path, case.file),
            Expect::RefusedAt(json_path) => check_refused(&path, case.file, json_path),
        }
    }
}

#[test]
fn fixtures_folder_and_case_list_agree() {
    let listed: Vec<&str> = CASES.iter().map(|c| c.file).collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "a fixture is listed twice");
    let on_disk = json_files_in_fixtures_dir();
    let unused: Vec<&String> = on_disk
        .iter()
        .filter(|f| !unique.contains(f.as_str()))
        .collect();
    let missing: Vec<&&str> = unique.iter().filter(|f| !on_disk.contains(**f)).collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "in {}: fixtures no case uses: {unused:?}; cases whose fixture is missing: {missing:?}",
        fixtures_dir().display()
    );
}

#[test]
fn users_fixtures_create_accounts_like_useradd() {
    for name in ["v2-users.json", "v3-users.json"] {
        let root = tempfile::tempdir().unwrap();
        let out = apply(root.path(), &fixture(name));
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let passwd = fs::read_to_string(root.path().join("etc/passwd")).unwrap();
        assert!(
            passwd.contains("builder:x:1000:1000::/home/builder:/bin/bash\n"),
            "{name}: the explicit uid 1000 is kept for builder:\n{passwd}"
        );
        assert!(
            passwd.contains("opsadmin:x:1001:1001::/home/opsadmin:/bin/bash\n"),
            "{name}: opsadmin, listed first without a uid, gets the next free one:\n{passwd}"
        );
        let group = fs::read_to_string(root.path().join("etc/group")).unwrap();
        assert!(
            group.contains("builder:x:1000:\n") && group.contains("opsadmin:x:1001:\n"),
            "{name}: each user gets a private group with its uid as gid:\n{group}"
        );
        let shadow = fs::read_to_string(root.path().join("etc/shadow")).unwrap();
        assert!(
            shadow.contains("opsadmin:$6$keeltest$NotARealHashOnlyAFixture:"),
            "{name}: the hash is kept:\n{shadow}"
        );
        assert!(
            shadow.contains("builder:*:"),
            "{name}: no hash: locked:\n{shadow}"
        );
        let frag = root
            .path()
            .join("home/opsadmin/.ssh/authorized_keys.d/ignition");
        assert_eq!(
            fs::read_to_string(frag).unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeelFixtureKeyOneNotARealKey keel-test\n\
             ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeelFixtureKeyTwoNotARealKey keel-test\n",
            "{name}: both keys, in order"
        );
        assert_eq!(
            mode_of(&root.path().join("home/builder")),
            0o700,
            "{name}: home of builder"
        );
    }
}

#[test]
fn docker_flags_dropin_is_written_and_enabled_by_preset() {
    let path = fixture("v2-docker-flags-dropin.json");
    let root = tempfile::tempdir().unwrap();
    // A vendor docker.service, as the OS image ships it.
    let vendor = root.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&vendor).unwrap();
    fs::write(
        vendor.join("docker.service"),
        "[Service]\nExecStart=/usr/bin/dockerd $DOCKER_OPTS\n\n[Install]\nWantedBy=multi-user.target\n",
    )
    .unwrap();
    let out = apply(root.path(), &path);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(
            root.path()
                .join("etc/systemd/system/docker.service.d/30-keel-dockerd.conf")
        )
        .unwrap(),
        "[Service]\nEnvironment=\"DOCKER_OPTS=--log-level=warn --live-restore\""
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
fn base64_fixture_writes_the_decoded_bytes_with_the_default_mode() {
    let root = tempfile::tempdir().unwrap();
    let out = apply(root.path(), &fixture("v3-base64-contents.json"));
    assert!(out.status.success(), "{}", stderr(&out));
    let file = root.path().join("opt/keel/notes.txt");
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        "written by the keel base64 fixture\n"
    );
    assert_eq!(mode_of(&file), 0o644);
}

#[test]
fn v3_hostname_overwrite_replaces_an_existing_file_and_default_refuses() {
    let path = fixture("v3-hostname-overwrite.json");
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("etc")).unwrap();
    fs::write(root.path().join("etc/hostname"), "localhost\n").unwrap();
    let out = apply(root.path(), &path);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "keel-fixture-node"
    );

    // Without overwrite, spec 3.x refuses to replace it (as Ignition does).
    let scratch = tempfile::tempdir().unwrap();
    let cfg = scratch.path().join("no-overwrite.json");
    fs::write(
        &cfg,
        r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,keel-other-node"}}]}}"#,
    )
    .unwrap();
    let out = apply(root.path(), &cfg);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("overwrite is false"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
        "keel-fixture-node"
    );
}
