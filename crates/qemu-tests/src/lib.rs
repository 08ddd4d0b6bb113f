//! Start Keel VMs under QEMU the way an operator would, and drive them from tests.
//!
//! The crate is a harness library; the scenarios live under `tests/`, one per file, and the ones
//! that boot VMs are compiled only with the `vm` feature, so plain `cargo test --workspace` never
//! starts QEMU:
//!
//! ```text
//! cargo nextest run -p qemu-tests --features vm --test-threads 2   (as `./keel test` does)
//! ```
//!
//! Entities:
//!  * [`Vm`] / [`VmBuilder`] (`vm`): one QEMU process: disk or PXE boot, BIOS or UEFI, NICs, SSH
//!    forward; power cut, reset, boot again; QEMU is killed on drop.
//!  * [`Console`] (`console`): the serial console, captured to a log file; wait for a regex,
//!    type lines, run commands on a root shell.
//!  * [`Ssh`] / [`SshKey`] (`ssh`): run commands over SSH on the forwarded port, with retries.
//!  * [`Server`] (`serve`): a loopback HTTP/1.1 static file server (PXE files, Ignition configs,
//!    release images).
//!  * [`pxe`]: the iPXE script and TFTP directory for network boot.
//!  * [`firmware`] and [`tools`]: find QEMU, OVMF, SeaBIOS, iPXE and host programs; a missing one
//!    is an error that names its Debian package.
//!  * [`artifacts`]: find the build outputs (`build/disk.img`, `build/pxe/`).
//!  * [`disk`]: sparse copies of images and blank disks.
//!  * [`oem`]: read and write files on a FAT partition (OEM, EFI-SYSTEM) of a disk image copy.
//!  * [`Segment`] (`net`): an L2 link between two VMs over UDP on 127.0.0.1.
//!  * [`Deadline`]: the point in time by which a wait must succeed.
//!
//! Environment:
//!  * `KEEL_KVM=1`: use KVM instead of TCG (off by default: nested KVM hangs on the CI machines).
//!  * `KEEL_TEST_LOGS=DIR`: copy each VM's console and QEMU logs there when the VM is dropped.
//!  * `KEEL_BUILD_DIR=DIR`: where the build outputs are (default `<workspace>/build`).

pub mod artifacts;
pub mod console;
mod deadline;
pub mod disk;
pub mod firmware;
pub mod net;
pub mod oem;
pub mod pxe;
mod qmp;
pub mod serve;
pub mod ssh;
pub mod tools;
pub mod vm;

pub use console::{Console, ConsoleError, Match};
pub use deadline::Deadline;
pub use net::Segment;
pub use serve::Server;
pub use ssh::{Ssh, SshKey};
pub use vm::{Boot, Firmware, Vm, VmBuilder, VmError};
