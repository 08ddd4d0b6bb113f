//! Disks, partitions, RAID arrays, filesystems and LUKS volumes.

use std::collections::HashSet;

use super::{Use, V};
use crate::model::*;
use crate::parse::version::Version;
use crate::report::{JsonPath, Kind};

impl V<'_> {
    pub(super) fn disks(&mut self, disks: &[Disk]) {
        for d in disks {
            match d.device.as_deref() {
                None | Some("") => self.r.error_msg(
                    &d.at.key("device"),
                    Kind::Storage,
                    "disk device is required",
                ),
                p => {
                    self.abs_path(p, &d.at.key("device"));
                }
            }
            self.partitions(&d.partitions);
        }
        self.unique(
            disks
                .iter()
                .filter_map(|d| Some((d.device.as_deref()?, d.at.key("device")))),
            "disk",
        );
    }

    pub(super) fn partitions(&mut self, parts: &[Partition]) {
        let mut numbers = HashSet::new();
        let mut labels = HashSet::new();
        let uses_sectors = parts
            .iter()
            .any(|p| p.size_sectors.is_some() || p.start_sectors.is_some());
        let uses_mib = parts
            .iter()
            .any(|p| p.size_mib.is_some() || p.start_mib.is_some());
        let mut extents: Vec<(i64, i64, &JsonPath)> = Vec::new();
        for p in parts {
            let at = &p.at;
            if let Some(label) = &p.label {
                if label.chars().count() > 36 {
                    self.r.error_msg(
                        &at.key("label"),
                        Kind::Storage,
                        "partition labels may not exceed 36 characters",
                    );
                }
                if label.contains(':') {
                    let msg = "partition label will be truncated to text before the colon";
                    if self.v3() {
                        self.r.error_msg(&at.key("label"), Kind::Storage, msg);
                    } else {
                        self.r.warn_msg(&at.key("label"), Kind::Storage, msg);
                    }
                }
                if self.v3() && !labels.insert(label.as_str()) {
                    self.r.error_msg(
                        &at.key("label"),
                        Kind::Duplicate,
                        "cannot use the same partition label twice",
                    );
                }
            }
            for (key, guid) in [("guid", &p.guid), ("typeGuid", &p.type_guid)] {
                if let Some(g) = guid {
                    if !g.is_empty() && !is_guid(g) {
                        self.r.error_msg(
                            &at.key(key),
                            Kind::Storage,
                            format!("{key} {g:?} doesn't match the form \"01234567-89AB-CDEF-EDCB-A98765432101\""),
                        );
                    }
                }
            }
            let number = p.number.unwrap_or(0);
            if number < 0 {
                self.r.error_msg(
                    &at.key("number"),
                    Kind::Storage,
                    "partition number must not be negative",
                );
            } else if number > i64::from(u32::MAX) {
                self.r.error_msg(
                    &at.key("number"),
                    Kind::OutOfRange,
                    format!("partition number {number} is out of range"),
                );
            }
            if number > 0 && !numbers.insert(number) {
                self.r.error_msg(
                    &at.key("number"),
                    Kind::Storage,
                    "partition numbers collide",
                );
            }
            if self.v3() && number == 0 && p.label.is_none() {
                self.r.error_msg(
                    at,
                    Kind::Storage,
                    "a partition number >= 1 or a label must be specified",
                );
            }
            if p.should_exist == Some(false)
                && (p.label.is_some()
                    || p.type_guid.is_some()
                    || p.guid.is_some()
                    || p.start_mib.is_some()
                    || p.size_mib.is_some()
                    || p.start_sectors.is_some()
                    || p.size_sectors.is_some())
            {
                self.r.error_msg(
                    &at.key("shouldExist"),
                    Kind::Storage,
                    "shouldExist specified false with other options also specified",
                );
            }
            for (key, v) in [
                ("sizeMiB", p.size_mib),
                ("startMiB", p.start_mib),
                ("size", p.size_sectors),
                ("start", p.start_sectors),
            ] {
                if v.is_some_and(|v| v < 0) {
                    self.r.error_msg(
                        &at.key(key),
                        Kind::Storage,
                        format!("{key} must not be negative"),
                    );
                }
            }
            self.byte_offsets(p);
            if let Some(start) = p.start_sectors {
                if start != 0 && start % 2048 != 0 {
                    self.r.error_msg(
                        &at.key("start"),
                        Kind::Storage,
                        "partitions misaligned: start must be a multiple of 2048 sectors",
                    );
                }
            }
            let (start, size) = if uses_sectors {
                (p.start_sectors.unwrap_or(0), p.size_sectors.unwrap_or(0))
            } else {
                (p.start_mib.unwrap_or(0), p.size_mib.unwrap_or(0))
            };
            if start > 0 && size > 0 {
                extents.push((start, start.saturating_add(size), at));
            }
        }
        if uses_sectors && uses_mib && self.version.is_v2() {
            if let Some(p) = parts.first() {
                self.r.error_msg(
                    &p.at,
                    Kind::Storage,
                    "cannot mix MBs and sectors within a disk",
                );
            }
        }
        for (i, a) in extents.iter().enumerate() {
            if extents[..i].iter().any(|b| a.0 < b.1 && b.0 < a.1) {
                self.r.error_msg(a.2, Kind::Storage, "partitions overlap");
            }
        }
    }

    /// Partitions are placed by byte offsets in a u64: the start, the size and the end, in
    /// MiB or (spec 2.x) 512-byte sectors, must each fit once turned into bytes.
    fn byte_offsets(&mut self, p: &Partition) {
        for (start_key, start, size_key, size, unit, unit_name) in [
            (
                "startMiB",
                p.start_mib,
                "sizeMiB",
                p.size_mib,
                1u64 << 20,
                "MiB",
            ),
            (
                "start",
                p.start_sectors,
                "size",
                p.size_sectors,
                512,
                "sectors of 512",
            ),
        ] {
            let bytes = |v: i64| u64::try_from(v).ok().and_then(|v| v.checked_mul(unit));
            let mut fits = true;
            for (key, v) in [(start_key, start), (size_key, size)] {
                if let Some(v) = v.filter(|v| *v > 0 && bytes(*v).is_none()) {
                    fits = false;
                    self.r.error_msg(
                        &p.at.key(key),
                        Kind::OutOfRange,
                        format!("{key} {v} does not fit: {v} {unit_name} is more than 2^64 bytes"),
                    );
                }
            }
            if let (true, Some(s), Some(z)) = (fits, start, size) {
                if s > 0 && z > 0 && s.checked_add(z).and_then(bytes).is_none() {
                    self.r.error_msg(
                        &p.at.key(size_key),
                        Kind::OutOfRange,
                        format!("{start_key} {s} + {size_key} {z} does not fit: the partition would end past 2^64 bytes"),
                    );
                }
            }
        }
    }

    pub(super) fn raid(&mut self, raid: &[Raid]) {
        const LEVELS: &[&str] = &[
            "linear", "raid0", "0", "stripe", "raid1", "1", "mirror", "raid4", "4", "raid5", "5",
            "raid6", "6", "raid10", "10",
        ];
        for r in raid {
            if r.name.as_deref().unwrap_or("").is_empty() {
                self.r.error(&r.at.key("name"), Kind::NameMissing);
            }
            match r.level.as_deref() {
                None | Some("") => {
                    self.r
                        .error_msg(&r.at.key("level"), Kind::Storage, "raid level is required")
                }
                Some(l) if !LEVELS.contains(&l) => self.r.error_msg(
                    &r.at.key("level"),
                    Kind::Storage,
                    format!("unrecognized raid level {l:?}"),
                ),
                Some(l) => {
                    if r.spares.unwrap_or(0) > 0 && matches!(l, "linear" | "raid0" | "0" | "stripe")
                    {
                        self.r.error_msg(
                            &r.at.key("spares"),
                            Kind::Storage,
                            format!("spares unsupported for {l} arrays"),
                        );
                    }
                }
            }
            if r.devices.is_empty() {
                self.r
                    .error_msg(&r.at.key("devices"), Kind::Storage, "raid devices required");
            }
            for (i, d) in r.devices.iter().enumerate() {
                self.abs_path(Some(d), &r.at.key("devices").index(i));
            }
            self.unique_strings(&r.devices, &r.at.key("devices"), "raid device");
        }
        self.unique(
            raid.iter()
                .filter_map(|r| Some((r.name.as_deref()?, r.at.key("name")))),
            "raid",
        );
    }

    pub(super) fn filesystems(&mut self, fss: &[Filesystem]) {
        for f in fss {
            let at = &f.at;
            let formats: &[&str] = if self.version == Version::new(2, 0) {
                &["ext4", "btrfs", "xfs"]
            } else if self.version >= Version::new(3, 3) {
                &["ext4", "btrfs", "xfs", "vfat", "swap", "none"]
            } else {
                &["ext4", "btrfs", "xfs", "vfat", "swap"]
            };
            // 2.x: a filesystem given by `path` is already mounted; nothing else applies.
            let needs_device = self.v3() || f.has_mount;
            let dev_at = if self.v3() {
                at.key("device")
            } else {
                at.key("mount").key("device")
            };
            let fmt_at = if self.v3() {
                at.key("format")
            } else {
                at.key("mount").key("format")
            };
            if needs_device {
                self.abs_path(f.device.as_deref(), &dev_at);
            }
            // 2.x: `name` is optional; only files, directories and links that refer to the
            // filesystem need it (see `filesystem_names`).
            if let Some(p) = &f.path {
                self.abs_path(Some(p), &at.key("path"));
            }
            match f.format.as_deref() {
                Some(fmt) if !fmt.is_empty() => {
                    if !formats.contains(&fmt) {
                        self.r.error_msg(
                            &fmt_at,
                            Kind::Storage,
                            format!(
                                "invalid filesystem format {fmt:?} (allowed: {})",
                                formats.join(", ")
                            ),
                        );
                    }
                    let max = match fmt {
                        "ext4" => 16,
                        "btrfs" => 256,
                        "xfs" => 12,
                        "swap" => 15,
                        "vfat" => 11,
                        _ => usize::MAX,
                    };
                    if let Some(l) = &f.label {
                        if l.len() > max {
                            self.r.error_msg(
                                &label_at(at, self.v3()),
                                Kind::Storage,
                                format!("filesystem labels cannot be longer than {max} characters when using {fmt}"),
                            );
                        }
                    }
                }
                _ => {
                    if self.version.is_v2() && f.has_mount {
                        self.r
                            .error_msg(&fmt_at, Kind::Storage, "filesystem format is required");
                    } else if self.v3() {
                        if f.label.is_some() {
                            self.r.error_msg(
                                &at.key("label"),
                                Kind::Storage,
                                "filesystem must specify format if label is specified",
                            );
                        } else if f.path.is_some()
                            || f.uuid.is_some()
                            || f.wipe_filesystem == Some(true)
                            || !f.options.is_empty()
                        {
                            self.r.error_msg(
                                &fmt_at,
                                Kind::Storage,
                                "format cannot be empty when path, label, uuid, wipeFilesystem or options are specified",
                            );
                        }
                    }
                }
            }
        }
        self.unique(
            fss.iter()
                .filter_map(|f| Some((f.device.as_deref()?, f.at.key("device")))),
            "filesystem device",
        );
        if self.version.is_v2() {
            let mut seen = HashSet::new();
            for f in fss {
                if let Some(n) = f.name.as_deref() {
                    if !seen.insert(n) || n == "root" {
                        self.r.warn_msg(
                            &f.at.key("name"),
                            Kind::Duplicate,
                            format!("filesystem name {n:?} shadows an earlier definition"),
                        );
                    }
                }
            }
        }
    }

    pub(super) fn luks(&mut self, luks: &[Luks]) {
        for l in luks {
            match l.name.as_deref() {
                None | Some("") => self.r.error(&l.at.key("name"), Kind::NameMissing),
                Some(n) if n.contains('/') => self.r.error_msg(
                    &l.at.key("name"),
                    Kind::Storage,
                    "luks name cannot contain a slash",
                ),
                _ => {}
            }
            if l.label.as_ref().is_some_and(|s| s.len() > 47) {
                self.r.error_msg(
                    &l.at.key("label"),
                    Kind::Storage,
                    "luks labels cannot be longer than 47 characters",
                );
            }
            self.abs_path(l.device.as_deref(), &l.at.key("device"));
            if let Some(k) = &l.key_file {
                self.resource(k, Use::Contents);
            }
        }
        self.unique(
            luks.iter()
                .filter_map(|l| Some((l.name.as_deref()?, l.at.key("name")))),
            "luks volume",
        );
    }
}

fn label_at(at: &JsonPath, v3: bool) -> JsonPath {
    if v3 {
        at.key("label")
    } else {
        at.key("mount").key("label")
    }
}

fn is_guid(g: &str) -> bool {
    let parts: Vec<&str> = g.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
