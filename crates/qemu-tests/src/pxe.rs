//! Network boot: the iPXE script and the TFTP directory QEMU's user network serves.
//!
//! The flow is the one an operator sets up with a DHCP/TFTP server and a web server:
//!  1. the firmware's PXE client gets an address and the boot file name from QEMU's built-in
//!     DHCP server (`-netdev user,tftp=DIR,bootfile=...`) and fetches the file over TFTP;
//!  2. iPXE runs `boot.ipxe`, which fetches the kernel and initramfs over HTTP from a [`Server`]
//!     on the host (10.0.2.2 from the guest) and boots them.
//!
//! BIOS: SeaBIOS runs the NIC's iPXE option ROM (`pxe-virtio.rom`, package `ipxe-qemu`), which
//! is a full iPXE: it loads `boot.ipxe` directly.
//!
//! UEFI: OVMF loads the NIC's `efi-virtio.rom`, iPXE's EFI driver. Besides the network driver
//! it installs a LoadFile protocol on the NIC, and OVMF's first network boot option ("UEFI PXEv4
//! (MAC:...)", on the NIC's own device path) calls it: that runs iPXE's autoboot, which loads and
//! runs `boot.ipxe` exactly as under BIOS. Only if the script fails does OVMF go on to its own PXE
//! client (the next boot options), which cannot run a script. So both firmwares use the same TFTP
//! directory; iPXE boots the kernel through its EFI stub and exposes the downloaded initramfs
//! as a file, which the kernel loads because of the `initrd=` argument.

use std::path::{Path, PathBuf};

use tracing::info;

use crate::firmware::{self, FirmwareError};
use crate::vm::Firmware;
use crate::Server;

/// The kernel's file name in a PXE artifacts directory.
pub const KERNEL: &str = "vmlinuz";
/// The initramfs's file name in a PXE artifacts directory.
pub const INITRAMFS: &str = "initramfs.img";
/// The iPXE script iPXE loads first.
pub const SCRIPT: &str = "boot.ipxe";
/// Kernel arguments every PXE boot gets: the console on the serial port the harness reads.
pub const BASE_KERNEL_ARGS: &str = "console=ttyS0,115200";

/// Preparing PXE boot failed.
#[derive(Debug, thiserror::Error)]
pub enum PxeError {
    /// Firmware files are missing.
    #[error(transparent)]
    Firmware(#[from] FirmwareError),
    /// Writing the TFTP directory failed.
    #[error("pxe: writing {path}")]
    Write {
        /// The file written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The iPXE script: fetch kernel, initramfs and any `more_initrds` (file names on `server`)
/// and boot them with [`BASE_KERNEL_ARGS`] and `extra_args`.
pub fn script(server: &Server, extra_args: &str, more_initrds: &[String]) -> String {
    // `initrd=` names the initramfs for the kernel's EFI stub when iPXE boots it under UEFI
    // (iPXE exposes downloaded images as files); BIOS kernels ignore it.
    let mut named = format!("initrd={INITRAMFS}");
    let mut lines = format!("initrd {}\n", server.guest_url(INITRAMFS));
    for name in more_initrds {
        named.push_str(&format!(" initrd={name}"));
        lines.push_str(&format!("initrd {}\n", server.guest_url(name)));
    }
    let args = format!("{named} {BASE_KERNEL_ARGS} {extra_args}");
    format!(
        "#!ipxe\n\
         echo keel-harness: iPXE script running\n\
         kernel {} {}\n\
         {lines}\
         boot\n",
        server.guest_url(KERNEL),
        args.trim_end(),
    )
}

/// Write the TFTP directory for `boot_firmware` into `dir` and return the boot file name to give
/// QEMU's DHCP server.
pub fn write_tftp_dir(
    dir: &Path,
    server: &Server,
    extra_args: &str,
    more_initrds: &[String],
    boot_firmware: Firmware,
) -> Result<&'static str, PxeError> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| PxeError::Write { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| PxeError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let script = script(server, extra_args, more_initrds);
    write(SCRIPT, script.as_bytes())?;
    info!(dir = %dir.display(), ?boot_firmware, "pxe: TFTP directory written");
    let rom = match boot_firmware {
        Firmware::Bios => firmware::RomKind::Bios,
        Firmware::Uefi => firmware::RomKind::Efi,
    };
    firmware::ipxe_rom(rom)?;
    Ok(SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_fetches_kernel_and_initramfs_over_http_from_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::serve_dir(dir.path()).unwrap();
        let port = server.port();
        let script = script(&server, "ignition.firstboot rd.debug ", &[]);
        assert_eq!(
            script,
            format!(
                "#!ipxe\n\
                 echo keel-harness: iPXE script running\n\
                 kernel http://10.0.2.2:{port}/vmlinuz initrd=initramfs.img console=ttyS0,115200 ignition.firstboot rd.debug\n\
                 initrd http://10.0.2.2:{port}/initramfs.img\n\
                 boot\n"
            )
        );
        let script = super::script(&server, "keel.live", &["install.cpio".to_string()]);
        assert!(script.contains(
            "/vmlinuz initrd=initramfs.img initrd=install.cpio console=ttyS0,115200 keel.live\n\
             initrd http://10.0.2.2:"
        ));
        assert!(script.ends_with(&format!(
            "initrd http://10.0.2.2:{port}/install.cpio\nboot\n"
        )));
    }
}
