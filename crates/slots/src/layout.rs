//! The Keel disk layout: CoreOS Container Linux partition numbers, labels and type GUIDs.
//!
//! Partitions 5 (ROOT-C) and 8 are absent on CoreOS; GPT cannot hold an empty entry, so Keel
//! gives them a token size so that all nine exist. ROOT comes last so it can grow to fill the
//! disk on first boot.
//!
//! This module is the one home of the layout: the initramfs gets its partition numbers and
//! [`ROOT_NOT_CREATED_BIT`] from here too (image-build writes them to `/etc/keel-layout.sh`).
//! What goes where inside the FAT partitions is in [`esp`] and [`oem`].

pub mod esp;
pub mod oem;

use std::fmt;
use std::str::FromStr;

/// One MiB in bytes; every partition starts and ends on a MiB boundary.
pub const MIB: u64 = 1024 * 1024;
/// Logical sector size the image is built with.
pub const SECTOR: u64 = 512;

/// Type GUID of the EFI system partition.
pub const TYPE_EFI: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/// Type GUID of the BIOS boot partition (GRUB core.img).
pub const TYPE_BIOS_BOOT: &str = "21686148-6449-6E6F-744E-656564454649";
/// CoreOS `/usr` slot type GUID (USR-A, USR-B).
pub const TYPE_COREOS_USR: &str = "5DFBF5F4-2848-4BAC-AA5E-0D9A20B745A6";
/// CoreOS reserved type GUID (OEM-CONFIG and the token ROOT-C/8 entries).
pub const TYPE_COREOS_RESERVED: &str = "C95DC21A-DF0E-4340-8D7B-26CBFA9A03E0";
/// Linux data type GUID (OEM).
pub const TYPE_LINUX_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/// CoreOS "resize" root type GUID (ROOT, grown on first boot).
pub const TYPE_COREOS_RESIZE: &str = "3884DD41-8582-4404-B9A8-E9B84F2DF50E";

/// GPT attribute bit that marks ROOT (partition 9) as "not created yet": the image ships ROOT's
/// entry with it set, and the initramfs creates ROOT (grows it to the end of the disk, makes the
/// ext4 filesystem) only while it is set, clearing it once the filesystem is complete and on
/// disk. A ROOT without the bit is never formatted, whatever blkid finds or fails to read there,
/// so a flaky read cannot cost a node its data; a power cut before the bit is cleared makes the
/// next boot do the whole creation again. Bits 48 to 63 of a GPT entry's attributes belong to
/// its partition type; ROOT's type ([`TYPE_COREOS_RESIZE`]) gives them no other meaning. sfdisk
/// shows the bit as `GUID:56` (`sfdisk --part-attrs DISK 9`).
pub const ROOT_NOT_CREATED_BIT: u32 = 56;

/// Fixed partition GUID of USR-A, as on CoreOS and Flatcar.
pub const USR_A_UUID: &str = "7130C94A-213A-4E5A-8E26-6CCE9662F132";
/// Fixed partition GUID of USR-B, as on CoreOS and Flatcar.
pub const USR_B_UUID: &str = "E03DD35C-7C2D-4A47-B3FE-27F15780A57C";
/// Reserved partition GUID of ROOT-C, as on CoreOS.
pub const ROOT_C_UUID: &str = "D82521B4-07AC-4F1C-8840-DDEFEDC332F3";

/// What a partition holds, so builders know what to put there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// FAT32: GRUB, each slot's kernel and initramfs, the boot state.
    EfiSystem,
    /// Raw GRUB core.img for BIOS boot.
    BiosBoot,
    /// A read-only OS image (squashfs), one per slot.
    Usr(Slot),
    /// FAT: the operator's customizations (grub.cfg with `linux_append`, `config.ign`).
    Oem,
    /// Left unformatted.
    Reserved,
    /// ext4 created on first boot from the OS factory defaults.
    Root,
}

/// One partition of the layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpec {
    /// GPT entry number (1-based).
    pub number: u32,
    /// GPT partition name (the label `sgdisk -p` shows).
    pub label: &'static str,
    /// Type GUID.
    pub type_guid: &'static str,
    /// Fixed partition GUID, if the layout pins one.
    pub fixed_uuid: Option<&'static str>,
    /// Size in MiB in the shipped image.
    pub size_mib: u64,
    /// What goes in it.
    pub content: Content,
    /// GPT attribute bits of its entry in the shipped image (only ROOT has one:
    /// [`ROOT_NOT_CREATED_BIT`]).
    pub attrs: u64,
}

/// An A/B OS slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// USR-A, partition 3.
    A,
    /// USR-B, partition 4.
    B,
}

impl Slot {
    /// Both slots, A first.
    pub const ALL: [Slot; 2] = [Slot::A, Slot::B];

    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    /// The slot's letter as GRUB and the kernel command line spell it.
    pub fn letter(self) -> &'static str {
        match self {
            Slot::A => "A",
            Slot::B => "B",
        }
    }

    /// GPT partition number of the slot's USR partition.
    pub fn partition_number(self) -> u32 {
        match self {
            Slot::A => 3,
            Slot::B => 4,
        }
    }

    /// GPT label of the slot's USR partition.
    pub fn label(self) -> &'static str {
        match self {
            Slot::A => "USR-A",
            Slot::B => "USR-B",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// A slot name that is neither `A` nor `B`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown slot {0:?}: expected A or B")]
pub struct UnknownSlot(pub String);

impl FromStr for Slot {
    type Err = UnknownSlot;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "A" | "a" => Ok(Slot::A),
            "B" | "b" => Ok(Slot::B),
            other => Err(UnknownSlot(other.to_string())),
        }
    }
}

/// Sizes of the variable partitions, in MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// EFI-SYSTEM: must hold two kernels and initramfs images with room to spare.
    pub esp_mib: u64,
    /// Each of USR-A and USR-B.
    pub usr_mib: u64,
    /// OEM.
    pub oem_mib: u64,
    /// ROOT in the shipped image (grown on first boot).
    pub root_mib: u64,
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes {
            esp_mib: 256,
            usr_mib: 1024,
            oem_mib: 128,
            root_mib: 64,
        }
    }
}

/// The nine partitions in table order, with the given sizes.
pub fn partitions(sizes: Sizes) -> Vec<PartitionSpec> {
    let p = |number, label, type_guid, fixed_uuid, size_mib, content| PartitionSpec {
        number,
        label,
        type_guid,
        fixed_uuid,
        size_mib,
        content,
        attrs: if content == Content::Root {
            1 << ROOT_NOT_CREATED_BIT
        } else {
            0
        },
    };
    vec![
        p(
            1,
            "EFI-SYSTEM",
            TYPE_EFI,
            None,
            sizes.esp_mib,
            Content::EfiSystem,
        ),
        p(2, "BIOS-BOOT", TYPE_BIOS_BOOT, None, 2, Content::BiosBoot),
        p(
            3,
            "USR-A",
            TYPE_COREOS_USR,
            Some(USR_A_UUID),
            sizes.usr_mib,
            Content::Usr(Slot::A),
        ),
        p(
            4,
            "USR-B",
            TYPE_COREOS_USR,
            Some(USR_B_UUID),
            sizes.usr_mib,
            Content::Usr(Slot::B),
        ),
        p(
            5,
            "ROOT-C",
            TYPE_COREOS_RESERVED,
            Some(ROOT_C_UUID),
            1,
            Content::Reserved,
        ),
        p(6, "OEM", TYPE_LINUX_DATA, None, sizes.oem_mib, Content::Oem),
        p(
            7,
            "OEM-CONFIG",
            TYPE_COREOS_RESERVED,
            None,
            64,
            Content::Reserved,
        ),
        p(
            8,
            "RESERVED",
            TYPE_COREOS_RESERVED,
            None,
            1,
            Content::Reserved,
        ),
        p(
            9,
            "ROOT",
            TYPE_COREOS_RESIZE,
            None,
            sizes.root_mib,
            Content::Root,
        ),
    ]
}

/// Keel's partition holding `content` (for [`Content::Reserved`], the first of them), as
/// [`partitions`] numbers and names it.
pub fn partition(content: Content) -> PartitionSpec {
    partitions(Sizes::default())
        .into_iter()
        .find(|p| p.content == content)
        .expect("every kind of content has a partition in the layout")
}

/// Where each partition lands: start offset and length in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The partition.
    pub spec: PartitionSpec,
    /// Byte offset of its first sector.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// Place the partitions back to back from 1 MiB on; returns them and the disk size in bytes
/// (with one MiB at the end for the backup GPT).
pub fn place(specs: &[PartitionSpec]) -> (Vec<Placed>, u64) {
    let mut offset = MIB;
    let placed = specs
        .iter()
        .map(|spec| {
            let len = spec.size_mib * MIB;
            let p = Placed {
                spec: spec.clone(),
                offset,
                len,
            };
            offset += len;
            p
        })
        .collect();
    (placed, offset + MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_partitions_in_coreos_order_with_root_last() {
        let parts = partitions(Sizes::default());
        let labels: Vec<_> = parts.iter().map(|p| (p.number, p.label)).collect();
        assert_eq!(
            labels,
            vec![
                (1, "EFI-SYSTEM"),
                (2, "BIOS-BOOT"),
                (3, "USR-A"),
                (4, "USR-B"),
                (5, "ROOT-C"),
                (6, "OEM"),
                (7, "OEM-CONFIG"),
                (8, "RESERVED"),
                (9, "ROOT")
            ]
        );
        let (placed, size) = place(&parts);
        let last = placed.last().unwrap();
        assert_eq!(last.spec.label, "ROOT");
        assert_eq!(last.offset + last.len + MIB, size);
        for pair in placed.windows(2) {
            assert_eq!(
                pair[0].offset + pair[0].len,
                pair[1].offset,
                "no gaps, no overlap"
            );
        }
    }

    #[test]
    fn only_root_ships_marked_not_created() {
        for p in partitions(Sizes::default()) {
            let want = if p.number == 9 { 1u64 << 56 } else { 0 };
            assert_eq!(p.attrs, want, "{}", p.label);
        }
        assert_eq!(partition(Content::Root).number, 9);
        assert_eq!(partition(Content::EfiSystem).number, 1);
        assert_eq!(partition(Content::Oem).number, 6);
    }

    #[test]
    fn slots_parse_and_pair_up() {
        assert_eq!("A".parse::<Slot>(), Ok(Slot::A));
        assert_eq!("b".parse::<Slot>(), Ok(Slot::B));
        assert!("C".parse::<Slot>().is_err());
        assert_eq!(Slot::A.other(), Slot::B);
        assert_eq!(Slot::B.partition_number(), 4);
    }
}
