//! Power cuts during `coreos-install`, and a busy target, on a live system that carries its
//! release (issue 9).
//!
//! The live system boots with `install.cpio` beside its initramfs, as image-build's
//! `install.ipxe` loads it, and with no release server anywhere: `coreos-install -d /dev/vda -i
//! cfg.json` installs offline from the image the live system carries, verified as always.
//!
//! 1. A first install runs to the end and is timed.
//! 2. Five times: the same install starts again and the power is cut at a random instant of
//!    that time. With the VM off, the disk is read from the host: it either has no partition
//!    table and no MBR boot signature anywhere a firmware looks (nothing bootable), or it holds
//!    the whole image, byte for byte outside OEM (a complete install). Never anything between.
//!    The machine then PXE-boots the live system again.
//! 3. With an OEM partition mounted, `coreos-install` refuses the disk and leaves it as it was.
//! 4. A rerun succeeds and the disk boots to node ready on slot A.
//!
//! The instants come from a seed printed in the log; `KEEL_CUT_SEED=N` repeats a run.
//!
//! Run: `KEEL_BUILD_DIR=... cargo test -p qemu-tests --features vm --test install_power_cut`
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use qemu_tests::{artifacts, oem, Deadline, Vm};
use tracing::info;

mod keel;

use keel::{init_logging, sh, sh_status, NODE_READY};

/// PXE boot or disk boot to node ready under TCG on a shared machine.
const BOOT: Duration = Duration::from_secs(600);
/// Verify and write the whole image under TCG.
const INSTALL: Duration = Duration::from_secs(1800);
const CONFIG: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/keel-power-cut-test","mode":420,"contents":{"source":"data:,survived"}}]}}"#;
const DISK: u64 = 20 << 30;
const CUTS: usize = 5;
const INSTALL_CMD: &str = "coreos-install -d /dev/vda -i cfg.json";

/// A small xorshift generator: the test needs only spread, and a printed seed to repeat it.
struct Rng(u64);

impl Rng {
    fn next_fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Boot (or boot again) into the live system and get a root shell in /tmp with cfg.json.
fn live_shell(vm: &mut Vm) -> Result<()> {
    let ready = vm.console().wait_for(NODE_READY, BOOT)?;
    ensure!(
        ready.group(2) == Some("live"),
        "PXE boot is the live system: {}",
        ready.text
    );
    std::thread::sleep(Duration::from_secs(3));
    sh(
        vm,
        &format!("cd /tmp && printf '%s\\n' '{CONFIG}' > cfg.json && ls /run/keel/install"),
    )?;
    Ok(())
}

fn read_at(f: &mut File, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// What a firmware would find on `disk`: a GPT header at LBA 1 or at the last LBA, or an MBR
/// boot signature.
fn bootable_marks(disk: &Path) -> Result<Vec<&'static str>> {
    let mut f = File::open(disk)?;
    let len = f.metadata()?.len();
    let mut marks = Vec::new();
    let lba0 = read_at(&mut f, 0, 1024)?;
    if lba0[510..512] == [0x55, 0xaa] {
        marks.push("MBR boot signature");
    }
    if &lba0[512..520] == b"EFI PART" {
        marks.push("primary GPT header");
    }
    if &read_at(&mut f, len - 512, 8)?[..] == b"EFI PART" {
        marks.push("backup GPT header at the end of the disk");
    }
    Ok(marks)
}

/// Whether `disk` starts with `image`, byte for byte, except inside `skip` (OEM, where the
/// installer writes config.ign). Returns the first differing offset.
fn first_difference(disk: &Path, image: &Path, skip: (u64, u64)) -> Result<Option<u64>> {
    const CHUNK: usize = 4 << 20;
    let mut a = BufReader::with_capacity(CHUNK, File::open(disk)?);
    let mut b = BufReader::with_capacity(CHUNK, File::open(image)?);
    let total = std::fs::metadata(image)?.len();
    let (mut x, mut y) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut at = 0u64;
    while at < total {
        let n = CHUNK.min((total - at) as usize);
        a.read_exact(&mut x[..n])?;
        b.read_exact(&mut y[..n])?;
        if x[..n] != y[..n] {
            let i = (0..n).find(|&i| x[i] != y[i]).unwrap_or(0) as u64;
            // Chunks are 4 MiB-aligned and OEM is MiB-aligned: compare byte by byte only here.
            for j in i..n as u64 {
                let off = at + j;
                let in_oem = off >= skip.0 && off < skip.0 + skip.1;
                if !in_oem && x[j as usize] != y[j as usize] {
                    return Ok(Some(off));
                }
            }
        }
        at += n as u64;
    }
    Ok(None)
}

/// After a cut: nothing bootable, or the complete image.
fn check_after_cut(disk: &Path, image: &Path, oem: (u64, u64), cut: usize) -> Result<&'static str> {
    let marks = bootable_marks(disk)?;
    if marks.is_empty() {
        return Ok("nothing bootable");
    }
    match first_difference(disk, image, oem)? {
        None => Ok("a complete install"),
        Some(off) => anyhow::bail!(
            "cut {cut}: the disk looks bootable ({}) but differs from the image at byte {off}: \
             a half-written disk that a firmware would try to boot",
            marks.join(", ")
        ),
    }
}

#[test]
fn power_cuts_during_an_offline_install_never_leave_a_half_written_bootable_disk() -> Result<()> {
    init_logging();
    let image = artifacts::disk_image()?;
    let pxe = artifacts::pxe_dir()?;
    ensure!(
        pxe.join("install.cpio").is_file(),
        "{} has no install.cpio: run `{}`",
        pxe.display(),
        artifacts::BUILD_COMMAND
    );
    let part = oem::find_partition(&image, oem::OEM_LABEL)?;
    let oem_range = (part.offset, part.size);
    let seed = std::env::var("KEEL_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
        | 1;
    info!(
        seed,
        "power cuts: KEEL_CUT_SEED={seed} repeats these instants"
    );
    let mut rng = Rng(seed);

    let mut vm = Vm::builder()
        .name("install-cut")
        .bios()
        .pxe(&pxe)
        .pxe_initrd("install.cpio")
        .kernel_append("keel.live keel.autologin")
        .memory_mib(3072)
        .extra_disk(DISK)
        .start()?;
    let disk = vm.disks()[0].clone();
    live_shell(&mut vm)?;

    // 1. The whole install, offline, timed.
    let started = Instant::now();
    let (code, out) = vm.console().run(INSTALL_CMD, INSTALL)?;
    let took = started.elapsed();
    ensure!(
        code == 0
            && out.contains("installing the release this live system carries")
            && out.contains("Success! Keel"),
        "`{INSTALL_CMD}` exited {code}:\n{out}"
    );
    info!(
        secs = took.as_secs_f64(),
        "power cuts: a whole install takes this long"
    );

    // 2. Cut the power at random instants of an install.
    let mut seen = Vec::new();
    for cut in 1..=CUTS {
        let at = took.mul_f64(0.02 + 0.96 * rng.next_fraction());
        let from = vm.console().text()?.len();
        vm.console().send_line(INSTALL_CMD)?;
        std::thread::sleep(at);
        vm.power_cut()?;
        let during = vm.console().text()?[from..].to_string();
        ensure!(
            !during.contains("coreos-install: error"),
            "cut {cut}: the install had already failed before the power cut:\n{during}"
        );
        let verdict = check_after_cut(&disk, &image, oem_range, cut).with_context(|| {
            format!(
                "cut {cut} at {:.1}s of {:.1}s",
                at.as_secs_f64(),
                took.as_secs_f64()
            )
        })?;
        info!(
            cut,
            at = at.as_secs_f64(),
            verdict,
            "power cuts: the disk after the cut"
        );
        seen.push(format!("{:.1}s: {verdict}", at.as_secs_f64()));
        vm.start_again()?;
        live_shell(&mut vm)?;
    }
    info!(?seen, "power cuts: all verdicts");

    // 3. A disk with a mounted partition is refused, and stays as it was.
    let before = sh(&mut vm, "sfdisk -d /dev/vda | sha256sum")?;
    sh(
        &mut vm,
        "mkdir -p /run/busy && mount -o ro /dev/vda6 /run/busy || true",
    )?;
    let mounted = sh(&mut vm, "findmnt -n -o SOURCE /run/busy || true")?;
    if mounted.trim() == "/dev/vda6" {
        let (code, out) = sh_status(&mut vm, INSTALL_CMD)?;
        ensure!(
            code != 0 && out.contains("/dev/vda6 mounted on /run/busy"),
            "coreos-install on a disk with a mounted partition: exit {code}:\n{out}"
        );
        let after = sh(&mut vm, "sfdisk -d /dev/vda | sha256sum")?;
        ensure!(
            before == after,
            "a refused install changed the partition table"
        );
        sh(&mut vm, "umount /run/busy")?;
    } else {
        // The last cut left nothing to mount: make a partition to mount, as an operator would
        // have one.
        sh(
            &mut vm,
            "printf 'label: gpt\\n,64M\\n' | sfdisk -q /dev/vda && mkfs.ext4 -F -q /dev/vda1 && mount /dev/vda1 /run/busy",
        )?;
        let (code, out) = sh_status(&mut vm, INSTALL_CMD)?;
        ensure!(
            code != 0 && out.contains("/dev/vda1 mounted on /run/busy"),
            "coreos-install on a disk with a mounted partition: exit {code}:\n{out}"
        );
        sh(&mut vm, "umount /run/busy")?;
    }

    // 4. A rerun succeeds, and the disk boots.
    let (code, out) = vm.console().run(INSTALL_CMD, INSTALL)?;
    ensure!(
        code == 0 && out.contains("Success! Keel"),
        "`{INSTALL_CMD}` after {CUTS} power cuts exited {code}:\n{out}"
    );
    // A root shell on the installed system's console comes from OEM grub.cfg, as README says.
    sh(
        &mut vm,
        "mkdir -p /run/oem && mount -t vfat /dev/vda6 /run/oem \
         && printf 'set linux_append=\"keel.autologin\"\\n' > /run/oem/grub.cfg && umount /run/oem",
    )?;
    vm.boot_from_disk_next()?;
    vm.console().send_line("reboot")?;
    vm.console()
        .wait_for(r"keel-init: slot A is /dev/vda3 on disk vda", BOOT)?;
    let ready = vm.console().wait_for(NODE_READY, Deadline::after(BOOT))?;
    ensure!(ready.group(2) == Some("A"), "booted: {}", ready.text);
    std::thread::sleep(Duration::from_secs(3));
    let file = sh(&mut vm, "cat /etc/keel-power-cut-test")?;
    ensure!(file.trim() == "survived", "Ignition's file: {file}");
    Ok(())
}
