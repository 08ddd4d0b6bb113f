//! Validation of the internal model: every rule Ignition enforces, each finding recorded with
//! the JSON path of the field, all of them at once. No I/O happens here.
//!
//! Rules that differ by spec version look at [`Config::version`]: URL schemes and hash
//! functions per version, clean paths and duplicate checks (errors in 3.x, warnings in 2.x,
//! where the last entry wins), `filesystem` names (2.x), networkd units (2.x), links and
//! unit-path conflicts (3.x).

use std::collections::{HashMap, HashSet};

use crate::fetch::MAX_TIMEOUT_SECS;
use crate::model::*;
use crate::parse::version::Version;
use crate::report::{JsonPath, Kind, Report, Severity};
use crate::resource;
use crate::units;

mod disks;
mod passwd;
mod systemd;

/// A config that passed every check, with every config it referenced fetched and merged in:
/// the only input of planning and applying, which therefore check nothing again. Only
/// [`crate::resolve`] (and so [`crate::load`]) makes one, through [`whole`]. It reads as the
/// [`Config`] it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidConfig(Config);

impl ValidConfig {
    /// The config.
    pub fn config(&self) -> &Config {
        &self.0
    }

    /// The config, no longer known to be valid.
    pub fn into_config(self) -> Config {
        self.0
    }

    /// For the crate's own additions that keep the config valid (first boot's mount units).
    pub(crate) fn config_mut(&mut self) -> &mut Config {
        &mut self.0
    }
}

impl std::ops::Deref for ValidConfig {
    type Target = Config;

    fn deref(&self) -> &Config {
        &self.0
    }
}

/// The last checks, on a whole config (its references resolved): every rule of [`validate`],
/// and what only the whole config can tell: the spec 2.x filesystems its nodes are on are
/// defined, and every link has a target (before 3.3 a missing one is only a warning while
/// parsing, since a merged config may supply it). New warnings join the config's.
pub fn whole(mut cfg: Config) -> Result<ValidConfig, Report> {
    let mut report = Report::new();
    if cfg.has_references() {
        report.error_msg(
            &JsonPath::root().key("ignition").key("config"),
            Kind::SourceRequired,
            "the config references other configs that were not resolved",
        );
    }
    validate(&cfg, &mut report);
    filesystem_names(&cfg, true, &mut report);
    for l in &cfg.storage.links {
        if l.target.as_deref().unwrap_or("").is_empty() && cfg.version < Version::new(3, 3) {
            report.error(&l.node.at.key("target"), Kind::LinkTargetRequired);
        }
    }
    if report.has_errors() {
        report.entries.retain(|e| e.severity == Severity::Error);
        return Err(report);
    }
    // What parsing could only guess about (a filesystem or a link target a referenced config
    // might supply) is settled now.
    cfg.warnings
        .retain(|w| !matches!(w.kind, Kind::UndefinedFilesystem | Kind::LinkTargetRequired));
    for w in report.into_warnings() {
        if !cfg.warnings.contains(&w) {
            cfg.warnings.push(w);
        }
    }
    Ok(ValidConfig(cfg))
}

/// Spec 2.x: every file, directory and link names a filesystem that is defined (by its
/// `name`), or `root`. A filesystem needs a name only for this; an undefined one fails as
/// Ignition's files stage fails, but before anything is written. While `cfg` still references
/// other configs (`complete` false), one of them may define it: a warning then.
pub fn filesystem_names(cfg: &Config, complete: bool, report: &mut Report) {
    if !cfg.version.is_v2() {
        return;
    }
    let st = &cfg.storage;
    let defined: HashSet<&str> = st
        .filesystems
        .iter()
        .filter_map(|f| f.name.as_deref())
        .collect();
    let nodes = (st.files.iter().map(|f| &f.node))
        .chain(st.directories.iter().map(|d| &d.node))
        .chain(st.links.iter().map(|l| &l.node));
    for n in nodes {
        let Some(fs) = n.filesystem.as_deref() else {
            continue;
        };
        if fs.is_empty() || fs == "root" || defined.contains(fs) {
            continue;
        }
        let at = n.at.key("filesystem");
        if complete {
            report.error_msg(
                &at,
                Kind::UndefinedFilesystem,
                format!("filesystem {fs:?} is not defined"),
            );
        } else {
            report.warn_msg(
                &at,
                Kind::UndefinedFilesystem,
                format!("filesystem {fs:?} is not defined in this config; applying will fail unless a referenced config defines it"),
            );
        }
    }
}

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

/// The longest path Linux accepts (`PATH_MAX` - 1).
pub const PATH_MAX: usize = 4095;
/// The longest file name Linux file systems accept.
pub const NAME_MAX: usize = 255;

/// Why `p` (a path or a file name) cannot exist on a Linux file system, if it cannot.
pub fn unusable_path(p: &str) -> Option<String> {
    if p.contains('\0') {
        return Some("contains a NUL byte".into());
    }
    if p.len() > PATH_MAX {
        return Some(format!("is longer than {PATH_MAX} bytes ({})", p.len()));
    }
    p.split('/').find(|c| c.len() > NAME_MAX).map(|c| {
        let start: String = c.chars().take(16).collect();
        format!(
            "has a component longer than {NAME_MAX} bytes ({start}..., {} bytes)",
            c.len()
        )
    })
}

/// The largest id: 4294967295 is `(uid_t) -1`, which tells chown "no change".
pub const MAX_ID: i64 = u32::MAX as i64 - 1;

/// `p` simplified lexically (`//`, `.`, `..` and a trailing `/` removed).
fn lexical(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// The proper ancestors of the simplified absolute path `p`, below `/` (`/a/b/c` → `/a`,
/// `/a/b`).
fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    p.match_indices('/')
        .map(|(i, _)| &p[..i])
        .filter(|a| !a.is_empty())
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
            Some(p) if unusable_path(p).is_some() => {
                let why = unusable_path(p).unwrap_or_default();
                self.r
                    .error_msg(at, Kind::UnusablePath, format!("path {p:?} {why}"));
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
            } else if let Some(s) = value.filter(|s| *s > MAX_TIMEOUT_SECS) {
                self.r.warn_msg(
                    &ign.timeouts.at.key(what),
                    Kind::OutOfRange,
                    format!(
                        "a timeout of {s} seconds is longer than {} days; it is clamped to that",
                        MAX_TIMEOUT_SECS / 86400
                    ),
                );
            }
        }
    }

    fn owner(&mut self, o: &Owner) {
        if o.id.is_some() && o.name.is_some() {
            self.r.error(&o.at, Kind::IdAndName);
        }
        self.id(o.id, &o.at.key("id"), "id");
    }

    /// A uid or gid: 0 to [`MAX_ID`].
    fn id(&mut self, id: Option<i64>, at: &JsonPath, what: &str) {
        if let Some(id) = id.filter(|id| !(0..=MAX_ID).contains(id)) {
            self.r.error_msg(
                at,
                Kind::OutOfRange,
                format!("{what} {id} is out of range: ids go from 0 to {MAX_ID} ({} means \"no change\" to chown)", u32::MAX),
            );
        }
    }

    fn node(&mut self, n: &Node) {
        self.abs_path(n.path.as_deref(), &n.at.key("path"));
        self.owner(&n.user);
        self.owner(&n.group);
        if self.version.is_v2() && n.filesystem.as_deref().unwrap_or("").is_empty() {
            self.r.error(&n.at.key("filesystem"), Kind::NoFilesystem);
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

        for f in &st.files {
            self.node(&f.node);
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
            self.node(&d.node);
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
            self.node(&l.node);
            let hard = l.hard == Some(true);
            if let Some(t) = l.target.as_deref() {
                // A symlink's target is text (only its length and NULs matter); a hard link's
                // is a path.
                let why = if hard {
                    unusable_path(t)
                } else if t.contains('\0') {
                    Some("contains a NUL byte".to_string())
                } else {
                    (t.len() > PATH_MAX).then(|| format!("is longer than {PATH_MAX} bytes"))
                };
                if let Some(why) = why {
                    self.r.error_msg(
                        &l.node.at.key("target"),
                        Kind::UnusablePath,
                        format!("link target {t:?} {why}"),
                    );
                }
            }
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
        self.below_files_and_links(&nodes, st);
        if !self.v3() {
            return;
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

    /// Nothing may be below a file or a link the same config writes (within one spec 2.x
    /// filesystem): a file's path cannot also be a directory, and what is below a link would
    /// land wherever the link points (3.x), or make the link fail because its path became a
    /// directory first (2.x writes links last).
    fn below_files_and_links(&mut self, nodes: &[(&Node, &str)], st: &Storage) {
        let key = |n: &Node| Some((n.filesystem.clone(), lexical(n.path.as_deref()?)));
        let files: HashMap<(Option<String>, String), &JsonPath> = st
            .files
            .iter()
            .filter_map(|f| Some((key(&f.node)?, &f.node.at)))
            .collect();
        let links: HashMap<(Option<String>, String), &JsonPath> = st
            .links
            .iter()
            .filter_map(|l| Some((key(&l.node)?, &l.node.at)))
            .collect();
        for (n, what) in nodes {
            let Some((fs, p)) = key(n) else { continue };
            for a in ancestors(&p) {
                let k = (fs.clone(), a.to_string());
                if let Some(at) = files.get(&k) {
                    self.r.error_msg(
                        &n.at.key("path"),
                        Kind::PathBelowFile,
                        format!("{what} path {p:?} is below the file {a} defined at {at}"),
                    );
                    break;
                }
                if links.contains_key(&k) {
                    self.r.error_msg(
                        &n.at.key("path"),
                        Kind::PathIncludesLink,
                        format!("{what} path includes link in config: {a:?}"),
                    );
                    break;
                }
            }
        }
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
