//! [`Vm`]: one QEMU process, configured by [`VmBuilder`] the way an operator sets up a machine.
//!
//! A VM has a work directory (a temp dir) holding its disk copies, the OVMF variable store, the
//! console log, the serial and QMP sockets and QEMU's own output. The command line is computed by
//! a pure function ([`VmBuilder::qemu_args`]) from the settings and that directory, and the same
//! command line is used again by [`Vm::start_again`], so a power-cycled VM is the same machine
//! with the same disks and NVRAM.
//!
//! Acceleration is TCG unless `.kvm(true)` or `KEEL_KVM=1`: nested KVM hangs on our CI machines.
//! The guest reboots for real (no `-no-reboot`); [`Vm::power_cut`] is pulling the plug (SIGKILL
//! of QEMU: what the guest wrote to its disk is kept, what was still in its page cache is lost).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tracing::{debug, info, warn};

use crate::console::SharedChild;
use crate::disk::{self, DiskError};
use crate::firmware::{self, FirmwareError, Ovmf};
use crate::net::{SegmentEnd, SegmentError};
use crate::pxe::{self, PxeError};
use crate::qmp::{self, QmpError};
use crate::serve::ServeError;
use crate::ssh::{Ssh, SshKey};
use crate::{Console, ConsoleError, Deadline, Server};

/// File names inside a VM's work directory.
const CONSOLE_LOG: &str = "console.log";
const SERIAL_SOCKET: &str = "serial.sock";
const QMP_SOCKET: &str = "qmp.sock";
const QEMU_LOG: &str = "qemu.log";
const OVMF_VARS: &str = "OVMF_VARS.fd";
const TFTP_DIR: &str = "tftp";

/// Boot index of the first disk and of NIC 0 when it network-boots.
const BOOTINDEX_FIRST: u32 = 1;
const BOOTINDEX_SECOND: u32 = 2;
/// Boot index of NIC 0 after [`Vm::boot_from_disk_next`]: after every disk.
const BOOTINDEX_LAST: u32 = 9;

/// Something went wrong setting up, starting or controlling a VM.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// QEMU or firmware is not installed.
    #[error(transparent)]
    Firmware(#[from] FirmwareError),
    /// Preparing a disk file failed.
    #[error(transparent)]
    Disk(#[from] DiskError),
    /// Preparing PXE boot failed.
    #[error(transparent)]
    Pxe(#[from] PxeError),
    /// Serving the PXE artifacts failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// Allocating a network segment failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// A console operation failed.
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// A QMP command failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),
    /// The builder's settings do not describe a bootable machine.
    #[error("vm {name}: {reason}")]
    Config {
        /// The VM.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The VM's work directory or a file in it could not be created.
    #[error("vm {name}: preparing {path}")]
    WorkDir {
        /// The VM.
        name: String,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// QEMU could not be spawned.
    #[error("vm {name}: spawning {qemu}")]
    Spawn {
        /// The VM.
        name: String,
        /// The QEMU binary.
        qemu: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// QEMU exited during start-up.
    #[error("vm {name}: QEMU exited at start ({status}); its output:\n{output}\ncommand line: {command}")]
    StartFailed {
        /// The VM.
        name: String,
        /// QEMU's exit status.
        status: ExitStatus,
        /// What QEMU printed.
        output: String,
        /// The command line.
        command: String,
    },
    /// `start_again` while QEMU still runs.
    #[error("vm {0}: still running; power_cut() or wait for it to exit before starting it again")]
    StillRunning(String),
    /// The VM did not exit before the deadline.
    #[error("vm {name}: still running after {waited:?}; last console lines:\n{tail}")]
    ExitTimeout {
        /// The VM.
        name: String,
        /// How long was waited.
        waited: Duration,
        /// The last console lines.
        tail: String,
    },
    /// SSH forwarding was not requested.
    #[error("vm {0}: no SSH port: build it with .ssh_forward()")]
    NoSshForward(String),
    /// Waiting for or signalling the QEMU process failed.
    #[error("vm {name}: controlling QEMU")]
    Process {
        /// The VM.
        name: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Which firmware the machine boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    #[default]
    Bios,
    /// OVMF (UEFI), with a per-VM variable store.
    Uefi,
}

/// Which device the firmware tries first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// The first disk.
    Disk,
    /// NIC 0, by PXE.
    Network,
}

/// Where a disk's file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DiskSource {
    /// Use this file in place (the guest writes to it).
    InPlace(PathBuf),
    /// A sparse copy of this file in the work dir, optionally grown.
    CopyOf { src: PathBuf, size: Option<u64> },
    /// A blank disk of this size in the work dir.
    Blank(u64),
}

/// What an extra NIC (1, 2, ...) is plugged into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Nothing: a NIC with no carrier partner.
    None,
    /// One end of a [`crate::Segment`].
    Segment(SegmentEnd),
}

/// Settings of a VM; see [`Vm::builder`].
#[derive(Debug, Clone)]
pub struct VmBuilder {
    name: String,
    firmware: Firmware,
    disks: Vec<DiskSource>,
    pxe: Option<PathBuf>,
    pxe_initrds: Vec<String>,
    kernel_append: String,
    links: Vec<Link>,
    ssh_forward: bool,
    memory_mib: u32,
    cpus: u32,
    kvm: bool,
    extra_args: Vec<String>,
    direct_kernel: bool,
}

/// Paths and ports decided when the VM is built; input of [`VmBuilder::qemu_args`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The work directory.
    pub work: PathBuf,
    /// The disk files, in order (the first one boots).
    pub disks: Vec<PathBuf>,
    /// OVMF code, for UEFI.
    pub ovmf_code: Option<PathBuf>,
    /// The host port forwarded to guest port 22.
    pub ssh_port: Option<u16>,
    /// The TFTP directory and the DHCP boot file name, for PXE.
    pub tftp: Option<(PathBuf, String)>,
    /// What boots first.
    pub boot: Boot,
    /// A number unique to the VM in this process, for MAC addresses.
    pub vm_id: u16,
}

impl Default for VmBuilder {
    fn default() -> Self {
        VmBuilder {
            name: String::new(),
            firmware: Firmware::Bios,
            disks: Vec::new(),
            pxe: None,
            pxe_initrds: Vec::new(),
            kernel_append: String::new(),
            links: Vec::new(),
            ssh_forward: false,
            memory_mib: 2048,
            cpus: 1,
            kvm: std::env::var("KEEL_KVM").is_ok_and(|v| v == "1"),
            extra_args: Vec::new(),
            direct_kernel: false,
        }
    }
}

static VM_COUNTER: AtomicU32 = AtomicU32::new(0);

impl VmBuilder {
    /// The VM's name, used in logs, the work dir and the saved console log (default `vm-N`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Boot with UEFI (OVMF).
    pub fn uefi(mut self) -> Self {
        self.firmware = Firmware::Uefi;
        self
    }

    /// Boot with BIOS (SeaBIOS), the default.
    pub fn bios(mut self) -> Self {
        self.firmware = Firmware::Bios;
        self
    }

    /// Attach the raw image at `path` as the next disk, used in place: the guest writes to it.
    /// Use [`VmBuilder::disk_copy_of`] for build artifacts.
    pub fn disk(mut self, path: impl Into<PathBuf>) -> Self {
        self.disks.push(DiskSource::InPlace(path.into()));
        self
    }

    /// Attach a sparse copy of the raw image `src` (made in the work dir when the VM is built),
    /// grown to `size_bytes` if given. `src` itself is never written.
    pub fn disk_copy_of(mut self, src: impl Into<PathBuf>, size_bytes: Option<u64>) -> Self {
        self.disks.push(DiskSource::CopyOf {
            src: src.into(),
            size: size_bytes,
        });
        self
    }

    /// Attach a blank disk of `size_bytes`.
    pub fn extra_disk(mut self, size_bytes: u64) -> Self {
        self.disks.push(DiskSource::Blank(size_bytes));
        self
    }

    /// Boot by PXE from NIC 0: kernel and initramfs come from `dir` (files `vmlinuz` and
    /// `initramfs.img`) over HTTP; see [`crate::pxe`]. Disks, if any, boot after the network.
    pub fn pxe(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pxe = Some(dir.into());
        self
    }

    /// One more initrd for PXE boot, after the initramfs: file `name` of the PXE directory (as
    /// image-build's install.ipxe loads install.cpio).
    pub fn pxe_initrd(mut self, name: impl Into<String>) -> Self {
        self.pxe_initrds.push(name.into());
        self
    }

    /// Extra kernel arguments for PXE boot (after `console=ttyS0,115200`).
    pub fn kernel_append(mut self, args: impl Into<String>) -> Self {
        let args = args.into();
        if !self.kernel_append.is_empty() {
            self.kernel_append.push(' ');
        }
        self.kernel_append.push_str(&args);
        self
    }

    /// Have at least `n` NICs in total. NIC 0 is user networking (with the SSH forward); NICs
    /// added by [`VmBuilder::nic_on`] come next; the rest are unplugged.
    pub fn nics(mut self, n: usize) -> Self {
        while self.links.len() + 1 < n {
            self.links.push(Link::None);
        }
        self
    }

    /// Add a NIC plugged into one end of a [`crate::Segment`], shared with another VM.
    pub fn nic_on(mut self, end: SegmentEnd) -> Self {
        // Plug into the first unplugged NIC, if `.nics(n)` made some.
        match self.links.iter_mut().find(|l| **l == Link::None) {
            Some(link) => *link = Link::Segment(end),
            None => self.links.push(Link::Segment(end)),
        }
        self
    }

    /// Forward a free port of 127.0.0.1 to the guest's port 22 ([`Vm::ssh_port`]).
    pub fn ssh_forward(mut self) -> Self {
        self.ssh_forward = true;
        self
    }

    /// Guest memory in MiB (default 2048).
    pub fn memory_mib(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Virtual CPUs (default 1).
    pub fn cpus(mut self, n: u32) -> Self {
        self.cpus = n;
        self
    }

    /// Use KVM (default: TCG, unless `KEEL_KVM=1`).
    pub fn kvm(mut self, on: bool) -> Self {
        self.kvm = on;
        self
    }

    /// Append raw arguments to QEMU's command line (an escape hatch for one-off devices).
    pub fn qemu_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Boot `kernel` and `initrd` directly (QEMU's `-kernel`), with no disk or network boot:
    /// for measuring the kernel's own floor, not for booting Keel.
    pub fn direct_kernel(mut self, kernel: &Path, initrd: &Path, append: &str) -> Self {
        self.direct_kernel = true;
        for a in [
            "-kernel".to_string(),
            kernel.display().to_string(),
            "-initrd".to_string(),
            initrd.display().to_string(),
            "-append".to_string(),
            append.to_string(),
        ] {
            self.extra_args.push(a);
        }
        self
    }

    /// The QEMU command line (without the binary) for these settings and `plan`. Pure.
    pub fn qemu_args(&self, plan: &Plan) -> Vec<String> {
        let work = |name: &str| plan.work.join(name).display().to_string();
        let mut args: Vec<String> = Vec::new();
        let mut push = |parts: &[&str]| args.extend(parts.iter().map(|s| s.to_string()));

        push(&["-name", &self.name, "-nodefaults", "-no-user-config"]);
        push(&["-machine", "q35"]);
        if self.kvm {
            push(&["-accel", "kvm", "-cpu", "host"]);
        } else {
            push(&["-accel", "tcg", "-cpu", "max"]);
        }
        push(&[
            "-smp",
            &self.cpus.to_string(),
            "-m",
            &self.memory_mib.to_string(),
        ]);
        push(&["-display", "none"]);
        push(&[
            "-chardev",
            &format!(
                "socket,id=serial0,path={},server=on,wait=off,logfile={},logappend=on",
                work(SERIAL_SOCKET),
                work(CONSOLE_LOG)
            ),
            "-serial",
            "chardev:serial0",
        ]);
        push(&[
            "-qmp",
            &format!("unix:{},server=on,wait=off", work(QMP_SOCKET)),
        ]);
        if let Some(code) = &plan.ovmf_code {
            push(&[
                "-drive",
                &format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    code.display()
                ),
                "-drive",
                &format!("if=pflash,format=raw,unit=1,file={}", work(OVMF_VARS)),
            ]);
        }
        push(&[
            "-object",
            "rng-random,id=rng0,filename=/dev/urandom",
            "-device",
            "virtio-rng-pci,rng=rng0",
        ]);

        let (disk_boot, nic_boot) = match (plan.boot, plan.tftp.is_some()) {
            (Boot::Network, true) => (BOOTINDEX_SECOND, Some(BOOTINDEX_FIRST)),
            (Boot::Disk, true) => (BOOTINDEX_FIRST, Some(BOOTINDEX_LAST)),
            (_, false) => (BOOTINDEX_FIRST, None),
        };
        for (i, path) in plan.disks.iter().enumerate() {
            let mut device = format!("virtio-blk-pci,drive=disk{i},id=vd{i},serial=keel-disk{i}");
            if i == 0 {
                device.push_str(&format!(",bootindex={disk_boot}"));
            }
            push(&[
                "-drive",
                &format!("if=none,id=disk{i},format=raw,file={}", path.display()),
                "-device",
                &device,
            ]);
        }

        // NIC 0: user networking, SSH forward, PXE.
        let mut user = "user,id=net0".to_string();
        if let Some(port) = plan.ssh_port {
            user.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-:22"));
        }
        if let Some((dir, bootfile)) = &plan.tftp {
            user.push_str(&format!(",tftp={},bootfile={bootfile}", dir.display()));
        }
        let mut nic0 = format!(
            "virtio-net-pci,netdev=net0,id=nic0,mac={}",
            mac(plan.vm_id, 0)
        );
        match nic_boot {
            Some(index) => nic0.push_str(&format!(",bootindex={index}")),
            // No option ROM: the firmware must not fall back to network boot.
            None => nic0.push_str(",romfile="),
        }
        push(&["-netdev", &user, "-device", &nic0]);
        for (i, link) in self.links.iter().enumerate() {
            let n = i + 1;
            let id = format!("net{n}");
            let netdev = match link {
                Link::None => format!("hubport,id={id},hubid={n}"),
                Link::Segment(end) => end.netdev(&id),
            };
            let device = format!(
                "virtio-net-pci,netdev={id},id=nic{n},mac={},romfile=",
                mac(plan.vm_id, n)
            );
            push(&["-netdev", &netdev, "-device", &device]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Prepare the work dir (disk copies, NVRAM, TFTP dir, HTTP server), then start QEMU.
    pub fn start(mut self) -> Result<Vm, VmError> {
        let vm_id = VM_COUNTER.fetch_add(1, Ordering::Relaxed);
        if self.name.is_empty() {
            self.name = format!("vm-{vm_id}");
        }
        let name = self.name.clone();
        let config = |reason: &str| VmError::Config {
            name: name.clone(),
            reason: reason.to_string(),
        };
        if self.disks.is_empty() && self.pxe.is_none() && !self.direct_kernel {
            return Err(config(
                "nothing to boot: add .disk(..), .disk_copy_of(..) or .pxe(..)",
            ));
        }
        if self.pxe.is_none() && !self.kernel_append.is_empty() {
            return Err(config(".kernel_append(..) only applies to .pxe(..) boots"));
        }
        let qemu = firmware::qemu()?;
        let ovmf = match self.firmware {
            Firmware::Uefi => Some(Ovmf::find()?),
            Firmware::Bios => {
                firmware::seabios()?;
                None
            }
        };
        let work = tempfile::Builder::new()
            .prefix(&format!("keel-{name}-"))
            .tempdir()
            .map_err(|source| VmError::WorkDir {
                name: name.clone(),
                path: std::env::temp_dir(),
                source,
            })?;
        let at = |file: &str| work.path().join(file);

        let mut disks = Vec::new();
        for (i, source) in self.disks.iter().enumerate() {
            disks.push(match source {
                DiskSource::InPlace(path) => path.clone(),
                DiskSource::CopyOf { src, size } => {
                    let dst = at(&format!("disk{i}.img"));
                    disk::sparse_copy(src, &dst, *size)?;
                    dst
                }
                DiskSource::Blank(size) => {
                    let dst = at(&format!("disk{i}.img"));
                    disk::blank(&dst, *size)?;
                    dst
                }
            });
        }
        if let Some(ovmf) = &ovmf {
            ovmf.vars_copy(&at(OVMF_VARS))?;
        }
        let (pxe_server, tftp) = match &self.pxe {
            Some(dir) => {
                let server = Server::serve_dir(dir)?;
                let tftp_dir = at(TFTP_DIR);
                let bootfile = pxe::write_tftp_dir(
                    &tftp_dir,
                    &server,
                    &self.kernel_append,
                    &self.pxe_initrds,
                    self.firmware,
                )?;
                (Some(server), Some((tftp_dir, bootfile.to_string())))
            }
            None => (None, None),
        };
        let ssh_port = if self.ssh_forward {
            Some(free_tcp_port().map_err(|source| VmError::WorkDir {
                name: name.clone(),
                path: PathBuf::from("127.0.0.1:0"),
                source,
            })?)
        } else {
            None
        };
        let plan = Plan {
            work: work.path().to_path_buf(),
            disks,
            ovmf_code: ovmf.map(|o| o.code),
            ssh_port,
            boot: if tftp.is_some() {
                Boot::Network
            } else {
                Boot::Disk
            },
            tftp,
            vm_id: (vm_id as u16) ^ (std::process::id() as u16).rotate_left(8),
        };
        let child: SharedChild = Arc::new(Mutex::new(None));
        let console = Console::new(at(CONSOLE_LOG), at(SERIAL_SOCKET), child.clone());
        let mut vm = Vm {
            settings: self,
            plan,
            qemu,
            work,
            child,
            console,
            pxe_server,
        };
        vm.spawn()?;
        Ok(vm)
    }
}

/// A running (or powered-off) QEMU machine. Dropping it kills QEMU.
#[derive(Debug)]
pub struct Vm {
    settings: VmBuilder,
    plan: Plan,
    qemu: PathBuf,
    work: TempDir,
    child: SharedChild,
    console: Console,
    pxe_server: Option<Server>,
}

impl Vm {
    /// Settings for a new VM: BIOS, 2048 MiB, 1 CPU, TCG, NIC 0 on user networking.
    pub fn builder() -> VmBuilder {
        VmBuilder::default()
    }

    /// The VM's name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The work directory (disk copies, console log, sockets).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    /// The disk files, in order; copies live in the work dir.
    pub fn disks(&self) -> &[PathBuf] {
        &self.plan.disks
    }

    /// The serial console.
    pub fn console(&mut self) -> &mut Console {
        &mut self.console
    }

    /// The HTTP server that serves the PXE artifacts (to check what the guest fetched).
    pub fn pxe_server(&self) -> Option<&Server> {
        self.pxe_server.as_ref()
    }

    /// The host port on 127.0.0.1 forwarded to the guest's port 22.
    pub fn ssh_port(&self) -> Option<u16> {
        self.plan.ssh_port
    }

    /// An SSH client for `user` with `key` on the forwarded port.
    pub fn ssh(&self, user: &str, key: &SshKey) -> Result<Ssh, VmError> {
        let port = self
            .ssh_port()
            .ok_or_else(|| VmError::NoSshForward(self.name().to_string()))?;
        Ok(Ssh::new(port, user, key.private_key()))
    }

    /// The full QEMU command line.
    pub fn command_line(&self) -> String {
        std::iter::once(self.qemu.display().to_string())
            .chain(self.settings.qemu_args(&self.plan))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether QEMU is running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().expect("child lock");
        matches!(child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Pull the plug: SIGKILL QEMU at this instant. Disk writes QEMU completed are kept; the
    /// guest gets no chance to flush anything.
    pub fn power_cut(&mut self) -> Result<(), VmError> {
        let mut slot = self.child.lock().expect("child lock");
        if let Some(child) = slot.as_mut() {
            let process = |source| VmError::Process {
                name: self.settings.name.clone(),
                source,
            };
            if child.try_wait().map_err(process)?.is_none() {
                child.kill().map_err(process)?;
                let status = child.wait().map_err(process)?;
                info!(vm = %self.settings.name, %status, "vm: power cut");
            }
        }
        Ok(())
    }

    /// Power on again after a power cut or a shutdown: the same disks, NVRAM and settings.
    pub fn start_again(&mut self) -> Result<(), VmError> {
        if self.is_running() {
            return Err(VmError::StillRunning(self.settings.name.clone()));
        }
        self.console.disconnect();
        self.spawn()
    }

    /// Press the reset button (QMP `system_reset`).
    pub fn reset(&mut self) -> Result<(), VmError> {
        info!(vm = %self.settings.name, "vm: reset");
        qmp::execute(
            &self.work.path().join(QMP_SOCKET),
            "system_reset",
            serde_json::Value::Null,
        )?;
        Ok(())
    }

    /// Press the power button (QMP `system_powerdown`: an ACPI shutdown request).
    pub fn press_power_button(&mut self) -> Result<(), VmError> {
        info!(vm = %self.settings.name, "vm: power button");
        qmp::execute(
            &self.work.path().join(QMP_SOCKET),
            "system_powerdown",
            serde_json::Value::Null,
        )?;
        Ok(())
    }

    /// From the next boot on (guest reboot, reset or [`Vm::start_again`]), boot from the first
    /// disk before the network: what an operator does after installing from PXE. Only the
    /// boot order changes; NIC 0 stays as it is.
    pub fn boot_from_disk_next(&mut self) -> Result<(), VmError> {
        if self.plan.tftp.is_none() || self.plan.boot == Boot::Disk || self.plan.disks.is_empty() {
            return Ok(());
        }
        self.plan.boot = Boot::Disk;
        if self.is_running() {
            // QEMU rebuilds the firmware's boot order from the devices' bootindex on reset.
            let socket = self.work.path().join(QMP_SOCKET);
            for (path, index) in [
                ("/machine/peripheral/nic0", BOOTINDEX_LAST),
                ("/machine/peripheral/vd0", BOOTINDEX_FIRST),
            ] {
                let args =
                    serde_json::json!({"path": path, "property": "bootindex", "value": index});
                qmp::execute(&socket, "qom-set", args)?;
            }
        }
        info!(vm = %self.settings.name, "vm: disk boots first from now on");
        Ok(())
    }

    /// Wait until QEMU exits (the guest powered off, or QEMU died) and return its status.
    pub fn wait_exit(&mut self, deadline: impl Into<Deadline>) -> Result<ExitStatus, VmError> {
        let deadline = deadline.into();
        let started = std::time::Instant::now();
        loop {
            {
                let mut slot = self.child.lock().expect("child lock");
                let status = match slot.as_mut() {
                    Some(child) => child.try_wait().map_err(|source| VmError::Process {
                        name: self.settings.name.clone(),
                        source,
                    })?,
                    None => None,
                };
                if let Some(status) = status {
                    info!(vm = %self.settings.name, %status, "vm: QEMU exited");
                    return Ok(status);
                }
            }
            if deadline.passed() {
                return Err(VmError::ExitTimeout {
                    name: self.settings.name.clone(),
                    waited: started.elapsed(),
                    tail: self.console.tail(60),
                });
            }
            std::thread::sleep(Duration::from_millis(100).min(deadline.remaining()));
        }
    }

    fn spawn(&mut self) -> Result<(), VmError> {
        let name = self.settings.name.clone();
        let work_err = |path: PathBuf, source| VmError::WorkDir {
            name: name.clone(),
            path,
            source,
        };
        for socket in [SERIAL_SOCKET, QMP_SOCKET] {
            let path = self.work.path().join(socket);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(work_err(path, e))
                }
                _ => {}
            }
        }
        let log_path = self.work.path().join(QEMU_LOG);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| work_err(log_path.clone(), e))?;
        let log_err = log.try_clone().map_err(|e| work_err(log_path.clone(), e))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let args = self.settings.qemu_args(&self.plan);
        let command = self.command_line();
        info!(vm = %name, %command, "vm: starting QEMU");
        let child = Command::new(&self.qemu)
            .args(args.iter().map(OsString::from))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| VmError::Spawn {
                name: name.clone(),
                qemu: self.qemu.clone(),
                source,
            })?;
        *self.child.lock().expect("child lock") = Some(child);

        // QEMU creates the QMP socket once its command line is accepted and devices are up.
        let qmp = self.work.path().join(QMP_SOCKET);
        let deadline = Deadline::after(Duration::from_secs(30));
        loop {
            let exited = {
                let mut slot = self.child.lock().expect("child lock");
                let child = slot.as_mut().expect("just spawned");
                child.try_wait().map_err(|source| VmError::Process {
                    name: name.clone(),
                    source,
                })?
            };
            if let Some(status) = exited {
                let output = std::fs::read(&log_path).unwrap_or_default();
                let output =
                    String::from_utf8_lossy(&output[(log_start as usize).min(output.len())..])
                        .trim_end()
                        .to_string();
                return Err(VmError::StartFailed {
                    name,
                    status,
                    output,
                    command,
                });
            }
            if qmp.exists() || deadline.passed() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        debug!(vm = %name, "vm: QEMU started");
        Ok(())
    }

    fn save_logs(&self) {
        let Some(dir) = std::env::var_os("KEEL_TEST_LOGS").filter(|d| !d.is_empty()) else {
            return;
        };
        let dir = PathBuf::from(dir);
        if let Err(err) = std::fs::create_dir_all(&dir) {
            warn!(dir = %dir.display(), %err, "vm: cannot create KEEL_TEST_LOGS");
            return;
        }
        for (file, suffix) in [(CONSOLE_LOG, "console.log"), (QEMU_LOG, "qemu.log")] {
            let from = self.work.path().join(file);
            let to = dir.join(format!("{}-{suffix}", self.settings.name));
            if from.exists() {
                match std::fs::copy(&from, &to) {
                    Ok(_) => info!(to = %to.display(), "vm: log saved"),
                    Err(err) => warn!(to = %to.display(), %err, "vm: saving log failed"),
                }
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Err(err) = self.power_cut() {
            warn!(vm = %self.settings.name, %err, "vm: killing QEMU on drop failed");
        }
        self.save_logs();
    }
}

/// A locally administered MAC address unique to (VM, NIC) within this process.
fn mac(vm_id: u16, nic: usize) -> String {
    let [hi, lo] = vm_id.to_be_bytes();
    format!("52:54:00:{hi:02x}:{lo:02x}:{:02x}", nic as u8)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(boot: Boot, tftp: bool, uefi: bool) -> Plan {
        Plan {
            work: PathBuf::from("/w"),
            disks: vec![PathBuf::from("/w/disk0.img")],
            ovmf_code: uefi.then(|| PathBuf::from("/usr/share/OVMF/OVMF_CODE_4M.fd")),
            ssh_port: Some(2222),
            tftp: tftp.then(|| (PathBuf::from("/w/tftp"), "boot.ipxe".to_string())),
            boot,
            vm_id: 0x0102,
        }
    }

    const COMMON: &str = "-name t -nodefaults -no-user-config -machine q35 -accel tcg -cpu max \
        -smp 1 -m 2048 -display none \
        -chardev socket,id=serial0,path=/w/serial.sock,server=on,wait=off,logfile=/w/console.log,logappend=on \
        -serial chardev:serial0 -qmp unix:/w/qmp.sock,server=on,wait=off";
    const RNG: &str =
        "-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0";

    fn builder() -> VmBuilder {
        Vm::builder().name("t").kvm(false)
    }

    #[test]
    fn bios_disk_command_line() {
        let args = builder()
            .qemu_args(&plan(Boot::Disk, false, false))
            .join(" ");
        assert_eq!(
            args,
            format!(
                "{COMMON} {RNG} -drive if=none,id=disk0,format=raw,file=/w/disk0.img \
                 -device virtio-blk-pci,drive=disk0,id=vd0,serial=keel-disk0,bootindex=1 \
                 -netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22 \
                 -device virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:01:02:00,romfile="
            )
        );
    }

    #[test]
    fn uefi_disk_command_line_has_pflash_code_and_a_private_vars_copy() {
        let args = builder()
            .qemu_args(&plan(Boot::Disk, false, true))
            .join(" ");
        assert!(args.contains(
            "-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
             -drive if=pflash,format=raw,unit=1,file=/w/OVMF_VARS.fd"
        ));
    }

    #[test]
    fn pxe_boots_nic_0_first_then_the_disk_and_can_swap() {
        let args = builder()
            .qemu_args(&plan(Boot::Network, true, false))
            .join(" ");
        assert!(args.contains("virtio-blk-pci,drive=disk0,id=vd0,serial=keel-disk0,bootindex=2"));
        assert!(args.contains(
            "-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22,tftp=/w/tftp,bootfile=boot.ipxe \
             -device virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:01:02:00,bootindex=1"
        ));
        let args = builder()
            .qemu_args(&plan(Boot::Disk, true, false))
            .join(" ");
        assert!(args.contains("serial=keel-disk0,bootindex=1"));
        assert!(args.contains("id=nic0,mac=52:54:00:01:02:00,bootindex=9"));
    }

    #[test]
    fn extra_nics_are_unplugged_or_on_a_segment_and_never_boot() {
        let seg = crate::Segment::new().unwrap();
        let args = builder()
            .nics(3)
            .nic_on(seg.b())
            .kvm(true)
            .memory_mib(512)
            .cpus(2)
            .qemu_arg("-snapshot")
            .qemu_args(&plan(Boot::Disk, false, false))
            .join(" ");
        assert!(args.contains("-accel kvm -cpu host -smp 2 -m 512"));
        assert!(
            args.contains(&format!(
                "-netdev socket,id=net1,udp=127.0.0.1:{},localaddr=127.0.0.1:{} \
             -device virtio-net-pci,netdev=net1,id=nic1,mac=52:54:00:01:02:01,romfile= \
             -netdev hubport,id=net2,hubid=2 \
             -device virtio-net-pci,netdev=net2,id=nic2,mac=52:54:00:01:02:02,romfile= -snapshot",
                seg.a().local_port,
                seg.b().local_port
            )),
            "{args}"
        );
    }

    #[test]
    fn kernel_append_without_pxe_is_refused() {
        let err = Vm::builder()
            .name("k")
            .disk("/nonexistent.img")
            .kernel_append("quiet")
            .start()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "vm k: .kernel_append(..) only applies to .pxe(..) boots"
        );
    }
}
