//! An invalid Ignition config on OEM stops the first boot before anything is applied: every
//! error is on the console with its JSON path, the initramfs stops the boot with the reason,
//! the node never reaches node ready, and the next boot tries again because the first-boot
//! marker is still on the ESP.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
use qemu_tests::Vm;

use keel::{disk_with_oem, init_logging, marker_present, BOOT, NODE_READY};

/// A relative path and a mode that is not a permission, next to a valid user and file.
const INVALID: &str = r#"{"ignition":{"version":"3.3.0"},
  "passwd":{"users":[{"name":"core"}]},
  "storage":{"files":[
    {"path":"etc/relative","contents":{"source":"data:,x"}},
    {"path":"/etc/bad-mode","mode":99999,"contents":{"source":"data:,y"}},
    {"path":"/etc/fine","contents":{"source":"data:,z"}}]}}"#;

#[test]
fn an_invalid_config_stops_the_first_boot_and_the_next_boot_retries() -> Result<()> {
    init_logging();
    let disk = disk_with_oem(4 << 30, Some(INVALID), "keel.fatal_wait=3")?;
    let mut vm = Vm::builder()
        .name("firstboot-invalid")
        .uefi()
        .disk(&disk.path)
        .start()?;

    for attempt in 1..=2 {
        vm.console()
            .wait_for("keel-init: first boot: running Ignition", BOOT)?;
        vm.console()
            .wait_for(r"ignition: error: \$\.storage\.files\[0\]\.path: ", BOOT)?;
        vm.console()
            .wait_for(r"ignition: error: \$\.storage\.files\[1\]\.mode: ", BOOT)?;
        let m = vm.console().wait_for(
            r"keel-init: FATAL: Ignition failed \(errors above\); nothing more was applied and the first-boot marker is kept",
            BOOT,
        )?;
        ensure!(
            !m.before.contains("ignition: wrote") && !m.before.contains("ignition: created"),
            "attempt {attempt} applied something:\n{}",
            m.before
        );
        vm.console().wait_for("rebooting in 3s", BOOT)?;
    }
    vm.power_cut()?;
    let text = vm.console().text()?.to_string();
    ensure!(
        !text.contains(NODE_READY),
        "the node came up with an invalid config"
    );
    ensure!(
        marker_present(&disk.path),
        "the first-boot marker was removed"
    );
    Ok(())
}
