//! The payload written into a file standing in for the partition, served on loopback; the ESP
//! a directory standing in for the mounted FAT filesystem.

use std::time::Duration;

use installer::cli::Retries;
use slots::store::{MountFacts, MSDOS_SUPER_MAGIC};

use super::*;
use crate::repo::{self, Source, TrustedRoot};
use crate::test_server::Server;

/// Stands in for the ESP's mounted FAT filesystem.
struct Fat;
impl Filesystems for Fat {
    fn mount(&self, _: &Path) -> io::Result<MountFacts> {
        Ok(MountFacts {
            mount_point: true,
            fs_type: MSDOS_SUPER_MAGIC,
        })
    }
}

const A: Booted = Booted::Slot(Slot::A);

fn http(retries: u32) -> Http {
    let mut http = Http::with_stall(Retries::Count(retries), Duration::from_secs(10)).unwrap();
    http.delay_scale = 0;
    http
}

/// A payload of `size` bytes served as `/payload.bin`, a partition file of `room` bytes.
struct Fixture {
    tmp: tempfile::TempDir,
    server: Server,
    payload: Vec<u8>,
    file: TargetFile,
}

impl Fixture {
    fn new(size: usize) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..size as u32).map(|i| (i * 7 % 253) as u8).collect();
        fs::write(tmp.path().join("payload.bin"), &payload).unwrap();
        let server = Server::start(tmp.path());
        let file = TargetFile {
            name: "0.2.0/usr.squashfs".into(),
            url: server.base.join("payload.bin").unwrap(),
            size: size as u64,
            sha256: Sha256::digest(&payload).into(),
        };
        Fixture {
            tmp,
            server,
            payload,
            file,
        }
    }

    fn partition(&self, room: u64) -> PathBuf {
        let path = self.tmp.path().join("usr-b.img");
        File::create(&path).unwrap().set_len(room).unwrap();
        path
    }

    fn checkpoint(&self) -> PathBuf {
        self.tmp
            .path()
            .join("var/lib/keel/updater/payload.checkpoint")
    }

    fn write(&self, device: &Path, retries: u32) -> Result<Verified, PayloadError> {
        write_payload(&WriteOptions {
            file: &self.file,
            slot: inactive_slot(A, &BootState::factory()).unwrap(),
            device,
            usr_dev: fs::metadata(self.tmp.path()).unwrap().dev(),
            checkpoint: &self.checkpoint(),
            checkpoint_every: 64 << 10,
            http: &http(retries),
        })
    }

    fn on_partition(&self, device: &Path) -> Vec<u8> {
        fs::read(device).unwrap()[..self.payload.len()].to_vec()
    }
}

#[test]
fn only_the_slot_not_booted_may_be_written_and_only_while_the_booted_one_is_good() {
    let factory = BootState::factory();
    let armed_b = factory.arm_trial(Slot::B, 3).unwrap();
    let spent_b = BootState {
        tries: 0,
        ..armed_b
    };
    let cases = [
        (A, factory, Ok(Inactive(Slot::B))),
        (A, spent_b, Ok(Inactive(Slot::B))),
        (
            Booted::Slot(Slot::B),
            armed_b,
            Err(SlotRefused::OnTrial {
                booted: Slot::B,
                good: Slot::A,
            }),
        ),
        (A, armed_b, Err(SlotRefused::Armed(Slot::B))),
        (Booted::Live, factory, Err(SlotRefused::Live)),
        (Booted::Unknown, factory, Err(SlotRefused::Unknown)),
    ];
    for (booted, state, want) in cases {
        assert_eq!(inactive_slot(booted, &state), want, "{booted} {state:?}");
    }
    // Whatever the state, the answer is never the booted slot.
    for booted in Slot::ALL {
        for good in Slot::ALL {
            for (next, tries) in [(Slot::A, 0), (Slot::B, 0), (Slot::A, 2), (Slot::B, 2)] {
                let state = BootState {
                    good,
                    next,
                    tries,
                    failed: None,
                };
                if let Ok(w) = inactive_slot(Booted::Slot(booted), &state) {
                    assert_ne!(w.slot(), booted);
                    assert_ne!(w.slot(), good);
                }
            }
        }
    }
    assert!(refuse_active_device(Path::new("/dev/vda3"), Some(0xfd03), 0xfd03).is_err());
    refuse_active_device(Path::new("/dev/vda4"), Some(0xfd04), 0xfd03).unwrap();
    refuse_active_device(Path::new("/tmp/img"), None, 0xfd03).unwrap();
}

#[test]
fn the_inactive_partition_is_the_sibling_of_the_usr_partition_in_sysfs() {
    let sys = tempfile::tempdir().unwrap();
    let disk = sys.path().join("devices/pci0000:00/virtio1/block/vda");
    for (name, number) in [("vda1", 1), ("vda3", 3), ("vda4", 4), ("vda9", 9)] {
        fs::create_dir_all(disk.join(name)).unwrap();
        fs::write(disk.join(name).join("partition"), format!("{number}\n")).unwrap();
    }
    fs::create_dir_all(sys.path().join("dev/block")).unwrap();
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/virtio1/block/vda/vda3",
        sys.path().join("dev/block/253:3"),
    )
    .unwrap();
    let usr = nix::sys::stat::makedev(253, 3);
    let got = slot_partition(sys.path(), usr, Inactive(Slot::B)).unwrap();
    assert_eq!(got, Path::new("/dev/vda4"));
    let err = slot_partition(sys.path(), nix::sys::stat::makedev(8, 1), Inactive(Slot::B));
    assert!(err.unwrap_err().to_string().contains("/usr's device 8:1"));
}

#[test]
fn the_payload_streams_into_the_partition_and_verifies() {
    let f = Fixture::new(300_000);
    let dev = f.partition(1 << 20);
    let v = f.write(&dev, 0).unwrap();
    assert_eq!(
        (v.slot(), v.resumed_from, v.downloaded),
        (Slot::B, 0, 300_000)
    );
    assert!(f.on_partition(&dev) == f.payload);
    // The rest of the partition is untouched, and it was never resized.
    assert_eq!(fs::metadata(&dev).unwrap().len(), 1 << 20);
    assert_eq!(f.server.requests_for("payload.bin"), [None]);
    // A complete checkpoint: the next attempt checks what is there and fetches nothing.
    let mark = Checkpoint::load(&f.checkpoint()).unwrap();
    assert_eq!(mark.offset, 300_000);
    let again = f.write(&dev, 0).unwrap();
    assert_eq!((again.resumed_from, again.downloaded), (300_000, 0));
    assert_eq!(f.server.requests_for("payload.bin").len(), 1);
}

#[test]
fn a_payload_larger_than_the_slot_is_refused_before_anything_is_written() {
    let f = Fixture::new(300_000);
    let dev = f.partition(299_999);
    let err = f.write(&dev, 0).unwrap_err();
    assert!(matches!(err, PayloadError::TooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "the payload 0.2.0/usr.squashfs is 300000 bytes, larger than slot B's partition"
        ),
        "{err}"
    );
    assert!(fs::read(&dev).unwrap().iter().all(|&b| b == 0));
    assert!(f.server.requests_for("payload.bin").is_empty());
    // A missing partition is an error too, never a file created in its place.
    let missing = f.tmp.path().join("no-such-partition");
    assert!(matches!(f.write(&missing, 0), Err(PayloadError::Io { .. })));
    assert!(!missing.exists());
}

#[test]
fn after_a_network_error_the_next_attempt_rehashes_the_written_part_and_resumes() {
    let f = Fixture::new(300_000);
    let dev = f.partition(1 << 20);
    // The connection breaks after 150,000 bytes and there are no retries left: the attempt
    // fails (as after a reboot or power cut, only the checkpoint on ROOT remains).
    f.server.cut_next(&[150_000]);
    let err = f.write(&dev, 0).unwrap_err();
    assert!(matches!(err, PayloadError::Download { .. }), "{err:?}");
    // Synced and recorded every 64 KiB or so (as the reads fall), never past what arrived.
    let at = Checkpoint::load(&f.checkpoint()).unwrap().offset;
    assert!((64 << 10..=150_000).contains(&at), "{at}");
    let v = f.write(&dev, 0).unwrap();
    assert_eq!((v.resumed_from, v.downloaded), (at, 300_000 - at));
    assert_eq!(f.server.requests_for("payload.bin"), [None, Some(at)]);
    assert!(f.on_partition(&dev) == f.payload);
}

#[test]
fn a_damaged_written_part_fails_the_digest_and_the_next_attempt_starts_over() {
    let f = Fixture::new(300_000);
    let dev = f.partition(1 << 20);
    f.server.cut_next(&[150_000]);
    f.write(&dev, 0).unwrap_err();
    // Something changed the partition under the checkpoint.
    let part = OpenOptions::new().write(true).open(&dev).unwrap();
    part.write_all_at(b"X", 1000).unwrap();
    let err = f.write(&dev, 0).unwrap_err();
    assert!(
        matches!(err, PayloadError::Digest { restart: true, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the next attempt starts from the beginning"),
        "{err}"
    );
    assert!(!f.checkpoint().exists());
    let v = f.write(&dev, 0).unwrap();
    assert_eq!(v.resumed_from, 0);
    assert!(f.on_partition(&dev) == f.payload);
}

#[test]
fn a_checkpoint_of_another_payload_or_slot_is_ignored() {
    let f = Fixture::new(300_000);
    let dev = f.partition(1 << 20);
    let stale = Checkpoint {
        target: "0.1.0/usr.squashfs".into(),
        sha256: "00".repeat(32),
        size: 300_000,
        slot: "B".into(),
        device: dev.clone(),
        offset: 200_000,
    };
    stale.save(&f.checkpoint()).unwrap();
    let v = f.write(&dev, 0).unwrap();
    assert_eq!(v.resumed_from, 0);
}

/// An ESP with both slots' boot files and the factory state; the store.
fn esp() -> (tempfile::TempDir, EspStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EspStore::new(dir.path());
    for slot in Slot::ALL {
        let d = store.slot_dir(slot);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(esp::KERNEL), b"old kernel").unwrap();
        fs::write(d.join(esp::INITRD), b"old initrd").unwrap();
    }
    fs::write(store.grub_cfg_path(), "# keel\n").unwrap();
    fs::write(
        store.slot_dir(Slot::B).join(esp::RELEASE),
        "VERSION=0.0.9\n",
    )
    .unwrap();
    fs::write(store.fallback_path(), "set keel_good=A\n").unwrap();
    store
        .check(&Fat)
        .unwrap()
        .save(&BootState::factory())
        .unwrap();
    (dir, store)
}

#[test]
fn a_release_from_the_repository_is_written_staged_and_armed_and_a_bad_one_is_not() {
    use image_build::update_repo::testing::{publish_release, test_keys};
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path());
    let repo_dir = image_build::update_repo::channel_dir(tmp.path(), "beta");
    publish_release(
        &repo_dir,
        "beta",
        "0.2.0",
        5,
        &test_keys(),
        jiff::Timestamp::now(),
    );
    let root = TrustedRoot::from_bytes(release::tuf::TEST_ROOT, release::TrustMode::Test).unwrap();
    let source = Source::from_base(&server.base.join("update/beta/").unwrap(), "beta").unwrap();
    let channel = repo::load(&root, &source, &tmp.path().join("tuf")).unwrap();
    let offer = &channel.releases[0];
    let (_esp_dir, store) = esp();
    let inactive = inactive_slot(A, &store.load().state).unwrap();
    let dev = tmp.path().join("usr-b.img");
    File::create(&dev).unwrap().set_len(1 << 20).unwrap();
    let http = http(0);
    let checkpoint = tmp.path().join("payload.checkpoint");
    let opts = |file| WriteOptions {
        file,
        slot: inactive,
        device: &dev,
        usr_dev: 0,
        checkpoint: &checkpoint,
        checkpoint_every: CHECKPOINT_EVERY,
        http: &http,
    };

    // A payload whose bytes are not the signed ones: refused, and the slot stays unarmed.
    let mut forged = offer.payload.clone();
    forged.url = offer.kernel.url.clone();
    forged.size = offer.kernel.size;
    let err = write_payload(&opts(&forged)).unwrap_err();
    assert!(matches!(err, PayloadError::Digest { .. }), "{err:?}");
    assert_eq!(store.load().state, BootState::factory());

    // Boot files that do not match their digest: refused, the old ones stay, no temporary file.
    let esp = store.check(&Fat).unwrap();
    let mut wrong = &b"not the kernel"[..];
    let mut initrd = open_download(&http, &offer.initrd).unwrap();
    let err = stage_boot_files(
        &esp,
        inactive,
        "0.2.0",
        [(&offer.kernel, &mut wrong), (&offer.initrd, &mut initrd)],
    )
    .unwrap_err();
    assert!(matches!(err, PayloadError::Length { .. }), "{err:?}");
    let b = store.slot_dir(Slot::B);
    assert_eq!(fs::read(b.join(esp::KERNEL)).unwrap(), b"old kernel");
    assert!(!b.join("vmlinuz.new").exists());
    assert_eq!(
        store.slot_version(Slot::B),
        None,
        "the release record went first"
    );

    // The real thing: written, verified, staged, armed.
    let verified = write_payload(&opts(&offer.payload)).unwrap();
    let mut kernel = open_download(&http, &offer.kernel).unwrap();
    let mut initrd = open_download(&http, &offer.initrd).unwrap();
    let staged = stage_boot_files(
        &esp,
        inactive,
        "0.2.0",
        [(&offer.kernel, &mut kernel), (&offer.initrd, &mut initrd)],
    )
    .unwrap();
    assert_eq!(
        fs::metadata(b.join(esp::KERNEL)).unwrap().len(),
        offer.kernel.size
    );
    assert_eq!(
        fs::metadata(b.join(esp::INITRD)).unwrap().len(),
        offer.initrd.size
    );
    assert_eq!(store.slot_version(Slot::B).as_deref(), Some("0.2.0"));
    let msg = arm(&store, &Fat, A, &verified, &staged, 3).unwrap();
    assert!(
        msg.starts_with("slot B will be tried at the next boot"),
        "{msg}"
    );
    assert_eq!(store.load().state.boots_next(), Slot::B);
    // Armed, slot B may not be written again until it has booted.
    assert_eq!(
        inactive_slot(A, &store.load().state),
        Err(SlotRefused::Armed(Slot::B))
    );
}
