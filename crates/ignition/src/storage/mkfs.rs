//! Making filesystems: the mkfs command line for a filesystem of the config; pure.

use super::{StorageError, Tools};
use crate::model::Filesystem;

/// The mkfs command line for `fs` on `node`.
pub fn mkfs_command(
    fs: &Filesystem,
    node: &str,
    tools: &Tools,
) -> Result<(String, Vec<String>), StorageError> {
    let format = fs.format.as_deref().unwrap_or("");
    let mut args: Vec<String> = Vec::new();
    let program = match format {
        "ext4" => {
            args.extend(["-F", "-q", "-t", "ext4"].map(String::from));
            if let Some(l) = &fs.label {
                args.extend(["-L".into(), l.clone()]);
            }
            if let Some(u) = &fs.uuid {
                args.extend(["-U".into(), u.clone()]);
            }
            tools.mke2fs.clone()
        }
        "swap" => {
            args.push("-f".into());
            if let Some(l) = &fs.label {
                args.extend(["-L".into(), l.clone()]);
            }
            if let Some(u) = &fs.uuid {
                args.extend(["-U".into(), u.clone()]);
            }
            tools.mkswap.clone()
        }
        other => {
            return Err(StorageError::Unsupported {
                at: fs.at.key("format").to_string(),
                reason: format!(
                    "Keel cannot create {other} filesystems at first boot (supported: ext4, swap, none)"
                ),
            })
        }
    };
    args.extend(fs.options.iter().cloned());
    args.push(node.to_string());
    Ok((program, args))
}
