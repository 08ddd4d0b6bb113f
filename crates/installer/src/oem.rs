//! Put the Ignition config on the installed disk's OEM partition as `config.ign`, where Keel's
//! first boot (and CL before it) looks for it.
//!
//! The partition is found through the GPT that was just written (label `OEM`, partition 6 in
//! Keel's layout) and its FAT filesystem is edited in place through the whole-disk device: no
//! mount, no vfat module, no mtools (the live system has none), and the same code works on a
//! plain file in tests.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use slots::table;

/// The OEM partition's label.
pub const OEM_LABEL: &str = "OEM";
/// Its number in Keel's layout.
pub const OEM_NUMBER: u32 = 6;
/// The config's file name on it.
pub const CONFIG_NAME: &str = "config.ign";

/// A byte range of a file, seen as a disk of its own.
struct Slice<'a> {
    file: &'a File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let n = self.file.read_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for Slice<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
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

impl Seek for Slice<'_> {
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
                "seek outside the partition",
            )),
        }
    }
}

/// The OEM partition of the disk at `path`: (offset, length).
fn find_oem(path: &Path) -> Result<(u64, u64)> {
    let parts = table::read_partitions(path)
        .with_context(|| format!("reading the partition table written to {}", path.display()))?;
    let oem = parts
        .iter()
        .find(|p| p.label == OEM_LABEL)
        .with_context(|| {
            let labels: Vec<String> = parts
                .iter()
                .map(|p| format!("{}:{}", p.number, p.label))
                .collect();
            format!(
                "{} has no partition labelled {OEM_LABEL} (found {})",
                path.display(),
                labels.join(", ")
            )
        })?;
    if oem.number != OEM_NUMBER {
        eprintln!(
            "coreos-install: note: the OEM partition is number {}, not {OEM_NUMBER}",
            oem.number
        );
    }
    Ok((oem.offset, oem.len))
}

/// Write `config` as `config.ign` into the OEM filesystem of the disk open as `file` (at `path`)
/// and read it back.
pub fn write_config(path: &Path, file: &File, config: &[u8]) -> Result<()> {
    let (start, len) = find_oem(path)?;
    let what = || {
        format!(
            "the OEM filesystem (FAT) at offset {start} of {}",
            path.display()
        )
    };
    let fs = fatfs::FileSystem::new(
        Slice {
            file,
            start,
            len,
            pos: 0,
        },
        fatfs::FsOptions::new(),
    )
    .with_context(what)?;
    {
        let root = fs.root_dir();
        let mut f = root
            .create_file(CONFIG_NAME)
            .with_context(|| format!("creating {CONFIG_NAME} on {}", what()))?;
        f.truncate()?;
        f.write_all(config)
            .with_context(|| format!("writing {CONFIG_NAME} on {}", what()))?;
        f.flush()?;
    }
    fs.unmount()
        .with_context(|| format!("closing {}", what()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    let back = read_config(path, file)?;
    ensure!(
        back == config,
        "{CONFIG_NAME} on {} does not read back as written",
        what()
    );
    Ok(())
}

/// Read `config.ign` from the OEM filesystem of the disk open as `file` (at `path`).
pub fn read_config(path: &Path, file: &File) -> Result<Vec<u8>> {
    let (start, len) = find_oem(path)?;
    let fs = fatfs::FileSystem::new(
        Slice {
            file,
            start,
            len,
            pos: 0,
        },
        fatfs::FsOptions::new(),
    )
    .with_context(|| format!("opening the OEM filesystem of {}", path.display()))?;
    let mut out = Vec::new();
    fs.root_dir()
        .open_file(CONFIG_NAME)?
        .read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slots::layout::{partitions, place, Sizes};

    #[test]
    fn config_lands_in_the_oem_fat_and_replaces_an_older_one() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        let sizes = Sizes {
            esp_mib: 1,
            usr_mib: 1,
            oem_mib: 8,
            root_mib: 1,
        };
        let (placed, size) = place(&partitions(sizes));
        File::create(&p).unwrap().set_len(size).unwrap();
        table::write_table(&p, &placed, uuid::Uuid::new_v4()).unwrap();
        let oem = placed.iter().find(|x| x.spec.label == "OEM").unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        fatfs::format_volume(
            Slice {
                file: &file,
                start: oem.offset,
                len: oem.len,
                pos: 0,
            },
            fatfs::FormatVolumeOptions::new(),
        )
        .unwrap();

        write_config(&p, &file, br#"{"ignition":{"version":"3.3.0"},"long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#).unwrap();
        write_config(&p, &file, br#"{"ignition":{"version":"3.3.0"}}"#).unwrap();
        assert_eq!(
            read_config(&p, &file).unwrap(),
            br#"{"ignition":{"version":"3.3.0"}}"#
        );
        // Nothing outside the partition changed: the bytes before it are still the GPT's zeros.
        let mut before = vec![0u8; 4096];
        file.read_exact_at(&mut before, oem.offset - 4096).unwrap();
        assert!(before.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_disk_without_oem_is_an_error_that_lists_the_labels() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        File::create(&p).unwrap().set_len(8 << 20).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        assert!(write_config(&p, &file, b"{}").is_err());
    }
}
