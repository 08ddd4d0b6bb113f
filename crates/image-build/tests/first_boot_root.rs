//! The initramfs's ROOT decision (`files/keel-root.sh`, sourced by `/init`) run against disk
//! image files, without root, loop devices or a VM: the real sfdisk (the same util-linux as the
//! initramfs's), mke2fs, wipefs and blkid, each behind a wrapper that records its call and can be
//! made to fail. The GPT is written by `slots::table` as the image build writes it; a separate
//! file stands for ROOT's partition device (`part_of` is stubbed to name it).
//!
//! Each case runs under busybox sh (as /init does) and under the host's sh.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use image_build::initramfs::{layout_sh, ROOT_LIB};
use slots::layout::{partitions, place, Content, Placed, Sizes, ROOT_NOT_CREATED_BIT};
use slots::table;

const MIB: u64 = 1 << 20;
const NEW: u64 = 1 << ROOT_NOT_CREATED_BIT;

/// The host program `name`, from PATH or the sbin directories.
fn real(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found: apt-get install fdisk e2fsprogs util-linux"))
}

/// The shells to run the script under: busybox's (the initramfs's) and the host's.
fn shells() -> Vec<Vec<String>> {
    let mut shells = vec![vec!["sh".to_string()]];
    if Path::new("/bin/busybox").exists() {
        shells.insert(0, vec!["/bin/busybox".into(), "sh".into()]);
    }
    shells
}

fn write_exec(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// One disk: `disk.img` with Keel's GPT (16 MiB bigger than the image, as a real disk is) and
/// `root.img` standing for its partition 9.
struct Rig {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    disk: PathBuf,
    root: PathBuf,
    disk_size: u64,
}

/// What one run of `root_prepare` did.
struct Run {
    /// Exit status of the script: 0 mounted-ready, 3 fatal.
    code: i32,
    /// Its output (log and FATAL lines).
    out: String,
    /// The tool calls, one per line ("mke2fs -F -q ...").
    calls: String,
}

impl Run {
    fn called(&self, prefix: &str) -> usize {
        self.calls.lines().filter(|l| l.starts_with(prefix)).count()
    }
}

impl Rig {
    /// A disk whose ROOT entry has the attribute bits `root_attrs`.
    fn new(root_attrs: u64) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let sizes = Sizes {
            esp_mib: 1,
            usr_mib: 1,
            oem_mib: 1,
            root_mib: 4,
        };
        let (mut placed, size): (Vec<Placed>, u64) = place(&partitions(sizes));
        for p in &mut placed {
            if p.spec.content == Content::Root {
                p.spec.attrs = root_attrs;
            }
        }
        let disk = d.join("disk.img");
        fs::File::create(&disk).unwrap().set_len(size).unwrap();
        table::write_table(&disk, &placed, uuid::Uuid::new_v4()).unwrap();
        // The image written to a larger disk: the backup GPT is no longer at the end.
        let disk_size = size + 16 * MIB;
        fs::OpenOptions::new()
            .write(true)
            .open(&disk)
            .unwrap()
            .set_len(disk_size)
            .unwrap();
        let root = d.join("root.img");
        fs::File::create(&root).unwrap().set_len(8 * MIB).unwrap();

        let sbin = d.join("sbin");
        let bin = d.join("bin");
        fs::create_dir_all(&sbin).unwrap();
        fs::create_dir_all(&bin).unwrap();
        for tool in ["sfdisk", "mke2fs", "wipefs", "blkid"] {
            write_exec(
                &sbin.join(tool),
                &format!(
                    "#!/bin/sh\n\
                     echo \"{tool} $*\" >> \"$KEEL_TEST_CALLS\"\n\
                     case \"{tool} $*\" in\n\
                     \"$KEEL_TEST_FAIL\"*) [ -z \"$KEEL_TEST_FAIL\" ] || {{ echo \"{tool}: injected failure\" >&2; exit 1; }} ;;\n\
                     esac\n\
                     exec {} \"$@\"\n",
                    real(tool).display()
                ),
            );
        }
        // The kernel is not asked to reread an image file's table.
        write_exec(
            &bin.join("blockdev"),
            "#!/bin/sh\necho \"blockdev $*\" >> \"$KEEL_TEST_CALLS\"\n",
        );
        fs::write(d.join("keel-layout.sh"), layout_sh()).unwrap();
        fs::write(d.join("keel-root.sh"), ROOT_LIB).unwrap();
        fs::write(
            d.join("driver.sh"),
            r#"T=$1
. "$T/keel-layout.sh"
KEEL_SBIN=$T/sbin
KEEL_DEV=$T
PATH=$T/bin:$PATH
. "$T/keel-root.sh"
log() { echo "log: $*"; }
fatal() { echo "FATAL: $*"; exit 3; }
wait_for() { "$@"; }
part_of() { [ "$1" = disk.img ] && [ "$2" = "$ROOT_PART" ] && echo "$KEEL_TEST_ROOTDEV"; }
root_prepare disk.img
echo "rootdev=$rootdev"
"#,
        )
        .unwrap();
        Rig {
            _dir: dir,
            dir: d,
            disk,
            root,
            disk_size,
        }
    }

    /// Run `root_prepare` under `shell`, with the tool call starting `fail` failing (if any).
    fn run_with(&self, shell: &[String], rootdev: &Path, fail: &str) -> Run {
        let calls = self.dir.join("calls");
        let _ = fs::remove_file(&calls);
        let out = Command::new(&shell[0])
            .args(&shell[1..])
            .arg(self.dir.join("driver.sh"))
            .arg(&self.dir)
            .env("KEEL_TEST_CALLS", &calls)
            .env("KEEL_TEST_FAIL", fail)
            .env("KEEL_TEST_ROOTDEV", rootdev)
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
            calls: fs::read_to_string(&calls).unwrap_or_default(),
        }
    }

    fn run(&self, shell: &[String]) -> Run {
        self.run_with(shell, &self.root, "")
    }

    /// ROOT's entry as the GPT reader sees it.
    fn root_entry(&self) -> table::FoundPartition {
        table::find_by_label(&self.disk, "ROOT").unwrap()
    }

    /// blkid's TAG for root.img ("" when none).
    fn blkid(&self, tag: &str) -> String {
        let out = Command::new(real("blkid"))
            .args(["-p", "-o", "value", "-s", tag])
            .arg(&self.root)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn mkfs(&self, fstype: &str) {
        let out = Command::new(real("mke2fs"))
            .args(["-F", "-q", "-t", fstype])
            .arg(&self.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}

fn assert_ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "root_prepare failed:\n{}\ncalls:\n{}",
        run.out, run.calls
    );
}

fn assert_fatal(run: &Run, words: &str) {
    assert_eq!(run.code, 3, "expected a fatal stop:\n{}", run.out);
    assert!(run.out.contains("FATAL: "), "{}", run.out);
    assert!(run.out.contains(words), "no {words:?} in:\n{}", run.out);
}

/// No tool that writes the disk or ROOT was run.
fn assert_untouched(run: &Run) {
    assert_eq!(run.called("mke2fs"), 0, "{}", run.calls);
    assert_eq!(run.called("wipefs"), 0, "{}", run.calls);
    for call in run.calls.lines().filter(|l| l.starts_with("sfdisk")) {
        let words: Vec<&str> = call.split(' ').collect();
        assert!(
            words.len() == 4 && words[1] == "--part-attrs",
            "sfdisk only reads ROOT's attributes, but ran: {call}"
        );
    }
}

#[test]
fn first_boot_grows_and_formats_root_then_clears_the_bit_and_later_boots_only_mount() {
    for shell in shells() {
        let rig = Rig::new(NEW);
        let run = rig.run(&shell);
        assert_ok(&run);
        assert!(run.out.contains("first boot: ROOT"), "{}", run.out);
        assert!(
            run.out.contains(&format!("rootdev={}", rig.root.display())),
            "{}",
            run.out
        );
        assert_eq!(
            run.called("sfdisk --relocate gpt-bak-std"),
            1,
            "{}",
            run.calls
        );
        assert_eq!(
            run.called("mke2fs -F -q -t ext4 -L ROOT"),
            1,
            "{}",
            run.calls
        );
        // The bit is cleared only after the filesystem is made.
        let lines: Vec<&str> = run.calls.lines().collect();
        let mkfs = lines.iter().position(|l| l.starts_with("mke2fs")).unwrap();
        let clear = lines
            .iter()
            .position(|l| l.starts_with("sfdisk --no-reread --no-tell-kernel --part-attrs"))
            .unwrap();
        assert!(mkfs < clear, "{}", run.calls);

        let root = rig.root_entry();
        assert_eq!(root.attrs, 0, "the bit is cleared");
        // ROOT grew to the last usable sector (the backup GPT takes the last 33).
        assert_eq!(root.offset + root.len, rig.disk_size - 33 * 512);
        assert_eq!(rig.blkid("TYPE"), "ext4");
        assert_eq!(rig.blkid("LABEL"), "ROOT");
        let uuid = rig.blkid("UUID");

        // Every later boot: ROOT is left as it is.
        let again = rig.run(&shell);
        assert_ok(&again);
        assert_untouched(&again);
        assert!(!again.out.contains("first boot"), "{}", again.out);
        assert_eq!(rig.blkid("UUID"), uuid, "ROOT was not made again");
    }
}

#[test]
fn a_cut_before_the_bit_is_cleared_makes_the_next_boot_create_root_again() {
    // Each failure leaves the disk as a power cut at that point would: ROOT grown, the bit
    // still set, ROOT empty / half made / fully made.
    for fail in ["mke2fs", "sfdisk --no-reread --no-tell-kernel --part-attrs"] {
        for shell in shells() {
            let rig = Rig::new(NEW);
            let cut = rig.run_with(&shell, &rig.root, fail);
            assert_fatal(&cut, "the next boot");
            assert_eq!(
                rig.root_entry().attrs,
                NEW,
                "still marked not created ({fail})"
            );
            let first = rig.blkid("UUID");

            let next = rig.run(&shell);
            assert_ok(&next);
            assert_eq!(next.called("mke2fs"), 1, "{}", next.calls);
            assert_eq!(rig.root_entry().attrs, 0);
            assert_eq!(rig.blkid("TYPE"), "ext4");
            assert_ne!(rig.blkid("UUID"), first, "ROOT was made afresh ({fail})");
        }
    }
}

#[test]
fn the_bit_is_the_only_thing_cleared_from_roots_attributes() {
    let shell = &shells()[0];
    let others = 1 | (1 << 48) | (1 << 60);
    let rig = Rig::new(NEW | others);
    assert_ok(&rig.run(shell));
    assert_eq!(rig.root_entry().attrs, others);
}

#[test]
fn a_disk_from_an_older_image_keeps_its_root() {
    for shell in shells() {
        let rig = Rig::new(0);
        rig.mkfs("ext4");
        let uuid = rig.blkid("UUID");
        let run = rig.run(&shell);
        assert_ok(&run);
        assert_untouched(&run);
        assert_eq!(rig.blkid("UUID"), uuid);
    }
}

#[test]
fn a_created_root_with_no_filesystem_is_never_formatted() {
    for shell in shells() {
        let rig = Rig::new(0);
        let run = rig.run(&shell);
        assert_fatal(&run, "no filesystem signature");
        assert!(run.out.contains("does not format it"), "{}", run.out);
        assert!(
            run.out
                .contains("sfdisk --part-attrs /dev/disk.img 9 GUID:56"),
            "{}",
            run.out
        );
        assert_untouched(&run);
        assert!(fs::read(&rig.root).unwrap().iter().all(|&b| b == 0));
    }
}

#[test]
fn an_unreadable_root_is_reported_as_such_and_not_formatted() {
    for shell in shells() {
        let rig = Rig::new(0);
        // A directory: it exists, but reading it as a device fails.
        let run = rig.run_with(&shell, &rig.dir, "");
        assert_fatal(&run, "cannot be read");
        assert_untouched(&run);
    }
}

#[test]
fn a_root_with_another_filesystem_is_refused() {
    for shell in shells() {
        let rig = Rig::new(0);
        rig.mkfs("ext2");
        let run = rig.run(&shell);
        assert_fatal(&run, "holds a ext2 filesystem, not ext4");
        assert_untouched(&run);
        assert_eq!(rig.blkid("TYPE"), "ext2");
    }
}

#[test]
fn an_unreadable_partition_table_stops_the_boot_without_formatting() {
    for shell in shells() {
        let rig = Rig::new(NEW);
        // Both GPT headers gone: nothing can say whether ROOT was created.
        let len = fs::metadata(&rig.disk).unwrap().len();
        fs::File::create(&rig.disk).unwrap().set_len(len).unwrap();
        let run = rig.run(&shell);
        assert_fatal(&run, "cannot read the attributes of ROOT");
        assert_untouched(&run);
    }
}
