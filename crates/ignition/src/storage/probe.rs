//! Probing: what `blkid` found on a device ([`Probe`]), and what to do with a filesystem of
//! the config given that ([`fs_decision`]); pure.

use super::StorageError;
use crate::model::Filesystem;

/// What `blkid -p -o export` found on a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// `TYPE` (ext4, swap, ...).
    pub fs_type: Option<String>,
    /// `LABEL`.
    pub label: Option<String>,
    /// `UUID`.
    pub uuid: Option<String>,
}

/// Parses `blkid -p -o export` output (`KEY=value` lines).
pub fn parse_probe(text: &str) -> Probe {
    let mut p = Probe::default();
    for l in text.lines() {
        if let Some((k, v)) = l.split_once('=') {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "TYPE" => p.fs_type = v,
                "LABEL" => p.label = v,
                "UUID" => p.uuid = v,
                _ => {}
            }
        }
    }
    p
}

/// What to do with one filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsAction {
    /// Keep what is there.
    Reuse,
    /// Make a new filesystem (after wiping what is there, if anything).
    Create {
        /// Something is there and must be wiped first.
        wipe: bool,
    },
    /// Nothing to do (`format: none`).
    Nothing,
}

/// Decides what to do with `fs` given what is on its device.
pub fn fs_decision(fs: &Filesystem, found: &Probe) -> Result<FsAction, StorageError> {
    let format = fs.format.as_deref().unwrap_or("");
    if format == "none" {
        return Ok(FsAction::Nothing);
    }
    let Some(have) = found.fs_type.as_deref() else {
        return Ok(FsAction::Create { wipe: false });
    };
    if fs.wipe_filesystem == Some(true) {
        return Ok(FsAction::Create { wipe: true });
    }
    let mut wrong = Vec::new();
    if have != format {
        wrong.push(format!("it holds {have}, not {format}"));
    }
    if let Some(l) = &fs.label {
        if found.label.as_deref() != Some(l) {
            wrong.push(format!(
                "its label is {:?}, not {l:?}",
                found.label.as_deref().unwrap_or("")
            ));
        }
    }
    if let Some(u) = &fs.uuid {
        if !found
            .uuid
            .as_deref()
            .is_some_and(|f| f.eq_ignore_ascii_case(u))
        {
            wrong.push(format!(
                "its UUID is {:?}, not {u:?}",
                found.uuid.as_deref().unwrap_or("")
            ));
        }
    }
    if wrong.is_empty() {
        Ok(FsAction::Reuse)
    } else {
        Err(StorageError::Conflict {
            at: fs.at.to_string(),
            reason: format!(
                "{} already has a filesystem that does not match ({}); set wipeFilesystem to replace it",
                fs.device.as_deref().unwrap_or("?"),
                wrong.join("; ")
            ),
        })
    }
}
