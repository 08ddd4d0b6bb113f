//! What a container host drops from the Debian tree, and the sizes before and after.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

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
    let kdir = tree.join("usr/lib/modules").join(kernel).join("kernel");
    for rel in DROP_MODULE_DIRS {
        let p = kdir.join(rel);
        if p.is_dir() {
            fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    cmd::run_args("depmod", ["-b".as_ref(), tree.as_os_str(), kernel.as_ref()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
