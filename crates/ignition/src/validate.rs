//! Validation of the internal model: every rule Ignition enforces, each finding recorded with
//! the JSON path of the field, all of them at once. No I/O happens here.
//!
//! Rules that differ by spec version look at [`Config::version`]: URL schemes and hash
//! functions per version, clean paths and duplicate checks (errors in 3.x, warnings in 2.x,
//! where the last entry wins), `filesystem` names (2.x), networkd units (2.x), links and
//! unit-path conflicts (3.x).

use std::collections::{HashMap, HashSet};

use crate::model::*;
use crate::report::{JsonPath, Kind, Report};
use crate::resource;
use crate::units;
use crate::version::Version;

/// Validates `cfg`, adding every finding to `report`.
pub fn validate(cfg: &Config, report: &mut Report) {
    let mut v = V {
        version: cfg.version,
        r: report,
    };
    v.ignition(&cfg.ignition);
    v.storage(cfg);
    v.units(&cfg.units);
    v.networkd(&cfg.networkd);
    v.passwd(&cfg.users, &cfg.groups);
    v.kernel_arguments(&cfg.kernel_arguments);
}

struct V<'a> {
    version: Version,
    r: &'a mut Report,
}

/// Where a resource is used; a few rules depend on it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    /// A config reference or CA: `source` is required from 3.1.
    Reference,
    /// File contents or appended data.
    Contents,
}

/// `path.Clean(p) == p` for an absolute path.
pub fn is_clean(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    !p.ends_with('/') && !p.contains("//") && !p.split('/').skip(1).any(|c| c == "." || c == "..")
}

impl V<'_> {
    fn v3(&self) -> bool {
        !self.version.is_v2()
    }

    /// Uniqueness: an error in 3.x, nothing in 2.x (callers that want a 2.x warning say so).
    fn unique<'k>(&mut self, items: impl IntoIterator<Item = (&'k str, JsonPath)>, what: &str) {
        if !self.v3() {
            return;
        }
        let mut seen = HashSet::new();
        for (key, at) in items {
            if !seen.insert(key) {
                self.r.error_msg(
                    &at,
                    Kind::Duplicate,
                    format!("duplicate entry defined: {what} {key:?}"),
                );
            }
        }
    }

    fn unique_strings(&mut self, items: &[String], at: &JsonPath, what: &str) {
        self.unique(
            items
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str(), at.index(i))),
            what,
        );
    }

    fn abs_path(&mut self, p: Option<&str>, at: &JsonPath) -> bool {
        match p {
            None | Some("") => {
                self.r.error(at, Kind::PathMissing);
                false
            }
            Some(p) if !p.starts_with('/') => {
                self.r.error_msg(
                    at,
                    Kind::PathNotAbsolute,
                    format!("path not absolute: {p:?}"),
                );
                false
            }
            Some(p) if self.v3() && !is_clean(p) => {
                self.r.error_msg(
                    at,
                    Kind::PathNotClean,
                    format!("path is not fully simplified: {p:?}"),
                );
                false
            }
            Some(_) => true,
        }
    }

    fn resource(&mut self, res: &Resource, usage: Use) {
        let at = &res.at;
        let mut scheme = None;
        match res.source.as_deref() {
            None => {
                if usage == Use::Reference && self.version >= Version::new(3, 1) {
                    self.r.error(&at.key("source"), Kind::SourceRequired);
                }
                if res.hash.is_some() && self.v3() {
                    self.r
                        .error(&at.key("verification").key("hash"), Kind::HashWithoutSource);
                }
            }
            Some("") => {}
            Some(url) => {
                scheme = resource::scheme(url);
                if let Err((kind, msg)) = resource::check_url(url, self.version) {
                    self.r.error_msg(&at.key("source"), kind, msg);
                }
            }
        }
        if let Some(c) = &res.compression {
            if !c.is_empty() && c != "gzip" {
                self.r.error_msg(
                    &at.key("compression"),
                    Kind::InvalidCompression,
                    format!("invalid compression method {c:?} (allowed: \"\", \"gzip\")"),
                );
            }
        }
        if let Some(h) = &res.hash {
            if let Err((kind, msg)) = resource::parse_hash(h, self.version) {
                self.r
                    .error_msg(&at.key("verification").key("hash"), kind, msg);
            }
        }
        if !res.http_headers.is_empty() && !matches!(scheme.as_deref(), Some("http" | "https")) {
            self.r.error_msg(
                &at.key("httpHeaders"),
                Kind::HttpHeader,
                "cannot use HTTP headers with this source scheme",
            );
        }
        for h in &res.http_headers {
            match h.name.as_deref() {
                None | Some("") => self.r.error_msg(
                    &h.at.key("name"),
                    Kind::HttpHeader,
                    "HTTP header name can't be empty",
                ),
                Some(n) if n.bytes().any(|b| b.is_ascii_whitespace() || b == b':') => {
                    self.r.error_msg(
                        &h.at.key("name"),
                        Kind::HttpHeader,
                        format!("unable to parse HTTP header name {n:?}"),
                    )
                }
                _ => {}
            }
            if h.value.as_deref() == Some("") {
                self.r.error_msg(
                    &h.at.key("value"),
                    Kind::HttpHeader,
                    "unable to parse HTTP header: empty value",
                );
            }
        }
        self.unique(
            res.http_headers
                .iter()
                .filter_map(|h| Some((h.name.as_deref()?, h.at.key("name")))),
            "HTTP header",
        );
    }

    fn ignition(&mut self, ign: &Ignition) {
        for r in &ign.merge {
            self.resource(r, Use::Reference);
        }
        if let Some(r) = &ign.replace {
            self.resource(r, Use::Reference);
        }
        for r in &ign.certificate_authorities {
            self.resource(r, Use::Reference);
        }
        self.unique(
            ign.merge
                .iter()
                .filter_map(|r| Some((r.source.as_deref()?, r.at.key("source")))),
            "config source",
        );
        self.unique(
            ign.certificate_authorities
                .iter()
                .filter_map(|r| Some((r.source.as_deref()?, r.at.key("source")))),
            "certificate authority",
        );
        for (what, value) in [
            ("httpProxy", &ign.proxy.http_proxy),
            ("httpsProxy", &ign.proxy.https_proxy),
        ] {
            let Some(url) = value else { continue };
            let at = ign.proxy.at.key(what);
            match resource::scheme(url).as_deref() {
                Some("https") => {}
                Some("http") if what == "httpProxy" => {}
                Some("http") => self.r.warn_msg(
                    &at,
                    Kind::ProxyScheme,
                    "httpsProxy uses plain http; the proxy connection is not encrypted",
                ),
                _ => self.r.error(&at, Kind::ProxyScheme),
            }
        }
        self.unique_strings(
            &ign.proxy.no_proxy,
            &ign.proxy.at.key("noProxy"),
            "noProxy entry",
        );
        for (what, value) in [
            ("httpResponseHeaders", ign.timeouts.http_response_headers),
            ("httpTotal", ign.timeouts.http_total),
        ] {
            if value.is_some_and(|s| s < 0) {
                self.r.error_msg(
                    &ign.timeouts.at.key(what),
                    Kind::TypeMismatch,
                    "timeout must not be negative",
                );
            }
        }
    }

    fn owner(&mut self, o: &Owner) {
        if o.id.is_some() && o.name.is_some() {
            self.r.error(&o.at, Kind::IdAndName);
        }
        if o.id.is_some_and(|id| !(0..=u32::MAX as i64).contains(&id)) {
            self.r
                .error_msg(&o.at.key("id"), Kind::TypeMismatch, "id out of range");
        }
    }

    fn node(&mut self, n: &Node, filesystems: &HashSet<&str>) {
        self.abs_path(n.path.as_deref(), &n.at.key("path"));
        self.owner(&n.user);
        self.owner(&n.group);
        if self.version.is_v2() {
            match n.filesystem.as_deref() {
                None | Some("") => self.r.error(&n.at.key("filesystem"), Kind::NoFilesystem),
                Some("root") => {}
                Some(fs) if !filesystems.contains(fs) => self.r.warn_msg(
                    &n.at.key("filesystem"),
                    Kind::UndefinedFilesystem,
                    format!("filesystem {fs:?} is not defined in this config; applying will fail unless a referenced config defines it"),
                ),
                Some(_) => {}
            }
        }
    }

    fn mode(&mut self, mode: Option<i64>, at: &JsonPath) {
        let Some(m) = mode else { return };
        if !(0..=0o7777).contains(&m) {
            self.r.error_msg(
                at,
                Kind::IllegalMode,
                format!(
                    "illegal file mode {m} (modes are decimal JSON numbers: 0644 is written 420)"
                ),
            );
        } else if m & 0o7000 != 0 && self.v3() {
            self.r.warn(at, Kind::SpecialModeBits);
        }
    }

    fn storage(&mut self, cfg: &Config) {
        let st = &cfg.storage;
        self.disks(&st.disks);
        self.raid(&st.raid);
        self.filesystems(&st.filesystems);
        self.luks(&st.luks);
        let fs_names: HashSet<&str> = st
            .filesystems
            .iter()
            .filter_map(|f| f.name.as_deref())
            .collect();

        for f in &st.files {
            self.node(&f.node, &fs_names);
            self.mode(f.mode, &f.node.at.key("mode"));
            if self.version.is_v2() && f.mode.is_none() && f.append.is_empty() {
                self.r.warn(&f.node.at.key("mode"), Kind::ModeUnset);
            }
            if let Some(c) = &f.contents {
                self.resource(c, Use::Contents);
            }
            for a in &f.append {
                self.resource(a, Use::Contents);
            }
            if self.v3() {
                let has_source = f.contents.as_ref().is_some_and(|c| c.source.is_some());
                if f.node.overwrite == Some(true) && !has_source {
                    self.r
                        .error(&f.node.at.key("overwrite"), Kind::OverwriteWithoutSource);
                }
                if f.node.overwrite == Some(true) && !f.append.is_empty() {
                    self.r
                        .error(&f.node.at.key("overwrite"), Kind::AppendAndOverwrite);
                }
            }
        }
        for d in &st.directories {
            self.node(&d.node, &fs_names);
            self.mode(d.mode, &d.node.at.key("mode"));
            if self.version.is_v2() && d.mode.is_none() {
                self.r.warn(&d.node.at.key("mode"), Kind::ModeUnset);
            }
        }
        let dir_paths: HashSet<&str> = st
            .directories
            .iter()
            .filter_map(|d| d.node.path.as_deref())
            .collect();
        for l in &st.links {
            self.node(&l.node, &fs_names);
            match l.target.as_deref() {
                None | Some("") => {
                    if self.version >= Version::new(3, 3) {
                        self.r
                            .error(&l.node.at.key("target"), Kind::LinkTargetRequired);
                    } else {
                        self.r.warn_msg(
                            &l.node.at.key("target"),
                            Kind::LinkTargetRequired,
                            "link has no target; applying it will fail",
                        );
                    }
                }
                Some(t) if l.hard == Some(true) => {
                    if !t.starts_with('/') && self.v3() {
                        self.r.error_msg(
                            &l.node.at.key("target"),
                            Kind::PathNotAbsolute,
                            format!("hard link target not absolute: {t:?}"),
                        );
                    }
                    if dir_paths.contains(t) {
                        self.r
                            .error(&l.node.at.key("target"), Kind::HardLinkToDirectory);
                    }
                    if self.v3() && !(l.node.user.is_unset() && l.node.group.is_unset()) {
                        self.r.warn_msg(
                            &l.node.at,
                            Kind::Deprecated,
                            "user and group are ignored for hard links",
                        );
                    }
                }
                Some(_) => {}
            }
        }

        // One key space for files, directories and links.
        let nodes: Vec<(&Node, &str)> = st
            .files
            .iter()
            .map(|f| (&f.node, "file"))
            .chain(st.directories.iter().map(|d| (&d.node, "directory")))
            .chain(st.links.iter().map(|l| (&l.node, "link")))
            .collect();
        let mut seen: HashMap<(Option<&str>, &str), &JsonPath> = HashMap::new();
        for (n, _) in &nodes {
            let Some(p) = n.path.as_deref() else { continue };
            let key = (n.filesystem.as_deref(), p);
            if let Some(first) = seen.insert(key, &n.at) {
                if self.v3() {
                    self.r.error_msg(
                        &n.at.key("path"),
                        Kind::Duplicate,
                        format!("duplicate entry defined: path {p:?} is also defined at {first}"),
                    );
                } else {
                    self.r.warn_msg(
                        &n.at.key("path"),
                        Kind::Duplicate,
                        format!("path {p:?} is also defined at {first}; the last entry wins"),
                    );
                }
            }
        }
        if !self.v3() {
            return;
        }
        let link_paths: Vec<&str> = st
            .links
            .iter()
            .filter_map(|l| l.node.path.as_deref())
            .collect();
        for (n, what) in &nodes {
            let Some(p) = n.path.as_deref() else { continue };
            if let Some(l) = link_paths
                .iter()
                .find(|l| p.len() > l.len() && p.starts_with(**l) && p.as_bytes()[l.len()] == b'/')
            {
                self.r.error_msg(
                    &n.at.key("path"),
                    Kind::PathIncludesLink,
                    format!("{what} path includes link in config: {l:?}"),
                );
            }
        }
        // Paths that systemd.units writes.
        let mut unit_paths = HashSet::new();
        for u in &cfg.units {
            let Some(name) = u.name.as_deref() else {
                continue;
            };
            if u.contents.is_some() || u.mask == Some(true) {
                unit_paths.insert(format!("{}/{name}", units::UNIT_DIR));
            }
            for d in &u.dropins {
                if let Some(dn) = d.name.as_deref() {
                    unit_paths.insert(format!("{}/{name}.d/{dn}", units::UNIT_DIR));
                }
            }
        }
        for (n, _) in &nodes {
            if n.path.as_deref().is_some_and(|p| unit_paths.contains(p)) {
                self.r.error(&n.at.key("path"), Kind::ConflictsWithUnit);
            }
        }
    }

    fn disks(&mut self, disks: &[Disk]) {
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

    fn partitions(&mut self, parts: &[Partition]) {
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

    fn raid(&mut self, raid: &[Raid]) {
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

    fn filesystems(&mut self, fss: &[Filesystem]) {
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
            if self.version.is_v2() {
                if f.name.as_deref().unwrap_or("").is_empty() {
                    self.r.error(&at.key("name"), Kind::NameMissing);
                }
                if let Some(p) = &f.path {
                    self.abs_path(Some(p), &at.key("path"));
                }
            } else if let Some(p) = &f.path {
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

    fn luks(&mut self, luks: &[Luks]) {
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

    fn unit_text(&mut self, text: Option<&str>, at: &JsonPath) {
        if let Some(t) = text {
            if let Err(e) = units::check_contents(t) {
                self.r
                    .error_msg(at, Kind::UnitContents, format!("invalid unit content: {e}"));
            }
        }
    }

    fn units(&mut self, list: &[Unit]) {
        for u in list {
            match u.name.as_deref() {
                None | Some("") => self.r.error(&u.at.key("name"), Kind::NameMissing),
                Some(n) if !units::valid_unit_name(n) => self.r.error_msg(
                    &u.at.key("name"),
                    Kind::UnitExtension,
                    format!("invalid systemd unit extension: {n:?}"),
                ),
                _ => {}
            }
            self.unit_text(u.contents.as_deref(), &u.at.key("contents"));
            if u.enabled == Some(true) {
                if let Some(c) = u.contents.as_deref().filter(|c| !c.trim().is_empty()) {
                    let mut inst = units::parse_install(c);
                    for d in &u.dropins {
                        inst.extend(units::parse_install(d.contents.as_deref().unwrap_or("")));
                    }
                    if !inst.present || inst.is_empty() {
                        self.r.warn(&u.at.key("enabled"), Kind::NoInstallSection);
                    }
                }
            }
            for d in &u.dropins {
                self.dropin(d, "systemd");
            }
            self.unique(
                u.dropins
                    .iter()
                    .filter_map(|d| Some((d.name.as_deref()?, d.at.key("name")))),
                "drop-in",
            );
        }
        if self.v3() {
            self.unique(
                list.iter()
                    .filter_map(|u| Some((u.name.as_deref()?, u.at.key("name")))),
                "unit",
            );
        } else {
            let mut seen = HashSet::new();
            for u in list {
                if let Some(n) = u.name.as_deref() {
                    if !seen.insert(n) {
                        self.r.warn_msg(
                            &u.at.key("name"),
                            Kind::Duplicate,
                            format!("unit {n:?} is defined more than once; the entries are merged"),
                        );
                    }
                }
            }
        }
    }

    fn dropin(&mut self, d: &Dropin, what: &str) {
        match d.name.as_deref() {
            None | Some("") => self.r.error(&d.at.key("name"), Kind::NameMissing),
            Some(n) if !units::valid_dropin_name(n) => self.r.error_msg(
                &d.at.key("name"),
                Kind::DropinExtension,
                format!("invalid {what} drop-in extension: {n:?} must end in .conf"),
            ),
            _ => {}
        }
        self.unit_text(d.contents.as_deref(), &d.at.key("contents"));
    }

    fn networkd(&mut self, list: &[NetworkdUnit]) {
        for u in list {
            match u.name.as_deref() {
                None | Some("") => self.r.error(&u.at.key("name"), Kind::NameMissing),
                Some(n)
                    if ![".link", ".netdev", ".network"]
                        .iter()
                        .any(|e| n.len() > e.len() && n.ends_with(e))
                        || n.contains('/') =>
                {
                    self.r.error_msg(
                        &u.at.key("name"),
                        Kind::NetworkdExtension,
                        format!("invalid networkd unit extension: {n:?}"),
                    )
                }
                _ => {}
            }
            self.unit_text(u.contents.as_deref(), &u.at.key("contents"));
            for d in &u.dropins {
                self.dropin(d, "networkd");
            }
        }
    }

    fn passwd(&mut self, users: &[User], groups: &[Group]) {
        for u in users {
            if u.name.as_deref().unwrap_or("").is_empty() {
                self.r.error(&u.at.key("name"), Kind::NameMissing);
            } else if let Some(n) = &u.name {
                if !valid_account_name(n) {
                    self.r.error_msg(
                        &u.at.key("name"),
                        Kind::NameMissing,
                        format!("invalid user name {n:?}"),
                    );
                }
            }
            if u.uid.is_some_and(|id| !(0..=u32::MAX as i64).contains(&id)) {
                self.r
                    .error_msg(&u.at.key("uid"), Kind::TypeMismatch, "uid out of range");
            }
            if let Some(h) = &u.home_dir {
                self.abs_path(Some(h), &u.at.key("homeDir"));
            }
            if let Some(s) = &u.shell {
                if !s.starts_with('/') {
                    self.r.error_msg(
                        &u.at.key("shell"),
                        Kind::PathNotAbsolute,
                        format!("shell path not absolute: {s:?}"),
                    );
                }
            }
            for (i, key) in u.ssh_authorized_keys.iter().enumerate() {
                if key.contains('\n') {
                    self.r.warn_msg(
                        &u.at.key("sshAuthorizedKeys").index(i),
                        Kind::TypeMismatch,
                        "SSH key contains a newline; it is written as several lines",
                    );
                }
            }
            self.unique_strings(
                &u.ssh_authorized_keys,
                &u.at.key("sshAuthorizedKeys"),
                "SSH key",
            );
            self.unique_strings(&u.groups, &u.at.key("groups"), "group");
        }
        self.unique(
            users
                .iter()
                .filter_map(|u| Some((u.name.as_deref()?, u.at.key("name")))),
            "user",
        );
        for g in groups {
            match g.name.as_deref() {
                None | Some("") => self.r.error(&g.at.key("name"), Kind::NameMissing),
                Some(n) if !valid_account_name(n) => self.r.error_msg(
                    &g.at.key("name"),
                    Kind::NameMissing,
                    format!("invalid group name {n:?}"),
                ),
                _ => {}
            }
            if g.gid.is_some_and(|id| !(0..=u32::MAX as i64).contains(&id)) {
                self.r
                    .error_msg(&g.at.key("gid"), Kind::TypeMismatch, "gid out of range");
            }
        }
        self.unique(
            groups
                .iter()
                .filter_map(|g| Some((g.name.as_deref()?, g.at.key("name")))),
            "group",
        );
    }

    fn kernel_arguments(&mut self, k: &KernelArguments) {
        self.unique_strings(&k.should_exist, &k.at.key("shouldExist"), "kernel argument");
        self.unique_strings(
            &k.should_not_exist,
            &k.at.key("shouldNotExist"),
            "kernel argument",
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

/// A name that fits in passwd/group: no `:`, no newline, no `/`, not `.`/`..`.
fn valid_account_name(n: &str) -> bool {
    !n.is_empty()
        && n != "."
        && n != ".."
        && !n
            .chars()
            .any(|c| c == ':' || c == '/' || c == ',' || c.is_whitespace() || c.is_control())
}

fn is_guid(g: &str) -> bool {
    let parts: Vec<&str> = g.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
