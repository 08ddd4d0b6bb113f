//! FAT filesystems built as plain files and filled with mtools: no mount needed.

use std::path::Path;

use anyhow::Result;

use crate::cmd;

/// Create an empty FAT32 filesystem of `size_mib` at `image` with `label`.
pub fn create(image: &Path, size_mib: u64, label: &str) -> Result<()> {
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
    Ok(())
}

/// Create a directory (and its parents) inside the FAT image.
pub fn mkdir(image: &Path, dir: &str) -> Result<()> {
    let mut path = String::new();
    for part in dir.trim_matches('/').split('/') {
        path.push('/');
        path.push_str(part);
        let exists = cmd::run_args(
            "mdir",
            [
                "-b",
                "-i",
                &image.display().to_string(),
                &format!("::{path}"),
            ],
        )
        .is_ok();
        if !exists {
            cmd::run_args(
                "mmd",
                ["-i", &image.display().to_string(), &format!("::{path}")],
            )?;
        }
    }
    Ok(())
}

/// Copy host file `src` to `dest` inside the FAT image (parents created).
pub fn copy_in(image: &Path, src: &Path, dest: &str) -> Result<()> {
    if let Some((dir, _)) = dest.trim_start_matches('/').rsplit_once('/') {
        mkdir(image, dir)?;
    }
    cmd::run_args(
        "mcopy",
        [
            "-o".to_string(),
            "-i".into(),
            image.display().to_string(),
            src.display().to_string(),
            format!("::/{}", dest.trim_start_matches('/')),
        ],
    )?;
    Ok(())
}

/// Read `path` out of the FAT image.
pub fn read(image: &Path, path: &str) -> Result<Vec<u8>> {
    let out = std::process::Command::new("mtype")
        .args([
            "-i",
            &image.display().to_string(),
            &format!("::/{}", path.trim_start_matches('/')),
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "mtype {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_copied_in_read_back() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("esp.img");
        create(&img, 40, "EFI-SYSTEM").unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, "hello").unwrap();
        copy_in(&img, &f, "keel/A/release").unwrap();
        copy_in(&img, &f, "keel/A/other").unwrap();
        assert_eq!(read(&img, "keel/A/release").unwrap(), b"hello");
    }
}
