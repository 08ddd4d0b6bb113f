//! Validation of the internal model: every rule Ignition enforces, each finding recorded with
//! the JSON path of the field, all of them at once. No I/O happens here.
//!
//! Rules that differ by spec version look at [`Config::version`]: URL schemes and hash
//! functions per version, clean paths and duplicate checks (errors in 3.x, warnings in 2.x,
//! where the last entry wins), `filesystem` names (2.x), networkd units (2.x), links and
//! unit-path conflicts (3.x).

use std::collections::HashSet;

use crate::fetch::MAX_TIMEOUT_SECS;
use crate::model::*;
use crate::parse::version::Version;
use crate::report::{JsonPath, Kind, Report};
use crate::resource;

mod disks;
mod nodes;
mod passwd;
mod systemd;
mod whole;

pub use whole::{filesystem_names, whole, ValidConfig};

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

    fn kernel_arguments(&mut self, k: &KernelArguments) {
        self.unique_strings(&k.should_exist, &k.at.key("shouldExist"), "kernel argument");
        self.unique_strings(
            &k.should_not_exist,
            &k.at.key("shouldNotExist"),
            "kernel argument",
        );
    }
}
