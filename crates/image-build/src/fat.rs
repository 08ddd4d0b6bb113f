//! The FAT filesystems of the ESP and OEM partitions, made as plain files by mkfs.vfat and
//! filled through [`slots::fat`] (fatfs): no mount, no mtools.

use std::path::Path;

use anyhow::Result;
use slots::fat::Fat;

use crate::cmd;

/// Create an empty FAT32 filesystem of `size_mib` at `image` with `label`, open for filling.
pub fn create(image: &Path, size_mib: u64, label: &str) -> Result<Fat> {
    let _ = std::fs::remove_file(image);
    cmd::run_args(
        "mkfs.vfat",
        [
            "-F".to_string(),
            "32".into(),
            "-n".into(),
            label.into(),
            "-C".into(),
            image.display().to_string(),
            (size_mib * 1024).to_string(),
        ],
    )?;
    Ok(Fat::open_image(image)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_copied_in_read_back() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("esp.img");
        let fat = create(&img, 40, "EFI-SYSTEM").unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, "hello").unwrap();
        fat.copy_in("keel/A/release", &f).unwrap();
        fat.copy_in("keel/A/other", &f).unwrap();
        fat.mkdir_all("keel/B").unwrap();
        fat.close().unwrap();
        let fat = Fat::open_image(&img).unwrap();
        assert_eq!(fat.read("keel/A/release").unwrap(), b"hello");
        assert!(fat.list("keel/B").unwrap().is_empty());
        // dosfstools' checker (installed with mkfs.vfat) finds nothing to fix.
        let fsck = std::process::Command::new("fsck.fat")
            .arg("-n")
            .arg(&img)
            .output()
            .unwrap();
        assert!(fsck.status.success(), "{fsck:?}");
    }
}
