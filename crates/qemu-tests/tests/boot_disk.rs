//! The disk image boots with UEFI (OVMF) and with BIOS (SeaBIOS) to "node ready" on slot A,
//! with ROOT grown to fill the disk and the agent reporting the engine running.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
use keel::{agent_status, disk_copy, disk_vm, sh, wait_ready};

fn boots_to_node_ready(name: &str, uefi: bool) -> Result<()> {
    keel::init_logging();
    let disk = disk_copy(6 << 30, "keel.autologin")?;
    let builder = disk_vm(name, &disk);
    let builder = if uefi { builder.uefi() } else { builder.bios() };
    let mut vm = builder.start()?;
    let (os, slot) = wait_ready(&mut vm)?;
    ensure!(os.starts_with("Keel "), "node ready names the OS: {os}");
    ensure!(slot == "A", "a fresh image boots slot A, got {slot}");

    let status = agent_status(&mut vm)?;
    ensure!(status["booted_slot"] == "A", "agent status: {status}");
    ensure!(
        status["engine"]["state"] == "running",
        "agent status: {status}"
    );
    ensure!(
        status["uptime_seconds"].as_u64().unwrap_or(0) > 0,
        "agent status: {status}"
    );

    // ROOT was created on first boot and grown to the end of the 6 GiB disk.
    let size = sh(&mut vm, "sync; df -B1 --output=size / | tail -n1")?;
    let fs_bytes: u64 = size.trim().parse()?;
    let root = slots::table::find_by_label(&disk.path, "ROOT")?;
    let disk_len = std::fs::metadata(&disk.path)?.len();
    ensure!(
        disk_len - (root.offset + root.len) < 1 << 20,
        "ROOT ends {} bytes before the end of the disk",
        disk_len - (root.offset + root.len)
    );
    ensure!(
        root.len > 3 << 30,
        "ROOT grew from 64 MiB to {} bytes",
        root.len
    );
    ensure!(
        fs_bytes * 10 > root.len * 9,
        "the filesystem on ROOT ({fs_bytes} bytes) fills the partition ({} bytes)",
        root.len
    );
    let fw = sh(
        &mut vm,
        "test -d /sys/firmware/efi && echo uefi || echo bios",
    )?;
    ensure!(
        fw.trim() == if uefi { "uefi" } else { "bios" },
        "booted through {fw}"
    );
    Ok(())
}

#[test]
fn uefi_disk_boot_reaches_node_ready() -> Result<()> {
    boots_to_node_ready("boot-uefi", true)
}

#[test]
fn bios_disk_boot_reaches_node_ready() -> Result<()> {
    boots_to_node_ready("boot-bios", false)
}
