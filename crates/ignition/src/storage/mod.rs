//! Disks, partitions and filesystems on a real boot, through the [`Disks`] seam.
//!
//! By area, one submodule each (their items are re-exported here):
//!  * the device seam (`disks`): [`Disks`] runs a host program (by full path), checks that one
//!    exists, resolves a device path to its node. [`SystemDisks`] is the real one;
//!    [`Recorder`] is a fake that records every call and answers from canned outputs.
//!    [`Tools`]: the full paths of the programs used (initramfs layout by default);
//!  * partition tables (`table`): [`partition_script`]: config disk + current table
//!    (`sfdisk --json`) → the sfdisk script that makes the table what the config asks for, or
//!    an error naming the partition; pure;
//!  * probing (`probe`): [`fs_decision`]: config filesystem + what `blkid` found → create,
//!    reuse, or refuse; pure;
//!  * mkfs (`mkfs`): [`mkfs_command`]; pure;
//!  * mounts (`mounts`): [`mount_units`], a `.mount` unit for each filesystem with a mount
//!    point (spec 3.x), unless the config brings a unit of that name itself; pure.
//!    [`mounts()`]: the filesystems to mount for the files stage when an earlier boot
//!    finished the storage.
//!
//! [`apply`] orchestrates them, in two rounds that each check everything before writing
//! anything: partitions (all disks checked, then written), then filesystems (all devices
//! probed and decided, then wiped/formatted).
//!
//! Supported: `storage.disks` (GPT; add partitions, keep matching ones, replace mismatching
//! ones with `wipePartitionEntry`, delete with `shouldExist: false`, `wipeTable`) and
//! `storage.filesystems` with `ext4` and `swap` (and `none`), `wipeFilesystem`, `label`,
//! `uuid`, `options`. RAID, LUKS and other formats are refused before anything is written.

use crate::model::Filesystem;
use crate::report::JsonPath;
use crate::validate::ValidConfig;

mod disks;
mod mkfs;
mod mounts;
mod probe;
mod table;

pub use disks::{Disks, Recorder, SystemDisks, Tools};
pub use mkfs::mkfs_command;
use mounts::mount_of;
pub use mounts::{escape_path, host_path, mount_units, mounts, Mount};
pub use probe::{fs_decision, parse_probe, FsAction, Probe};
pub use table::{parse_table, partition_node, partition_script, Part, Table};

/// Linux filesystem data, Ignition's default partition type.
pub const LINUX_FS_TYPE: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// Why the storage section could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// Something the config asks for that Keel cannot do.
    #[error("{at}: {reason}")]
    Unsupported {
        /// Config path.
        at: String,
        /// What and why.
        reason: String,
    },
    /// What is on the disk conflicts with the config.
    #[error("{at}: {reason}")]
    Conflict {
        /// Config path.
        at: String,
        /// What conflicts.
        reason: String,
    },
    /// A device did not appear.
    #[error("{at}: {reason}")]
    Device {
        /// Config path.
        at: String,
        /// Details.
        reason: String,
    },
    /// A program failed.
    #[error("{at}: {reason}")]
    Command {
        /// Config path.
        at: String,
        /// The command line and its output.
        reason: String,
    },
}

/// The filesystems a real boot creates: every 3.x filesystem, and 2.x ones with a `mount`.
fn filesystems(cfg: &ValidConfig) -> impl Iterator<Item = &Filesystem> {
    let v2 = cfg.version.is_v2();
    cfg.storage
        .filesystems
        .iter()
        .filter(move |f| !v2 || f.has_mount)
}

/// Whether the config has storage work for a real boot.
pub fn has_work(cfg: &ValidConfig) -> bool {
    !cfg.storage.disks.is_empty()
        || !cfg.storage.raid.is_empty()
        || !cfg.storage.luks.is_empty()
        || filesystems(cfg).next().is_some()
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageOutcome {
    /// Human lines, in order.
    pub done: Vec<String>,
    /// Filesystems with a mount point (3.x), to mount while files are written.
    pub mounts: Vec<Mount>,
}

fn cmd_err(at: &JsonPath, program: &str, args: &[String], err: String) -> StorageError {
    StorageError::Command {
        at: at.to_string(),
        reason: format!("{program} {}: {err}", args.join(" ")),
    }
}

/// Applies the storage section for real: partitions, then filesystems. See the module doc.
pub fn apply(
    cfg: &ValidConfig,
    disks: &dyn Disks,
    tools: &Tools,
) -> Result<StorageOutcome, StorageError> {
    let mut out = StorageOutcome::default();
    if let Some(r) = cfg.storage.raid.first() {
        return Err(StorageError::Unsupported {
            at: r.at.to_string(),
            reason: "RAID arrays are not supported by Keel's first boot".into(),
        });
    }
    if let Some(l) = cfg.storage.luks.first() {
        return Err(StorageError::Unsupported {
            at: l.at.to_string(),
            reason: "LUKS volumes are not supported by Keel's first boot".into(),
        });
    }
    let fss: Vec<&Filesystem> = filesystems(cfg).collect();
    // Every tool needed, before anything is written.
    let mut need: Vec<(JsonPath, String)> = Vec::new();
    if !cfg.storage.disks.is_empty() {
        need.push((
            JsonPath::root().key("storage").key("disks"),
            tools.sfdisk.clone(),
        ));
    }
    for fs in &fss {
        if fs.format.as_deref() == Some("none") {
            continue;
        }
        let (program, _) = mkfs_command(fs, "-", tools)?;
        need.push((fs.at.clone(), program));
        need.push((fs.at.clone(), tools.blkid.clone()));
        if fs.wipe_filesystem == Some(true) {
            need.push((fs.at.clone(), tools.wipefs.clone()));
        }
    }
    for (at, program) in need {
        if !disks.has_program(&program) {
            return Err(StorageError::Unsupported {
                at: at.to_string(),
                reason: format!("{program} is not available on this system"),
            });
        }
    }

    // Round 1: partitions. Check every disk, then write.
    let mut scripts = Vec::new();
    for d in &cfg.storage.disks {
        let device = d.device.as_deref().unwrap_or_default();
        let node = disks
            .resolve(device)
            .map_err(|reason| StorageError::Device {
                at: d.at.key("device").to_string(),
                reason,
            })?;
        let args = vec!["--json".to_string(), node.clone()];
        let table = match disks.run(&tools.sfdisk, &args, None) {
            Ok(json) if json.trim().is_empty() => None,
            Ok(json) => {
                Some(parse_table(&json).map_err(|e| cmd_err(&d.at, &tools.sfdisk, &args, e))?)
            }
            // sfdisk fails on a disk without a partition table.
            Err(_) => None,
        };
        if let Some(script) = partition_script(d, &node, table.as_ref())? {
            scripts.push((d, node, script));
        }
    }
    for (d, node, script) in scripts {
        let args = vec!["--wipe".into(), "always".into(), "-q".into(), node.clone()];
        disks
            .run(&tools.sfdisk, &args, Some(&script))
            .map_err(|e| cmd_err(&d.at, &tools.sfdisk, &args, e))?;
        out.done.push(format!(
            "partitioned {node}: {}",
            script.lines().skip(1).collect::<Vec<_>>().join("; ")
        ));
    }

    // Round 2: filesystems. Probe and decide for all, then write.
    let mut work = Vec::new();
    for fs in &fss {
        let device = fs.device.as_deref().unwrap_or_default();
        let node = disks
            .resolve(device)
            .map_err(|reason| StorageError::Device {
                at: fs.at.key("device").to_string(),
                reason,
            })?;
        let action = if fs.format.as_deref() == Some("none") {
            FsAction::Nothing
        } else {
            let args = vec!["-p".into(), "-o".into(), "export".into(), node.clone()];
            // blkid exits 2 when it finds nothing.
            let found = disks
                .run(&tools.blkid, &args, None)
                .map(|t| parse_probe(&t))
                .unwrap_or_default();
            fs_decision(fs, &found)?
        };
        work.push((*fs, node, action));
    }
    for (fs, node, action) in work {
        let format = fs.format.clone().unwrap_or_default();
        match action {
            FsAction::Nothing => {}
            FsAction::Reuse => out
                .done
                .push(format!("kept the {format} filesystem on {node}")),
            FsAction::Create { wipe } => {
                if wipe {
                    let args = vec!["-a".into(), "-q".into(), node.clone()];
                    disks
                        .run(&tools.wipefs, &args, None)
                        .map_err(|e| cmd_err(&fs.at, &tools.wipefs, &args, e))?;
                }
                let (program, args) = mkfs_command(fs, &node, tools)?;
                disks
                    .run(&program, &args, None)
                    .map_err(|e| cmd_err(&fs.at, &program, &args, e))?;
                out.done.push(format!(
                    "created {format} filesystem on {node}{}",
                    fs.label
                        .as_ref()
                        .map(|l| format!(" (label {l})"))
                        .unwrap_or_default()
                ));
            }
        }
        out.mounts.extend(mount_of(cfg, fs, node));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
