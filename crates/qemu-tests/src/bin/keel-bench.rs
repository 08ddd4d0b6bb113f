//! `keel-bench`: Keel's figures, each against a baseline measured in the same run on the same
//! VM settings (QEMU TCG unless KEEL_KVM=1, 1 vCPU, 2048 MiB):
//!
//!  * image and slot sizes (from build/sizes.txt and the disk image);
//!  * seconds from power-on to "node ready" (first boot, and a later boot), against the floor of
//!    the same kernel booting an initramfs that powers off at once;
//!  * idle memory in use (MemTotal - MemAvailable, 30 s after the engine is up), against a stock
//!    Debian bookworm minimal systemd + docker.io install booted the same way.
//!
//! Prints a table and writes it to build/bench.txt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use qemu_tests::{artifacts, disk, oem, Vm};

const MEMORY_MIB: u32 = 2048;
const BOOT: Duration = Duration::from_secs(600);
const SETTLE: &str = "sleep 30";
const MEM_IN_USE: &str =
    "awk '/^MemTotal:/{t=$2} /^MemAvailable:/{a=$2} END{print t-a}' /proc/meminfo";
const NODE_READY: &str = "keel-agent: node ready";

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(())
}

/// An initramfs whose /init powers the machine off at once.
fn poweroff_initramfs(dir: &Path) -> Result<PathBuf> {
    let busybox = fs::read("/bin/busybox")
        .context("reading /bin/busybox (apt-get install busybox-static)")?;
    let mut w = cpio::Writer::in_memory();
    w.dir("bin", 0o755)?;
    w.file("bin/busybox", 0o755, &busybox)?;
    w.file(
        "init",
        0o755,
        b"#!/bin/busybox sh\n/bin/busybox echo floor: userspace reached\n/bin/busybox poweroff -f\n",
    )?;
    let out = dir.join("floor.cpio");
    fs::write(&out, w.finish()?).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

/// Seconds from QEMU start to power-off for the kernel alone.
fn kernel_floor(kernel: &Path, work: &Path) -> Result<f64> {
    let initrd = poweroff_initramfs(work)?;
    let t = Instant::now();
    let mut vm = Vm::builder()
        .name("bench-floor")
        .bios()
        .memory_mib(MEMORY_MIB)
        .direct_kernel(kernel, &initrd, "console=ttyS0,115200n8 panic=-1")
        .start()?;
    vm.wait_exit(Duration::from_secs(300))?;
    Ok(t.elapsed().as_secs_f64())
}

struct KeelFigures {
    first_boot: f64,
    later_boot: f64,
    mem_kib: u64,
    /// Seconds from power-on of the later boot to each console marker.
    phases: Vec<(&'static str, f64)>,
    /// What the node said about itself after the later boot.
    breakdown: String,
}

/// Console lines that end a boot phase, in the order they appear on a later boot.
const PHASES: &[(&str, &str)] = &[
    (
        "firmware + GRUB + kernel",
        "keel-init: Keel initramfs starting",
    ),
    (
        "initramfs (slot, ROOT, /usr)",
        "keel-init: switching to systemd",
    ),
    ("systemd to node ready", NODE_READY),
];

/// Commands whose output explains where a later boot's time and the idle memory go.
const BREAKDOWN: &[&str] = &[
    "systemd-analyze",
    "systemd-analyze critical-chain keel-agent.service --no-pager",
    "systemd-analyze blame --no-pager | head -n 15",
    "ps -eo rss=,comm= --sort=-rss | head -n 15 | awk '{printf \"%6.1f MiB  %s\\n\", $1/1024, $2}'",
    "journalctl -b -u containerd -u docker -o short-monotonic --no-pager | cut -c1-150 | head -n 50",
    "grep -E '^(MemTotal|MemFree|MemAvailable|Buffers|Cached|Active.file.|Inactive.file.|AnonPages|Mapped|Shmem|Unevictable|Slab|SReclaimable|SUnreclaim|KernelStack|PageTables|Percpu|VmallocUsed):' /proc/meminfo",
];

fn keel_boot(disk_src: &Path, work: &Path) -> Result<KeelFigures> {
    let disk = work.join("keel-disk.img");
    disk::sparse_copy(disk_src, &disk, Some(8 << 30))?;
    oem::write_oem_file(&disk, "grub.cfg", b"set linux_append=\"keel.autologin\"\n")?;
    let t = Instant::now();
    let mut vm = Vm::builder()
        .name("bench-keel")
        .bios()
        .memory_mib(MEMORY_MIB)
        .disk(&disk)
        .start()?;
    vm.console().wait_for(NODE_READY, BOOT)?;
    let first_boot = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let (code, out) = vm
        .console()
        .run(&format!("{SETTLE}; {MEM_IN_USE}"), Duration::from_secs(120))?;
    ensure!(code == 0, "reading meminfo failed: {out}");
    let mem_kib = out
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .parse()
        .context("parsing MemTotal-MemAvailable")?;
    vm.console().run("sync", Duration::from_secs(60))?;
    vm.power_cut()?;
    let t = Instant::now();
    vm.start_again()?;
    let mut phases = Vec::new();
    for (name, marker) in PHASES {
        vm.console().wait_for(marker, BOOT)?;
        phases.push((*name, t.elapsed().as_secs_f64()));
    }
    let later_boot = t.elapsed().as_secs_f64();
    let mut breakdown = String::new();
    for cmd in BREAKDOWN {
        let (_, out) = vm.console().run(cmd, Duration::from_secs(120))?;
        breakdown.push_str(&format!("$ {cmd}\n{}\n\n", out.trim_end()));
    }
    Ok(KeelFigures {
        first_boot,
        later_boot,
        mem_kib,
        phases,
        breakdown,
    })
}

/// Stock Debian bookworm, minimal: systemd + docker.io and Debian's own initramfs, on one ext4
/// disk, booted with the same kernel settings (direct kernel boot: no firmware disk read, no
/// GRUB); a unit says when docker answers and prints the memory figure 30 s later.
struct StockFigures {
    /// Seconds from QEMU start to `docker version` answering.
    docker_up: f64,
    mem_kib: u64,
}

fn stock_debian(cache: &Path, work: &Path) -> Result<StockFigures> {
    fs::create_dir_all(cache)?;
    let tarball = cache.join("bench-debian-stock.tar");
    if !tarball.exists() {
        let partial = cache.join("bench-debian-stock.partial.tar");
        run(Command::new("mmdebstrap")
            .args([
                "--variant=minbase",
                "--quiet",
                "--include=linux-image-amd64,systemd,systemd-sysv,udev,docker.io",
            ])
            .arg("bookworm")
            .arg(&partial)
            .arg("http://deb.debian.org/debian"))?;
        fs::rename(&partial, &tarball)?;
    }
    let tree = work.join("stock");
    fs::create_dir_all(&tree)?;
    run(Command::new("tar")
        .arg("-xpf")
        .arg(&tarball)
        .arg("--numeric-owner")
        .arg("-C")
        .arg(&tree))?;
    let unit = "[Unit]\nAfter=docker.service\nWants=docker.service\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'until docker version >/dev/null 2>&1; do sleep 0.2; done; echo BENCH-DOCKER-UP > /dev/ttyS0; sleep 30; echo BENCH-MEM $(awk \"/^MemTotal:/{t=\\$2} /^MemAvailable:/{a=\\$2} END{print t-a}\" /proc/meminfo) > /dev/ttyS0'\n[Install]\nWantedBy=multi-user.target\n";
    fs::write(tree.join("etc/systemd/system/bench-mem.service"), unit)?;
    std::os::unix::fs::symlink(
        "/etc/systemd/system/bench-mem.service",
        tree.join("etc/systemd/system/multi-user.target.wants/bench-mem.service"),
    )?;
    fs::write(tree.join("etc/fstab"), "/dev/vda / ext4 rw 0 1\n")?;
    let boot = tree.join("boot");
    let find = |prefix: &str| -> Result<PathBuf> {
        fs::read_dir(&boot)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .with_context(|| format!("no {prefix}* in the stock tree"))
    };
    let kernel = find("vmlinuz-")?;
    let initrd = find("initrd.img-")?;
    let image = work.join("stock.img");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&image)
        .arg("3G"))?;
    let mut vm = Vm::builder()
        .name("bench-stock")
        .bios()
        .memory_mib(MEMORY_MIB)
        .disk(&image)
        .direct_kernel(
            &kernel,
            &initrd,
            "root=/dev/vda rw console=ttyS0,115200n8 panic=10",
        )
        .start()?;
    let t = Instant::now();
    vm.console().wait_for("BENCH-DOCKER-UP", BOOT)?;
    let docker_up = t.elapsed().as_secs_f64();
    let m = vm.console().wait_for(r"BENCH-MEM (\d+)", BOOT)?;
    Ok(StockFigures {
        docker_up,
        mem_kib: m.group(1).unwrap_or("0").parse()?,
    })
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// `keel-bench [--keel-only]`: `--keel-only` skips the stock Debian baseline (for quick looks
/// while tuning; the ratios against stock Debian need the full run).
fn main() -> Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let keel_only = std::env::args().skip(1).any(|a| a == "--keel-only");
    let build = artifacts::build_dir();
    let disk_img = artifacts::disk_image()?;
    let pxe = artifacts::pxe_dir()?;
    let sizes = fs::read_to_string(build.join("sizes.txt"))
        .context("reading build/sizes.txt (run ./keel build)")?;
    let work = tempfile::tempdir()?;
    let accel = if std::env::var("KEEL_KVM").as_deref() == Ok("1") {
        "KVM"
    } else {
        "TCG"
    };

    eprintln!("measuring the kernel floor ...");
    let floor = kernel_floor(&pxe.join("vmlinuz"), work.path())?;
    eprintln!("measuring Keel (first boot, later boot, idle memory) ...");
    let keel = keel_boot(&disk_img, work.path())?;
    let stock = if keel_only {
        None
    } else {
        eprintln!("measuring stock Debian bookworm + docker.io (boot to docker, idle memory) ...");
        let stock = stock_debian(&build.join("cache"), work.path())?;
        if stock.mem_kib == 0 {
            bail!("stock Debian reported no memory figure");
        }
        Some(stock)
    };

    let mut out = String::new();
    out.push_str(&format!(
        "Keel benchmarks (QEMU {accel}, 1 vCPU, {MEMORY_MIB} MiB, BIOS/SeaBIOS)\n\n"
    ));
    out.push_str("## Sizes\n");
    out.push_str(&sizes);
    out.push_str("\n## Boot: power-on to \"node ready\"\n");
    out.push_str(&format!(
        "kernel floor (same kernel, initramfs that powers off)  {floor:6.1} s\n"
    ));
    out.push_str(&format!(
        "Keel first boot (ROOT created and grown)              {:6.1} s  ({:.1}x floor)\n",
        keel.first_boot,
        keel.first_boot / floor
    ));
    out.push_str(&format!(
        "Keel later boot                                       {:6.1} s  ({:.1}x floor)\n",
        keel.later_boot,
        keel.later_boot / floor
    ));
    if let Some(stock) = &stock {
        out.push_str(&format!(
            "stock Debian + docker.io, to docker answering        {:6.1} s  ({:.1}x floor; direct kernel boot, no GRUB)\n",
            stock.docker_up,
            stock.docker_up / floor
        ));
    }
    out.push_str("\n## Later boot by phase (seconds since power-on when the phase ended)\n");
    let mut last = 0.0;
    for (name, at) in &keel.phases {
        out.push_str(&format!("{name:<32} {at:6.1} s  (+{:.1} s)\n", at - last));
        last = *at;
    }
    out.push_str(
        "\n## Idle memory in use (MemTotal - MemAvailable, 30 s after the engine is up)\n",
    );
    match &stock {
        Some(stock) => {
            out.push_str(&format!(
                "stock Debian bookworm minimal + docker.io  {}\n",
                mib(stock.mem_kib * 1024)
            ));
            out.push_str(&format!(
                "Keel                                      {}  ({:.2}x stock)\n",
                mib(keel.mem_kib * 1024),
                keel.mem_kib as f64 / stock.mem_kib as f64
            ));
        }
        None => out.push_str(&format!(
            "Keel                                      {}  (stock baseline skipped: --keel-only)\n",
            mib(keel.mem_kib * 1024)
        )),
    }
    out.push_str("\n## Where a later boot's time and the idle memory go (on the node)\n");
    out.push_str(&keel.breakdown);
    print!("{out}");
    fs::write(build.join("bench.txt"), &out)?;
    Ok(())
}
