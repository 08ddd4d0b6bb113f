//! Disks, partitions and filesystems on a real boot, through the [`Disks`] seam.
//!
//! Entities:
//!  * [`Disks`]: the narrow seam to the machine: run a host program (by full path), check that
//!    one exists, resolve a device path to its node. [`SystemDisks`] is the real one;
//!    [`Recorder`] is a fake that records every call and answers from canned outputs.
//!  * [`Tools`]: the full paths of the programs used (initramfs layout by default).
//!  * [`partition_script`]: config disk + current table (`sfdisk --json`) → the sfdisk script
//!    that makes the table what the config asks for, or an error naming the partition; pure.
//!  * [`fs_decision`]: config filesystem + what `blkid` found → create, reuse, or refuse; pure.
//!  * [`apply`]: in two rounds that each check everything before writing anything:
//!    partitions (all disks checked, then written), then filesystems (all devices probed and
//!    decided, then wiped/formatted).
//!  * [`mount_units`]: a `.mount` unit for each filesystem with a mount point (spec 3.x),
//!    unless the config brings a unit of that name itself; pure. [`mounts()`]: the
//!    filesystems to mount for the files stage when an earlier boot finished the storage.
//!    These and the other mount helpers live in a submodule.
//!
//! Supported: `storage.disks` (GPT; add partitions, keep matching ones, replace mismatching
//! ones with `wipePartitionEntry`, delete with `shouldExist: false`, `wipeTable`) and
//! `storage.filesystems` with `ext4` and `swap` (and `none`), `wipeFilesystem`, `label`,
//! `uuid`, `options`. RAID, LUKS and other formats are refused before anything is written.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::model::{Disk, Filesystem};
use crate::report::JsonPath;
use crate::validate::ValidConfig;

mod mounts;

use mounts::mount_of;
pub use mounts::{escape_path, host_path, mount_units, mounts, Mount};

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

/// The seam to the machine.
pub trait Disks {
    /// Runs `program` (a full path) with `args`, feeding `stdin` if given. Returns standard
    /// output, or the exit status with standard error.
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, String>;
    /// Whether `program` (a full path) is there.
    fn has_program(&self, program: &str) -> bool;
    /// The device node behind `device` (which may be a `/dev/disk/by-*` path that nothing
    /// creates in the initramfs), waiting for it to appear.
    fn resolve(&self, device: &str) -> Result<String, String>;
}

/// Full paths of the programs used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// util-linux sfdisk.
    pub sfdisk: String,
    /// util-linux blkid.
    pub blkid: String,
    /// util-linux wipefs.
    pub wipefs: String,
    /// e2fsprogs mke2fs.
    pub mke2fs: String,
    /// util-linux mkswap.
    pub mkswap: String,
    /// mount.
    pub mount: String,
    /// umount.
    pub umount: String,
}

impl Default for Tools {
    /// Where Keel's initramfs has them (busybox prefers its own applets, so full paths).
    fn default() -> Self {
        Tools {
            sfdisk: "/sbin/sfdisk".into(),
            blkid: "/sbin/blkid".into(),
            wipefs: "/sbin/wipefs".into(),
            mke2fs: "/sbin/mke2fs".into(),
            mkswap: "/sbin/mkswap".into(),
            mount: "/bin/mount".into(),
            umount: "/bin/umount".into(),
        }
    }
}

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

/// The real machine.
#[derive(Debug, Clone)]
pub struct SystemDisks {
    /// blkid, for resolving `/dev/disk/by-*` paths by scanning.
    pub blkid: String,
    /// How long to wait for a device to appear.
    pub wait: Duration,
}

impl Default for SystemDisks {
    fn default() -> Self {
        SystemDisks {
            blkid: Tools::default().blkid,
            wait: Duration::from_secs(30),
        }
    }
}

impl SystemDisks {
    fn scan(&self, key: &str, want: &str) -> Option<String> {
        let entries = std::fs::read_dir("/sys/class/block").ok()?;
        for e in entries.flatten() {
            let node = format!("/dev/{}", e.file_name().to_string_lossy());
            let args = ["-p".to_string(), "-o".into(), "export".into(), node.clone()];
            let Ok(text) = self.run(&self.blkid, &args, None) else {
                continue;
            };
            let hit = text.lines().any(|l| {
                l.split_once('=')
                    .is_some_and(|(k, v)| k == key && v.eq_ignore_ascii_case(want))
            });
            if hit {
                return Some(node);
            }
        }
        None
    }

    fn find(&self, device: &str) -> Option<String> {
        if Path::new(device).exists() {
            return std::fs::canonicalize(device)
                .ok()
                .map(|p| p.display().to_string());
        }
        let by = [
            ("/dev/disk/by-partlabel/", "PART_ENTRY_NAME"),
            ("/dev/disk/by-partuuid/", "PART_ENTRY_UUID"),
            ("/dev/disk/by-label/", "LABEL"),
            ("/dev/disk/by-uuid/", "UUID"),
        ];
        by.iter().find_map(|(prefix, key)| {
            device
                .strip_prefix(prefix)
                .and_then(|want| self.scan(key, want))
        })
    }
}

impl Disks for SystemDisks {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run: {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("writing its input: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn has_program(&self, program: &str) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(program).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn resolve(&self, device: &str) -> Result<String, String> {
        let start = Instant::now();
        loop {
            if let Some(node) = self.find(device) {
                return Ok(node);
            }
            if start.elapsed() >= self.wait {
                return Err(format!(
                    "device {device} did not appear within {}s",
                    self.wait.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A fake machine: records every call; answers `run` from canned outputs keyed by the
/// command line (`program arg arg ...`), `Ok("")` otherwise.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Command line → answer.
    pub answers: BTreeMap<String, Result<String, String>>,
    /// Programs that exist (empty: all do).
    pub programs: Vec<String>,
    /// Device → node (absent: the device is its own node).
    pub nodes: BTreeMap<String, String>,
    /// Every call, in order: command lines, with `<<script` when input was fed.
    pub calls: std::cell::RefCell<Vec<String>>,
}

impl Recorder {
    /// Answers `cmdline` with `answer`.
    pub fn answer(mut self, cmdline: &str, answer: Result<&str, &str>) -> Self {
        self.answers.insert(
            cmdline.to_string(),
            answer.map(str::to_string).map_err(str::to_string),
        );
        self
    }

    /// The recorded calls.
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl Disks for Recorder {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, String> {
        let cmdline = std::iter::once(program.to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut rec = cmdline.clone();
        if let Some(s) = stdin {
            rec.push_str(" <<");
            rec.push_str(s);
        }
        self.calls.borrow_mut().push(rec);
        self.answers
            .get(&cmdline)
            .cloned()
            .unwrap_or_else(|| Ok(String::new()))
    }

    fn has_program(&self, program: &str) -> bool {
        self.programs.is_empty() || self.programs.iter().any(|p| p == program)
    }

    fn resolve(&self, device: &str) -> Result<String, String> {
        Ok(self
            .nodes
            .get(device)
            .cloned()
            .unwrap_or_else(|| device.to_string()))
    }
}

#[cfg(test)]
mod tests;
