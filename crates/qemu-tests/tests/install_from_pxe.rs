//! Install from PXE: the live system runs `coreos-install` against the release tree image-build
//! published (build/release, served over the harness's loopback HTTP server), and the machine
//! then boots the installed disk to node ready on slot A, with the Ignition config on OEM.
//!
//! Here, as the CoreOS lab types it: the live system is booted with the release server on its
//! kernel command line (`keel.release_url=`, as image-build's iPXE script passes it), and `core`
//! runs `sudo coreos-install -d /dev/vda -i cfg.json` (passwordless sudo, no `-b`, no `-V`: the
//! release the live system runs). The unattended install from `coreos.inst.*` kernel arguments is
//! in seed_lab.rs; the offline install from the image the live system carries, with power cuts,
//! in install_power_cut.rs.
//!
//! Run: `KEEL_BUILD_DIR=... cargo test -p qemu-tests --features vm --test install_from_pxe -- --test-threads=1`
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use qemu_tests::{artifacts, Server, Vm};

mod keel;

use keel::{init_logging, release, sh};

/// The agent's console line when the node is up.
const NODE_READY: &str = r"keel-agent: node ready: (.*) on slot (\S+), engine docker (\S+)";
/// PXE boot or disk boot to node ready under TCG on a shared machine.
const BOOT: Duration = Duration::from_secs(600);
/// Download, verify and write ~2.5 GiB under TCG.
const INSTALL: Duration = Duration::from_secs(1800);
/// A small, valid Ignition config (no single quotes: it is typed into a shell).
/// A user put in `wheel` by Ignition gets passwordless sudo, as `core` has.
const CONFIG: &str = r#"{"ignition":{"version":"3.3.0"},"passwd":{"users":[{"name":"ops","groups":["wheel"]}]},"storage":{"files":[{"path":"/etc/keel-install-test","mode":420,"contents":{"source":"data:,installed-by-coreos-install"}}]}}"#;
const DISK: u64 = 20 << 30;

/// After the reboot: the initramfs finds slot A on the installed disk, and the node comes up on it.
fn wait_installed_node_ready(vm: &mut Vm) -> Result<()> {
    vm.console()
        .wait_for(r"keel-init: slot A is /dev/vda3 on disk vda", BOOT)?;
    let ready = vm.console().wait_for(NODE_READY, BOOT)?;
    let slot = ready.group(2).unwrap_or_default();
    ensure!(
        slot == "A",
        "the installed system booted slot {slot}, not A"
    );
    Ok(())
}

#[test]
fn coreos_install_on_the_live_shell_then_boot_the_disk() -> Result<()> {
    init_logging();
    let (release, version) = release()?;
    let server = Server::serve_dir(&release)?;
    let mut vm = Vm::builder()
        .name("install-pxe")
        .bios()
        .pxe(artifacts::pxe_dir()?)
        .kernel_append(format!(
            "keel.live keel.autologin keel.release_url={}",
            server.guest_url("").trim_end_matches('/')
        ))
        .memory_mib(3072)
        .extra_disk(DISK)
        .start()?;
    let live = vm.console().wait_for(NODE_READY, BOOT)?;
    ensure!(
        live.group(2) == Some("live"),
        "PXE boot is the live system: {}",
        live.text
    );
    std::thread::sleep(Duration::from_secs(3));

    sh(
        &mut vm,
        &format!("cd /tmp && printf '%s\\n' '{CONFIG}' > cfg.json"),
    )?;
    let cmd = "su core -c 'sudo coreos-install -d /dev/vda -i cfg.json'";
    let (code, out) = vm.console().run(cmd, INSTALL)?;
    let success = format!("Success! Keel {version} is installed on /dev/vda");
    ensure!(
        code == 0 && out.lines().any(|l| l.trim_end() == success),
        "`{cmd}` exited {code}:\n{out}"
    );
    let fetched: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| r.path)
        .collect();
    ensure!(
        fetched.iter().any(|p| p.ends_with(".sig"))
            && fetched.iter().any(|p| p.ends_with(".bin.gz")),
        "the installer fetched the image and its signature: {fetched:?}"
    );

    // The kernel's own vfat agrees with the installer's FAT writer; a root shell on the installed
    // system comes from OEM grub.cfg, as the README tells an operator.
    let seen = sh(
        &mut vm,
        "mkdir -p /run/oemcheck && mount -t vfat /dev/vda6 /run/oemcheck && cat /run/oemcheck/config.ign \
         && printf 'set linux_append=\"keel.autologin\"\\n' > /run/oemcheck/grub.cfg && umount /run/oemcheck",
    )?;
    ensure!(
        seen.trim() == CONFIG,
        "OEM config.ign as the live kernel reads it: {seen}"
    );

    vm.boot_from_disk_next()?;
    vm.console().send_line("reboot")?;
    wait_installed_node_ready(&mut vm)?;
    std::thread::sleep(Duration::from_secs(3));
    let on_disk = sh(&mut vm, "cat /oem/config.ign")?;
    ensure!(
        on_disk.trim() == CONFIG,
        "/oem/config.ign on the installed system: {on_disk}"
    );
    let boot = sh(&mut vm, "cat /run/keel/boot")?;
    ensure!(
        boot.contains("slot=A disk=/dev/vda"),
        "/run/keel/boot: {boot}"
    );
    let root = sh(&mut vm, "findmnt -n -o SOURCE,FSTYPE /")?;
    ensure!(
        root.contains("/dev/vda9") && root.contains("ext4"),
        "ROOT is the installed disk's: {root}"
    );
    // As on Container Linux: core (built in) and wheel members run anything as root without a
    // password; sshd takes only keys for root and never an empty password.
    for user in ["core", "ops"] {
        let id = sh(&mut vm, &format!("su {user} -c 'sudo -n id -u'"))?;
        ensure!(id.trim() == "0", "`sudo -n id -u` as {user}: {id}");
    }
    let sshd = sh(
        &mut vm,
        "sshd -T | grep -E '^(permitrootlogin|permitemptypasswords) ' | sort",
    )?;
    ensure!(
        sshd.trim() == "permitemptypasswords no\npermitrootlogin without-password",
        "sshd's effective settings: {sshd}"
    );
    let size = sh(&mut vm, "blockdev --getsize64 /dev/vda9")?;
    let size: u64 = size.trim().parse().context("ROOT size")?;
    ensure!(
        size > 15 << 30,
        "ROOT grew to fill the 20 GB disk: {size} bytes"
    );
    Ok(())
}
