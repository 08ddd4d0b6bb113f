//! Ignition runs on the first boot only. The config comes from an http URL on the kernel
//! command line (so the initramfs brings the network up with DHCP and takes it down again),
//! which wins over a decoy `config.ign` on OEM. It sets the hostname, an SSH key for the built-in
//! user `core`, a file under /etc, and a unit enabled with a drop-in; each effect is checked over
//! SSH as core. After a reboot Ignition does not run again: the console says so, the marker is
//! gone, the config URL is not fetched again, and a file the config wrote, deleted in between,
//! stays deleted.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
use qemu_tests::{Server, SshKey, Vm};
use slots::layout::esp;

use keel::{disk_with_oem, init_logging, marker_present, BOOT, CMD, NODE_READY};

fn config(key: &str) -> String {
    let unit = "[Unit]\nDescription=Ignition test unit\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo ${GREETING} > /run/ign-hello'\n\n[Install]\nWantedBy=multi-user.target\n";
    let dropin = "[Service]\nEnvironment=GREETING=hello-from-the-dropin\n";
    serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [key]}]},
        "storage": {"files": [
            {"path": "/etc/hostname", "overwrite": true, "mode": 420,
             "contents": {"source": "data:,ign-node%0A"}},
            {"path": "/etc/keel-ign/hello.txt", "mode": 420,
             "contents": {"source": "data:,written%20by%20ignition%0A"}}
        ]},
        "systemd": {"units": [{"name": "ign-hello.service", "enabled": true, "contents": unit,
            "dropins": [{"name": "10-greeting.conf", "contents": dropin}]}]}
    })
    .to_string()
}

/// A config that must lose against the command-line URL.
const DECOY: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/decoy","contents":{"source":"data:,oem"}}]}}"#;

#[test]
fn ignition_runs_on_the_first_boot_only() -> Result<()> {
    init_logging();
    let key = SshKey::generate()?;
    let served = tempfile::tempdir()?;
    std::fs::write(served.path().join("config.ign"), config(key.public_key()))?;
    let server = Server::serve_dir(served.path())?;
    let url = server.guest_url("config.ign");
    let disk = disk_with_oem(
        4 << 30,
        Some(DECOY),
        &format!("keel.autologin ignition.config.url={url}"),
    )?;
    let mut vm = Vm::builder()
        .name("firstboot-once")
        .uefi()
        .disk(&disk.path)
        .ssh_forward()
        .start()?;

    // First boot: Ignition in the initramfs, with the network up just for the fetch.
    vm.console()
        .wait_for("keel-init: first boot: running Ignition", BOOT)?;
    vm.console()
        .wait_for(r"keel-init: udhcpc: eth0: 10\.0\.2\.\d+/24", BOOT)?;
    let m = vm
        .console()
        .wait_for(r"ignition: first boot: config from (\S+)", BOOT)?;
    ensure!(
        m.group(1) == Some(url.as_str()),
        "config source: {:?}",
        m.group(1)
    );
    // `core` is built in (as on Container Linux): Ignition gives it the key.
    vm.console().wait_for(
        r"ignition: wrote SSH keys /home/core/\.ssh/authorized_keys \(1 keys",
        BOOT,
    )?;
    vm.console().wait_for(
        &format!(
            r"ignition: first boot done; removed the marker /sysroot/boot/{}",
            esp::FIRST_BOOT
        ),
        BOOT,
    )?;
    vm.console().wait_for(
        r"keel-init: Ignition: network interfaces taken down again: eth0",
        BOOT,
    )?;
    vm.console().wait_for(NODE_READY, BOOT)?;
    let fetches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/config.ign")
        .collect();
    ensure!(
        fetches.len() == 1 && fetches[0].status == 200,
        "fetches: {fetches:?}"
    );

    // Each effect, over SSH as core with the key from the config.
    let ssh = vm.ssh("core", &key)?;
    let run = |cmd: &str| -> Result<String> {
        let out = ssh.run(cmd, CMD)?;
        ensure!(
            out.status.success(),
            "`{cmd}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    ensure!(run("id -un")? == "core");
    ensure!(run("hostname")? == "ign-node");
    ensure!(run("cat /etc/keel-ign/hello.txt")? == "written by ignition");
    ensure!(run("stat -c %a /etc/keel-ign/hello.txt")? == "644");
    ensure!(run("systemctl is-enabled ign-hello.service")? == "enabled");
    ensure!(run("cat /run/ign-hello")? == "hello-from-the-dropin");
    ensure!(
        run("test ! -e /etc/decoy && echo no-decoy")? == "no-decoy",
        "the OEM config.ign must lose against the URL"
    );
    ensure!(run(&format!("test ! -e /boot/{} && echo gone", esp::FIRST_BOOT))? == "gone");
    // The binary is in the OS too, for checking configs on a node.
    let valid = r#"echo '{"ignition":{"version":"3.3.0"}}' | ignition validate - && echo valid"#;
    ensure!(run(valid)? == "valid");

    // Delete a file the config wrote, then reboot.
    let (code, _) = vm
        .console()
        .run("rm /etc/keel-ign/hello.txt && sync", CMD)?;
    ensure!(code == 0, "rm failed");
    vm.power_cut()?;
    vm.start_again()?;
    vm.console().wait_for(
        "keel-init: first boot already done; Ignition does not run",
        BOOT,
    )?;
    let m = vm.console().wait_for(NODE_READY, BOOT)?;
    ensure!(
        !m.before.contains("ignition: "),
        "Ignition ran again on the second boot:\n{}",
        m.before
    );
    let ssh = vm.ssh("core", &key)?;
    let out = ssh.run(
        "test -e /etc/keel-ign/hello.txt && echo back || echo still-gone",
        CMD,
    )?;
    ensure!(String::from_utf8_lossy(&out.stdout).trim() == "still-gone");
    let fetches = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/config.ign")
        .count();
    ensure!(fetches == 1, "the config was fetched {fetches} times");
    vm.power_cut()?;
    ensure!(!marker_present(&disk.path), "the first-boot marker is back");
    Ok(())
}
