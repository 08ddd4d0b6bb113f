//! The harness proved on real VMs with a tiny self-made guest (a kernel and a busybox
//! initramfs, see `support`), not with Keel: PXE boot over the loopback HTTP server, the serial
//! console, power cut and power on, reset, and power off.
//!
//! Run: `cargo test -p qemu-tests --features vm -- --test-threads=1`.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod support;

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use qemu_tests::{Segment, Vm};

use support::READY;

/// Generous for TCG on a shared 2-core machine (a boot takes ~6-15 s there).
const BOOT: Duration = Duration::from_secs(180);
const CMD: Duration = Duration::from_secs(30);

fn guest_dir() -> Result<tempfile::TempDir> {
    support::init_logging();
    let dir = tempfile::tempdir()?;
    support::make_guest(dir.path())?;
    Ok(dir)
}

/// What the guest fetched over HTTP, in order.
fn fetched(vm: &Vm) -> Vec<String> {
    vm.pxe_server()
        .map(|s| {
            s.requests()
                .into_iter()
                .filter(|r| r.status == 200)
                .map(|r| r.path)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bios_pxe_boot_console_power_cut_reset_and_power_off() -> Result<()> {
    let guest = guest_dir()?;
    let segment = Segment::new()?;
    let mut vm = Vm::builder()
        .name("selftest-bios")
        .bios()
        .pxe(guest.path())
        .kernel_append("quiet")
        .memory_mib(512)
        .ssh_forward()
        .nic_on(segment.a())
        .nics(3)
        .extra_disk(64 << 20)
        .start()?;
    println!("{}", vm.command_line());

    // (1) iPXE fetched kernel and initramfs over HTTP from the loopback server; the guest runs.
    vm.console().wait_for(READY, BOOT)?;
    ensure!(
        fetched(&vm) == ["/vmlinuz", "/initramfs.img"],
        "unexpected HTTP fetches: {:?}",
        fetched(&vm)
    );

    // (2) Commands on the serial root shell: exit code and output.
    let (code, output) = vm.console().run("echo hi; false", CMD)?;
    ensure!(
        (code, output.as_str()) == (1, "hi"),
        "got ({code}, {output:?})"
    );
    let (code, output) = vm.console().run("echo one; echo two", CMD)?;
    ensure!(
        (code, output.as_str()) == (0, "one\ntwo"),
        "got ({code}, {output:?})"
    );
    let (code, output) = vm.console().run(
        "printf no-newline; exit_code() { return 7; }; exit_code",
        CMD,
    )?;
    ensure!(
        (code, output.as_str()) == (7, "no-newline"),
        "got ({code}, {output:?})"
    );
    // The devices of the command line are there: 3 NICs, the blank disk, the RNG (virtio, 1af4).
    let (_, virtio) = vm
        .console()
        .run("grep -l 0x1af4 /sys/bus/pci/devices/*/vendor | wc -l", CMD)?;
    ensure!(
        virtio.trim() == "5",
        "expected 5 virtio PCI devices, got {virtio:?}"
    );
    // Each boot has a different marker, so later waits cannot match this boot's lines.
    vm.console().run("echo boot-1-was-here", CMD)?;

    // (3) Pull the plug, then power on again: the same machine boots again.
    vm.power_cut()?;
    ensure!(!vm.is_running(), "QEMU still runs after the power cut");
    let err = vm
        .console()
        .wait_for(READY, Duration::from_secs(2))
        .unwrap_err();
    ensure!(err.to_string().contains("QEMU exited"), "{err}");
    vm.start_again()?;
    vm.console().wait_for(READY, BOOT)?;
    let (code, _) = vm.console().run("true", CMD)?;
    ensure!(code == 0);
    ensure!(
        fetched(&vm).len() == 4,
        "the second boot fetched again: {:?}",
        fetched(&vm)
    );

    // Reset button (QMP), then the guest reboots itself: both boot again (no -no-reboot).
    vm.reset()?;
    vm.console().wait_for(READY, BOOT)?;
    vm.console().send_line("reboot -f")?;
    vm.console().wait_for(READY, BOOT)?;
    ensure!(fetched(&vm).len() == 8, "fetches: {:?}", fetched(&vm));

    // After an install from PXE an operator boots the disk first: the order changes live (QMP).
    vm.boot_from_disk_next()?;
    ensure!(
        vm.command_line().contains("id=nic0,mac="),
        "{}",
        vm.command_line()
    );
    ensure!(
        vm.command_line().contains(",bootindex=9"),
        "{}",
        vm.command_line()
    );

    // Power off from inside: QEMU exits.
    vm.console().send_line("poweroff -f")?;
    let status = vm.wait_exit(Duration::from_secs(60))?;
    ensure!(status.success(), "QEMU exit status {status}");

    // The whole log is still there for wait_for_from_start.
    let first = vm
        .console()
        .wait_for_from_start("boot-1-was-here", Duration::ZERO)?;
    ensure!(first.text == "boot-1-was-here");
    Ok(())
}

#[test]
fn uefi_pxe_boot_and_power_cycle() -> Result<()> {
    let guest = guest_dir()?;
    let mut vm = Vm::builder()
        .name("selftest-uefi")
        .uefi()
        .pxe(guest.path())
        .kernel_append("quiet")
        .memory_mib(512)
        .start()
        .context("starting a UEFI PXE VM")?;
    println!("{}", vm.command_line());
    vm.console().wait_for(READY, BOOT)?;
    let (code, output) = vm.console().run("echo hi; false", CMD)?;
    ensure!(
        (code, output.as_str()) == (1, "hi"),
        "got ({code}, {output:?})"
    );
    // UEFI boots through OVMF: the kernel saw EFI.
    let (code, _) = vm.console().run("test -d /sys/firmware/efi", CMD)?;
    ensure!(code == 0, "/sys/firmware/efi missing: not booted by UEFI");

    vm.power_cut()?;
    vm.start_again()?;
    vm.console().wait_for(READY, BOOT)?;
    Ok(())
}

#[test]
fn uefi_disk_boot_of_a_copy_with_files_written_through_the_gpt() -> Result<()> {
    support::init_logging();
    let dir = tempfile::tempdir()?;
    let fixture = support::uefi_shell_disk(dir.path())?;
    let pristine = std::fs::read(&fixture)?;
    let mut vm = Vm::builder()
        .name("selftest-uefi-disk")
        .uefi()
        .disk_copy_of(&fixture, Some(256 << 20))
        .memory_mib(512)
        .start()?;
    println!("{}", vm.command_line());
    ensure!(
        vm.disks()[0].starts_with(vm.work_dir()),
        "the disk is not a copy"
    );
    ensure!(
        std::fs::metadata(&vm.disks()[0])?.len() == 256 << 20,
        "the copy was not grown"
    );

    vm.console().wait_for("Shell> ", BOOT)?;
    vm.console().wait_for(READY, BOOT)?;
    let (_, cmdline) = vm.console().run("cat /proc/cmdline", CMD)?;
    ensure!(
        cmdline.contains("keel.test=uefi-disk"),
        "cmdline {cmdline:?}"
    );

    // Power cycle: the same disk and NVRAM boot again.
    vm.power_cut()?;
    vm.start_again()?;
    vm.console().wait_for(READY, BOOT)?;
    vm.console().send_line("poweroff -f")?;
    vm.wait_exit(Duration::from_secs(60))?;

    // The build artifact was never written; the copy can still be read through its GPT.
    ensure!(
        std::fs::read(&fixture)? == pristine,
        "the fixture image changed"
    );
    let nsh =
        qemu_tests::oem::read_file(&vm.disks()[0], qemu_tests::oem::ESP_LABEL, "startup.nsh")?;
    ensure!(String::from_utf8(nsh)?.contains("keel.test=uefi-disk"));
    Ok(())
}
