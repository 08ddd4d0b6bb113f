//! PXE: iPXE loads kernel and initramfs over HTTP from a loopback server, and the live system
//! reaches "node ready" with no disk attached, the whole OS in RAM.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
use keel::{agent_status, sh, wait_ready};
use qemu_tests::{artifacts, Vm};

#[test]
fn pxe_live_system_reaches_node_ready_without_a_disk() -> Result<()> {
    keel::init_logging();
    let mut vm = Vm::builder()
        .name("pxe-live")
        .bios()
        .pxe(artifacts::pxe_dir()?)
        .kernel_append("keel.live keel.autologin")
        .memory_mib(3072)
        .start()?;
    let (_, slot) = wait_ready(&mut vm)?;
    ensure!(
        slot == "live",
        "the PXE system says it is live, got slot {slot}"
    );

    let fetched: Vec<String> = vm
        .pxe_server()
        .expect("PXE VM has a server")
        .requests()
        .into_iter()
        .filter(|r| r.status == 200 && r.method == "GET")
        .map(|r| r.path)
        .collect();
    ensure!(
        fetched.iter().any(|p| p.ends_with("vmlinuz"))
            && fetched.iter().any(|p| p.ends_with("initramfs.img")),
        "kernel and initramfs came over HTTP: {fetched:?}"
    );

    let status = agent_status(&mut vm)?;
    ensure!(
        status["engine"]["state"] == "running",
        "agent status: {status}"
    );
    let disks = sh(&mut vm, "ls /sys/block | grep -E '^(vd|sd|nvme)' || true")?;
    ensure!(
        disks.trim().is_empty(),
        "no disk is attached, yet /sys/block lists: {disks}"
    );
    let root_fs = sh(&mut vm, "findmnt -n -o FSTYPE /")?;
    ensure!(
        root_fs.trim() == "tmpfs",
        "the live root is in RAM, found {root_fs}"
    );
    Ok(())
}
