//! Where things are on the EFI system partition (partition 1, FAT), relative to its root: the
//! one home of the ESP's layout. image-build writes it (and GRUB's configuration that reads
//! it), [`crate::store`] and the updater keep the boot state and the slots in it on a running
//! node (the ESP is mounted on `/boot`), the initramfs finds the first-boot marker through
//! `/etc/keel-layout.sh` (generated from here), and the tests look at it.
//!
//! ```text
//! EFI/BOOT/BOOTX64.EFI    GRUB for UEFI (the removable-media path firmware boots)
//! keel/grub.cfg           the slot choice and boot counting (GRUB's prefix is /keel)
//! keel/env1/grubenv       the boot state, copy 1
//! keel/env2/grubenv       copy 2, in another directory so a torn write spares one
//! keel/fallback.cfg       the last slot recorded good, for when both copies are damaged
//! keel/A/, keel/B/        each slot's vmlinuz, initrd.img and release
//! keel/first_boot         there until Ignition's first boot succeeds
//! ```
//!
//! Paths are `/`-separated without a leading `/`; GRUB and the shell add their own root.

use crate::layout::Slot;

/// Keel's directory, GRUB's prefix.
pub const DIR: &str = "keel";
/// The UEFI boot loader, at the path firmware boots from removable media.
pub const EFI_BOOT: &str = "EFI/BOOT/BOOTX64.EFI";
/// GRUB's configuration: slot choice and boot counting.
pub const GRUB_CFG: &str = "keel/grub.cfg";
/// Copy 1 and copy 2 of the boot state (GRUB environment blocks).
pub const GRUBENV: [&str; 2] = ["keel/env1/grubenv", "keel/env2/grubenv"];
/// The last-good record GRUB sources when both copies are damaged.
pub const FALLBACK_CFG: &str = "keel/fallback.cfg";
/// The first-boot marker: Ignition runs while it exists and removes it after success
/// (Flatcar: `/flatcar/first_boot`).
pub const FIRST_BOOT: &str = "keel/first_boot";
/// A slot's kernel, in its directory ([`slot_dir`]).
pub const KERNEL: &str = "vmlinuz";
/// A slot's initramfs, in its directory.
pub const INITRD: &str = "initrd.img";
/// A slot's release record (`VERSION=`, `SLOT=`, `KERNEL=`), in its directory.
pub const RELEASE: &str = "release";

/// Copy `copy` (1 or 2) of the boot state.
///
/// # Panics
/// For any other copy number.
pub fn grubenv(copy: u8) -> &'static str {
    match copy {
        1 | 2 => GRUBENV[usize::from(copy) - 1],
        other => panic!("there is no boot state copy {other}"),
    }
}

/// The directory of `slot`: `keel/A` or `keel/B`.
pub fn slot_dir(slot: Slot) -> String {
    format!("{DIR}/{}", slot.letter())
}

/// `file` ([`KERNEL`], [`INITRD`], [`RELEASE`]) in the directory of `slot`.
pub fn slot_file(slot: Slot, file: &str) -> String {
    format!("{}/{file}", slot_dir(slot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_under_keel_but_the_boot_loader() {
        for p in [GRUB_CFG, GRUBENV[0], GRUBENV[1], FALLBACK_CFG, FIRST_BOOT] {
            assert!(p.starts_with("keel/") && !p.ends_with('/'), "{p}");
        }
        assert_eq!(grubenv(2), "keel/env2/grubenv");
        assert_eq!(slot_file(Slot::B, KERNEL), "keel/B/vmlinuz");
        assert_eq!(slot_dir(Slot::A), "keel/A");
        assert_eq!(EFI_BOOT, "EFI/BOOT/BOOTX64.EFI");
    }
}
