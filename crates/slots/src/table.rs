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
    /// The partitions are not numbered 1 to n: the GPT library writes the used entries packed
    /// at the start of the array, so any other numbering would come back renumbered.
    #[error("partitions numbered {0:?}: the table writer needs exactly 1 to n")]
    Numbering(Vec<u32>),
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
/// already have its final size. The partitions must be numbered 1 to n (in any order). Each
/// entry gets its spec's attribute bits (ROOT's [`crate::layout::ROOT_NOT_CREATED_BIT`]).
pub fn write_table(
    path: &Path,
    placed: &[Placed],
    disk_guid: uuid::Uuid,
) -> Result<(), TableError> {
    let mut numbers: Vec<u32> = placed.iter().map(|p| p.spec.number).collect();
    numbers.sort_unstable();
    if !numbers.iter().copied().eq(1..=placed.len() as u32) {
        return Err(TableError::Numbering(numbers));
    }
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
            p.spec.attrs,
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
    /// The entry's GPT attribute bits.
    pub attrs: u64,
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
            attrs: p.flags,
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
    use crate::layout::{partitions, place, Sizes, ROOT_NOT_CREATED_BIT, USR_A_UUID, USR_B_UUID};

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
            assert_eq!(f.attrs, p.spec.attrs);
        }
        assert_eq!(find_by_label(&img, "USR-A").unwrap().uuid, USR_A_UUID);
        let marked: Vec<_> = found.iter().filter(|f| f.attrs != 0).collect();
        assert_eq!(
            marked.len(),
            1,
            "only ROOT carries attribute bits: {found:?}"
        );
        assert_eq!(marked[0].label, "ROOT");
        assert_eq!(marked[0].number, 9);
        assert_eq!(marked[0].attrs, 1 << ROOT_NOT_CREATED_BIT);
        assert_eq!(find_by_label(&img, "USR-B").unwrap().uuid, USR_B_UUID);
        let err = find_by_label(&img, "NOPE").unwrap_err();
        assert!(
            err.to_string().contains("no partition labelled NOPE"),
            "{err}"
        );
    }

    mod properties {
        use super::*;
        use crate::layout::{
            Content, PartitionSpec, MIB, TYPE_BIOS_BOOT, TYPE_COREOS_RESERVED, TYPE_COREOS_RESIZE,
            TYPE_COREOS_USR, TYPE_EFI, TYPE_LINUX_DATA,
        };
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        /// The layout's specs hold `&'static str`; a test case's strings live as long.
        fn leak(s: String) -> &'static str {
            Box::leak(s.into_boxed_str())
        }

        /// Write `placed` onto a sparse temporary disk of `size` bytes and read it back.
        fn write_and_read(placed: &[Placed], size: u64) -> Vec<FoundPartition> {
            let dir = tempfile::tempdir().unwrap();
            let img = dir.path().join("disk.img");
            File::create(&img).unwrap().set_len(size).unwrap();
            write_table(&img, placed, uuid::Uuid::new_v4()).unwrap();
            read_partitions(&img).unwrap()
        }

        /// What the reader must give back for `placed`: every partition, in number order,
        /// with its label, place and (when the layout pins one) GUID.
        fn check(found: &[FoundPartition], placed: &[Placed]) -> Result<(), TestCaseError> {
            let mut want: Vec<&Placed> = placed.iter().collect();
            want.sort_by_key(|p| p.spec.number);
            prop_assert_eq!(found.len(), want.len());
            for (f, p) in found.iter().zip(want) {
                prop_assert_eq!(f.number, p.spec.number);
                prop_assert_eq!(&f.label, p.spec.label);
                prop_assert_eq!(f.offset, p.offset);
                prop_assert_eq!(f.len, p.len);
                prop_assert_eq!(f.attrs, p.spec.attrs);
                if let Some(fixed) = p.spec.fixed_uuid {
                    prop_assert_eq!(&f.uuid, fixed);
                }
            }
            Ok(())
        }

        /// A partition table as another layout might have it: 1 to 16 entries numbered 1 to n
        /// in any order, GPT names of up to 36 characters, any of the layout's type GUIDs,
        /// sometimes a pinned GUID, 1 to 8 MiB each, any attribute bits.
        fn specs() -> impl Strategy<Value = Vec<PartitionSpec>> {
            specs_numbered((1u32..=16).prop_map(|n| (1..=n).collect()))
        }

        fn specs_numbered(
            numbers: impl Strategy<Value = BTreeSet<u32>>,
        ) -> impl Strategy<Value = Vec<PartitionSpec>> {
            let types = [
                TYPE_EFI,
                TYPE_BIOS_BOOT,
                TYPE_COREOS_USR,
                TYPE_COREOS_RESERVED,
                TYPE_LINUX_DATA,
                TYPE_COREOS_RESIZE,
            ];
            let entry = (
                "[A-Za-z0-9][A-Za-z0-9 _.-]{0,35}",
                prop::sample::select(types.to_vec()),
                prop::option::of(any::<u128>().prop_filter("not nil", |g| *g != 0)),
                1u64..=8,
                any::<u64>(),
            );
            numbers
                .prop_flat_map(move |numbers: BTreeSet<u32>| {
                    let n = numbers.len();
                    (
                        Just(numbers.into_iter().collect::<Vec<_>>()).prop_shuffle(),
                        prop::collection::vec(entry.clone(), n),
                    )
                })
                .prop_map(|(numbers, entries)| {
                    numbers
                        .into_iter()
                        .zip(entries)
                        .map(
                            |(number, (label, type_guid, guid, size_mib, attrs))| PartitionSpec {
                                number,
                                label: leak(label),
                                type_guid,
                                fixed_uuid: guid.map(|g| {
                                    leak(uuid::Uuid::from_u128(g).to_string().to_uppercase())
                                }),
                                size_mib,
                                content: Content::Reserved,
                                attrs,
                            },
                        )
                        .collect()
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// Keel's nine partitions with any sizes read back as written, USR GUIDs and ROOT's
            /// not-created bit included.
            #[test]
            fn keel_layout_of_any_size_reads_back(
                esp_mib in 1u64..=64,
                usr_mib in 1u64..=64,
                oem_mib in 1u64..=64,
                root_mib in 1u64..=64,
            ) {
                let sizes = Sizes { esp_mib, usr_mib, oem_mib, root_mib };
                let (placed, size) = place(&partitions(sizes));
                check(&write_and_read(&placed, size), &placed)?;
            }

            /// Any valid table the writer is given reads back entry for entry.
            #[test]
            fn any_valid_table_reads_back(specs in specs()) {
                let (placed, size) = place(&specs);
                check(&write_and_read(&placed, size), &placed)?;
            }

            /// Numbers with a gap (1 to 128, distinct, not 1 to n) are refused before anything
            /// is written, rather than written renumbered.
            #[test]
            fn numbering_with_gaps_is_refused(
                specs in specs_numbered(
                    prop::collection::btree_set(1u32..=128, 1..=16)
                        .prop_filter("has a gap", |n| n.last() != Some(&(n.len() as u32))),
                ),
            ) {
                let (placed, size) = place(&specs);
                let dir = tempfile::tempdir().unwrap();
                let img = dir.path().join("disk.img");
                File::create(&img).unwrap().set_len(size).unwrap();
                let err = write_table(&img, &placed, uuid::Uuid::new_v4()).unwrap_err();
                prop_assert!(matches!(err, TableError::Numbering(_)), "{err}");
                let mut head = vec![0u8; MIB as usize];
                std::io::Read::read_exact(&mut File::open(&img).unwrap(), &mut head).unwrap();
                prop_assert!(head.iter().all(|&b| b == 0), "MBR or GPT written");
            }
        }
    }
}
