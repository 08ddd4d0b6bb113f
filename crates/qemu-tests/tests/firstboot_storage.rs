//! Real-disk storage at first boot, as Flatcar users set up /var/lib/docker: Ignition
//! partitions a second, blank disk, makes an ext4 filesystem on the new partition, writes a
//! file onto it (mounted at its path while files are written), and the booted OS mounts it at
//! /var/lib/docker through the generated `var-lib-docker.mount`, with Docker running on it.
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use anyhow::{ensure, Result};
use qemu_tests::Vm;

use keel::{disk_with_oem, init_logging, BOOT, CMD, NODE_READY};

const CONFIG: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{
  "disks":[{"device":"/dev/vdb","wipeTable":true,
            "partitions":[{"label":"docker","number":1,"sizeMiB":0}]}],
  "filesystems":[{"device":"/dev/disk/by-partlabel/docker","format":"ext4","label":"DOCKER",
                  "wipeFilesystem":true,"path":"/var/lib/docker"}],
  "files":[{"path":"/var/lib/docker/ignition-was-here","contents":{"source":"data:,on%20the%20data%20disk"}}]}}"#;

#[test]
fn a_second_disk_is_partitioned_formatted_and_mounted_for_docker() -> Result<()> {
    init_logging();
    let disk = disk_with_oem(4 << 30, Some(CONFIG), "keel.autologin")?;
    let mut vm = Vm::builder()
        .name("firstboot-storage")
        .uefi()
        .disk(&disk.path)
        .extra_disk(2 << 30)
        .start()?;

    vm.console()
        .wait_for(r"ignition: partitioned /dev/vdb: /dev/vdb1 : ", BOOT)?;
    vm.console().wait_for(
        r"ignition: created ext4 filesystem on /dev/vdb1 \(label DOCKER\)",
        BOOT,
    )?;
    vm.console().wait_for(
        r"ignition: wrote file /var/lib/docker/ignition-was-here",
        BOOT,
    )?;
    vm.console().wait_for(r"ignition: first boot done", BOOT)?;
    vm.console().wait_for(NODE_READY, BOOT)?;
    std::thread::sleep(std::time::Duration::from_secs(3));

    let mut sh = |cmd: &str| -> Result<String> {
        let (code, out) = vm.console().run(cmd, CMD)?;
        ensure!(code == 0, "`{cmd}` exited {code}:\n{out}");
        Ok(out.trim().to_string())
    };
    let mnt = sh("findmnt -n -o SOURCE,FSTYPE,LABEL /var/lib/docker")?;
    ensure!(
        mnt.split_whitespace().collect::<Vec<_>>() == ["/dev/vdb1", "ext4", "DOCKER"],
        "findmnt: {mnt}"
    );
    ensure!(sh("lsblk -n -o PARTLABEL /dev/vdb1")? == "docker");
    ensure!(sh("cat /var/lib/docker/ignition-was-here")? == "on the data disk");
    ensure!(
        sh("systemctl is-active var-lib-docker.mount docker.service | tr '\\n' ' '")?
            == "active active"
    );
    ensure!(sh("test -d /var/lib/docker/overlay2 && echo docker-data")? == "docker-data");
    Ok(())
}
