//! `--esp DIR` that is not the mounted ESP: the commands that write refuse, naming the directory
//! and what is wrong, and leave it exactly as it was (issue 9: mark-good used to create the
//! boot state files there and report the slot good).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use slots::booted::Booted;
use slots::store::{EspStore, Filesystems, MountFacts, MSDOS_SUPER_MAGIC};
use slots::{BootState, Slot};
use updater::commands::{mark_good, set_next};
use updater::esp::Kernel;

/// Every file and directory under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path.clone());
                all.insert(path, None);
            } else {
                all.insert(path.clone(), Some(fs::read(&path).unwrap()));
            }
        }
    }
    all
}

/// Keel's ESP layout in a plain directory: everything but the FAT mount.
fn layout_copy(dir: &Path) {
    let store = EspStore::new(dir);
    for slot in Slot::ALL {
        fs::create_dir_all(store.slot_dir(slot)).unwrap();
        fs::write(store.slot_dir(slot).join("vmlinuz"), b"k").unwrap();
        fs::write(store.slot_dir(slot).join("initrd.img"), b"i").unwrap();
    }
    fs::write(store.grub_cfg_path(), "# keel\n").unwrap();
    let block = slots::store::encode_state(&BootState::factory()).unwrap();
    for copy in [1, 2] {
        fs::create_dir_all(store.env_path(copy).parent().unwrap()).unwrap();
        fs::write(store.env_path(copy), block).unwrap();
    }
    // Damaged copy 2: mark-good on the real ESP would rewrite it.
    fs::write(store.env_path(2), b"junk").unwrap();
    fs::write(store.fallback_path(), "set keel_good=A\n").unwrap();
}

#[test]
fn the_updater_binary_refuses_an_empty_directory_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let esp = dir.path().join("not-the-esp");
    fs::create_dir(&esp).unwrap();
    let cmdline = dir.path().join("cmdline");
    fs::write(&cmdline, "keel.slot=A keel.usr=PARTUUID=x\n").unwrap();
    for args in [&["mark-good"][..], &["set-next", "B"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_updater"))
            .arg("--esp")
            .arg(&esp)
            .arg("--cmdline")
            .arg(&cmdline)
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stdout}");
        assert!(!stdout.contains("good"), "{args:?}: {stdout}");
        for want in [
            format!(
                "{} is not Keel's EFI system partition, so nothing was written there: ",
                esp.display()
            ),
            "it is not a mount point".to_string(),
            "not FAT (0x4d44)".to_string(),
            "missing from Keel's layout: keel/grub.cfg, keel/A/, keel/B/".to_string(),
        ] {
            assert!(stderr.contains(&want), "{args:?}: {want:?} in {stderr}");
        }
        assert_eq!(fs::read_dir(&esp).unwrap().count(), 0, "{args:?}");
    }
}

#[test]
fn a_copy_of_the_layout_that_is_not_a_fat_mount_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    layout_copy(dir.path());
    let store = EspStore::new(dir.path());
    let before = snapshot(dir.path());
    let a = Booted::Slot(Slot::A);
    let err = mark_good(&store, &Kernel, a).unwrap_err().to_string();
    assert!(err.contains("not a mount point"), "{err}");
    assert!(!err.contains("missing from Keel's layout"), "{err}");
    let err = set_next(&store, &Kernel, a, Slot::B, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not FAT"), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

/// Says every directory is a mounted FAT filesystem: only the layout decides.
struct Fat;
impl Filesystems for Fat {
    fn mount(&self, _: &Path) -> std::io::Result<MountFacts> {
        Ok(MountFacts {
            mount_point: true,
            fs_type: MSDOS_SUPER_MAGIC,
        })
    }
}

#[test]
fn a_fat_mount_without_keels_layout_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    layout_copy(dir.path());
    fs::remove_file(dir.path().join("keel/grub.cfg")).unwrap();
    fs::remove_dir_all(dir.path().join("keel/B")).unwrap();
    let store = EspStore::new(dir.path());
    let before = snapshot(dir.path());
    let err = mark_good(&store, &Fat, Booted::Slot(Slot::A))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(
            "nothing was written there: missing from Keel's layout: keel/grub.cfg, keel/B/"
        ),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);

    // With the layout whole, the same call goes through and repairs copy 2.
    fs::write(dir.path().join("keel/grub.cfg"), "# keel\n").unwrap();
    fs::create_dir(dir.path().join("keel/B")).unwrap();
    let msg = mark_good(&store, &Fat, Booted::Slot(Slot::A)).unwrap();
    assert_eq!(msg, "slot A is good (damaged boot state copies rewritten)");
    assert_eq!(
        fs::read(store.env_path(2)).unwrap(),
        fs::read(store.env_path(1)).unwrap()
    );
}

#[test]
fn a_live_system_needs_no_esp() {
    let dir = tempfile::tempdir().unwrap();
    let store = EspStore::new(dir.path());
    assert_eq!(
        mark_good(&store, &Kernel, Booted::Live).unwrap(),
        "live system: no slot to mark good"
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}
