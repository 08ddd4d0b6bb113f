//! Disk work as plan steps: partition tables, then filesystems, in config order. First boot
//! runs them through [`crate::storage::run`]; `apply --root` works on a directory tree and
//! reports them skipped (with a note where a filesystem's files would land).

use super::{Plan, Skipped};
use crate::model::{Disk, Filesystem};
use crate::report::JsonPath;
use crate::validate::ValidConfig;

/// One step of disk work.
#[derive(Debug, Clone, PartialEq)]
pub enum DiskOp {
    /// Something Keel's first boot cannot make (RAID arrays, LUKS volumes): refused before
    /// anything is written.
    Unsupported {
        /// Config path.
        at: JsonPath,
        /// What it is.
        what: String,
        /// Why it is refused.
        reason: String,
    },
    /// Make a disk's partition table what the config asks for.
    Partition(Disk),
    /// Make a filesystem on its device, or keep a matching one.
    Filesystem {
        /// The filesystem.
        fs: Filesystem,
        /// Where the files stage mounts it (spec 3.x, a mount point, not swap or `none`).
        mount: Option<String>,
    },
}

impl DiskOp {
    /// The config path of the step.
    pub fn at(&self) -> &JsonPath {
        match self {
            DiskOp::Unsupported { at, .. } => at,
            DiskOp::Partition(d) => &d.at,
            DiskOp::Filesystem { fs, .. } => &fs.at,
        }
    }

    /// What the step makes, for a person.
    pub fn what(&self) -> String {
        let or_unknown = |s: &Option<String>| s.clone().unwrap_or_else(|| "?".into());
        match self {
            DiskOp::Unsupported { what, .. } => what.clone(),
            DiskOp::Partition(d) => format!("disk {}", or_unknown(&d.device)),
            DiskOp::Filesystem { fs, .. } => {
                format!(
                    "{} filesystem on {}",
                    or_unknown(&fs.format),
                    or_unknown(&fs.device)
                )
            }
        }
    }

    /// What `apply --root` says about a filesystem it does not mount: the entries below its
    /// mount point go into the directory tree instead.
    pub fn note(&self) -> Option<String> {
        let DiskOp::Filesystem {
            fs,
            mount: Some(mp),
        } = self
        else {
            return None;
        };
        Some(format!(
            "entries below {mp} are written into the directory tree; at boot they would land on the filesystem on {}",
            fs.device.as_deref().unwrap_or("?")
        ))
    }
}

/// The disk work of `cfg`: disks, RAID arrays, the filesystems a real boot makes (every 3.x
/// one; 2.x ones with a `mount`, not those given by an already-mounted `path`), LUKS volumes.
pub fn disk_ops(cfg: &ValidConfig) -> Vec<DiskOp> {
    let v2 = cfg.version.is_v2();
    let st = &cfg.storage;
    let unsupported = |at: &JsonPath, what: String, kinds: &str| DiskOp::Unsupported {
        at: at.clone(),
        what,
        reason: format!("{kinds} are not supported by Keel's first boot"),
    };
    let mut ops: Vec<DiskOp> = st.disks.iter().cloned().map(DiskOp::Partition).collect();
    for r in &st.raid {
        let what = format!("RAID array {}", r.name.as_deref().unwrap_or("?"));
        ops.push(unsupported(&r.at, what, "RAID arrays"));
    }
    for f in st.filesystems.iter().filter(|f| !v2 || f.has_mount) {
        let format = f.format.as_deref().unwrap_or("");
        let mount = (!v2 && format != "swap" && format != "none")
            .then(|| f.path.clone())
            .flatten();
        ops.push(DiskOp::Filesystem {
            fs: f.clone(),
            mount,
        });
    }
    for l in &st.luks {
        let what = format!("LUKS volume {}", l.name.as_deref().unwrap_or("?"));
        ops.push(unsupported(&l.at, what, "LUKS volumes"));
    }
    ops
}

/// Adds `plan.disks` to what `plan` skips, with their notes: `apply --root` does no disk
/// work.
pub(super) fn skip_disks(plan: &mut Plan) {
    for op in &plan.disks {
        plan.skipped.push(Skipped {
            at: op.at().to_string(),
            what: op.what(),
            reason: super::NEEDS_DISK.to_string(),
        });
        plan.notes.extend(op.note());
    }
}
