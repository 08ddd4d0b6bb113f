//! Partition tables: `sfdisk --json` read into a [`Table`], and the sfdisk script that makes a
//! disk's table what the config asks for ([`partition_script`]); pure.

use super::{StorageError, LINUX_FS_TYPE};
use crate::model::Disk;

/// One partition of a table, as `sfdisk --json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    /// Partition number.
    pub number: u32,
    /// First sector.
    pub start: u64,
    /// Size in sectors.
    pub size: u64,
    /// Type GUID (upper case).
    pub type_guid: String,
    /// Partition GUID (upper case).
    pub guid: String,
    /// GPT name.
    pub label: String,
}

/// A partition table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// `gpt`, `dos`, ... (empty: no table).
    pub label: String,
    /// Sector size in bytes.
    pub sector_size: u64,
    /// Partitions.
    pub parts: Vec<Part>,
}

/// Parses `sfdisk --json` output.
pub fn parse_table(json: &str) -> Result<Table, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable sfdisk --json output: {e}"))?;
    let t = &v["partitiontable"];
    let mut table = Table {
        label: t["label"].as_str().unwrap_or_default().to_string(),
        sector_size: t["sectorsize"].as_u64().unwrap_or(512),
        parts: Vec::new(),
    };
    for p in t["partitions"].as_array().into_iter().flatten() {
        let node = p["node"].as_str().unwrap_or_default();
        let digits: String = node
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        table.parts.push(Part {
            number: digits
                .parse()
                .map_err(|_| format!("partition node {node:?}"))?,
            start: p["start"].as_u64().unwrap_or_default(),
            size: p["size"].as_u64().unwrap_or_default(),
            type_guid: p["type"].as_str().unwrap_or_default().to_uppercase(),
            guid: p["uuid"].as_str().unwrap_or_default().to_uppercase(),
            label: p["name"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(table)
}

/// The node of partition `n` of `disk` (`/dev/vdb` → `/dev/vdb1`, `/dev/nvme0n1` →
/// `/dev/nvme0n1p1`).
pub fn partition_node(disk: &str, n: u32) -> String {
    if disk.ends_with(|c: char| c.is_ascii_digit()) {
        format!("{disk}p{n}")
    } else {
        format!("{disk}{n}")
    }
}

const MIB: u64 = 1 << 20;

fn line(disk: &str, number: u32, fields: &[String]) -> String {
    format!("{} : {}", partition_node(disk, number), fields.join(", "))
}

fn existing_line(disk: &str, p: &Part) -> String {
    let mut f = vec![
        format!("start={}", p.start),
        format!("size={}", p.size),
        format!("type={}", p.type_guid),
    ];
    if !p.guid.is_empty() {
        f.push(format!("uuid={}", p.guid));
    }
    if !p.label.is_empty() {
        f.push(format!("name=\"{}\"", p.label));
    }
    line(disk, p.number, &f)
}

/// A partition's start or size (`key`) in sectors of `sector` bytes, from MiB or sectors;
/// `None` when unset or 0. Byte offsets must fit in a u64 (validation refuses the rest; this
/// keeps a model built another way from wrapping).
fn sectors(
    at: &str,
    key: &str,
    mib: Option<i64>,
    sectors: Option<i64>,
    sector: u64,
) -> Result<Option<u64>, StorageError> {
    let too_big = |what: String| StorageError::Unsupported {
        at: at.to_string(),
        reason: format!("{what} does not fit in a 64-bit byte offset"),
    };
    if let Some(m) = mib.filter(|m| *m > 0) {
        let bytes = (m as u64)
            .checked_mul(MIB)
            .ok_or_else(|| too_big(format!("{key}MiB {m}")))?;
        return Ok(Some(bytes / sector));
    }
    match sectors.filter(|s| *s > 0) {
        Some(s) if (s as u64).checked_mul(sector).is_none() => {
            Err(too_big(format!("{key} {s} (sectors of {sector} bytes)")))
        }
        s => Ok(s.map(|s| s as u64)),
    }
}

/// The sfdisk script that turns `table` (the disk as it is; `None`: no partition table) into
/// what `disk` asks for, or `None` when it already is. `node` is the disk's device node.
pub fn partition_script(
    disk: &Disk,
    node: &str,
    table: Option<&Table>,
) -> Result<Option<String>, StorageError> {
    let wipe = disk.wipe_table == Some(true);
    let mut parts: Vec<Part> = match table {
        Some(t) if !wipe => {
            if !t.label.is_empty() && t.label != "gpt" {
                return Err(StorageError::Conflict {
                    at: disk.at.to_string(),
                    reason: format!(
                        "{node} has a {} partition table, not GPT; set wipeTable to replace it",
                        t.label
                    ),
                });
            }
            t.parts.clone()
        }
        _ => Vec::new(),
    };
    let sector = table.map_or(512, |t| t.sector_size.max(512));
    let mut changed = wipe || table.is_none_or(|t| t.label.is_empty());
    let mut new_lines = Vec::new();
    for p in &disk.partitions {
        let at = p.at.to_string();
        let number = p.number.unwrap_or(0).max(0) as u32;
        let label = p.label.as_deref();
        let found = parts.iter().position(|e| {
            if number > 0 {
                e.number == number
            } else {
                label.is_some_and(|l| e.label == l)
            }
        });
        let start = sectors(&at, "start", p.start_mib, p.start_sectors, sector)?;
        let size = sectors(&at, "size", p.size_mib, p.size_sectors, sector)?;
        let type_guid = p.type_guid.as_deref().map(str::to_uppercase);
        let guid = p.guid.as_deref().map(str::to_uppercase);
        let should_exist = p.should_exist != Some(false);
        let wipe_entry = p.wipe_partition_entry == Some(true);
        if let Some(i) = found {
            let e = &parts[i];
            if !should_exist {
                if !wipe_entry {
                    return Err(StorageError::Conflict {
                        at,
                        reason: format!(
                            "partition {} exists and shouldExist is false; set wipePartitionEntry to delete it",
                            e.number
                        ),
                    });
                }
                parts.remove(i);
                changed = true;
                continue;
            }
            let mut wrong = Vec::new();
            if label.is_some_and(|l| e.label != l) {
                wrong.push(format!("label {:?}", e.label));
            }
            if start.is_some_and(|s| s != e.start) {
                wrong.push(format!("start sector {}", e.start));
            }
            if size.is_some_and(|s| s != e.size) {
                wrong.push(format!("size {} sectors", e.size));
            }
            if type_guid.as_ref().is_some_and(|t| *t != e.type_guid) {
                wrong.push(format!("type {}", e.type_guid));
            }
            if guid.as_ref().is_some_and(|g| *g != e.guid) {
                wrong.push(format!("guid {}", e.guid));
            }
            if wrong.is_empty() {
                continue; // matches: keep it
            }
            if !wipe_entry {
                return Err(StorageError::Conflict {
                    at,
                    reason: format!(
                        "partition {} on {node} exists but does not match the config ({}); set wipePartitionEntry to replace it",
                        e.number,
                        wrong.join(", ")
                    ),
                });
            }
            let e = parts.remove(i);
            changed = true;
            new_lines.push((e.number, start, size, type_guid, guid, label));
        } else if should_exist {
            changed = true;
            new_lines.push((number, start, size, type_guid, guid, label));
        }
    }
    if !changed {
        return Ok(None);
    }
    let mut used: Vec<u32> = parts.iter().map(|p| p.number).collect();
    used.extend(new_lines.iter().map(|l| l.0).filter(|n| *n > 0));
    let mut script = String::from("label: gpt\n");
    for p in &parts {
        script.push_str(&existing_line(node, p));
        script.push('\n');
    }
    for (number, start, size, type_guid, guid, label) in new_lines {
        let number = if number > 0 {
            number
        } else {
            let n = (1..).find(|n| !used.contains(n)).expect("a free number");
            used.push(n);
            n
        };
        let mut f = Vec::new();
        if let Some(s) = start {
            f.push(format!("start={s}"));
        }
        if let Some(s) = size {
            f.push(format!("size={s}"));
        }
        f.push(format!(
            "type={}",
            type_guid.unwrap_or_else(|| LINUX_FS_TYPE.into())
        ));
        if let Some(g) = guid {
            f.push(format!("uuid={g}"));
        }
        if let Some(l) = label {
            f.push(format!("name=\"{l}\""));
        }
        script.push_str(&line(node, number, &f));
        script.push('\n');
    }
    Ok(Some(script))
}
