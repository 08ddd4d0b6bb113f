//! What Keel reads from the OEM partition (partition 6, FAT), relative to its root: the
//! operator's customizations of an image before its first boot.

/// The Ignition config first boot applies when the kernel command line names none.
pub const CONFIG: &str = "config.ign";
/// GRUB settings sourced before a slot boots (`set linux_append="..."`, `set timeout=5`).
pub const GRUB_CFG: &str = "grub.cfg";
