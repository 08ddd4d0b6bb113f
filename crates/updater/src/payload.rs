//! A release's files onto this node: the slot payload streamed into the inactive USR partition,
//! the kernel and initramfs into that slot's directory on the ESP, and only then, the slot armed.
//!
//!  * [`inactive_slot`]: the one rule for which slot may be written: the slot not booted, and
//!    only while the booted slot is the good one and the other is not armed to boot. Every
//!    write here takes its [`Inactive`] answer, so nothing can name the active slot.
//!  * [`slot_partition`]: the inactive slot's partition on the disk `/usr` is mounted from (via
//!    sysfs), and [`refuse_active_device`], the last check that it is not `/usr`'s own device.
//!  * [`write_payload`]: the payload, downloaded straight into the partition (no temporary copy)
//!    and hashed as it is written. A [`Checkpoint`] on ROOT records, every
//!    [`WriteOptions::checkpoint_every`] bytes and after the data is synced, how far it got; after
//!    a network error, a reboot or a power cut the next attempt re-hashes what the partition
//!    already holds up to there and asks the server for the rest (`Range`, through the
//!    installer's resuming reader, `installer::resume`). A payload larger than the partition is
//!    refused before anything is written. At the end the digest must be the signed one, and the
//!    partition is read back (page cache dropped) and hashed again; only then is there a
//!    [`Verified`] payload.
//!  * [`stage_boot_files`]: the kernel and initramfs into `keel/<slot>/` on the ESP, each
//!    through a temporary name, checked against its signed size and digest, synced and renamed;
//!    the slot's `release` record goes last.
//!  * [`arm`]: `set-next` for the slot, which takes a [`Verified`] payload and [`Staged`] boot
//!    files: a slot whose payload did not verify cannot be armed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use installer::http::Http;
use installer::resume::Resuming;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slots::booted::Booted;
use slots::layout::esp;
use slots::state::Phase;
use slots::store::{CheckedEsp, EspStore, Filesystems};
use slots::{BootState, Slot};

use crate::repo::TargetFile;

/// Where the payload checkpoint lives on ROOT by default.
pub const DEFAULT_CHECKPOINT: &str = "/var/lib/keel/updater/payload.checkpoint";
/// How often (bytes) the written data is synced and the checkpoint moved on, by default.
pub const CHECKPOINT_EVERY: u64 = 32 << 20;
const CHUNK: usize = 1 << 20;

/// The slot that may be written: never the booted one (see [`inactive_slot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inactive(Slot);

impl Inactive {
    /// The slot.
    pub fn slot(self) -> Slot {
        self.0
    }
}

/// Why no slot may be written now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotRefused {
    /// The live system has no slots.
    #[error("live system: the OS runs from RAM and has no slot to update")]
    Live,
    /// The booted slot is unknown.
    #[error(
        "the kernel command line names no keel.slot, so which slot is active is unknown; \
         writing neither"
    )]
    Unknown,
    /// The booted slot is on trial: the other one is the fallback.
    #[error(
        "slot {booted} is booted on trial and slot {good} is the good one it falls back to; \
         writing slot {good} would destroy the fallback. Mark slot {booted} good first"
    )]
    OnTrial {
        /// The booted slot.
        booted: Slot,
        /// The good slot.
        good: Slot,
    },
    /// The other slot is armed to boot next.
    #[error(
        "slot {0} is armed to boot next; writing it now would boot a half-written slot after \
         a power cut. Let it boot, or disarm it first"
    )]
    Armed(Slot),
}

/// The one rule for which slot the updater may write: the slot not booted, when the booted
/// slot is the good one (so the other is no fallback) and the other is not armed to boot next.
pub fn inactive_slot(booted: Booted, state: &BootState) -> Result<Inactive, SlotRefused> {
    let booted = match booted {
        Booted::Slot(s) => s,
        Booted::Live => return Err(SlotRefused::Live),
        Booted::Unknown => return Err(SlotRefused::Unknown),
    };
    if state.good != booted {
        return Err(SlotRefused::OnTrial {
            booted,
            good: state.good,
        });
    }
    let other = booted.other();
    if let Phase::Trial { slot, .. } = state.phase() {
        if slot == other {
            return Err(SlotRefused::Armed(other));
        }
    }
    Ok(Inactive(other))
}

/// The payload could not be written or did not verify; each names the cause.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The payload does not fit.
    #[error(
        "the payload {name} is {size} bytes, larger than slot {slot}'s partition {} ({room} \
         bytes); nothing was written",
        device.display()
    )]
    TooLarge {
        /// The target.
        name: String,
        /// Its size.
        size: u64,
        /// The slot.
        slot: Slot,
        /// The partition.
        device: PathBuf,
        /// The partition's size.
        room: u64,
    },
    /// The target device is the one `/usr` runs from.
    #[error(
        "{} is the device /usr is mounted from (the active slot); refusing to write it",
        .0.display()
    )]
    ActiveDevice(PathBuf),
    /// An I/O error, with what was being done.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// To what.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The download failed.
    #[error("downloading {url}: {why}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The server sent more or fewer bytes than signed.
    #[error("{name}: the server sent {got} bytes, the repository signs {size}; refusing it")]
    Length {
        /// The target.
        name: String,
        /// Bytes received (resumed ones included).
        got: u64,
        /// The signed size.
        size: u64,
    },
    /// The bytes do not match the signed digest.
    #[error(
        "{name}: SHA-256 {got}, but the repository signs {want}; the slot stays unarmed{}",
        if *.restart { " and the next attempt starts from the beginning" } else { "" }
    )]
    Digest {
        /// The target.
        name: String,
        /// What the bytes hash to.
        got: String,
        /// The signed digest.
        want: String,
        /// Whether the checkpoint was dropped.
        restart: bool,
    },
    /// The partition does not read back what was written.
    #[error(
        "slot {slot}'s partition {} does not read back the payload written to it (SHA-256 {got}); \
         the slot stays unarmed",
        device.display()
    )]
    ReadBack {
        /// The slot.
        slot: Slot,
        /// The partition.
        device: PathBuf,
        /// What it reads back as.
        got: String,
    },
    /// No partition for the slot could be found.
    #[error("finding slot {slot}'s partition: {why}")]
    Partition {
        /// The slot.
        slot: Slot,
        /// Why.
        why: String,
    },
    /// The ESP refused a write.
    #[error(transparent)]
    NotEsp(#[from] slots::store::NotEsp),
    /// Arming the slot failed.
    #[error("arming slot {slot}: {why}")]
    Arm {
        /// The slot.
        slot: Slot,
        /// Why.
        why: String,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PayloadError + 'a {
    move |source| PayloadError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Refuse a target device that is the one `/usr` runs from: `target_rdev` is the target's
/// device number if it is a block device, `usr_dev` the device `/usr` is on.
pub fn refuse_active_device(
    device: &Path,
    target_rdev: Option<u64>,
    usr_dev: u64,
) -> Result<(), PayloadError> {
    if target_rdev == Some(usr_dev) {
        return Err(PayloadError::ActiveDevice(device.to_path_buf()));
    }
    Ok(())
}

/// The partition of `slot` on the disk whose partition `usr_dev` (the device `/usr` is on) is,
/// found through sysfs under `sys` (`/sys`): `/dev/<name>` of the sibling whose `partition`
/// number is the slot's.
pub fn slot_partition(sys: &Path, usr_dev: u64, slot: Inactive) -> Result<PathBuf, PayloadError> {
    let slot = slot.slot();
    let fail = |why: String| PayloadError::Partition { slot, why };
    let (major, minor) = (
        nix::sys::stat::major(usr_dev),
        nix::sys::stat::minor(usr_dev),
    );
    let link = sys.join(format!("dev/block/{major}:{minor}"));
    let part = fs::canonicalize(&link).map_err(|e| {
        fail(format!(
            "/usr's device {major}:{minor}: {}: {e}",
            link.display()
        ))
    })?;
    if !part.join("partition").is_file() {
        return Err(fail(format!(
            "/usr's device {major}:{minor} ({}) is not a disk partition",
            part.display()
        )));
    }
    let disk = part.parent().ok_or_else(|| fail("no disk".into()))?;
    let want = slot.partition_number().to_string();
    for entry in fs::read_dir(disk).map_err(|e| fail(format!("{}: {e}", disk.display())))? {
        let entry = entry.map_err(|e| fail(e.to_string()))?;
        let number = fs::read_to_string(entry.path().join("partition")).unwrap_or_default();
        if number.trim() == want {
            return Ok(Path::new("/dev").join(entry.file_name()));
        }
    }
    Err(fail(format!(
        "the disk {} has no partition {want}",
        disk.display()
    )))
}

/// How far a payload download got, kept on ROOT across reboots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The target being written.
    pub target: String,
    /// Its signed SHA-256 (hex).
    pub sha256: String,
    /// Its signed size.
    pub size: u64,
    /// The slot written.
    pub slot: String,
    /// The partition written.
    pub device: PathBuf,
    /// Bytes at the start of the partition that are written and synced.
    pub offset: u64,
}

impl Checkpoint {
    fn load(path: &Path) -> Option<Checkpoint> {
        serde_json::from_slice(&fs::read(path).ok()?).ok()
    }

    /// Save through a temporary name, synced, renamed, the directory synced.
    fn save(&self, path: &Path) -> Result<(), PayloadError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let tmp = path.with_extension("new");
        let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
        f.write_all(&serde_json::to_vec(self).expect("a checkpoint serializes"))
            .and_then(|()| f.sync_all())
            .map_err(io_err("writing", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("renaming onto", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("syncing", dir))
    }
}

/// What [`write_payload`] needs.
#[derive(Clone, Debug)]
pub struct WriteOptions<'a> {
    /// The payload as the repository signs it.
    pub file: &'a TargetFile,
    /// The slot to write.
    pub slot: Inactive,
    /// Its partition (a plain file in tests).
    pub device: &'a Path,
    /// The device `/usr` is mounted from (`stat /usr` `st_dev`), never written.
    pub usr_dev: u64,
    /// The checkpoint file ([`DEFAULT_CHECKPOINT`]).
    pub checkpoint: &'a Path,
    /// Sync and move the checkpoint on every this many bytes ([`CHECKPOINT_EVERY`]).
    pub checkpoint_every: u64,
    /// The HTTP client (retries, stall timeout).
    pub http: &'a Http,
}

/// A payload written to a slot and verified there; only [`write_payload`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    slot: Slot,
    /// The target written.
    pub target: String,
    /// Bytes that came over the network this time.
    pub downloaded: u64,
    /// Where this attempt started (0, or a checkpoint's offset).
    pub resumed_from: u64,
}

impl Verified {
    /// The slot that holds the payload.
    pub fn slot(&self) -> Slot {
        self.slot
    }
}

/// Hash the first `len` bytes of `dev` into `hasher`.
fn hash_prefix(dev: &File, path: &Path, len: u64, hasher: &mut Sha256) -> Result<(), PayloadError> {
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < len {
        let n = CHUNK.min((len - pos) as usize);
        dev.read_exact_at(&mut buf[..n], pos)
            .map_err(io_err("reading back", path))?;
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(())
}

/// Stream the payload into the slot's partition, resuming from a checkpoint, and verify it
/// there (see the module doc).
pub fn write_payload(o: &WriteOptions) -> Result<Verified, PayloadError> {
    let (file, path, slot) = (o.file, o.device, o.slot.slot());
    let meta = fs::metadata(path).map_err(io_err("looking at", path))?;
    let rdev = meta.file_type().is_block_device().then(|| meta.rdev());
    refuse_active_device(path, rdev, o.usr_dev)?;
    // Never created or truncated: a partition is there, or this is an error.
    let mut dev = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))?;
    let room = dev.seek(SeekFrom::End(0)).map_err(io_err("sizing", path))?;
    if file.size > room {
        return Err(PayloadError::TooLarge {
            name: file.name.clone(),
            size: file.size,
            slot,
            device: path.to_path_buf(),
            room,
        });
    }
    let mut mark = Checkpoint {
        target: file.name.clone(),
        sha256: hex::encode(file.sha256),
        size: file.size,
        slot: slot.to_string(),
        device: path.to_path_buf(),
        offset: 0,
    };
    let start = match Checkpoint::load(o.checkpoint) {
        Some(c)
            if Checkpoint {
                offset: 0,
                ..c.clone()
            } == mark
                && c.offset <= file.size =>
        {
            c.offset
        }
        _ => 0,
    };
    let mut hasher = Sha256::new();
    hash_prefix(&dev, path, start, &mut hasher)?;
    let mut pos = start;
    if pos < file.size {
        let download = |why: String| PayloadError::Download {
            url: file.url.to_string(),
            why,
        };
        let mut body = Resuming::open_from(o.http, file.url.as_str(), pos, Some(file.size))
            .map_err(|e| download(format!("{e:#}")))?;
        let mut buf = vec![0u8; CHUNK];
        let mut synced = pos;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(download(e.to_string())),
            };
            if pos + n as u64 > file.size {
                return Err(PayloadError::Length {
                    name: file.name.clone(),
                    got: pos + n as u64,
                    size: file.size,
                });
            }
            dev.write_all_at(&buf[..n], pos)
                .map_err(io_err("writing", path))?;
            hasher.update(&buf[..n]);
            pos += n as u64;
            if pos - synced >= o.checkpoint_every {
                dev.sync_data().map_err(io_err("syncing", path))?;
                mark.offset = pos;
                mark.save(o.checkpoint)?;
                synced = pos;
            }
        }
        if pos != file.size {
            return Err(PayloadError::Length {
                name: file.name.clone(),
                got: pos,
                size: file.size,
            });
        }
        dev.sync_all().map_err(io_err("syncing", path))?;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != file.sha256 {
        // What is on the partition is not the payload: start over next time.
        let _ = fs::remove_file(o.checkpoint);
        return Err(PayloadError::Digest {
            name: file.name.clone(),
            got: hex::encode(digest),
            want: hex::encode(file.sha256),
            restart: true,
        });
    }
    mark.offset = file.size;
    mark.save(o.checkpoint)?;
    // Read back from the device itself, not from the page cache.
    let _ = nix::fcntl::posix_fadvise(
        std::os::fd::AsRawFd::as_raw_fd(&dev),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    let mut again = Sha256::new();
    hash_prefix(&dev, path, file.size, &mut again)?;
    let again: [u8; 32] = again.finalize().into();
    if again != file.sha256 {
        let _ = fs::remove_file(o.checkpoint);
        return Err(PayloadError::ReadBack {
            slot,
            device: path.to_path_buf(),
            got: hex::encode(again),
        });
    }
    Ok(Verified {
        slot,
        target: file.name.clone(),
        downloaded: pos - start,
        resumed_from: start,
    })
}

/// Boot files staged on the ESP for a slot; only [`stage_boot_files`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    slot: Slot,
    /// The release's version, as recorded in the slot's `release` file.
    pub version: String,
}

/// Write `src` (signed as `file`) to `dest` through `dest.new`: checked against the signed size
/// and digest, synced, renamed over `dest`.
fn stage_file(src: &mut dyn Read, file: &TargetFile, dest: &Path) -> Result<(), PayloadError> {
    let tmp = dest.with_extension("new");
    let mut out = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(PayloadError::Download {
                    url: file.url.to_string(),
                    why: e.to_string(),
                });
            }
        };
        got += n as u64;
        if got > file.size {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io_err("writing", &tmp))?;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let refused = if got != file.size {
        Some(PayloadError::Length {
            name: file.name.clone(),
            got,
            size: file.size,
        })
    } else if digest != file.sha256 {
        Some(PayloadError::Digest {
            name: file.name.clone(),
            got: hex::encode(digest),
            want: hex::encode(file.sha256),
            restart: false,
        })
    } else {
        None
    };
    if let Some(e) = refused {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    out.sync_all().map_err(io_err("syncing", &tmp))?;
    fs::rename(&tmp, dest).map_err(io_err("renaming onto", dest))
}

/// The kernel and initramfs of release `version` into the inactive slot's directory on the
/// checked ESP, each read from its source (the repository, through `open`) and checked against
/// its signed size and digest; the slot's `release` record is removed first and written last,
/// so it never names a version whose files are not all there.
pub fn stage_boot_files(
    esp: &CheckedEsp,
    slot: Inactive,
    version: &str,
    files: [(&TargetFile, &mut dyn Read); 2],
) -> Result<Staged, PayloadError> {
    let slot = slot.slot();
    let dir = esp.slot_dir(slot);
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let release = dir.join(esp::RELEASE);
    match fs::remove_file(&release) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(io_err("removing", &release)(e));
        }
        _ => {}
    }
    let [(kernel, kernel_src), (initrd, initrd_src)] = files;
    stage_file(kernel_src, kernel, &dir.join(esp::KERNEL))?;
    stage_file(initrd_src, initrd, &dir.join(esp::INITRD))?;
    let record = format!("VERSION={version}\nSLOT={slot}\n");
    let tmp = release.with_extension("new");
    fs::write(&tmp, record)
        .and_then(|()| File::open(&tmp)?.sync_all())
        .map_err(io_err("writing", &tmp))?;
    fs::rename(&tmp, &release).map_err(io_err("renaming onto", &release))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", &dir))?;
    Ok(Staged {
        slot,
        version: version.to_string(),
    })
}

/// Download a small signed file (kernel, initramfs) as a reader, for [`stage_boot_files`].
pub fn open_download(http: &Http, file: &TargetFile) -> Result<Resuming, PayloadError> {
    Resuming::open(http, file.url.as_str(), Some(file.size)).map_err(|e| PayloadError::Download {
        url: file.url.to_string(),
        why: format!("{e:#}"),
    })
}

/// Arm the slot for a trial boot (`updater set-next`), given its verified payload and staged
/// boot files for the same slot.
pub fn arm(
    store: &EspStore,
    fs: &dyn Filesystems,
    booted: Booted,
    payload: &Verified,
    staged: &Staged,
    tries: u8,
) -> Result<String, PayloadError> {
    let slot = payload.slot;
    if staged.slot != slot {
        return Err(PayloadError::Arm {
            slot,
            why: format!("the boot files were staged for slot {}", staged.slot),
        });
    }
    crate::commands::set_next(store, fs, booted, slot, tries).map_err(|e| PayloadError::Arm {
        slot,
        why: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests;
