//! Power cuts during the first boot (issue 9): once while the initramfs creates ROOT, once while
//! Ignition applies its config. The boot after them finishes the job: ROOT is a complete ext4
//! filesystem whose GPT entry no longer says "not created yet", and the config is applied
//! exactly once (a file appended to holds the appended line once, a user is in /etc/passwd
//! once, every one of many files is there with its contents), and the first-boot marker is gone.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use std::time::Duration;

use anyhow::{ensure, Result};
use qemu_tests::Vm;
use tracing::info;

use keel::{disk_with_oem, init_logging, sh, sh_status, BOOT, NODE_READY};

/// Files in the config: enough that Ignition is still writing when the first line shows.
const FILES: usize = 150;

fn config() -> String {
    let mut files: Vec<serde_json::Value> = (0..FILES)
        .map(|i| {
            serde_json::json!({"path": format!("/etc/keel-many/f{i:03}"), "mode": 420,
                "contents": {"source": format!("data:,file%20{i}")}})
        })
        .collect();
    files.push(
        serde_json::json!({"path": "/etc/keel-append.txt", "mode": 420,
        "contents": {"source": "data:,first%0A"},
        "append": [{"source": "data:,second%0A"}]}),
    );
    serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": "cutter", "groups": ["wheel"]}]},
        "storage": {"files": files},
    })
    .to_string()
}

#[test]
fn power_cuts_during_root_creation_and_ignition_are_finished_by_the_next_boot() -> Result<()> {
    init_logging();
    let disk = disk_with_oem(8 << 30, Some(&config()), "keel.autologin")?;
    let mut vm = Vm::builder()
        .name("firstboot-cut")
        .disk(&disk.path)
        .memory_mib(2048)
        .start()?;

    // 1. While ROOT is being created.
    vm.console().wait_for(
        r"keel-init: first boot: ROOT \(/dev/vda9\) is marked not created yet",
        BOOT,
    )?;
    std::thread::sleep(Duration::from_millis(700));
    vm.power_cut()?;
    info!("first-boot cuts: power cut while ROOT was being created");
    vm.start_again()?;

    // 2. While Ignition writes: it prints what it did only at its end, so cut a moment after
    //    it starts (writing 150 files with their journal records takes seconds under TCG).
    vm.console()
        .wait_for(r"keel-init: first boot: running Ignition", BOOT)?;
    std::thread::sleep(Duration::from_millis(400));
    let text = vm.console().text()?.to_string();
    ensure!(
        !text.contains("keel-init: switching to systemd") && !text.contains("ignition: wrote"),
        "Ignition had finished before the cut; the test did not cut during it"
    );
    vm.power_cut()?;
    info!("first-boot cuts: power cut while Ignition was applying its config");
    vm.start_again()?;

    // 3. The next boot runs Ignition again and finishes.
    vm.console()
        .wait_for(r"keel-init: first boot: running Ignition", BOOT)?;
    vm.console().wait_for(NODE_READY, BOOT)?;
    std::thread::sleep(Duration::from_secs(3));

    let root = sh(&mut vm, "findmnt -n -o SOURCE,FSTYPE /")?;
    ensure!(
        root.contains("/dev/vda9") && root.contains("ext4"),
        "ROOT: {root}"
    );
    let attrs = sh(&mut vm, "sfdisk --part-attrs /dev/vda 9")?;
    ensure!(
        !attrs.contains("GUID:56"),
        "ROOT's GPT entry still says \"not created yet\": {attrs}"
    );
    let appended = sh(&mut vm, "cat /etc/keel-append.txt")?;
    ensure!(
        appended.trim_end() == "first\nsecond",
        "the appended file after a cut during Ignition: {appended:?}"
    );
    let users = sh(&mut vm, "grep -c '^cutter:' /etc/passwd")?;
    ensure!(
        users.trim() == "1",
        "cutter in /etc/passwd {} times",
        users.trim()
    );
    let many = sh(
        &mut vm,
        "for f in /etc/keel-many/*; do cat \"$f\"; echo; done | sort -u | wc -l",
    )?;
    ensure!(
        many.trim() == FILES.to_string(),
        "{} distinct files of {FILES}",
        many.trim()
    );
    let (code, _) = sh_status(&mut vm, "test -e /boot/keel/first_boot")?;
    ensure!(code != 0, "the first-boot marker is still on the ESP");
    Ok(())
}
