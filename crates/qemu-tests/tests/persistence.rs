//! What the admin writes in /etc and /var survives a reboot; /usr cannot be written.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
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
    let usr = sh(&mut vm, "findmnt -n -o FSTYPE,OPTIONS /usr")?;
    ensure!(
        usr.starts_with("squashfs") && usr.contains("ro"),
        "/usr is the read-only OS image: {usr}"
    );

    vm.console().send_line("systemctl reboot")?;
    wait_ready(&mut vm)?;
    ensure!(sh(&mut vm, "cat /etc/keel-persist")?.trim() == "admin-was-here");
    ensure!(sh(&mut vm, "cat /var/lib/keel-test/data")?.trim() == "workload-data");
    let (code, _) = sh_status(&mut vm, "test -e /usr/keel-persist")?;
    ensure!(code != 0, "nothing appeared under /usr");
    // The second boot reused ROOT instead of making it again.
    let boots = sh(&mut vm, "journalctl --list-boots --no-pager | wc -l")?;
    ensure!(
        boots.trim().parse::<u32>()? >= 2,
        "the journal on ROOT remembers both boots: {boots}"
    );
    Ok(())
}
