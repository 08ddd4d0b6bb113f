//! Power cuts: an apply cut at any one of its steps (every journal record, backup, write,
//! link, mode and owner change counts; the journal's `cut_after` seam stops the run there
//! and leaves the tree as a cut would), then run again with the same config, leaves exactly
//! the tree one uninterrupted apply leaves: paths, contents, modes, link targets and hard
//! links, nothing appended twice, no stray backups, temporary files or journal.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ignition::apply::progress::{self, FILE};
use ignition::{apply_with, load, ApplyOptions, Journal, JournalError, MapFetcher, ValidConfig};

/// Appends (to a kept file and after new contents), an overwritten file, a new file, a
/// directory, symlinks (one replacing a file), a hard link, a group, a user with SSH keys
/// and a home from /etc/skel, a removed user with its home, a unit with a drop-in, a unit
/// of the root enabled, a unit file replaced by its mask.
const V3: &str = r#"{"ignition":{"version":"3.3.0"},
 "passwd":{
   "groups":[{"name":"ops","gid":2000}],
   "users":[{"name":"core","groups":["ops"],"sshAuthorizedKeys":["ssh-ed25519 AAAAkey core@keel"]},
            {"name":"old","shouldExist":false}]},
 "storage":{
   "directories":[{"path":"/srv/data","mode":488}],
   "files":[
     {"path":"/etc/hosts","append":[{"source":"data:,10.0.0.1%20a%0A"},{"source":"data:,10.0.0.2%20b%0A"}]},
     {"path":"/etc/motd","overwrite":true,"contents":{"source":"data:,welcome%0A"},"mode":420},
     {"path":"/etc/new.conf","contents":{"source":"data:,k=v%0A"},"mode":384},
     {"path":"/var/log/app.log","contents":{"source":"data:,start%0A"},"append":[{"source":"data:,more%0A"}]}],
   "links":[{"path":"/etc/localtime","target":"/usr/share/zoneinfo/UTC"},
            {"path":"/etc/old-link","target":"/nowhere","overwrite":true},
            {"path":"/srv/data/hard.conf","target":"/etc/new.conf","hard":true}]},
 "systemd":{"units":[
   {"name":"app.service","enabled":true,
    "contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    "dropins":[{"name":"10-env.conf","contents":"[Service]\nEnvironment=A=1\n"}]},
   {"name":"foo.service","enabled":true},
   {"name":"bar.service","mask":true}]}}"#;

/// Spec 2.x: `append: true`, files that overwrite by default, networkd, a user.
const V2: &str = r#"{"ignition":{"version":"2.2.0"},
 "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-rsa AAAAv2 core@keel"]}]},
 "storage":{"files":[
   {"filesystem":"root","path":"/etc/hosts","append":true,"contents":{"source":"data:,10.0.0.3%20c%0A"}},
   {"filesystem":"root","path":"/etc/motd","contents":{"source":"data:,v2%0A"}}]},
 "systemd":{"units":[{"name":"docker.service","enable":true,
   "dropins":[{"name":"10-flags.conf","contents":"[Service]\nEnvironment=F=1\n"}]}]},
 "networkd":{"units":[{"name":"00-eth0.network","contents":"[Match]\nName=eth0\n"}]}}"#;

fn uid() -> u32 {
    fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// A root as the image ships it, plus a user to remove whose home is below /home.
fn base(root: &Path) {
    let me = uid();
    let w = |p: &str, text: &str| {
        let p = root.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    };
    w(
        "etc/passwd",
        &format!("root:x:0:0:root:/root:/bin/sh\nold:x:{me}:{me}::/home/old:/bin/sh\n"),
    );
    w("etc/group", &format!("root:x:0:\nold:x:{me}:\n"));
    w(
        "etc/shadow",
        "root:*:19000:0:99999:7:::\nold:*:19000:0:99999:7:::\n",
    );
    w("etc/gshadow", "root:*::\nold:!::\n");
    w("etc/hosts", "127.0.0.1 localhost\n");
    w("etc/motd", "old motd\n");
    w("etc/old-link", "a file in the way\n");
    w("etc/skel/.bashrc", "# bashrc\n");
    w("etc/skel/.config/app/x", "x\n");
    w("home/old/notes", "old notes\n");
    w(
        "usr/lib/systemd/system/foo.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    );
    w(
        "usr/lib/systemd/system/docker.service",
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n",
    );
    w(
        "etc/systemd/system/bar.service",
        "[Service]\nExecStart=/bin/false\n",
    );
    fs::set_permissions(root.join("etc/hosts"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o600)).unwrap();
}

/// Every node below `root`, not following symlinks: kind, mode, contents or target, and
/// for a file with more names, the first name of its inode. Timestamps are left out.
fn walk(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            paths.push(p);
        }
    }
    paths.sort();
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, PathBuf> = BTreeMap::new();
    for p in paths {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let mode = m.mode() & 0o7777;
        let what = if m.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(&p).unwrap().display())
        } else if m.is_dir() {
            format!("dir {mode:04o} {}:{}", m.uid(), m.gid())
        } else {
            let same = if m.nlink() > 1 {
                let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                format!(" links {} first {}", m.nlink(), first.display())
            } else {
                String::new()
            };
            let text = String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned();
            format!("file {mode:04o} {}:{}{same} {text:?}", m.uid(), m.gid())
        };
        out.insert(rel, what);
    }
    out
}

fn config(json: &str) -> ValidConfig {
    load(json.as_bytes(), &MapFetcher::new()).unwrap_or_else(|r| panic!("{r}"))
}

fn options(cut_after: Option<usize>) -> ApplyOptions {
    ApplyOptions {
        today: Some(19_500),
        cut_after,
    }
}

/// A temporary directory, in memory where the machine has /dev/shm: the journal syncs every
/// record, and these tests apply a few hundred times.
fn tempdir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::tempdir_in(shm) {
            return t;
        }
    }
    tempfile::tempdir().unwrap()
}

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let t = tempdir();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    base(&root);
    (t, root)
}

/// The tree after one uninterrupted apply.
fn clean(cfg: &ValidConfig) -> BTreeMap<PathBuf, String> {
    let (_t, root) = fresh();
    apply_with(cfg, &root, &MapFetcher::new(), &options(None)).unwrap();
    walk(&root)
}

fn diff(want: &BTreeMap<PathBuf, String>, got: &BTreeMap<PathBuf, String>) -> String {
    let mut lines = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            Some(g) if g == w => {}
            Some(g) => lines.push(format!("  {}: want {w}, got {g}", p.display())),
            None => lines.push(format!("  {}: missing ({w})", p.display())),
        }
    }
    for (p, g) in got {
        if !want.contains_key(p) {
            lines.push(format!("  {}: extra ({g})", p.display()));
        }
    }
    lines.join("\n")
}

/// Cuts the apply of `json` after each number of steps in turn (and, for each, the rerun
/// after each of `second` steps), finishes it with one more run, and compares with a clean
/// apply. Returns how many steps an uninterrupted apply takes.
fn cut_everywhere(json: &str, second: &[usize]) -> usize {
    let cfg = config(json);
    let want = clean(&cfg);
    let f = MapFetcher::new();
    for first in 0.. {
        let (_t, root) = fresh();
        if apply_with(&cfg, &root, &f, &options(Some(first))).is_ok() {
            assert_eq!(walk(&root), want);
            return first;
        }
        let cut = walk(&root);
        for &again in second.iter().chain([&usize::MAX]) {
            let t2 = tempdir();
            let root2 = t2.path().join("root");
            fs::create_dir(&root2).unwrap();
            copy_tree(&root, &root2);
            let cut_again = (again != usize::MAX).then_some(again);
            let second_run = apply_with(&cfg, &root2, &f, &options(cut_again));
            if second_run.is_err() {
                let out = apply_with(&cfg, &root2, &f, &options(None));
                assert!(out.is_ok(), "cut after {first}, then {again}: {out:?}");
            }
            let got = walk(&root2);
            assert!(
                got == want,
                "cut after {first} steps{}; the rerun differs from a clean apply:\n{}\n(the tree at the cut: {cut:#?})",
                if again == usize::MAX { String::new() } else { format!(" and again after {again}") },
                diff(&want, &got)
            );
        }
    }
    unreachable!()
}

/// Copies a tree as it is (modes, owners, symlinks, hard links).
fn copy_tree(from: &Path, to: &Path) {
    let mut seen: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in fs::read_dir(from.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let (src, dst) = (from.join(&r), to.join(&r));
            let m = fs::symlink_metadata(&src).unwrap();
            if m.file_type().is_symlink() {
                symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
            } else if m.is_dir() {
                fs::create_dir(&dst).unwrap();
                stack.push(r);
            } else if let Some(first) = seen.get(&m.ino()) {
                fs::hard_link(to.join(first), &dst).unwrap();
            } else {
                fs::copy(&src, &dst).unwrap();
                seen.insert(m.ino(), r);
            }
            if !m.file_type().is_symlink() {
                fs::set_permissions(&dst, fs::Permissions::from_mode(m.mode() & 0o7777)).unwrap();
            }
            // Owners too, where the test may set them (as root).
            let _ = std::os::unix::fs::lchown(&dst, Some(m.uid()), Some(m.gid()));
        }
    }
}

#[test]
fn the_clean_apply_does_what_the_config_says() {
    let want = clean(&config(V3));
    let get = |p: &str| want.get(Path::new(p)).cloned().unwrap_or_default();
    assert!(get("etc/hosts").contains(r#""127.0.0.1 localhost\n10.0.0.1 a\n10.0.0.2 b\n""#));
    assert!(get("etc/hosts").starts_with("file 0640"));
    assert!(get("var/log/app.log").contains(r#""start\nmore\n""#));
    assert!(get("srv/data/hard.conf").contains("links 2 first etc/new.conf"));
    assert_eq!(get("etc/old-link"), "link -> /nowhere");
    assert_eq!(get("etc/systemd/system/bar.service"), "link -> /dev/null");
    assert!(get("home/core/.config/app/x").starts_with("file"));
    assert!(get("home/core/.ssh/authorized_keys").contains("AAAAkey"));
    assert!(!want.contains_key(Path::new("home/old")));
    assert!(want
        .keys()
        .all(|p| !p.to_string_lossy().contains(".ignition")));
}

#[test]
fn a_v3_apply_cut_at_any_step_and_run_again_equals_one_clean_apply() {
    let steps = cut_everywhere(V3, &[]);
    assert!(steps > 60, "only {steps} steps: is the journal recording?");
}

#[test]
fn a_v2_apply_cut_at_any_step_and_run_again_equals_one_clean_apply() {
    let steps = cut_everywhere(V2, &[]);
    assert!(steps > 20, "only {steps} steps");
}

#[test]
fn a_rerun_cut_again_while_it_rolls_back_is_finished_by_the_next() {
    let early = [0, 1, 2, 3, 5, 8, 13];
    cut_everywhere(V2, &early);
    cut_everywhere(V3, &early);
}

#[test]
fn a_cut_apply_leaves_its_journal_and_the_rerun_says_it_resumed() {
    let cfg = config(V3);
    let (_t, root) = fresh();
    let f = MapFetcher::new();
    // Far enough to be in the middle of the user's operation.
    assert!(apply_with(&cfg, &root, &f, &options(Some(40))).is_err());
    let journal = fs::read(root.join(FILE)).unwrap();
    let progress = progress::replay(&progress::parse(&journal));
    assert_eq!(progress.digest.as_deref(), Some(&*progress::digest(&cfg)));
    assert!(progress.done > 0 && !progress.complete, "{progress:?}");
    let out = apply_with(&cfg, &root, &f, &options(None)).unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.starts_with("resuming an interrupted apply of this config")),
        "{:?}",
        out.warnings
    );
    assert!(
        !root.join(FILE).exists(),
        "apply deletes the journal at the end"
    );
    assert_eq!(walk(&root), clean(&cfg));
}

#[test]
fn another_config_does_not_resume_the_journal_and_says_so() {
    let (_t, root) = fresh();
    let f = MapFetcher::new();
    assert!(apply_with(&config(V3), &root, &f, &options(Some(45))).is_err());
    let out = apply_with(&config(V2), &root, &f, &options(None)).unwrap();
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("interrupted apply of another config")),
        "{:?}",
        out.warnings
    );
    let tree = walk(&root);
    assert!(
        tree.keys()
            .all(|p| !p.to_string_lossy().contains(".ignition")),
        "{tree:#?}"
    );
    assert!(tree[Path::new("etc/hosts")].contains("10.0.0.3 c\\n\""));
}

#[test]
fn one_apply_at_a_time_in_a_root() {
    let (_t, root) = fresh();
    let held = Journal::open(&root).unwrap();
    let err = apply_with(&config(V2), &root, &MapFetcher::new(), &options(None)).unwrap_err();
    assert!(
        matches!(err, ignition::ApplyError::Journal(JournalError::Busy(_))),
        "{err}"
    );
    drop(held);
    apply_with(&config(V2), &root, &MapFetcher::new(), &options(None)).unwrap();
}
