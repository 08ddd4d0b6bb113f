//! The build, step by step, and the size report.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use slots::layout::{esp, oem, partitions, place, Sizes, Slot};
use slots::store::{encode_state, fallback_record};
use slots::BootState;

use crate::rootfs::RootfsSpec;
use crate::tuf_keys::{self, SigningKeys};
use crate::update_repo;
use crate::{cmd, disk, factory, fat, grub, initramfs, os, pxe, release, rootfs, tools, trim};

/// What to build and where.
#[derive(Clone, Debug)]
pub struct Options {
    /// Output directory (`build`).
    pub out: PathBuf,
    /// Where the `agent`, `updater` and `ignition` binaries are.
    pub bin_dir: PathBuf,
    /// Rootfs tarball cache.
    pub cache: PathBuf,
    /// Keel version.
    pub version: String,
    /// Debian packages and mirror.
    pub rootfs: RootfsSpec,
    /// Partition sizes.
    pub sizes: Sizes,
    /// Release signing key (PEM); required (see `release::signing_key`).
    pub signing_key: Option<PathBuf>,
    /// The channel the release is signed for.
    pub channel: String,
    /// The release server the live system's `coreos-install` uses when given no `-b`
    /// (`keel.release_url=` in the example iPXE scripts).
    pub release_url: Option<String>,
    /// TUF keys ([`tuf_keys`]) that sign the channel's update repository `OUT/update/<channel>/`;
    /// without them none is published.
    pub tuf_keys: Option<PathBuf>,
}

/// Sizes of what was built, in bytes.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Debian tree as installed.
    pub tree_installed: u64,
    /// After trimming.
    pub tree_trimmed: u64,
    /// Kernel modules after trimming.
    pub modules_trimmed: u64,
    /// The OS image in a slot (squashfs).
    pub usr_image: u64,
    /// USR partition size.
    pub usr_partition: u64,
    /// Kernel.
    pub kernel: u64,
    /// Disk initramfs.
    pub initrd: u64,
    /// PXE initramfs (whole OS).
    pub pxe_initramfs: u64,
    /// disk.img apparent size.
    pub disk_apparent: u64,
    /// disk.img blocks actually allocated.
    pub disk_allocated: u64,
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Debian tree installed     {}", mib(self.tree_installed))?;
        writeln!(f, "Debian tree trimmed       {}", mib(self.tree_trimmed))?;
        writeln!(f, "  kernel modules kept     {}", mib(self.modules_trimmed))?;
        writeln!(
            f,
            "OS image (squashfs/zstd)  {} of a {} slot",
            mib(self.usr_image),
            mib(self.usr_partition)
        )?;
        writeln!(f, "kernel                    {}", mib(self.kernel))?;
        writeln!(f, "initramfs (disk boot)     {}", mib(self.initrd))?;
        writeln!(f, "initramfs (PXE, whole OS) {}", mib(self.pxe_initramfs))?;
        writeln!(
            f,
            "disk.img                  {} ({} allocated)",
            mib(self.disk_apparent),
            mib(self.disk_allocated)
        )
    }
}

fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = Instant::now();
    tracing::info!("{name} ...");
    let r = f().with_context(|| format!("step failed: {name}"))?;
    tracing::info!("{name}: done in {:.1}s", t.elapsed().as_secs_f64());
    Ok(r)
}

fn size(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Build `disk.img` and `pxe/` under `opts.out`.
pub fn build(opts: &Options) -> Result<Report> {
    // Check the signing key first: a missing or refused --signing-key fails now, not after the
    // whole build.
    let key = release::signing_key(opts.signing_key.as_deref(), ::release::TRUST)?;
    let tuf = opts
        .tuf_keys
        .as_deref()
        .map(|dir| -> Result<SigningKeys> {
            let keys = SigningKeys::from_dir(dir)?;
            tuf_keys::check_keys(::release::TRUST, &keys)?;
            Ok(keys)
        })
        .transpose()?;
    for (what, name) in [("version", &opts.version), ("channel", &opts.channel)] {
        anyhow::ensure!(
            ::release::layout::valid_version(name),
            "{what} {name:?} is not a plain name (letters, digits, . - _ +): it names a directory \
             of the release and is signed"
        );
    }
    tools::check(tools::REQUIRED)?;
    let work = opts.out.join("work");
    let tree = work.join("tree");
    fs::create_dir_all(&work)?;
    let mut report = Report::default();

    step("rootfs (Debian bookworm)", || {
        rootfs::prepare(&opts.rootfs, &opts.cache, &tree)
    })?;
    let kernel = rootfs::kernel_version(&tree)?;
    report.tree_installed = trim::tree_size(&tree);
    step("Keel files", || {
        os::install(
            &tree,
            &opts.bin_dir,
            &os::Release {
                version: opts.version.clone(),
            },
        )
    })?;
    step("trim", || trim::trim(&tree, &kernel))?;
    report.tree_trimmed = trim::tree_size(&tree);
    report.modules_trimmed = trim::tree_size(&tree.join("usr/lib/modules"));

    let initrd = work.join("initrd.img");
    step("initramfs", || {
        initramfs::stage(
            &tree,
            &kernel,
            &work.join("initramfs"),
            &[initramfs::ignition_hook()],
        )?;
        initramfs::write_archive(&work.join("initramfs"), &initrd)
    })?;
    let vmlinuz = work.join("vmlinuz");
    fs::copy(
        tree.join("boot").join(format!("vmlinuz-{kernel}")),
        &vmlinuz,
    )
    .context("copying the kernel")?;
    for e in fs::read_dir(tree.join("boot"))?.flatten() {
        fs::remove_file(e.path())?;
    }

    step("factory defaults", || factory::split(&tree))?;
    let usr_image = work.join("usr.squashfs");
    step("OS image (mksquashfs)", || {
        let _ = fs::remove_file(&usr_image);
        cmd::run_args(
            "mksquashfs",
            [
                tree.join("usr").as_os_str(),
                usr_image.as_os_str(),
                "-comp".as_ref(),
                "zstd".as_ref(),
                "-b".as_ref(),
                "256K".as_ref(),
                "-noappend".as_ref(),
                "-no-progress".as_ref(),
                "-quiet".as_ref(),
            ],
        )?;
        Ok(())
    })?;

    let esp = work.join("esp.img");
    step("EFI system partition", || {
        build_esp(&esp, &work, opts, &vmlinuz, &initrd, &kernel)
    })?;
    let oem = work.join("oem.img");
    step("OEM partition", || {
        let fat = fat::create(&oem, opts.sizes.oem_mib, "OEM")?;
        fat.write(
            oem::GRUB_CFG,
            b"# Keel OEM settings, sourced by GRUB. Example:\n# set linux_append=\"keel.autologin\"\n",
        )?;
        Ok(fat.close()?)
    })?;
    let core = work.join("core.img");
    step("GRUB BIOS core image", || {
        grub::bios_core_image(&core, &work)
    })?;

    let disk_img = opts.out.join("disk.img");
    let (placed, disk_size) = place(&partitions(opts.sizes));
    step("disk image", || {
        let contents = disk::Contents {
            esp: Some(esp.clone()),
            bios_core: Some(core.clone()),
            usr_a: Some(usr_image.clone()),
            oem: Some(oem.clone()),
        };
        disk::assemble(&disk_img, &placed, disk_size, &contents)
    })?;
    step("PXE artifacts", || {
        pxe::write(
            &opts.out.join("pxe"),
            &vmlinuz,
            &initrd,
            &usr_image,
            opts.release_url.as_deref(),
        )
    })?;
    let published = step("release image (gzip, SHA-256, signature)", || {
        release::publish(
            &disk_img,
            &opts.out.join("release"),
            &opts.version,
            &opts.channel,
            &key,
        )
    })?;
    step("PXE install image (install.cpio)", || {
        let dir = published
            .image
            .parent()
            .context("the release image has no directory")?;
        pxe::write_carried(&opts.out.join("pxe"), dir, opts.release_url.as_deref())
    })?;
    tracing::info!(image = %published.image.display(), sha256 = %published.sha256, key = %published.key_id, test_key = published.test_key, "release published");
    // The channel's update repository (OUT/update/<channel>/), appended to; nothing else reads it.
    if let Some(keys) = &tuf {
        step("update repository (TUF)", || {
            let repo = update_repo::channel_dir(&opts.out, &opts.channel);
            let p = update_repo::publish(&update_repo::Publish {
                repo: &repo,
                channel: &opts.channel,
                version: &opts.version,
                payload: &usr_image,
                kernel: &vmlinuz,
                initrd: &initrd,
                keys,
                expiry: update_repo::Expiry::default(),
                now: jiff::Timestamp::now(),
            })?;
            tracing::info!(repo = %repo.display(), version = %opts.version, releases = p.releases, edition = p.timestamp_version, "update repository signed");
            Ok(())
        })?;
    }

    report.usr_image = size(&usr_image);
    report.usr_partition = opts.sizes.usr_mib << 20;
    report.kernel = size(&vmlinuz);
    report.initrd = size(&initrd);
    report.pxe_initramfs = size(&opts.out.join("pxe/initramfs.img"));
    report.disk_apparent = size(&disk_img);
    report.disk_allocated = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&disk_img)
            .map(|m| m.blocks() * 512)
            .unwrap_or(0)
    };
    fs::write(opts.out.join("sizes.txt"), report.to_string())?;
    Ok(report)
}

fn build_esp(
    image: &Path,
    work: &Path,
    opts: &Options,
    vmlinuz: &Path,
    initrd: &Path,
    kernel: &str,
) -> Result<()> {
    let fat = fat::create(image, opts.sizes.esp_mib, "EFI-SYSTEM")?;
    let efi = work.join("BOOTX64.EFI");
    grub::efi_image(&efi, work)?;
    fat.copy_in(esp::EFI_BOOT, &efi)?;
    fat.write(esp::GRUB_CFG, grub::grub_cfg().as_bytes())?;
    // The boot state as the updater writes it (slots::store).
    let state = BootState::factory();
    let env = encode_state(&state)?;
    for copy in esp::GRUBENV {
        fat.write(copy, &env)?;
    }
    fat.write(esp::FALLBACK_CFG, fallback_record(state.good).as_bytes())?;
    fat.copy_in(&esp::slot_file(Slot::A, esp::KERNEL), vmlinuz)?;
    fat.copy_in(&esp::slot_file(Slot::A, esp::INITRD), initrd)?;
    fat.write(
        &esp::slot_file(Slot::A, esp::RELEASE),
        format!(
            "VERSION={}\nSLOT={}\nKERNEL={kernel}\n",
            opts.version,
            Slot::A
        )
        .as_bytes(),
    )?;
    fat.mkdir_all(&esp::slot_dir(Slot::B))?;
    // Ignition runs while this exists and removes it after success (Flatcar: /flatcar/first_boot).
    fat.write(esp::FIRST_BOOT, b"")?;
    Ok(fat.close()?)
}
