//! Write the Keel GPT onto a disk image (or any seekable device) and read partitions back.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition_types::{OperatingSystem, Type};
use gpt::GptConfig;

use crate::layout::{Placed, SECTOR};

/// Errors while writing or reading a partition table.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The image file could not be opened.
    #[error("opening {path}: {source}")]
    Open {
        /// The image or device.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The GPT library refused the table.
    #[error("partition table on {path}: {source}")]
    Gpt {
        /// The image or device.
        path: PathBuf,
        /// The cause.
        source: gpt::GptError,
    },
    /// Writing the protective MBR failed.
    #[error("protective MBR on {path}: {source}")]
    Mbr {
        /// The image or device.
        path: PathBuf,
        /// The cause.
        source: gpt::mbr::MBRError,
    },
    /// A GUID in the layout does not parse (a bug in the layout table).
    #[error("bad GUID {0:?} in the layout")]
    Guid(String),
    /// No partition carries the label asked for.
    #[error("{path} has no partition labelled {label}")]
    NoSuchLabel {
        /// The image or device.
        path: PathBuf,
        /// The label looked for.
        label: String,
    },
}

fn uuid(s: &str) -> Result<uuid::Uuid, TableError> {
    uuid::Uuid::from_str(s).map_err(|_| TableError::Guid(s.to_string()))
}

/// Write a protective MBR and a GPT holding `placed` onto the file at `path`, which must
/// already have its final size.
pub fn write_table(
    path: &Path,
    placed: &[Placed],
    disk_guid: uuid::Uuid,
) -> Result<(), TableError> {
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(p)
            .map_err(|source| TableError::Open {
                path: p.to_path_buf(),
                source,
            })
    };
    let gpt_err = |source| TableError::Gpt {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open(path)?;
    let size = file
        .metadata()
        .map_err(|source| TableError::Open {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let sectors = u32::try_from(size / SECTOR - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(sectors)
        .overwrite_lba0(&mut file)
        .map_err(|source| TableError::Mbr {
            path: path.to_path_buf(),
            source,
        })?;

    let mut disk = GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(file, Some(disk_guid))
        .map_err(gpt_err)?;
    for p in placed {
        let part_type = Type {
            guid: uuid(p.spec.type_guid)?,
            os: OperatingSystem::Custom(p.spec.label.to_string()),
        };
        disk.add_partition_at(
            p.spec.label,
            p.spec.number,
            p.offset / SECTOR,
            p.len / SECTOR,
            part_type,
            0,
        )
        .map_err(gpt_err)?;
    }
    let mut parts = disk.take_partitions();
    for p in placed {
        if let (Some(fixed), Some(entry)) = (p.spec.fixed_uuid, parts.get_mut(&p.spec.number)) {
            entry.part_guid = uuid(fixed)?;
        }
    }
    disk.update_partitions(parts).map_err(gpt_err)?;
    let file = disk.write().map_err(gpt_err)?;
    file.sync_all().map_err(|source| TableError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// A partition as found on a disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundPartition {
    /// GPT entry number.
    pub number: u32,
    /// GPT partition name.
    pub label: String,
    /// Partition GUID, upper case.
    pub uuid: String,
    /// Byte offset of the first sector.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Read every used partition of the GPT on `path`.
pub fn read_partitions(path: &Path) -> Result<Vec<FoundPartition>, TableError> {
    let file = File::open(path).map_err(|source| TableError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let disk = GptConfig::new()
        .writable(false)
        .logical_block_size(LogicalBlockSize::Lb512)
        .open_from_device(file)
        .map_err(|source| TableError::Gpt {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(disk
        .partitions()
        .iter()
        .filter(|(_, p)| p.is_used())
        .map(|(n, p)| FoundPartition {
            number: *n,
            label: p.name.clone(),
            uuid: p.part_guid.to_string().to_uppercase(),
            offset: p.first_lba * SECTOR,
            len: (p.last_lba + 1 - p.first_lba) * SECTOR,
        })
        .collect())
}

/// Find the partition labelled `label` on `path`.
pub fn find_by_label(path: &Path, label: &str) -> Result<FoundPartition, TableError> {
    read_partitions(path)?
        .into_iter()
        .find(|p| p.label == label)
        .ok_or_else(|| TableError::NoSuchLabel {
            path: path.to_path_buf(),
            label: label.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{partitions, place, Sizes, USR_A_UUID, USR_B_UUID};

    #[test]
    fn written_table_reads_back_with_labels_offsets_and_fixed_usr_guids() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        let sizes = Sizes {
            esp_mib: 8,
            usr_mib: 8,
            oem_mib: 4,
            root_mib: 4,
        };
        let (placed, size) = place(&partitions(sizes));
        File::create(&img).unwrap().set_len(size).unwrap();
        write_table(&img, &placed, uuid::Uuid::new_v4()).unwrap();

        let found = read_partitions(&img).unwrap();
        assert_eq!(found.len(), 9);
        for (f, p) in found.iter().zip(&placed) {
            assert_eq!(f.number, p.spec.number);
            assert_eq!(f.label, p.spec.label);
            assert_eq!(f.offset, p.offset);
            assert_eq!(f.len, p.len);
        }
        assert_eq!(find_by_label(&img, "USR-A").unwrap().uuid, USR_A_UUID);
        assert_eq!(find_by_label(&img, "USR-B").unwrap().uuid, USR_B_UUID);
        let err = find_by_label(&img, "NOPE").unwrap_err();
        assert!(
            err.to_string().contains("no partition labelled NOPE"),
            "{err}"
        );
    }
}
