//! Write the Keel GPT onto a disk image (or any seekable device) and read partitions back.

use std::fs::{File, OpenOptions};
use std::io::{Cursor, Read, Seek, SeekFrom};
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
    /// The table's checksums are right but what it says cannot be used: entries of a size the
    /// GPT library cannot read, or a partition that ends before it starts or past 2^64 bytes.
    #[error("partition table on {path}: {why}")]
    Unusable {
        /// The image or device.
        path: PathBuf,
        /// What is wrong.
        why: String,
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

/// The GPT header the library takes the entries from, picked as `open_from_device` picks it:
/// the primary header (LBA 1) when its checksum is right, else the backup one (the last LBA of
/// a device of at least three sectors). `None` when neither is a header.
fn table_header(file: &mut File) -> Option<gpt::header::Header> {
    let len = file.seek(SeekFrom::End(0)).ok()?;
    let backup = (len >= 3 * SECTOR).then(|| (len - SECTOR) / SECTOR);
    [Some(1), backup].into_iter().flatten().find_map(|lba| {
        // The library reads a header at LBA 1 of what it is given: hand it the sector before
        // the header's and as much of the header's own sector as there is.
        file.seek(SeekFrom::Start((lba - 1) * SECTOR)).ok()?;
        let mut sectors = Vec::new();
        file.take(2 * SECTOR).read_to_end(&mut sectors).ok()?;
        gpt::header::read_header_from_arbitrary_device(
            &mut Cursor::new(sectors),
            LogicalBlockSize::Lb512,
        )
        .ok()
    })
}

/// Read every used partition of the GPT on `path`. A table whose checksums are right but whose
/// entries are not 128 bytes (the GPT library asserts on any other size), or that has a
/// partition ending before it starts or past 2^64 bytes, is [`TableError::Unusable`].
pub fn read_partitions(path: &Path) -> Result<Vec<FoundPartition>, TableError> {
    let unusable = |why: String| TableError::Unusable {
        path: path.to_path_buf(),
        why,
    };
    let mut file = File::open(path).map_err(|source| TableError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(header) = table_header(&mut file) {
        if header.part_size != 128 {
            return Err(unusable(format!(
                "its entries are {} bytes each; only 128-byte entries are read",
                header.part_size
            )));
        }
    }
    let disk = GptConfig::new()
        .writable(false)
        .logical_block_size(LogicalBlockSize::Lb512)
        .open_from_device(file)
        .map_err(|source| TableError::Gpt {
            path: path.to_path_buf(),
            source,
        })?;
    let mut found = Vec::new();
    for (n, p) in disk.partitions().iter().filter(|(_, p)| p.is_used()) {
        if p.last_lba < p.first_lba {
            return Err(unusable(format!(
                "partition {n} ends (sector {}) before it starts (sector {})",
                p.last_lba, p.first_lba
            )));
        }
        let offset = p.first_lba.checked_mul(SECTOR);
        let len = (p.last_lba - p.first_lba)
            .checked_add(1)
            .and_then(|sectors| sectors.checked_mul(SECTOR));
        let (Some(offset), Some(len)) = (offset, len) else {
            return Err(unusable(format!("partition {n} lies past 2^64 bytes")));
        };
        if offset.checked_add(len).is_none() {
            return Err(unusable(format!("partition {n} lies past 2^64 bytes")));
        }
        found.push(FoundPartition {
            number: *n,
            label: p.name.clone(),
            uuid: p.part_guid.to_string().to_uppercase(),
            offset,
            len,
            attrs: p.flags,
        });
    }
    Ok(found)
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
    use crate::layout::{
        partitions, place, Sizes, ROOT_NOT_CREATED_BIT, TYPE_LINUX_DATA, USR_A_UUID, USR_B_UUID,
    };

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

    /// CRC-32 as GPT uses it (IEEE), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A 16-sector disk in the shape of the fuzz seed (fuzz/make-seeds.py): a primary GPT at
    /// LBA 1 with its entries at LBA 2, the backup entries at LBA 14 and header at LBA 15, 512
    /// bytes of `entry_size`-byte entries, the first one used and spanning `first..=last`; every
    /// checksum right.
    fn tiny_disk(entry_size: u32, first: u64, last: u64) -> Vec<u8> {
        const S: usize = 512;
        let mut disk = vec![0u8; 16 * S];
        let mut entry = [0u8; 128];
        entry[..16].copy_from_slice(&uuid(TYPE_LINUX_DATA).unwrap().to_bytes_le());
        entry[16..32].copy_from_slice(&uuid::Uuid::new_v4().to_bytes_le());
        entry[32..40].copy_from_slice(&first.to_le_bytes());
        entry[40..48].copy_from_slice(&last.to_le_bytes());
        for (i, c) in "DATA".encode_utf16().enumerate() {
            entry[56 + 2 * i..58 + 2 * i].copy_from_slice(&c.to_le_bytes());
        }
        disk[2 * S..2 * S + 128].copy_from_slice(&entry);
        disk[14 * S..14 * S + 128].copy_from_slice(&entry);
        let entries_crc = crc32(&disk[2 * S..3 * S]);
        let disk_guid = uuid::Uuid::new_v4();
        for (lba, other, entries_lba) in [(1u64, 15u64, 2u64), (15, 1, 14)] {
            let mut h = Vec::with_capacity(92);
            h.extend_from_slice(b"EFI PART");
            h.extend_from_slice(&0x0001_0000u32.to_le_bytes());
            h.extend_from_slice(&92u32.to_le_bytes());
            h.extend_from_slice(&[0; 8]); // CRC (below) and reserved
            for v in [lba, other, 3, 13] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h.extend_from_slice(&disk_guid.to_bytes_le());
            h.extend_from_slice(&entries_lba.to_le_bytes());
            h.extend_from_slice(&(512 / entry_size).to_le_bytes());
            h.extend_from_slice(&entry_size.to_le_bytes());
            h.extend_from_slice(&entries_crc.to_le_bytes());
            let crc = crc32(&h);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            disk[lba as usize * S..][..92].copy_from_slice(&h);
        }
        disk
    }

    fn read_disk(disk: &[u8]) -> Result<Vec<FoundPartition>, TableError> {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("disk.img");
        std::fs::write(&img, disk).unwrap();
        read_partitions(&img)
    }

    fn refused(disk: &[u8], why: &str) {
        match read_disk(disk) {
            Err(e @ TableError::Unusable { .. }) => {
                assert!(e.to_string().contains(why), "{e} does not say {why:?}")
            }
            other => panic!("expected Unusable ({why}), got {other:?}"),
        }
    }

    #[test]
    fn tiny_disk_reads_back() {
        let found = read_disk(&tiny_disk(128, 3, 13)).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].number, 1);
        assert_eq!(found[0].label, "DATA");
        assert_eq!((found[0].offset, found[0].len), (3 * 512, 11 * 512));
        let one_sector = read_disk(&tiny_disk(128, 7, 7)).unwrap();
        assert_eq!((one_sector[0].offset, one_sector[0].len), (7 * 512, 512));
    }

    // Regression tests for what fuzzing found (fuzz/, target gpt): each of these tables has
    // right checksums and used to panic the reader (in the GPT library, or overflowing u64 in
    // read_partitions), where it must be refused.

    #[test]
    fn entries_other_than_128_bytes_are_refused() {
        // UEFI allows 128 × 2^n; the GPT library asserts on anything but 128.
        let disk = tiny_disk(256, 3, 13);
        refused(&disk, "entries are 256 bytes each");
        // The same when only the backup header is intact (the library falls back to it).
        let mut backup_only = disk;
        backup_only[512] = b'X';
        refused(&backup_only, "entries are 256 bytes each");
        // A primary header of 128-byte entries wins over the backup's, as in the library.
        let mut primary_ok = tiny_disk(128, 3, 13);
        primary_ok[15 * 512..].copy_from_slice(&tiny_disk(256, 3, 13)[15 * 512..]);
        assert_eq!(read_disk(&primary_ok).unwrap().len(), 1);
    }

    #[test]
    fn partitions_ending_before_they_start_are_refused() {
        refused(
            &tiny_disk(128, 10, 5),
            "partition 1 ends (sector 5) before it starts (sector 10)",
        );
        refused(
            &tiny_disk(128, 10, 9),
            "partition 1 ends (sector 9) before it starts",
        );
    }

    #[test]
    fn partitions_past_2_pow_64_bytes_are_refused() {
        let max = u64::MAX;
        for (first, last) in [
            (max / 512 + 1, max), // the offset in bytes overflows
            (0, max),             // the length in sectors overflows
            (3, max / 256),       // the length in bytes overflows
            (3, max / 512),       // offset + length overflows
        ] {
            refused(
                &tiny_disk(128, first, last),
                "partition 1 lies past 2^64 bytes",
            );
        }
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
