//! Keel's image builder: Debian packages in, a bootable A/B disk image and PXE artifacts out.
//!
//! Every partition is built as a plain file and placed into the disk image, so no loop device,
//! mount or root privilege is needed for the image itself (mmdebstrap does want root or user
//! namespaces for the rootfs).
//!
//!  * [`tools`]: the host programs the build runs, each with the Debian package that has it.
//!  * [`cmd`]: running them with errors that say what failed.
//!  * [`rootfs`]: the Debian bookworm tree from mmdebstrap, cached by package list.
//!  * [`os`]: Keel's own files on top: binaries, units, os-release, presets.
//!  * [`units`]: which units start at boot, which are masked, which dependencies are cut.
//!  * [`kargs`]: the kernel arguments every boot gets.
//!  * [`trim`]: what a container host drops (docs, locales, unused kernel modules).
//!  * [`factory`]: /etc and /var move into /usr as the factory defaults ROOT is made from.
//!  * [`initramfs`]: our initramfs: busybox, the tools it needs, modules, `/init` (archives
//!    written by the [`cpio`] crate).
//!  * [`grub`]: grub.cfg, the EFI and BIOS GRUB images, the MBR boot code.
//!  * [`fat`]: FAT filesystems as files, made by mkfs.vfat and filled through `slots::fat`.
//!  * [`disk`]: the GPT disk image assembled from the partition files.
//!  * [`pxe`]: the live kernel + initramfs that run the whole OS from RAM.
//!  * [`release`]: the compressed, signed disk image under `OUT/release/` for `coreos-install -b`.
//!  * [`update_repo`]: a channel's TUF update repository (`OUT/update/<channel>/`): each
//!    release's slot payload, kernel and initramfs, and the signed manifest that lists them.
//!  * [`tuf_keys`]: the TUF keys that sign it.
//!  * [`build`]: the steps in order, and the size report.

pub mod accounts;
pub mod build;
pub mod cmd;
pub mod disk;
pub mod factory;
pub mod fat;
pub mod grub;
pub mod initramfs;
pub mod kargs;
pub mod os;
pub mod pxe;
pub mod release;
pub mod rootfs;
pub mod tools;
pub mod trim;
pub mod tuf_keys;
pub mod units;
pub mod update_repo;
