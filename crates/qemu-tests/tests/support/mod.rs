//! Test support: a tiny guest (a Linux kernel + a busybox initramfs) to prove the harness on
//! real VMs without Keel's image.
//!
//! The kernel is `$KEEL_TEST_KERNEL`, else the newest readable `/boot/vmlinuz-*`, else
//! `build/pxe/vmlinuz` (present in CI, where the image build runs first). The initramfs is written
//! here with Keel's newc writer (the `cpio` crate): `/bin/busybox` (from `busybox-static`), `/dev/console`
//! and an `/init` that prints [`READY`] and keeps a root shell on ttyS0.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// What the guest prints once its shell is about to start.
pub const READY: &str = "harness-guest ready";

/// Log with `RUST_LOG=debug cargo test ...`; repeated calls are harmless.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A kernel to boot: see the module doc.
pub fn find_kernel() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("KEEL_TEST_KERNEL").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("KEEL_TEST_KERNEL={} is not a file", path.display());
        }
        return Ok(path);
    }
    let mut boot: Vec<PathBuf> = std::fs::read_dir("/boot")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("vmlinuz-"))
                })
                // Debian installs kernels readable by root only.
                .filter(|p| std::fs::File::open(p).is_ok())
                .collect()
        })
        .unwrap_or_default();
    boot.sort();
    if let Some(newest) = boot.pop() {
        return Ok(newest);
    }
    let built = qemu_tests::artifacts::build_dir().join("pxe/vmlinuz");
    if built.is_file() {
        return Ok(built);
    }
    bail!(
        "no kernel for the harness guest: set KEEL_TEST_KERNEL, install a kernel in /boot \
         (package linux-image-amd64), or run `./keel build` to make {}",
        built.display()
    )
}

/// Write a PXE artifacts dir for the tiny guest into `dir`: `vmlinuz` (a link to the kernel)
/// and `initramfs.img`.
pub fn make_guest(dir: &Path) -> Result<()> {
    let kernel = find_kernel()?;
    std::os::unix::fs::symlink(&kernel, dir.join(qemu_tests::pxe::KERNEL))
        .with_context(|| format!("linking {}", kernel.display()))?;
    let initramfs = busybox_initramfs()?;
    std::fs::write(dir.join(qemu_tests::pxe::INITRAMFS), initramfs)
        .context("writing initramfs.img")?;
    Ok(())
}

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "harness-guest ready"
while true; do
    setsid cttyhack sh
done
"#;

/// An uncompressed newc initramfs with static busybox and [`INIT`].
pub fn busybox_initramfs() -> Result<Vec<u8>> {
    let busybox = qemu_tests::tools::require("busybox", "busybox-static")?;
    let bytes =
        std::fs::read(&busybox).with_context(|| format!("reading {}", busybox.display()))?;
    // A dynamically linked busybox would need its libraries in the initramfs.
    if std::process::Command::new("ldd")
        .arg(&busybox)
        .output()
        .is_ok_and(|o| o.status.success())
    {
        bail!(
            "{} is dynamically linked: install the Debian package busybox-static",
            busybox.display()
        );
    }
    let mut cpio = cpio::Writer::in_memory();
    for dir in ["bin", "dev", "proc", "sys", "tmp", "root"] {
        cpio.dir(dir, 0o755)?;
    }
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.file("bin/busybox", 0o755, &bytes)?;
    cpio.file("init", 0o755, INIT.as_bytes())?;
    Ok(cpio.finish()?)
}

/// A GPT disk image (`dir/esp-disk.img`, 128 MiB) whose partition 1 `EFI-SYSTEM` is a FAT
/// filesystem holding the guest's kernel and initramfs and a `startup.nsh` for the UEFI shell.
///
/// It has no bootloader: OVMF finds nothing to boot on the disk and falls back to its built-in
/// UEFI shell, which runs `startup.nsh` from the ESP, which starts the kernel (an EFI binary)
/// with its arguments. That proves UEFI disk boot of the harness without a real image.
pub fn uefi_shell_disk(dir: &Path) -> Result<PathBuf> {
    const MIB: u64 = 1 << 20;
    let (esp_start, esp_len) = (MIB, 64 * MIB);
    let image = dir.join("esp-disk.img");
    std::fs::File::create(&image)?.set_len(128 * MIB)?;
    let mut device = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)?;
    gpt::mbr::ProtectiveMBR::with_lb_size((128 * MIB / 512 - 1) as u32)
        .overwrite_lba0(&mut device)?;
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(device, None)?;
    disk.add_partition_at(
        qemu_tests::oem::ESP_LABEL,
        1,
        esp_start / 512,
        esp_len / 512,
        gpt::partition_types::EFI,
        0,
    )?;
    let mut device = disk.write()?;

    let fat = dir.join("esp.fat");
    let mkfs = qemu_tests::tools::require("mkfs.vfat", "dosfstools")?;
    let out = std::process::Command::new(mkfs)
        .arg("-C")
        .arg(&fat)
        .arg((esp_len / 1024).to_string())
        .output()?;
    ensure_ok(&out, "mkfs.vfat")?;
    use std::io::{Seek, SeekFrom, Write};
    device.seek(SeekFrom::Start(esp_start))?;
    device.write_all(&std::fs::read(&fat)?)?;
    drop(device);

    let esp = qemu_tests::oem::find_partition(&image, qemu_tests::oem::ESP_LABEL)?;
    esp.write_file("vmlinuz", &std::fs::read(find_kernel()?)?)?;
    esp.write_file("initramfs.img", &busybox_initramfs()?)?;
    esp.write_file(
        "startup.nsh",
        b"fs0:\\vmlinuz initrd=\\initramfs.img console=ttyS0,115200 quiet keel.test=uefi-disk\r\n",
    )?;
    Ok(image)
}

fn ensure_ok(out: &std::process::Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
