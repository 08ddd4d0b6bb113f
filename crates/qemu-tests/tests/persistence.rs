//! What the admin writes in /etc and /var survives a reboot; /usr cannot be written.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{bail, ensure, Context, Result};
use keel::{disk_copy, disk_vm, sh, sh_status, wait_ready};

#[test]
fn etc_and_var_survive_a_reboot_and_usr_is_read_only() -> Result<()> {
    keel::init_logging();
    let disk = disk_copy(4 << 30, "keel.autologin")?;
    let mut vm = disk_vm("persistence", &disk).uefi().start()?;
    wait_ready(&mut vm)?;

    sh(&mut vm, "echo admin-was-here > /etc/keel-persist && mkdir -p /var/lib/keel-test && echo workload-data > /var/lib/keel-test/data && sync")?;
    let (code, out) = sh_status(&mut vm, "touch /usr/keel-persist")?;
    ensure!(code != 0, "writing under /usr must fail, it succeeded");
    ensure!(
        out.contains("Read-only file system"),
        "writing under /usr fails as read-only: {out}"
    );
    // The mount itself is read-only: the exact `ro` option, not any option with those letters.
    let usr = sh(&mut vm, "findmnt -n -o FSTYPE,OPTIONS --mountpoint /usr")?;
    let (fstype, options) = usr
        .trim()
        .split_once(char::is_whitespace)
        .with_context(|| format!("findmnt /usr printed no FSTYPE and OPTIONS: {usr:?}"))?;
    ensure!(
        fstype == "squashfs" && options.trim().split(',').any(|o| o == "ro"),
        "/usr is the OS image (squashfs) mounted with the option ro: {usr}"
    );
    let first_boot = boot_id(&mut vm)?;

    vm.console().send_line("systemctl reboot")?;
    wait_ready(&mut vm)?;
    ensure!(sh(&mut vm, "cat /etc/keel-persist")?.trim() == "admin-was-here");
    ensure!(sh(&mut vm, "cat /var/lib/keel-test/data")?.trim() == "workload-data");
    let (code, _) = sh_status(&mut vm, "test -e /usr/keel-persist")?;
    ensure!(code != 0, "nothing appeared under /usr");
    // The second boot reused ROOT instead of making it again: the journal on ROOT has the first
    // boot, by its boot ID, as the previous one.
    let second_boot = boot_id(&mut vm)?;
    ensure!(
        second_boot != first_boot,
        "the VM did not reboot: boot ID {first_boot} both times"
    );
    let previous = sh(
        &mut vm,
        "journalctl -b -1 -q -n 1 --no-pager -o export | sed -n 's/^_BOOT_ID=//p'",
    )?;
    if previous.trim() != first_boot {
        let boots = sh(&mut vm, "journalctl --list-boots --no-pager")?;
        bail!(
            "the journal on ROOT should have the first boot ({first_boot}) as the previous one \
             (journalctl -b -1), it has {previous:?}; journalctl --list-boots:\n{boots}"
        );
    }
    Ok(())
}

/// The running boot's ID as the journal spells it: 32 hex digits, no dashes.
fn boot_id(vm: &mut qemu_tests::Vm) -> Result<String> {
    let id = sh(vm, "cat /proc/sys/kernel/random/boot_id")?;
    let id = id.trim().replace('-', "");
    ensure!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "not a boot ID: {id:?}"
    );
    Ok(id)
}
