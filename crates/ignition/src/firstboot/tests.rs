//! First boot's tests: deciding, sources, marker, storage order, and power cuts at every
//! step of a first boot with storage.

use super::*;
use crate::apply::progress;
use crate::fetch::MapFetcher;
use crate::storage::Recorder;

struct Env {
    dir: tempfile::TempDir,
    paths: Paths,
}

/// A temporary directory, in memory where the machine has /dev/shm (the journal syncs
/// every record, and the power-cut test runs first boot a few dozen times).
fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    match shm.is_dir().then(|| tempfile::tempdir_in(shm)) {
        Some(Ok(t)) => t,
        _ => tempfile::tempdir().unwrap(),
    }
}

/// A root with an /etc, an OEM dir, an ESP dir with the marker, and a command line.
fn env(cmdline: &str, marker: bool) -> Env {
    let dir = tempdir();
    let d = dir.path();
    fs::create_dir_all(d.join("root/etc")).unwrap();
    fs::write(d.join("root/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(d.join("root/etc/group"), "root:x:0:\n").unwrap();
    fs::write(d.join("root/etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::create_dir_all(d.join("oem")).unwrap();
    fs::create_dir_all(d.join("boot/keel")).unwrap();
    if marker {
        fs::write(d.join("boot/keel/first_boot"), "").unwrap();
    }
    fs::write(d.join("cmdline"), cmdline).unwrap();
    let paths = Paths {
        cmdline: d.join("cmdline"),
        root: d.join("root"),
        oem_dir: Some(d.join("oem")),
        marker: Some(d.join("boot/keel/first_boot")),
    };
    Env { dir, paths }
}

const HOSTNAME: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/hostname","overwrite":true,"contents":{"source":"data:,node-1%0A"}}]}}"#;

fn run_fake(e: &Env, fetcher: &MapFetcher) -> Result<Summary, FirstbootError> {
    run(&e.paths, fetcher, &Recorder::default(), &Tools::default())
}

#[test]
fn the_marker_or_the_command_line_makes_a_first_boot() {
    let e = env("keel.slot=A", false);
    assert_eq!(decide(&e.paths).unwrap(), Decision::AlreadyDone);
    let e = env("keel.slot=A", true);
    assert_eq!(
        decide(&e.paths).unwrap(),
        Decision::Run {
            trigger: Trigger::Marker,
            source: Source::None
        }
    );
    let e = env("keel.live coreos.first_boot=1", false);
    assert!(matches!(
        decide(&e.paths).unwrap(),
        Decision::Run {
            trigger: Trigger::Cmdline,
            ..
        }
    ));
}

#[test]
fn sources_in_order_url_then_oem_then_none() {
    let e = env(
        "ignition.firstboot coreos.config.url=http://10.0.2.2/c.ign",
        false,
    );
    fs::write(e.dir.path().join("oem/config.ign"), HOSTNAME).unwrap();
    let Decision::Run { source, .. } = decide(&e.paths).unwrap() else {
        panic!()
    };
    assert_eq!(source, Source::Url("http://10.0.2.2/c.ign".into()));
    assert!(source.needs_network());

    let e = env("ignition.firstboot", false);
    fs::write(e.dir.path().join("oem/config.ign"), HOSTNAME).unwrap();
    let Decision::Run { source, .. } = decide(&e.paths).unwrap() else {
        panic!()
    };
    assert_eq!(source, Source::Oem(e.dir.path().join("oem/config.ign")));
    assert!(!source.needs_network());
}

#[test]
fn an_oem_config_that_fetches_over_http_needs_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let with_http = dir.path().join("http.ign");
    fs::write(&with_http, r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/x","contents":{"source":"http://10.0.2.2:8080/x"}}]}}"#).unwrap();
    let local = dir.path().join("local.ign");
    fs::write(&local, r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/x","contents":{"source":"data:,x"}}]}}"#).unwrap();
    assert!(Source::Oem(with_http).needs_network());
    assert!(!Source::Oem(local).needs_network());
    assert!(!Source::None.needs_network());

    let e = env("ignition.firstboot", false);
    let Decision::Run { source, .. } = decide(&e.paths).unwrap() else {
        panic!()
    };
    assert_eq!(source, Source::None);
}

#[test]
fn success_applies_and_removes_the_marker_once() {
    let e = env("keel.slot=A", true);
    fs::write(e.dir.path().join("oem/config.ign"), HOSTNAME).unwrap();
    let s = run_fake(&e, &MapFetcher::new()).unwrap();
    assert_eq!(
        fs::read_to_string(e.paths.root.join("etc/hostname")).unwrap(),
        "node-1\n"
    );
    assert_eq!(s.marker_removed.as_ref(), e.paths.marker.as_ref());
    assert!(!e.paths.marker.as_ref().unwrap().exists());

    // Second boot: nothing runs, a deleted file stays deleted.
    fs::remove_file(e.paths.root.join("etc/hostname")).unwrap();
    let s = run_fake(&e, &MapFetcher::new()).unwrap();
    assert!(s.source.is_none());
    assert!(!e.paths.root.join("etc/hostname").exists());
}

#[test]
fn a_url_config_is_fetched_and_no_config_is_a_success() {
    let e = env(
        "ignition.firstboot ignition.config.url=http://h/c.ign",
        true,
    );
    let f = MapFetcher::new().with("http://h/c.ign", HOSTNAME);
    run_fake(&e, &f).unwrap();
    assert_eq!(f.requests.borrow()[0], "http://h/c.ign");
    assert!(e.paths.root.join("etc/hostname").exists());

    let e = env("keel.slot=A", true);
    let s = run_fake(&e, &MapFetcher::new()).unwrap();
    assert_eq!(s.source, Some(Source::None));
    assert!(s.marker_removed.is_some());
}

#[test]
fn failures_keep_the_marker_and_write_nothing() {
    // Invalid: every error with its JSON path.
    let e = env("keel.slot=A", true);
    let bad = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[
        {"path":"etc/relative","contents":{"source":"data:,x"}},
        {"path":"/etc/ok","mode":99999,"contents":{"source":"data:,y"}}]}}"#;
    fs::write(e.dir.path().join("oem/config.ign"), bad).unwrap();
    let err = run_fake(&e, &MapFetcher::new()).unwrap_err();
    let lines = err.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: $.storage.files[0].path:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: $.storage.files[1].mode:")),
        "{lines:?}"
    );
    assert!(e.paths.marker.as_ref().unwrap().exists());
    assert!(!e.paths.root.join("etc/ok").exists());

    // A file whose contents cannot be fetched: nothing written, not even the first file.
    let e = env("keel.slot=A", true);
    let cfg = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[
        {"path":"/etc/a","contents":{"source":"data:,a"}},
        {"path":"/etc/b","contents":{"source":"http://h/missing"}}]}}"#;
    fs::write(e.dir.path().join("oem/config.ign"), cfg).unwrap();
    let err = run_fake(&e, &MapFetcher::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("$.storage.files[1].contents.source"),
        "{err}"
    );
    assert!(!e.paths.root.join("etc/a").exists());
    assert!(e.paths.marker.as_ref().unwrap().exists());

    // The URL cannot be fetched.
    let e = env("ignition.config.url=http://h/gone.ign", true);
    let err = run_fake(&e, &MapFetcher::new()).unwrap_err();
    assert!(matches!(err, FirstbootError::Fetch { .. }), "{err}");
    assert!(e.paths.marker.as_ref().unwrap().exists());
}

#[test]
fn storage_runs_between_the_fetch_and_the_files_with_mounts_around_the_files() {
    let e = env("keel.slot=A", true);
    let cfg = r#"{"ignition":{"version":"3.3.0"},"storage":{
        "filesystems":[{"device":"/dev/vdb","format":"ext4","path":"/var/lib/docker","wipeFilesystem":true}],
        "files":[{"path":"/var/lib/docker/keep","contents":{"source":"data:,k"}}]}}"#;
    fs::write(e.dir.path().join("oem/config.ign"), cfg).unwrap();
    let fake = Recorder::default();
    let s = run(&e.paths, &MapFetcher::new(), &fake, &Tools::default()).unwrap();
    let host = e.paths.root.join("var/lib/docker").display().to_string();
    assert_eq!(
        fake.calls(),
        [
            "/sbin/blkid -p -o export /dev/vdb".to_string(),
            "/sbin/mke2fs -F -q -t ext4 /dev/vdb".to_string(),
            format!("/bin/mount -t ext4 /dev/vdb {host}"),
            format!("/bin/umount {host}"),
        ]
    );
    assert_eq!(s.storage, ["created ext4 filesystem on /dev/vdb"]);
    assert!(s.outcome.skipped.is_empty(), "{:?}", s.outcome.skipped);
    assert!(s.outcome.warnings.is_empty(), "{:?}", s.outcome.warnings);
    let unit = e.paths.root.join("etc/systemd/system/var-lib-docker.mount");
    assert!(fs::read_to_string(unit)
        .unwrap()
        .contains("Where=/var/lib/docker"));
    let link = e
        .paths
        .root
        .join("etc/systemd/system/local-fs.target.wants/var-lib-docker.mount");
    assert_eq!(
        fs::read_link(link).unwrap(),
        Path::new("/etc/systemd/system/var-lib-docker.mount")
    );
}

/// A spec 2.x filesystem without a name (nothing refers to it) is made like any other.
#[test]
fn a_nameless_v2_filesystem_is_made() {
    let e = env("keel.slot=A", true);
    let cfg = r#"{"ignition":{"version":"2.2.0"},"storage":{
        "filesystems":[{"mount":{"device":"/dev/vdb","format":"ext4","label":"scratch"}}],
        "files":[{"filesystem":"root","path":"/etc/hostname","mode":420,"contents":{"source":"data:,n"}}]}}"#;
    fs::write(e.dir.path().join("oem/config.ign"), cfg).unwrap();
    let fake = Recorder::default();
    let s = run(&e.paths, &MapFetcher::new(), &fake, &Tools::default()).unwrap();
    assert_eq!(
        fake.calls(),
        [
            "/sbin/blkid -p -o export /dev/vdb",
            "/sbin/mke2fs -F -q -t ext4 -L scratch /dev/vdb"
        ]
    );
    assert_eq!(
        s.storage,
        ["created ext4 filesystem on /dev/vdb (label scratch)"]
    );
    assert_eq!(
        fs::read_to_string(e.paths.root.join("etc/hostname")).unwrap(),
        "n"
    );
}

/// Every node below `root` (not following symlinks): kind, mode, contents or target.
fn walk(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                format!("dir {:o}", m.mode() & 0o7777)
            } else {
                format!(
                    "{:o} {:?}",
                    m.mode() & 0o7777,
                    fs::read_to_string(&p).unwrap()
                )
            };
            out.push(format!("{rel}: {what}"));
        }
    }
    out.sort();
    out
}

const WITH_STORAGE: &str = r#"{"ignition":{"version":"3.3.0"},
    "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA core@keel"]}]},
    "storage":{
      "filesystems":[{"device":"/dev/vdb","format":"ext4","path":"/var/lib/docker","wipeFilesystem":true}],
      "files":[{"path":"/var/lib/docker/keep","contents":{"source":"data:,k"}},
               {"path":"/etc/hosts","append":[{"source":"data:,10.0.0.1%20a%0A"}]}]}}"#;

fn storage_env() -> Env {
    let e = env("keel.slot=A", true);
    fs::write(e.dir.path().join("oem/config.ign"), WITH_STORAGE).unwrap();
    fs::write(e.paths.root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    e
}

fn cut_run(e: &Env, fake: &Recorder, cut_after: Option<usize>) -> Result<Summary, FirstbootError> {
    let options = ApplyOptions {
        today: Some(19_500),
        cut_after,
    };
    run_with(
        &e.paths,
        &MapFetcher::new(),
        fake,
        &Tools::default(),
        &options,
    )
}

#[test]
fn a_first_boot_cut_at_any_step_is_finished_by_the_next_boot_exactly_once() {
    let clean = storage_env();
    cut_run(&clean, &Recorder::default(), None).unwrap();
    let want = walk(&clean.paths.root);
    assert!(
        want.contains(&r#"etc/hosts: 644 "127.0.0.1 localhost\n10.0.0.1 a\n""#.to_string()),
        "{want:#?}"
    );
    assert!(
        want.iter().any(|l| l.starts_with(".ignition-progress: ")),
        "the completed journal stays as the record: {want:#?}"
    );
    let mkfs = |calls: &[String]| calls.iter().any(|c| c.starts_with("/sbin/mke2fs"));
    for cut in 0.. {
        let e = storage_env();
        if cut_run(&e, &Recorder::default(), Some(cut)).is_ok() {
            assert!(cut > 20, "only {cut} steps");
            break;
        }
        assert!(e.paths.marker.as_ref().unwrap().exists(), "cut {cut}");
        let journal = fs::read(e.paths.root.join(progress::FILE)).unwrap_or_default();
        let earlier = progress::replay(&progress::parse(&journal));
        let next = Recorder::default();
        let s = cut_run(&e, &next, None).unwrap_or_else(|err| panic!("cut {cut}: {err}"));
        assert!(s.marker_removed.is_some(), "cut {cut}");
        assert_eq!(walk(&e.paths.root), want, "cut after {cut} steps");
        let calls = next.calls();
        if earlier.complete {
            assert!(calls.is_empty(), "cut {cut}: {calls:?}");
        } else if earlier.storage {
            // The filesystem may hold files already: mounted, never made again.
            assert!(!mkfs(&calls), "cut {cut}: {calls:?}");
            assert!(calls[0].starts_with("/bin/mount"), "cut {cut}: {calls:?}");
        } else {
            assert!(mkfs(&calls), "cut {cut}: {calls:?}");
        }
    }
}
