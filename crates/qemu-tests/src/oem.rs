//! Customize a copy of a disk image before it boots: read and write files on its FAT partitions.
//!
//! Keel's image is a GPT disk; partition 6 (label `OEM`) is a FAT filesystem that holds, for
//! example, the Ignition config, and partition 1 (label `EFI-SYSTEM`) is the ESP. Partitions are
//! found by label through the GPT (`gpt` crate, 512-byte logical blocks, opened read-only), and
//! files are read and written in place through [`slots::fat`] (fatfs), so no loop device, mount,
//! root or mtools is needed.
//!
//! Only ever point these at a copy of a build artifact (the VM's disk copy).

use std::path::{Path, PathBuf};

use slots::fat::{Fat, FatError};
use tracing::info;

/// The label of the OEM partition.
pub const OEM_LABEL: &str = "OEM";
/// The label of the EFI system partition.
pub const ESP_LABEL: &str = "EFI-SYSTEM";

/// Reading or writing a FAT partition of an image failed.
#[derive(Debug, thiserror::Error)]
pub enum OemError {
    /// The image has no readable GPT.
    #[error("oem: reading the GPT of {image}")]
    Gpt {
        /// The image.
        image: PathBuf,
        /// The cause.
        #[source]
        source: gpt::GptError,
    },
    /// No partition has the label.
    #[error("oem: {image} has no partition labelled {label:?} (labels: {found})")]
    NoPartition {
        /// The image.
        image: PathBuf,
        /// The label looked for.
        label: String,
        /// The labels present.
        found: String,
    },
    /// A host I/O operation failed.
    #[error("oem: {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the FAT filesystem failed.
    #[error("oem: {0}")]
    Fat(#[from] FatError),
}

/// A FAT filesystem inside a partition of a disk image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatPartition {
    /// The disk image.
    pub image: PathBuf,
    /// The partition number (1-based).
    pub number: u32,
    /// The partition's GPT label.
    pub label: String,
    /// Byte offset of the partition in the image.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Find the partition labelled `label` in the GPT of `image`.
pub fn find_partition(image: &Path, label: &str) -> Result<FatPartition, OemError> {
    let gpt_err = |source| OemError::Gpt {
        image: image.to_path_buf(),
        source,
    };
    let lb = gpt::disk::LogicalBlockSize::Lb512;
    let disk = gpt::GptConfig::new()
        .writable(false)
        .logical_block_size(lb)
        .open(image)
        .map_err(gpt_err)?;
    let found = disk
        .partitions()
        .iter()
        .find(|(_, p)| p.is_used() && p.name == label);
    let Some((&number, part)) = found else {
        let labels: Vec<String> = disk
            .partitions()
            .iter()
            .filter(|(_, p)| p.is_used())
            .map(|(n, p)| format!("{n}:{:?}", p.name))
            .collect();
        return Err(OemError::NoPartition {
            image: image.to_path_buf(),
            label: label.to_string(),
            found: labels.join(", "),
        });
    };
    let part_err = |source: std::io::Error| OemError::Gpt {
        image: image.to_path_buf(),
        source: source.into(),
    };
    Ok(FatPartition {
        image: image.to_path_buf(),
        number,
        label: label.to_string(),
        offset: part.bytes_start(lb).map_err(part_err)?,
        size: part.bytes_len(lb).map_err(part_err)?,
    })
}

/// Write `bytes` as `name` (e.g. `config.ign` or `keel/config.ign`) on the OEM partition of
/// `image`, replacing any file of that name.
pub fn write_oem_file(image: &Path, name: &str, bytes: &[u8]) -> Result<(), OemError> {
    find_partition(image, OEM_LABEL)?.write_file(name, bytes)
}

/// Read `name` from the FAT partition labelled `label` of `image`.
pub fn read_file(image: &Path, label: &str, name: &str) -> Result<Vec<u8>, OemError> {
    find_partition(image, label)?.read_file(name)
}

impl FatPartition {
    /// The partition's FAT filesystem, open for reading and writing.
    fn open(&self) -> Result<Fat, OemError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.image)
            .map_err(|source| OemError::Io {
                what: format!("opening {}", self.image.display()),
                source,
            })?;
        Ok(Fat::open(
            file,
            self.offset,
            self.size,
            format!(
                "partition {} ({}) of {}",
                self.number,
                self.label,
                self.image.display()
            ),
        )?)
    }

    /// Write `bytes` as `name`, creating parent directories.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), OemError> {
        let fat = self.open()?;
        fat.write(name, bytes)?;
        fat.close()?;
        info!(image = %self.image.display(), partition = %self.label, name, len = bytes.len(), "oem: file written");
        Ok(())
    }

    /// Read the file `name`.
    pub fn read_file(&self, name: &str) -> Result<Vec<u8>, OemError> {
        Ok(self.open()?.read(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools;
    use std::io::{Seek, SeekFrom, Write};
    use std::process::Command;

    const MIB: u64 = 1 << 20;

    /// A 64 MiB sparse GPT disk like Keel's: partition 1 `EFI-SYSTEM` and partition 6 `OEM`,
    /// both FAT, made by mkfs.vfat as separate files and copied into place.
    fn fixture_disk(dir: &Path) -> PathBuf {
        let image = dir.join("disk.img");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(64 * MIB).unwrap();
        drop(file);
        let lb = gpt::disk::LogicalBlockSize::Lb512;
        let mut device = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&image)
            .unwrap();
        gpt::mbr::ProtectiveMBR::with_lb_size((64 * MIB / 512 - 1) as u32)
            .overwrite_lba0(&mut device)
            .unwrap();
        let mut disk = gpt::GptConfig::new()
            .writable(true)
            .logical_block_size(lb)
            .create_from_device(device, None)
            .unwrap();
        // Numbers without gaps: gpt 4.1 writes the used entries packed at the start of the
        // array, so a gap would renumber the partitions after it.
        let parts = [
            ("EFI-SYSTEM", 1, MIB, 16 * MIB, gpt::partition_types::EFI),
            ("BIOS-BOOT", 2, 17 * MIB, MIB, gpt::partition_types::BIOS),
            (
                "USR-A",
                3,
                18 * MIB,
                4 * MIB,
                gpt::partition_types::LINUX_FS,
            ),
            (
                "USR-B",
                4,
                22 * MIB,
                4 * MIB,
                gpt::partition_types::LINUX_FS,
            ),
            (
                "ROOT-C",
                5,
                26 * MIB,
                4 * MIB,
                gpt::partition_types::LINUX_FS,
            ),
            ("OEM", 6, 32 * MIB, 16 * MIB, gpt::partition_types::LINUX_FS),
        ];
        for (name, id, start, len, kind) in parts {
            disk.add_partition_at(name, id, start / 512, len / 512, kind, 0)
                .unwrap();
        }
        let mut device = disk.write().unwrap();
        for (label, start, len) in [("EFI-SYSTEM", MIB, 16 * MIB), ("OEM", 32 * MIB, 16 * MIB)] {
            let fat = dir.join(format!("{label}.fat"));
            let mkfs = tools::require("mkfs.vfat", "dosfstools").unwrap();
            let status = Command::new(mkfs)
                .args(["-n", label, "-C"])
                .arg(&fat)
                .arg((len / 1024).to_string())
                .output()
                .unwrap();
            assert!(status.status.success(), "{status:?}");
            let bytes = std::fs::read(&fat).unwrap();
            device.seek(SeekFrom::Start(start)).unwrap();
            device.write_all(&bytes).unwrap();
        }
        image
    }

    #[test]
    fn finds_partitions_by_label() {
        let dir = tempfile::tempdir().unwrap();
        let image = fixture_disk(dir.path());
        let oem = find_partition(&image, OEM_LABEL).unwrap();
        assert_eq!((oem.number, oem.offset, oem.size), (6, 32 * MIB, 16 * MIB));
        let esp = find_partition(&image, ESP_LABEL).unwrap();
        assert_eq!((esp.number, esp.offset), (1, MIB));

        let err = find_partition(&image, "ROOT").unwrap_err().to_string();
        assert!(err.contains("has no partition labelled \"ROOT\""), "{err}");
        assert!(err.contains("6:\"OEM\""), "{err}");
    }

    #[test]
    fn oem_files_round_trip_and_do_not_touch_other_partitions() {
        let dir = tempfile::tempdir().unwrap();
        let image = fixture_disk(dir.path());
        let config = br#"{"ignition":{"version":"3.4.0"}}"#;
        write_oem_file(&image, "config.ign", config).unwrap();
        write_oem_file(&image, "keel/nested/a.txt", b"one").unwrap();
        // Overwrite in place.
        write_oem_file(&image, "keel/nested/a.txt", b"two").unwrap();
        assert_eq!(read_file(&image, OEM_LABEL, "config.ign").unwrap(), config);
        assert_eq!(
            read_file(&image, OEM_LABEL, "/keel/nested/a.txt").unwrap(),
            b"two"
        );

        let esp = find_partition(&image, ESP_LABEL).unwrap();
        esp.write_file("EFI/BOOT/grubenv", b"# GRUB Environment Block\n")
            .unwrap();
        assert_eq!(
            read_file(&image, ESP_LABEL, "EFI/BOOT/grubenv").unwrap(),
            b"# GRUB Environment Block\n"
        );
        let err = read_file(&image, ESP_LABEL, "config.ign")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("oem: reading config.ign on partition 1 (EFI-SYSTEM) of "),
            "{err}"
        );
    }
}
