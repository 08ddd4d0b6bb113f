//! What a container host drops from the Debian tree, and the sizes before and after.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cmd;

/// Paths removed outright (relative to the tree).
pub const DROP_PATHS: &[&str] = &[
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/share/initramfs-tools",
    "etc/initramfs-tools",
    "var/lib/initramfs-tools",
    "var/cache/apt",
    "var/lib/apt/lists",
    "var/log/apt",
    "var/cache/debconf/templates.dat-old",
    // perl's full library: only package maintainer scripts use it (perl-base stays).
    "usr/share/perl",
    "usr/lib/x86_64-linux-gnu/perl",
];

/// Files removed outright: programs a node never runs.
pub const DROP_FILES: &[&str] = &[
    // containerd's debugging client and libnetwork's test tool.
    "usr/bin/ctr",
    "usr/bin/dnet",
    // The v1 shims: docker 20.10 runs containers with io.containerd.runc.v2.
    "usr/bin/containerd-shim",
    "usr/bin/containerd-shim-runc-v1",
    // Keel mounts its own partitions (ESP on /boot) in the initramfs; systemd's guess from the
    // GPT would set up a second, failing automount of the ESP.
    "usr/lib/systemd/system-generators/systemd-gpt-auto-generator",
];

/// Kernel module directories (under `usr/lib/modules/<ver>/kernel`) no server or VM needs:
/// graphics, sound, media, radios, exotic buses and filesystems.
pub const DROP_MODULE_DIRS: &[&str] = &[
    "sound",
    "drivers/gpu",
    "drivers/media",
    "drivers/staging",
    "drivers/infiniband",
    "drivers/isdn",
    "drivers/bluetooth",
    "drivers/net/wireless",
    "drivers/net/can",
    "drivers/net/wwan",
    "drivers/iio",
    "drivers/input/joystick",
    "drivers/input/touchscreen",
    "drivers/input/tablet",
    "drivers/video",
    "drivers/mtd",
    "drivers/memstick",
    "drivers/nfc",
    "drivers/atm",
    "drivers/comedi",
    "drivers/usb/serial",
    "drivers/usb/misc",
    "drivers/w1",
    "drivers/hid/amd-sfh-hid",
    "drivers/platform/chrome",
    "drivers/power/supply",
    "drivers/net/ieee802154",
    "net/bluetooth",
    "net/wireless",
    "net/mac80211",
    "net/nfc",
    "net/ieee802154",
    "net/mac802154",
    "net/can",
    "net/atm",
    "net/6lowpan",
    "fs/ocfs2",
    "fs/gfs2",
    "fs/nilfs2",
    "fs/jffs2",
    "fs/ubifs",
    "fs/coda",
    "fs/hfs",
    "fs/hfsplus",
    "fs/ntfs3",
    "fs/reiserfs",
    // Hardware a server or VM does not have, or buses a container host does not use.
    "drivers/accessibility",
    "drivers/android",
    "drivers/firewire",
    "drivers/leds",
    "drivers/mmc",
    "drivers/parport",
    "drivers/pcmcia",
    "drivers/soundwire",
    "drivers/target",
    "drivers/thunderbolt",
    "drivers/ufs",
    "drivers/platform/x86",
    "drivers/input/touchscreen",
    "drivers/input/misc",
    "drivers/net/arcnet",
    "drivers/net/fddi",
    "drivers/net/hamradio",
    "drivers/net/plip",
    "drivers/net/slip",
    "drivers/net/wan",
    // Ethernet families from before servers had PCIe, or from boards, not servers.
    "drivers/net/ethernet/3com",
    "drivers/net/ethernet/8390",
    "drivers/net/ethernet/adaptec",
    "drivers/net/ethernet/agere",
    "drivers/net/ethernet/alteon",
    "drivers/net/ethernet/atheros",
    "drivers/net/ethernet/dec",
    "drivers/net/ethernet/dlink",
    "drivers/net/ethernet/fujitsu",
    "drivers/net/ethernet/micrel",
    "drivers/net/ethernet/microchip",
    "drivers/net/ethernet/myricom",
    "drivers/net/ethernet/natsemi",
    "drivers/net/ethernet/neterion",
    "drivers/net/ethernet/nvidia",
    "drivers/net/ethernet/packetengines",
    "drivers/net/ethernet/rdc",
    "drivers/net/ethernet/silan",
    "drivers/net/ethernet/sis",
    "drivers/net/ethernet/smsc",
    "drivers/net/ethernet/stmicro",
    "drivers/net/ethernet/sun",
    "drivers/net/ethernet/tehuti",
    "drivers/net/ethernet/ti",
    "drivers/net/ethernet/via",
    "drivers/net/ethernet/xircom",
    // Fibre Channel, FCoE and iSCSI-offload HBAs (SAN boot is out of scope), parallel SCSI.
    "drivers/scsi/aic7xxx",
    "drivers/scsi/be2iscsi",
    "drivers/scsi/bfa",
    "drivers/scsi/bnx2fc",
    "drivers/scsi/csiostor",
    "drivers/scsi/cxgbi",
    "drivers/scsi/fcoe",
    "drivers/scsi/fnic",
    "drivers/scsi/libfc",
    "drivers/scsi/lpfc",
    "drivers/scsi/qedf",
    "drivers/scsi/qedi",
    "drivers/scsi/qla2xxx",
    "drivers/scsi/qla4xxx",
    // Filesystems and protocols of clusters and networks a node does not join.
    "fs/afs",
    "fs/dlm",
    "fs/f2fs",
    "fs/jfs",
    "fs/nfsd",
    "fs/orangefs",
    "fs/udf",
    "net/rxrpc",
    "net/tipc",
    "net/rds",
    "net/x25",
    "net/appletalk",
    "net/phonet",
];

/// Total size in bytes of the regular files under `dir` (links not followed).
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Remove what a container host does not need; rebuild the module index.
pub fn trim(tree: &Path, kernel: &str) -> Result<()> {
    for rel in DROP_PATHS {
        let p = tree.join(rel);
        if p.is_dir() {
            fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    for dir in ["var/cache/apt", "var/lib/apt/lists/partial"] {
        fs::create_dir_all(tree.join(dir))?;
    }
    // initramfs-tools' image: Keel builds its own initramfs.
    for e in fs::read_dir(tree.join("boot"))?.flatten() {
        if e.file_name().to_string_lossy().starts_with("initrd.img") {
            fs::remove_file(e.path())?;
        }
    }
    for rel in DROP_FILES {
        let p = tree.join(rel);
        if p.exists() {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let mdir = tree.join("usr/lib/modules").join(kernel);
    let deps = fs::read_to_string(mdir.join("modules.dep"))
        .with_context(|| format!("reading {}/modules.dep", mdir.display()))?;
    let dependants = dependants(&deps, DROP_MODULE_DIRS);
    let lost = lost_essentials(&deps, DROP_MODULE_DIRS, &dependants);
    if !lost.is_empty() {
        bail!(
            "the module trim would remove modules every node may need: {} (take their \
             directories, or their dependencies' directories, out of DROP_MODULE_DIRS)",
            lost.join(", ")
        );
    }
    for rel in DROP_MODULE_DIRS {
        let p = mdir.join("kernel").join(rel);
        if p.is_dir() {
            fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    // A module that needs a dropped one could never load: it goes too.
    for module in &dependants {
        let p = mdir.join(module);
        if p.exists() {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    tracing::info!(
        "trim: {} more modules dropped with the ones they need",
        dependants.len()
    );
    cmd::run_args("depmod", ["-b".as_ref(), tree.as_os_str(), kernel.as_ref()])?;
    Ok(())
}

/// Modules no trimmed node may lack: its disks, NICs, filesystems and container networking.
/// The build fails if the trim would remove one of them.
pub const ESSENTIAL_MODULES: &[&str] = &[
    "virtio_blk",
    "virtio_scsi",
    "virtio_net",
    "nvme",
    "ahci",
    "sd_mod",
    "megaraid_sas",
    "mpt3sas",
    "e1000",
    "e1000e",
    "igb",
    "ixgbe",
    "i40e",
    "ice",
    "bnxt_en",
    "mlx5_core",
    "ena",
    "vmxnet3",
    "ext4",
    "xfs",
    "btrfs",
    "vfat",
    "squashfs",
    "overlay",
    "nfs",
    "bridge",
    "br_netfilter",
    "veth",
    "vxlan",
    "xt_MASQUERADE",
    "nf_nat",
    "ip_tables",
    "wireguard",
];

fn dropped(module: &str, dirs: &[&str]) -> bool {
    let rel = module.strip_prefix("kernel/").unwrap_or(module);
    dirs.iter().any(|d| {
        rel.strip_prefix(d)
            .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn stem(module: &str) -> String {
    let file = module.rsplit('/').next().unwrap_or(module);
    let name = file.split(".ko").next().unwrap_or(file);
    name.replace('-', "_")
}

/// Modules outside `dirs` that need one inside, from the untrimmed tree's `modules.dep`
/// (`kernel/a.ko: kernel/b.ko kernel/c.ko`, each line listing every dependency, transitively).
pub fn dependants(modules_dep: &str, dirs: &[&str]) -> Vec<String> {
    modules_dep
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(module, deps)| {
            !dropped(module, dirs) && deps.split_whitespace().any(|d| dropped(d, dirs))
        })
        .map(|(module, _)| module.to_string())
        .collect()
}

/// The [`ESSENTIAL_MODULES`] that the trim would remove, directly or as dependants.
pub fn lost_essentials(modules_dep: &str, dirs: &[&str], dependants: &[String]) -> Vec<String> {
    let lost: Vec<String> = modules_dep
        .lines()
        .filter_map(|line| line.split_once(':').map(|(m, _)| m))
        .filter(|m| dropped(m, dirs) || dependants.iter().any(|d| d == m))
        .map(stem)
        .collect();
    ESSENTIAL_MODULES
        .iter()
        .filter(|e| lost.iter().any(|l| l == &e.replace('-', "_")))
        .map(|e| e.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/drivers/net/ethernet/intel/igb/igb.ko: kernel/drivers/ptp/ptp.ko kernel/drivers/pps/pps_core.ko\n\
                       kernel/drivers/ptp/ptp.ko: kernel/drivers/pps/pps_core.ko\n\
                       kernel/drivers/pps/pps_core.ko:\n\
                       kernel/drivers/leds/led-class.ko:\n";

    #[test]
    fn modules_that_need_a_dropped_one_go_with_it() {
        assert!(dependants(DEP, &["drivers/leds"]).is_empty());
        assert_eq!(
            dependants(DEP, &["drivers/pps"]),
            [
                "kernel/drivers/net/ethernet/intel/igb/igb.ko",
                "kernel/drivers/ptp/ptp.ko"
            ]
        );
        // "drivers/pt" is not "drivers/ptp".
        assert!(dependants(DEP, &["drivers/pt"]).is_empty());
    }

    #[test]
    fn losing_an_essential_module_directly_or_as_a_dependant_is_reported() {
        let deps = dependants(DEP, &["drivers/pps"]);
        assert_eq!(lost_essentials(DEP, &["drivers/pps"], &deps), ["igb"]);
        assert_eq!(
            lost_essentials(DEP, &["drivers/net/ethernet/intel"], &[]),
            ["igb"]
        );
        assert!(lost_essentials(DEP, &["drivers/leds"], &[]).is_empty());
    }

    #[test]
    fn sizes_count_files_only() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        fs::write(d.path().join("a/b/f"), vec![0u8; 1000]).unwrap();
        fs::write(d.path().join("g"), vec![0u8; 24]).unwrap();
        std::os::unix::fs::symlink("g", d.path().join("link")).unwrap();
        assert_eq!(tree_size(d.path()), 1024);
    }
}
