//! Mount points: the filesystems mounted while first boot writes files, the `.mount` units
//! that mount them on the booted system, and systemd's path escaping for their names.

use std::path::{Path, PathBuf};

use super::{filesystems, Disks, StorageError};
use crate::model::{Config, Filesystem, Unit};
use crate::validate::ValidConfig;

/// A filesystem mounted for the files stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device node.
    pub node: String,
    /// Mount point (absolute, in the root).
    pub path: String,
    /// Filesystem type.
    pub format: String,
}

/// The mount for `fs` on `node`, if the files stage mounts it: spec 3.x, with a mount point,
/// not swap or `none`.
pub(super) fn mount_of(cfg: &Config, fs: &Filesystem, node: String) -> Option<Mount> {
    let format = fs.format.clone().unwrap_or_default();
    match (cfg.version.is_v2(), &fs.path) {
        (false, Some(path)) if format != "swap" && format != "none" => Some(Mount {
            node,
            path: path.clone(),
            format,
        }),
        _ => None,
    }
}

/// The filesystems to mount for the files stage, without touching a disk: what
/// [`super::apply`] returns as mounts, for a first boot resumed after an earlier boot made
/// the disks and filesystems (making them again would lose the files already written).
pub fn mounts(cfg: &ValidConfig, disks: &dyn Disks) -> Result<Vec<Mount>, StorageError> {
    let mut out = Vec::new();
    for fs in filesystems(cfg) {
        if mount_of(cfg, fs, String::new()).is_none() {
            continue;
        }
        let device = fs.device.as_deref().unwrap_or_default();
        let node = disks
            .resolve(device)
            .map_err(|reason| StorageError::Device {
                at: fs.at.key("device").to_string(),
                reason,
            })?;
        out.extend(mount_of(cfg, fs, node));
    }
    Ok(out)
}

/// systemd's path escaping for unit names (`/var/lib/docker` → `var-lib-docker`).
pub fn escape_path(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, b) in trimmed.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b':' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// A `.mount` unit (enabled for `local-fs.target`) for each spec 3.x filesystem with a mount
/// point, so the booted system mounts it; skipped when the config has a unit of that name.
pub fn mount_units(cfg: &Config) -> Vec<Unit> {
    if cfg.version.is_v2() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for fs in &cfg.storage.filesystems {
        let (Some(path), Some(device), Some(format)) = (&fs.path, &fs.device, &fs.format) else {
            continue;
        };
        if format == "swap" || format == "none" {
            continue;
        }
        let name = format!("{}.mount", escape_path(path));
        if cfg.units.iter().any(|u| u.name.as_deref() == Some(&name)) {
            continue;
        }
        let mut text = format!(
            "# Written by Ignition at first boot for {}\n[Unit]\nDescription=Ignition filesystem {path}\nBefore=local-fs.target\n\n[Mount]\nWhat={device}\nWhere={path}\nType={format}\n",
            fs.at
        );
        if !fs.mount_options.is_empty() {
            text.push_str(&format!("Options={}\n", fs.mount_options.join(",")));
        }
        text.push_str("\n[Install]\nWantedBy=local-fs.target\n");
        out.push(Unit {
            at: fs.at.clone(),
            name: Some(name),
            enabled: Some(true),
            mask: None,
            contents: Some(text),
            dropins: Vec::new(),
        });
    }
    out
}

/// Where a mount point lands on the host: `root` + `path`.
pub fn host_path(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}
