//! FAT filesystems edited in place through the `fatfs` crate: the one way Keel's programs read
//! and write the ESP and OEM partitions when they are not mounted (image-build filling the
//! partition images, the installer writing `config.ign` to OEM, the test harness customizing
//! a disk image). No mount, no loop device, no vfat module, no mtools.
//!
//! A [`Fat`] is a FAT filesystem in a byte range of a file: a whole partition image, or one
//! partition of a disk image or block device, read and written with positioned I/O so nothing
//! outside the range is touched. Paths inside it are `/`-separated, with or without a leading
//! `/`, and are matched without regard to case, as FAT does. A running node edits its mounted
//! ESP through the filesystem instead ([`crate::store`]).
//!
//! Directories fatfs 0.3 creates are repaired when the filesystem is closed, so that
//! `fsck.fat` finds nothing to fix: see [`repair`].

mod repair;

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Reading or writing a FAT filesystem failed; the message says what and where.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct FatError {
    what: String,
    source: io::Error,
}

impl FatError {
    /// The kind of the I/O error underneath (`NotFound` for a missing file or directory).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// Whether the error is a file or directory that does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind() == io::ErrorKind::NotFound
    }
}

/// A byte range of a file, seen as a disk of its own.
struct Region {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Region {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let n = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Region {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the filesystem",
            ));
        }
        let n = self.file.write_at(&buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Region {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) if p <= self.len => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the filesystem",
            )),
        }
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name (the long name when it has one).
    pub name: String,
    /// A directory, not a file.
    pub is_dir: bool,
    /// Size in bytes (0 for a directory).
    pub len: u64,
}

/// A FAT filesystem open for reading and writing. [`Fat::close`] writes out what is pending and
/// reports errors; dropping it does the same but cannot report them.
pub struct Fat {
    /// `None` only once closed.
    fs: Option<fatfs::FileSystem<Region>>,
    name: String,
    /// The same file, for [`repair`] once fatfs is done with it.
    raw: File,
    start: u64,
    /// Whether a directory was created (and so needs [`repair`]).
    made_dirs: Cell<bool>,
}

/// The path components of `path`: no empty ones, no leading `/`.
fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

impl Fat {
    /// The FAT filesystem in bytes `start..start + len` of `file`; `name` says where it is in
    /// error messages (e.g. "the OEM filesystem at offset 1234 of /dev/sda").
    pub fn open(
        file: File,
        start: u64,
        len: u64,
        name: impl Into<String>,
    ) -> Result<Fat, FatError> {
        let name = name.into();
        let raw = file.try_clone().map_err(|source| FatError {
            what: format!("opening {name}"),
            source,
        })?;
        let region = Region {
            file,
            start,
            len,
            pos: 0,
        };
        let fs =
            fatfs::FileSystem::new(region, fatfs::FsOptions::new()).map_err(|source| FatError {
                what: format!("opening {name} as FAT"),
                source,
            })?;
        Ok(Fat {
            fs: Some(fs),
            name,
            raw,
            start,
            made_dirs: Cell::new(false),
        })
    }

    fn fs(&self) -> &fatfs::FileSystem<Region> {
        self.fs.as_ref().expect("a Fat is open until closed")
    }

    /// The FAT filesystem that is the whole file at `path` (a partition image).
    pub fn open_image(path: &Path) -> Result<Fat, FatError> {
        let err = |source| FatError {
            what: format!("opening {}", path.display()),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        Fat::open(file, 0, len, path.display().to_string())
    }

    fn err(&self, what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> FatError {
        let what = format!("{what} on {}", self.name);
        move |source| FatError { what, source }
    }

    /// The contents of the file `path`.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, FatError> {
        let mut out = Vec::new();
        self.fs()
            .root_dir()
            .open_file(&components(path).join("/"))
            .and_then(|mut f| f.read_to_end(&mut out))
            .map_err(self.err(format!("reading {path}")))?;
        Ok(out)
    }

    /// Create the directory `path` and its parents, as far as they do not exist.
    pub fn mkdir_all(&self, path: &str) -> Result<(), FatError> {
        let mut dir = self.fs().root_dir();
        for c in components(path) {
            dir = match dir.open_dir(c) {
                Ok(d) => d,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.made_dirs.set(true);
                    dir.create_dir(c)
                        .map_err(self.err(format!("creating directory {path}")))?
                }
                Err(e) => return Err(self.err(format!("creating directory {path}"))(e)),
            };
        }
        Ok(())
    }

    /// Write the file `path` with what `from` reads, replacing any file of that name and
    /// creating its parent directories.
    pub fn write_from(&self, path: &str, from: &mut dyn Read) -> Result<(), FatError> {
        let parts = components(path);
        let Some((name, parents)) = parts.split_last() else {
            return Err(FatError {
                what: format!("writing {path:?} on {}", self.name),
                source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
            });
        };
        self.mkdir_all(&parents.join("/"))?;
        let mut dir = self.fs().root_dir();
        if !parents.is_empty() {
            dir = dir
                .open_dir(&parents.join("/"))
                .map_err(self.err(format!("writing {path}")))?;
        }
        let write = |from: &mut dyn Read| -> io::Result<()> {
            let mut f = dir.create_file(name)?;
            f.truncate()?;
            io::copy(from, &mut f)?;
            f.flush()
        };
        write(from).map_err(self.err(format!("writing {path}")))
    }

    /// Write `bytes` as the file `path`, replacing any file of that name and creating its
    /// parent directories.
    pub fn write(&self, path: &str, mut bytes: &[u8]) -> Result<(), FatError> {
        self.write_from(path, &mut bytes)
    }

    /// Copy the host file `src` to `path` (see [`Fat::write`]).
    pub fn copy_in(&self, path: &str, src: &Path) -> Result<(), FatError> {
        let mut file = File::open(src).map_err(|source| FatError {
            what: format!("opening {}", src.display()),
            source,
        })?;
        self.write_from(path, &mut file)
    }

    /// The entries of the directory `path` (`""` or `/` for the root), without `.` and `..`,
    /// in the order the directory holds them.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, FatError> {
        let parts = components(path);
        let mut dir = self.fs().root_dir();
        if !parts.is_empty() {
            dir = dir
                .open_dir(&parts.join("/"))
                .map_err(self.err(format!("listing {path}")))?;
        }
        let mut out = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(self.err(format!("listing {path}")))?;
            let name = e.file_name();
            if name == "." || name == ".." {
                continue;
            }
            out.push(Entry {
                is_dir: e.is_dir(),
                len: if e.is_dir() { 0 } else { e.len() },
                name,
            });
        }
        Ok(out)
    }

    /// Write out everything pending (the FAT, the free-cluster count, the clean flag) and
    /// [`repair`] the directories created.
    pub fn close(mut self) -> Result<(), FatError> {
        self.finish().map_err(|source| FatError {
            what: format!("closing {}", self.name),
            source,
        })
    }

    fn finish(&mut self) -> io::Result<()> {
        if let Some(fs) = self.fs.take() {
            fs.unmount()?;
            if self.made_dirs.get() {
                repair::repair(&self.raw, self.start)?;
            }
        }
        Ok(())
    }
}

impl Drop for Fat {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Make an empty FAT filesystem labelled `label` (at most 11 characters) in bytes
/// `start..start + len` of `file`; fatfs picks FAT12, 16 or 32 by size. For tests and scratch
/// images: the images Keel ships get theirs from mkfs.vfat (image-build).
pub fn format(file: File, start: u64, len: u64, label: &str) -> Result<(), FatError> {
    let mut name = [b' '; 11];
    for (d, s) in name.iter_mut().zip(label.bytes()) {
        *d = s;
    }
    let region = Region {
        file,
        start,
        len,
        pos: 0,
    };
    fatfs::format_volume(region, fatfs::FormatVolumeOptions::new().volume_label(name)).map_err(
        |source| FatError {
            what: format!("formatting FAT {label} at offset {start}"),
            source,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch file with an 8 MiB FAT filesystem at offset 1 MiB, between bytes of 0xAA.
    fn scratch(dir: &Path) -> (std::path::PathBuf, u64, u64) {
        let path = dir.join("disk");
        let (start, len) = (1 << 20, 8 << 20);
        std::fs::write(&path, vec![0xAAu8; (start + len + (1 << 20)) as usize]).unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        format(file, start, len, "OEM").unwrap();
        (path, start, len)
    }

    fn open(path: &Path, start: u64, len: u64) -> Fat {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        Fat::open(file, start, len, "the scratch FAT").unwrap()
    }

    #[test]
    fn files_written_read_back_replace_older_ones_and_list() {
        let d = tempfile::tempdir().unwrap();
        let (path, start, len) = scratch(d.path());
        let fat = open(&path, start, len);
        fat.write("config.ign", &[b'x'; 5000]).unwrap();
        fat.write("/keel/A/release", b"VERSION=1\n").unwrap();
        fat.write("keel/A/vmlinuz", b"kernel").unwrap();
        fat.mkdir_all("keel/B").unwrap();
        fat.mkdir_all("keel/B").unwrap();
        fat.write("config.ign", b"{}").unwrap();
        fat.close().unwrap();

        let fat = open(&path, start, len);
        assert_eq!(fat.read("config.ign").unwrap(), b"{}");
        assert_eq!(fat.read("KEEL/a/RELEASE").unwrap(), b"VERSION=1\n");
        let names = |dir| -> Vec<(String, bool, u64)> {
            fat.list(dir)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.is_dir, e.len))
                .collect()
        };
        assert_eq!(
            names("/"),
            [("config.ign".into(), false, 2), ("keel".into(), true, 0)]
        );
        assert_eq!(
            names("keel"),
            [("A".into(), true, 0), ("B".into(), true, 0)]
        );
        assert_eq!(
            names("keel/A/"),
            [("release".into(), false, 10), ("vmlinuz".into(), false, 6)]
        );
        assert!(names("keel/B").is_empty());

        let err = fat.read("keel/first_boot").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(
            err.to_string()
                .starts_with("reading keel/first_boot on the scratch FAT: "),
            "{err}"
        );
        assert!(fat.list("nowhere").unwrap_err().is_not_found());
        assert!(fat.write("", b"x").is_err());
        fat.close().unwrap();

        // Nothing outside the filesystem's bytes changed.
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[..start as usize].iter().all(|&b| b == 0xAA));
        assert!(bytes[(start + len) as usize..].iter().all(|&b| b == 0xAA));
    }

    /// What `fsck.fat -n` finds wrong with the FAT image at `path` (nothing: `None`), when
    /// dosfstools is installed.
    fn fsck_findings(path: &Path) -> Option<String> {
        let out = std::process::Command::new("fsck.fat")
            .arg("-n")
            .arg(path)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (!out.status.success()).then_some(text)
    }

    #[test]
    fn directories_made_here_pass_fsck_on_fat12_16_and_32() {
        let d = tempfile::tempdir().unwrap();
        for (mib, fat32) in [(2u64, false), (20, false), (64, true)] {
            let img = d.path().join(format!("fat{mib}.img"));
            let _ = std::fs::remove_file(&img);
            let mut mkfs = std::process::Command::new("mkfs.vfat");
            if fat32 {
                mkfs.args(["-F", "32"]);
            }
            let made = mkfs
                .arg("-C")
                .arg(&img)
                .arg((mib * 1024).to_string())
                .output();
            if !made.is_ok_and(|o| o.status.success()) {
                // No dosfstools: fatfs formats it (FAT12 or 16 by size).
                let f = File::create(&img).unwrap();
                f.set_len(mib << 20).unwrap();
                format(f, 0, mib << 20, "T").unwrap();
            }
            let fat = Fat::open_image(&img).unwrap();
            fat.write("EFI/BOOT/BOOTX64.EFI", b"efi").unwrap();
            fat.write("keel/A/vmlinuz", b"k").unwrap();
            fat.mkdir_all("keel/B").unwrap();
            fat.write("keel/env1/grubenv", &[b'#'; 1024]).unwrap();
            // Enough entries to fill a directory's first cluster and go on into a second.
            for i in 0..40 {
                fat.write(&format!("keel/many/a-long-file-name-{i}.txt"), b"x")
                    .unwrap();
            }
            fat.close().unwrap();
            if let Some(findings) = fsck_findings(&img) {
                panic!("fsck.fat on a {mib} MiB FAT: {findings}");
            }
            // The repaired directories still read as they were written.
            let fat = Fat::open_image(&img).unwrap();
            assert_eq!(fat.read("keel/A/vmlinuz").unwrap(), b"k");
            assert_eq!(fat.list("keel/many").unwrap().len(), 40);
            let names: Vec<String> = fat
                .list("keel")
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert_eq!(names, ["A", "B", "env1", "many"]);
            // A later session adding to a repaired directory keeps it valid.
            fat.write("keel/B/vmlinuz", b"k2").unwrap();
            fat.mkdir_all("keel/B/sub").unwrap();
            fat.close().unwrap();
            if let Some(findings) = fsck_findings(&img) {
                panic!("fsck.fat on a {mib} MiB FAT after a second session: {findings}");
            }
        }
    }

    #[test]
    fn host_files_copy_in_and_a_whole_image_opens() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("esp.img");
        let file = File::create(&img).unwrap();
        file.set_len(40 << 20).unwrap();
        format(file, 0, 40 << 20, "EFI-SYSTEM").unwrap();
        let src = d.path().join("initrd");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &big).unwrap();

        let fat = Fat::open_image(&img).unwrap();
        fat.copy_in("EFI/BOOT/BOOTX64.EFI", &src).unwrap();
        fat.close().unwrap();
        let fat = Fat::open_image(&img).unwrap();
        assert_eq!(fat.read("efi/boot/bootx64.efi").unwrap(), big);
        assert!(Fat::open_image(&d.path().join("missing")).is_err());
    }

    #[test]
    fn a_file_that_is_not_fat_is_refused_with_its_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("zeros");
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        let err = Fat::open_image(&p).err().expect("not FAT");
        assert!(err.to_string().contains("zeros as FAT"), "{err}");
    }
}
