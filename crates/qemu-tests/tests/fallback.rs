//! Fallback: slot B is marked to try next while it holds a kernel and initramfs that cannot boot
//! it (its USR partition holds no OS image). GRUB spends B's tries and returns to A by itself;
//! `updater status` then shows B failed and A good.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
use keel::{disk_copy, disk_vm, sh, wait_ready, BOOT};
use slots::layout::esp;
use slots::Slot;

fn row<'a>(status: &'a str, label: &str) -> Result<Vec<&'a str>> {
    let line = status
        .lines()
        .find(|l| l.starts_with(label))
        .ok_or_else(|| anyhow::anyhow!("no {label} row in:\n{status}"))?;
    Ok(line.split_whitespace().collect())
}

#[test]
fn grub_returns_to_a_when_b_cannot_boot_and_status_shows_b_failed() -> Result<()> {
    keel::init_logging();
    let disk = disk_copy(4 << 30, "keel.autologin")?;
    let mut vm = disk_vm("fallback", &disk).uefi().start()?;
    let (_, slot) = wait_ready(&mut vm)?;
    ensure!(slot == "A");

    sh(
        &mut vm,
        &format!(
            "cp /boot/{} /boot/{} /boot/{}/ && sync",
            esp::slot_file(Slot::A, esp::KERNEL),
            esp::slot_file(Slot::A, esp::INITRD),
            esp::slot_dir(Slot::B)
        ),
    )?;
    sh(&mut vm, "updater set-next B")?;
    let armed = sh(&mut vm, "updater status")?;
    // SLOT VERSION PRIORITY TRIES-LEFT GOOD FAILED [BOOTED]
    let b = row(&armed, "USR-B")?;
    ensure!(
        b[2] == "2" && b[3] == "3" && b[4] == "no",
        "B armed with 3 tries:\n{armed}"
    );

    vm.console().send_line("systemctl reboot")?;
    // Three attempts at B, each ending in the initramfs refusing an empty slot.
    for attempt in 1..=3 {
        vm.console().wait_for(r"keel: trying slot B", BOOT)?;
        vm.console()
            .wait_for(r"keel-init: FATAL: slot B \(\S+\) holds no OS image", BOOT)
            .map_err(|e| anyhow::anyhow!("attempt {attempt}: {e}"))?;
    }
    vm.console().wait_for(
        r"keel: slot B used up its tries; booting the good slot A",
        BOOT,
    )?;
    let (_, slot) = wait_ready(&mut vm)?;
    ensure!(slot == "A", "back on A, got {slot}");
    vm.console()
        .wait_for(r"slot B failed its trial; GRUB returned to slot A", BOOT)?;

    let status = sh(&mut vm, "updater status")?;
    let a = row(&status, "USR-A")?;
    let b = row(&status, "USR-B")?;
    ensure!(
        a[4] == "yes" && a[5] == "no",
        "A good, not failed:\n{status}"
    );
    ensure!(
        b[4] == "no" && b[5] == "yes" && b[3] == "0",
        "B failed with no tries left:\n{status}"
    );
    Ok(())
}
