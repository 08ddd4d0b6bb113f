//! The install target: a block device, or a plain file written exactly like one (tests, images).
//!
//! A file is never busy and has no partition table for the kernel to reread, but gets the same
//! treatment otherwise: the first MiB written last, both ends wiped on failure.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use nix::errno::Errno;

use crate::busy::{BlockDev, Host};
use crate::MIB;

/// Pauses before each BLKRRPART attempt while the disk answers EBUSY: udev holds a disk for a
/// moment while it probes it (about 9 s in all).
const BUSY_RETRIES_MS: [u64; 8] = [0, 100, 200, 500, 1000, 1000, 2000, 4000];

nix::ioctl_none!(
    /// `BLKRRPART`: ask the kernel to reread the partition table of a whole-disk device.
    blkrrpart,
    0x12,
    95
);
nix::ioctl_read_bad!(
    /// `BLKSSZGET`: the logical sector size of a block device, in bytes.
    blksszget,
    0x1268,
    libc::c_int
);

/// Keel's image is laid out in 512-byte sectors.
pub const SECTOR: u64 = 512;

/// What the target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A block device (a disk).
    Block,
    /// A regular file of fixed size.
    File,
}

/// An open install target.
#[derive(Debug)]
pub struct Device {
    path: PathBuf,
    file: File,
    kind: Kind,
    size: u64,
    rdev: u64,
    touched: bool,
}

fn majmin(rdev: u64) -> String {
    format!("{}:{}", libc::major(rdev), libc::minor(rdev))
}

impl Device {
    /// Open `path` for writing; it must be a whole disk or a regular file with a size.
    pub fn open(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{} does not exist", path.display()))?;
        let kind = if meta.file_type().is_block_device() {
            Kind::Block
        } else if meta.is_file() {
            Kind::File
        } else {
            bail!("{} is not a block device", path.display());
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("{} is not writable (are you root?)", path.display()))?;
        let size = file
            .seek(SeekFrom::End(0))
            .with_context(|| format!("finding the size of {}", path.display()))?;
        file.rewind()?;
        ensure!(
            size >= 2 * MIB,
            "{} holds {size} bytes: too small for a disk",
            path.display()
        );
        let dev = Device {
            path: path.to_path_buf(),
            file,
            kind,
            size,
            rdev: meta.rdev(),
            touched: false,
        };
        if kind == Kind::Block {
            let mut ss: libc::c_int = 0;
            // SAFETY: BLKSSZGET writes one c_int into `ss`; the fd is an open block device.
            unsafe { blksszget(dev.file_fd(), &mut ss) }
                .with_context(|| format!("reading the sector size of {}", path.display()))?;
            ensure!(
                ss as u64 == SECTOR,
                "{} has {ss}-byte logical sectors; Keel's image is laid out for {SECTOR}-byte sectors",
                path.display()
            );
        }
        Ok(dev)
    }

    fn file_fd(&self) -> libc::c_int {
        use std::os::fd::AsRawFd;
        self.file.as_raw_fd()
    }

    /// The path given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Block device or file.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The open file (for reading back, e.g. the OEM filesystem).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether anything was written yet (then a failure must wipe).
    pub fn touched(&self) -> bool {
        self.touched
    }

    /// Refuse a disk that is mounted, swap, held, or that the kernel will not let go of. Files are
    /// never busy.
    pub fn check_exclusive(&self, host: &Host) -> Result<()> {
        if self.kind == Kind::File {
            return Ok(());
        }
        let dev = majmin(self.rdev);
        let name = host.block_name(&dev)?;
        ensure!(
            !host
                .sys_dir
                .join("class/block")
                .join(&name)
                .join("partition")
                .exists(),
            "{} is a partition ({name}); give the whole disk",
            self.path.display()
        );
        let busy = host.busy(&BlockDev {
            name: name.clone(),
            dev,
        })?;
        if !busy.is_empty() {
            let list: Vec<String> = busy.iter().map(|u| format!("    {u}")).collect();
            bail!(
                "refusing to write to {}: partitions in use:\n{}",
                self.path.display(),
                list.join("\n")
            );
        }
        // The kernel only rereads the table of a disk nobody holds: the last word on "in use".
        // Nothing is mounted, swap or held (checked above), so a short EBUSY is udev probing the
        // disk (right after a previous install rewrote its table, for one): ask again for a few
        // seconds before calling the disk busy.
        let mut answer = Err(Errno::EBUSY);
        for ms in BUSY_RETRIES_MS {
            std::thread::sleep(Duration::from_millis(ms));
            // SAFETY: BLKRRPART takes no argument; the fd is an open block device.
            answer = unsafe { blkrrpart(self.file_fd()) };
            if answer != Err(Errno::EBUSY) {
                break;
            }
        }
        match answer {
            Ok(_) => Ok(()),
            Err(Errno::EBUSY) => bail!(
                "refusing to write to {}: the kernel cannot reread its partition table (EBUSY for {} s): the disk is in use",
                self.path.display(),
                BUSY_RETRIES_MS.iter().sum::<u64>() / 1000
            ),
            Err(Errno::EINVAL) => {
                eprintln!("coreos-install: warning: {} may not support partitions (BLKRRPART: EINVAL)", self.path.display());
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("rereading the partition table of {}", self.path.display())),
        }
    }

    /// Write `buf` at `offset`; never past the end.
    pub fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let end = offset + buf.len() as u64;
        ensure!(
            end <= self.size,
            "the image does not fit: {} holds {} bytes, the image needs at least {end}",
            self.path.display(),
            self.size
        );
        self.touched = true;
        self.file.write_all_at(buf, offset).with_context(|| {
            format!(
                "writing {} bytes at offset {offset} of {}",
                buf.len(),
                self.path.display()
            )
        })
    }

    /// Flush everything to the disk.
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("syncing {}", self.path.display()))
    }

    /// Zero the first MiB (MBR, primary GPT) and the last MiB (backup GPT), plus the MiB before
    /// each of `more_ends` (e.g. where a written image's own backup GPT lies), and sync: the
    /// disk then has no partition table anyone would boot from.
    pub fn wipe(&mut self, more_ends: &[u64]) -> Result<()> {
        let zeros = vec![0u8; MIB as usize];
        let mut ranges = vec![
            (0, MIB.min(self.size)),
            (self.size.saturating_sub(MIB), self.size),
        ];
        for &end in more_ends {
            let end = end.min(self.size);
            if end > MIB {
                ranges.push((end.saturating_sub(MIB).max(MIB), end));
            }
        }
        self.touched = true;
        for (start, end) in ranges {
            self.file
                .write_all_at(&zeros[..(end - start) as usize], start)
                .with_context(|| {
                    format!("zeroing bytes {start}..{end} of {}", self.path.display())
                })?;
        }
        self.sync()
    }

    /// Have the kernel reread the partition table (retried: udev may hold the disk briefly).
    pub fn reread_partitions(&self) -> Result<()> {
        if self.kind == Kind::File {
            return Ok(());
        }
        let mut last = Errno::UnknownErrno;
        for ms in BUSY_RETRIES_MS {
            std::thread::sleep(Duration::from_millis(ms));
            // SAFETY: as in check_exclusive.
            match unsafe { blkrrpart(self.file_fd()) } {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
        }
        bail!(
            "failed to reread the partition table of {}: {last}",
            self.path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_target_is_never_busy_and_wipes_both_ends() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        std::fs::write(&p, vec![0xaau8; (8 * MIB) as usize]).unwrap();
        let mut dev = Device::open(&p).unwrap();
        assert_eq!((dev.kind(), dev.size()), (Kind::File, 8 * MIB));
        dev.check_exclusive(&Host {
            proc_dir: "/nonexistent".into(),
            sys_dir: "/nonexistent".into(),
        })
        .unwrap();
        assert!(!dev.touched());
        dev.wipe(&[5 * MIB]).unwrap();
        let back = std::fs::read(&p).unwrap();
        let zero = |r: std::ops::Range<u64>| {
            back[r.start as usize..r.end as usize]
                .iter()
                .all(|&b| b == 0)
        };
        assert!(zero(0..MIB) && zero(4 * MIB..5 * MIB) && zero(7 * MIB..8 * MIB));
        assert!(back[MIB as usize..(4 * MIB) as usize]
            .iter()
            .all(|&b| b == 0xaa));
        assert!(back[(5 * MIB) as usize..(7 * MIB) as usize]
            .iter()
            .all(|&b| b == 0xaa));
    }

    #[test]
    fn writes_past_the_end_and_odd_targets_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        std::fs::File::create(&p).unwrap().set_len(4 * MIB).unwrap();
        let mut dev = Device::open(&p).unwrap();
        let err = dev.write_at(&[1, 2], 4 * MIB - 1).unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        let err = Device::open(t.path()).unwrap_err().to_string();
        assert!(err.contains("is not a block device"), "{err}");
        let err = Device::open(&t.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
        std::fs::File::create(t.path().join("empty")).unwrap();
        let err = Device::open(&t.path().join("empty"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("too small"), "{err}");
    }
}
