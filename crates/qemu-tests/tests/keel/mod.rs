//! What Keel's VM scenarios share: a disk VM made from a copy of build/disk.img, the node-ready
//! line, and a root shell on the serial console.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use qemu_tests::{artifacts, disk, oem, Deadline, Ssh, Vm, VmBuilder};
use slots::layout::{self, esp};

/// The agent's console line when the node is up.
pub const NODE_READY: &str = r"keel-agent: node ready: (.*) on slot (\S+), engine docker (\S+)";
/// First boot to node ready takes ~70 s under TCG on an idle machine; leave room for a busy one.
pub const BOOT: Duration = Duration::from_secs(480);
/// A shell command on the console.
pub const CMD: Duration = Duration::from_secs(60);

/// Log to stderr once (RUST_LOG decides how much).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A private copy of build/disk.img grown to `size` bytes, with `linux_append` set in the OEM
/// partition's grub.cfg, as an operator customizes an image before first boot.
pub struct DiskCopy {
    _dir: tempfile::TempDir,
    /// The copy.
    pub path: PathBuf,
}

pub fn disk_copy(size: u64, linux_append: &str) -> Result<DiskCopy> {
    disk_with_oem(size, None, linux_append)
}

/// Copy the disk image and put `config.ign` (if given) and a `grub.cfg` with
/// `set linux_append="LINUX_APPEND"` on its OEM partition, as an operator (or coreos-install)
/// does before the first boot.
pub fn disk_with_oem(size: u64, config: Option<&str>, linux_append: &str) -> Result<DiskCopy> {
    let src = artifacts::disk_image()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("disk.img");
    disk::sparse_copy(&src, &path, Some(size))?;
    if let Some(c) = config {
        oem::write_oem_file(&path, layout::oem::CONFIG, c.as_bytes())
            .context("writing config.ign")?;
    }
    let grub = format!("set linux_append=\"{linux_append}\"\n");
    oem::write_oem_file(&path, layout::oem::GRUB_CFG, grub.as_bytes())
        .context("writing OEM grub.cfg")?;
    Ok(DiskCopy { _dir: dir, path })
}

/// Whether the first-boot marker is on the ESP of `image` (read with the VM powered off).
pub fn marker_present(image: &std::path::Path) -> bool {
    oem::read_file(image, oem::ESP_LABEL, esp::FIRST_BOOT).is_ok()
}

/// A VM booting `disk` with a root shell on its serial console.
pub fn disk_vm(name: &str, disk: &DiskCopy) -> VmBuilder {
    Vm::builder().name(name).disk(&disk.path).memory_mib(2048)
}

/// Wait for the node-ready line; returns (os, slot).
pub fn wait_ready(vm: &mut Vm) -> Result<(String, String)> {
    let m = vm.console().wait_for(NODE_READY, BOOT)?;
    let os = m.group(1).unwrap_or_default().to_string();
    let slot = m.group(2).unwrap_or_default().to_string();
    // The autologin shell is up by now (getty starts before the agent is ready); give it a
    // moment to print its prompt before typing.
    std::thread::sleep(Duration::from_secs(3));
    Ok((os, slot))
}

/// Run `cmd` on the console shell and require exit status 0; returns the output.
pub fn sh(vm: &mut Vm, cmd: &str) -> Result<String> {
    let (code, out) = vm.console().run(cmd, CMD)?;
    ensure!(code == 0, "`{cmd}` exited {code}:\n{out}");
    Ok(out)
}

/// Run `cmd` and return (status, output) whatever the status.
pub fn sh_status(vm: &mut Vm, cmd: &str) -> Result<(i32, String)> {
    Ok(vm.console().run(cmd, CMD)?)
}

/// `agent status` as JSON.
pub fn agent_status(vm: &mut Vm) -> Result<serde_json::Value> {
    let out = sh(vm, "agent status")?;
    let start = out.find('{').context("no JSON in agent status output")?;
    let end = out.rfind('}').context("no JSON in agent status output")?;
    Ok(serde_json::from_str(&out[start..=end])?)
}

/// build/release (what image-build publishes, what `coreos-install -b` fetches from) and the
/// version its current/version.txt names.
pub fn release() -> Result<(PathBuf, String)> {
    let dir = artifacts::build_dir().join("release");
    let txt = dir.join("current/version.txt");
    let text = std::fs::read_to_string(&txt).with_context(|| {
        format!(
            "{} not found: run `{}` first",
            txt.display(),
            artifacts::BUILD_COMMAND
        )
    })?;
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("KEEL_VERSION="))
        .context("version.txt names no KEEL_VERSION")?
        .trim()
        .to_string();
    ensure!(
        dir.join(&version)
            .join("keel_production_image.bin.gz.sig")
            .is_file(),
        "release {version} has no signature"
    );
    Ok((dir, version))
}

/// The MAC address the harness gave NIC `nic` (0 = user networking), read from QEMU's command
/// line (`-device virtio-net-pci,...,id=nicN,mac=...`).
pub fn nic_mac(vm: &Vm, nic: usize) -> Result<String> {
    let line = vm.command_line();
    let re = regex::Regex::new(&format!(r"\bid=nic{nic},mac=([0-9a-f:]{{17}})"))?;
    let mac = re
        .captures(&line)
        .and_then(|c| c.get(1))
        .with_context(|| format!("no MAC for nic{nic} in the QEMU command line: {line}"))?;
    Ok(mac.as_str().to_string())
}

/// Run `cmd` over SSH and require exit status 0; returns stdout, trimmed. The error shows the
/// status, stdout and stderr.
pub fn ssh_ok(ssh: &Ssh, cmd: &str, deadline: impl Into<Deadline>) -> Result<String> {
    let out = ssh.run(cmd, deadline)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "`{cmd}` over ssh: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout.trim().to_string())
}
