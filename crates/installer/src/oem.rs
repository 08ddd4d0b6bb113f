//! Put the Ignition config on the installed disk's OEM partition as `config.ign`, where Keel's
//! first boot (and CL before it) looks for it.
//!
//! The partition is found through the GPT that was just written (label `OEM`, partition 6 in
//! Keel's layout, [`slots::layout`]) and its FAT filesystem is edited in place through the
//! whole-disk device ([`slots::fat`]): no mount, no vfat module, no mtools (the live system has
//! none), and the same code works on a plain file in tests.

use std::fs::File;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use slots::fat::Fat;
use slots::layout::{partition, Content};
use slots::table;

/// The config's file name on OEM.
pub const CONFIG_NAME: &str = slots::layout::oem::CONFIG;

/// The OEM partition of the disk at `path`, found by its label in Keel's layout: (offset,
/// length).
fn find_oem(path: &Path) -> Result<(u64, u64)> {
    let want = partition(Content::Oem);
    let parts = table::read_partitions(path)
        .with_context(|| format!("reading the partition table written to {}", path.display()))?;
    let oem = parts
        .iter()
        .find(|p| p.label == want.label)
        .with_context(|| {
            let labels: Vec<String> = parts
                .iter()
                .map(|p| format!("{}:{}", p.number, p.label))
                .collect();
            format!(
                "{} has no partition labelled {} (found {})",
                path.display(),
                want.label,
                labels.join(", ")
            )
        })?;
    if oem.number != want.number {
        eprintln!(
            "coreos-install: note: the OEM partition is number {}, not {}",
            oem.number, want.number
        );
    }
    Ok((oem.offset, oem.len))
}

/// The OEM filesystem of the disk open as `file` (at `path`).
fn open_oem(path: &Path, file: &File) -> Result<Fat> {
    let (start, len) = find_oem(path)?;
    let file = file
        .try_clone()
        .with_context(|| format!("opening {} again", path.display()))?;
    Ok(Fat::open(
        file,
        start,
        len,
        format!(
            "the OEM filesystem (FAT) at offset {start} of {}",
            path.display()
        ),
    )?)
}

/// Write `config` as `config.ign` into the OEM filesystem of the disk open as `file` (at `path`)
/// and read it back.
pub fn write_config(path: &Path, file: &File, config: &[u8]) -> Result<()> {
    let fat = open_oem(path, file)?;
    fat.write(CONFIG_NAME, config)?;
    fat.close()?;
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    let back = read_config(path, file)?;
    ensure!(
        back == config,
        "{CONFIG_NAME} on the OEM filesystem of {} does not read back as written",
        path.display()
    );
    Ok(())
}

/// Read `config.ign` from the OEM filesystem of the disk open as `file` (at `path`).
pub fn read_config(path: &Path, file: &File) -> Result<Vec<u8>> {
    Ok(open_oem(path, file)?.read(CONFIG_NAME)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slots::layout::{partitions, place, Sizes};
    use std::os::unix::fs::FileExt;

    #[test]
    fn config_lands_in_the_oem_fat_and_replaces_an_older_one() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        let sizes = Sizes {
            esp_mib: 1,
            usr_mib: 1,
            oem_mib: 8,
            root_mib: 1,
        };
        let (placed, size) = place(&partitions(sizes));
        File::create(&p).unwrap().set_len(size).unwrap();
        table::write_table(&p, &placed, uuid::Uuid::new_v4()).unwrap();
        let oem = placed.iter().find(|x| x.spec.label == "OEM").unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        slots::fat::format(file.try_clone().unwrap(), oem.offset, oem.len, "OEM").unwrap();

        write_config(&p, &file, br#"{"ignition":{"version":"3.3.0"},"long":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#).unwrap();
        write_config(&p, &file, br#"{"ignition":{"version":"3.3.0"}}"#).unwrap();
        assert_eq!(
            read_config(&p, &file).unwrap(),
            br#"{"ignition":{"version":"3.3.0"}}"#
        );
        // Nothing outside the partition changed: the bytes before it are still the GPT's zeros.
        let mut before = vec![0u8; 4096];
        file.read_exact_at(&mut before, oem.offset - 4096).unwrap();
        assert!(before.iter().all(|&b| b == 0));
    }

    #[test]
    fn a_disk_without_oem_is_an_error_that_lists_the_labels() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        File::create(&p).unwrap().set_len(8 << 20).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        assert!(write_config(&p, &file, b"{}").is_err());
    }
}
