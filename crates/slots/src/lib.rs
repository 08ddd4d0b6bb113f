//! Keel's disk layout and A/B slot boot state.
//!
//! This crate owns the facts every other Keel program shares about the disk:
//!  * [`layout`]: the nine-partition CoreOS layout as data (numbers, labels, type GUIDs, sizes).
//!  * [`table`]: writing and reading that GPT on any file or block device.
//!  * [`fat`]: reading and writing files on the FAT filesystems of the ESP and OEM partitions in
//!    place (an image file, a partition of a disk), through `fatfs`.
//!  * [`grubenv`]: the GRUB environment block, read byte for byte as GRUB reads it (pure).
//!  * [`state`]: which slot is good, which is on trial and how many tries are left, with the
//!    guarded transitions between those states (pure).
//!  * [`store`]: loading that state as keel/grub.cfg does and saving it crash-safely as two
//!    grubenv copies on the ESP, only once the directory is checked to be the ESP.
//!  * [`status`]: the per-slot view `updater status` prints.
//!  * [`booted`]: which slot the running system came from, read from the kernel command line.
//!  * [`kargs`]: the kernel command-line parser and its rules for flags and values, which every
//!    Keel program that reads `/proc/cmdline` uses.

pub mod booted;
pub mod fat;
pub mod grubenv;
pub mod kargs;
pub mod layout;
pub mod state;
pub mod status;
pub mod store;
pub mod table;

pub use layout::Slot;
pub use state::BootState;
