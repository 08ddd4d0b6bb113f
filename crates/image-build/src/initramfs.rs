//! Keel's initramfs: busybox, the few real tools first boot needs (blkid, sfdisk, mke2fs, kmod,
//! and for Ignition: `ignition`, mkswap, wipefs) with their libraries, the storage and
//! filesystem modules, the NIC modules Ignition loads when its config URL needs the network,
//! the udhcpc event script, and `/init`.

use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::{cmd, cpio};

/// The init script.
pub const INIT: &str = include_str!("../files/init");

/// Modules loaded at start, in order (with their dependencies): disks, filesystems, loop.
pub const MODULES: &[&str] = &[
    "crc32c_generic",
    "crc32c-intel",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "ahci",
    "ata_piix",
    "nvme",
    "xhci_pci",
    "usb_storage",
    "uas",
    "ext4",
    "vfat",
    "nls_cp437",
    "nls_iso8859-1",
    "nls_ascii",
    "squashfs",
    "loop",
];

/// NIC modules (and the packet socket udhcpc needs), loaded by the Ignition hook only when a
/// config URL needs the network; listed in `/etc/keel-net-modules`.
pub const NET_MODULES: &[&str] = &["af_packet", "virtio_net", "e1000", "e1000e"];

/// busybox udhcpc's event script, at `/etc/keel-udhcpc.script`.
pub const UDHCPC_SCRIPT: &str = include_str!("../files/udhcpc.script");

/// The Ignition first-boot hook, at `/etc/keel-init.d/50-ignition.sh`.
pub fn ignition_hook() -> Hook {
    Hook {
        name: "50-ignition.sh".into(),
        text: include_str!("../files/ignition.sh").into(),
    }
}

/// Real tools taken from the OS tree, with the name they get in the initramfs.
const TOOLS: &[(&str, &str)] = &[
    ("usr/sbin/blkid", "sbin/blkid"),
    ("usr/sbin/sfdisk", "sbin/sfdisk"),
    ("usr/sbin/mke2fs", "sbin/mke2fs"),
    ("usr/bin/kmod", "sbin/kmod"),
    ("usr/sbin/mkswap", "sbin/mkswap"),
    ("usr/sbin/wipefs", "sbin/wipefs"),
    // Installed into the OS tree by `os::install` before the initramfs is staged.
    ("usr/bin/ignition", "bin/ignition"),
];

/// busybox applets replaced by the real tools above.
const NOT_FROM_BUSYBOX: &[&str] = &[
    "mkswap",
    "blkid",
    "modprobe",
    "insmod",
    "rmmod",
    "lsmod",
    "depmod",
    "mke2fs",
    "mkfs.ext2",
    "fdisk",
];

fn normalize(module: &str) -> String {
    module.replace('-', "_")
}

/// Parse `modules.dep` into (module name → (path, deps)).
fn parse_modules_dep(text: &str) -> Vec<(String, String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let (path, deps) = l.split_once(':')?;
            let name = Path::new(path).file_name()?.to_string_lossy();
            let name = normalize(name.trim_end_matches(".ko").trim_end_matches(".ko.xz"));
            let name = name.trim_end_matches(".ko").to_string();
            Some((
                name,
                path.to_string(),
                deps.split_whitespace().map(String::from).collect(),
            ))
        })
        .collect()
}

/// The module files `wanted` needs, dependencies included; names not built as modules are
/// returned separately (built in, or absent).
pub fn module_closure(modules_dep: &str, wanted: &[&str]) -> (BTreeSet<String>, Vec<String>) {
    let table = parse_modules_dep(modules_dep);
    let mut files = BTreeSet::new();
    let mut not_modules = Vec::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for w in wanted {
        match table.iter().find(|(n, _, _)| *n == normalize(w)) {
            Some((_, path, _)) => queue.push_back(path.clone()),
            None => not_modules.push(w.to_string()),
        }
    }
    while let Some(path) = queue.pop_front() {
        if !files.insert(path.clone()) {
            continue;
        }
        if let Some((_, _, deps)) = table.iter().find(|(_, p, _)| *p == path) {
            queue.extend(deps.iter().cloned());
        }
    }
    (files, not_modules)
}

fn needed_libs(file: &Path) -> Result<Vec<String>> {
    let out = cmd::run_args("readelf", ["-d".as_ref(), file.as_os_str()])?;
    Ok(out
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect())
}

const LIB_DIRS: &[&str] = &["usr/lib/x86_64-linux-gnu", "usr/lib", "usr/lib64"];

/// Copy `binary` (a path in `tree`) to `dest` in `stage`, with every shared library it needs.
pub fn copy_with_libs(tree: &Path, binary: &Path, stage: &Path, dest: &str) -> Result<()> {
    let target = stage.join(dest);
    fs::create_dir_all(target.parent().expect("dest has a parent"))?;
    fs::copy(binary, &target).with_context(|| format!("copying {}", binary.display()))?;
    let mut queue = vec![binary.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(file) = queue.pop() {
        for lib in needed_libs(&file)? {
            if !seen.insert(lib.clone()) {
                continue;
            }
            let found = LIB_DIRS
                .iter()
                .map(|d| tree.join(d).join(&lib))
                .find(|p| p.exists());
            let Some(src) = found else {
                bail!(
                    "{} needs {lib}, which is not in the OS tree",
                    file.display()
                );
            };
            let out = stage.join("lib/x86_64-linux-gnu").join(&lib);
            fs::create_dir_all(out.parent().expect("lib dir"))?;
            fs::copy(&src, &out).with_context(|| format!("copying {}", src.display()))?;
            queue.push(src);
        }
    }
    let ld = "ld-linux-x86-64.so.2";
    let ld_src = tree.join("usr/lib/x86_64-linux-gnu").join(ld);
    fs::create_dir_all(stage.join("lib64"))?;
    fs::copy(&ld_src, stage.join("lib64").join(ld))
        .with_context(|| format!("copying {}", ld_src.display()))?;
    Ok(())
}

/// A shell hook placed in `/etc/keel-init.d` (run before switching root).
#[derive(Clone, Debug)]
pub struct Hook {
    /// File name, e.g. `50-ignition.sh`.
    pub name: String,
    /// Script text (sourced by /init).
    pub text: String,
}

/// Lay out the initramfs tree in `stage` from the OS `tree`.
pub fn stage(tree: &Path, kernel: &str, stage: &Path, hooks: &[Hook]) -> Result<()> {
    if stage.exists() {
        fs::remove_dir_all(stage)?;
    }
    for d in [
        "bin",
        "sbin",
        "etc/keel-init.d",
        "proc",
        "sys",
        "dev",
        "run",
        "sysroot",
        "tmp",
        "lib64",
    ] {
        fs::create_dir_all(stage.join(d))?;
    }
    fs::copy("/bin/busybox", stage.join("bin/busybox"))
        .context("copying /bin/busybox (apt-get install busybox-static)")?;
    let applets = cmd::run_args("/bin/busybox", ["--list"])?;
    for applet in applets
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        if NOT_FROM_BUSYBOX.contains(&applet) {
            continue;
        }
        symlink("busybox", stage.join("bin").join(applet))?;
    }
    for (src, dest) in TOOLS {
        let path = tree.join(src);
        if !path.exists() {
            bail!(
                "{} is missing from the OS tree; add its package to the rootfs",
                src
            );
        }
        copy_with_libs(tree, &path, stage, dest)?;
    }
    symlink("kmod", stage.join("sbin/modprobe"))?;
    fs::write(stage.join("etc/ld.so.conf"), "/lib/x86_64-linux-gnu\n")?;
    let mke2fs_conf = tree.join("etc/mke2fs.conf");
    if mke2fs_conf.exists() {
        fs::copy(&mke2fs_conf, stage.join("etc/mke2fs.conf"))?;
    }

    let mod_src = tree.join("usr/lib/modules").join(kernel);
    let mod_dest = stage.join("lib/modules").join(kernel);
    let dep = fs::read_to_string(mod_src.join("modules.dep")).context("reading modules.dep")?;
    let wanted: Vec<&str> = MODULES.iter().chain(NET_MODULES).copied().collect();
    let (files, not_modules) = module_closure(&dep, &wanted);
    let builtin = fs::read_to_string(mod_src.join("modules.builtin")).unwrap_or_default();
    for name in &not_modules {
        let n = normalize(name);
        let is_builtin = builtin
            .lines()
            .any(|l| normalize(l).ends_with(&format!("/{n}.ko")));
        tracing::debug!(
            "initramfs: {name} is {}",
            if is_builtin {
                "built in"
            } else {
                "not in this kernel"
            }
        );
    }
    for f in &files {
        let out = mod_dest.join(f);
        fs::create_dir_all(out.parent().expect("module dir"))?;
        fs::copy(mod_src.join(f), &out).with_context(|| format!("copying module {f}"))?;
    }
    for f in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        if mod_src.join(f).exists() {
            fs::copy(mod_src.join(f), mod_dest.join(f))?;
        }
    }
    cmd::run_args(
        "depmod",
        ["-b".as_ref(), stage.as_os_str(), kernel.as_ref()],
    )?;
    fs::write(stage.join("etc/keel-modules"), MODULES.join("\n") + "\n")?;
    fs::write(
        stage.join("etc/keel-net-modules"),
        NET_MODULES.join("\n") + "\n",
    )?;
    let udhcpc = stage.join("etc/keel-udhcpc.script");
    fs::write(&udhcpc, UDHCPC_SCRIPT)?;
    fs::set_permissions(&udhcpc, fs::Permissions::from_mode(0o755))?;

    for hook in hooks {
        let p = stage.join("etc/keel-init.d").join(&hook.name);
        fs::write(&p, &hook.text)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
    }
    let init = stage.join("init");
    fs::write(&init, INIT)?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
    cmd::run_args("ldconfig", ["-r".as_ref(), stage.as_os_str()])?;
    Ok(())
}

/// Write `stage` as a zstd-compressed newc archive at `out`, padded to 4 bytes so more
/// archives can follow it.
pub fn write_archive(stage: &Path, out: &Path) -> Result<PathBuf> {
    // zstd: smaller than gzip for the firmware to read and faster for the kernel to unpack
    // (Debian's kernel has RD_ZSTD; initramfs-tools uses zstd by default since bookworm).
    let cpio_path = out.with_extension("cpio");
    let file = fs::File::create(&cpio_path)
        .with_context(|| format!("creating {}", cpio_path.display()))?;
    let mut w = cpio::Writer::new(io::BufWriter::new(file));
    w.tree(stage)?;
    w.finish()?.flush()?;
    let _ = fs::remove_file(out);
    cmd::run_args(
        "zstd",
        [
            "-q".as_ref(),
            "-19".as_ref(),
            "-T0".as_ref(),
            "--rm".as_ref(),
            cpio_path.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ],
    )?;
    let mut file = fs::OpenOptions::new().append(true).open(out)?;
    let len = file.metadata()?.len();
    let pad = (4 - len % 4) % 4;
    file.write_all(&vec![0u8; pad as usize])?;
    file.sync_all()?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str =
        "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
kernel/lib/crc16.ko:\n\
kernel/fs/mbcache.ko:\n\
kernel/fs/jbd2/jbd2.ko:\n\
kernel/drivers/usb/host/xhci-pci.ko: kernel/drivers/usb/host/xhci-hcd.ko\n\
kernel/drivers/usb/host/xhci-hcd.ko:\n";

    #[test]
    fn closure_follows_dependencies_and_dash_underscore_names() {
        let (files, not_modules) = module_closure(DEP, &["ext4", "xhci_pci", "virtio_pci"]);
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        assert_eq!(
            files,
            vec![
                "kernel/drivers/usb/host/xhci-hcd.ko",
                "kernel/drivers/usb/host/xhci-pci.ko",
                "kernel/fs/ext4/ext4.ko",
                "kernel/fs/jbd2/jbd2.ko",
                "kernel/fs/mbcache.ko",
                "kernel/lib/crc16.ko"
            ]
        );
        assert_eq!(not_modules, vec!["virtio_pci"]);
    }

    #[test]
    fn init_script_is_valid_shell() {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("init", INIT.to_string()),
            ("hook", ignition_hook().text),
            ("udhcpc", UDHCPC_SCRIPT.into()),
        ] {
            let p = d.path().join(name);
            fs::write(&p, text).unwrap();
            cmd::run_args("sh", ["-n".as_ref(), p.as_os_str()]).unwrap();
        }
    }

    #[test]
    fn ignition_hook_runs_the_release_binary_with_the_first_boot_paths() {
        let hook = ignition_hook();
        assert_eq!(hook.name, "50-ignition.sh");
        assert!(hook
            .text
            .contains("/bin/ignition firstboot $ign_args --probe"));
        assert!(hook.text.contains("--marker /sysroot/boot/keel/first_boot"));
        assert!(hook.text.contains("--oem-dir /sysroot/oem"));
        assert!(TOOLS.contains(&("usr/bin/ignition", "bin/ignition")));
    }
}
