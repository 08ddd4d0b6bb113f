//! Spec versions: reading `ignition.version` before anything else, so the right raw parser
//! (spec 2.x or 3.x) can be picked.
//!
//! Rules (as Ignition): the version must be full semver (`"3.0"` is rejected as unparsable)
//! and must equal a supported version exactly; `-experimental` versions are rejected because
//! this implementation ships no experimental spec.

use std::fmt;

use serde_json::Value;

use crate::report::{JsonPath, Kind, Report};

/// A supported spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// 2 or 3.
    pub major: u32,
    /// Minor version within the line.
    pub minor: u32,
}

/// Every version `parse` accepts.
pub const SUPPORTED: &[Version] = &[
    Version::new(2, 0),
    Version::new(2, 1),
    Version::new(2, 2),
    Version::new(2, 3),
    Version::new(2, 4),
    Version::new(3, 0),
    Version::new(3, 1),
    Version::new(3, 2),
    Version::new(3, 3),
    Version::new(3, 4),
    Version::new(3, 5),
];

impl Version {
    /// `major.minor.0`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Version { major, minor }
    }

    /// True for the spec 2.x line (Container Linux semantics).
    pub fn is_v2(self) -> bool {
        self.major == 2
    }

    /// True when this version is at least `major.minor`, within the same line.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self.major == major && self.minor >= minor
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.0", self.major, self.minor)
    }
}

/// A strict semver triple with optional pre-release (build metadata is accepted and ignored).
fn parse_semver(s: &str) -> Option<(u32, u32, u32, Option<&str>)> {
    let s = s.split_once('+').map_or(s, |(v, _)| v);
    let (core, pre) = match s.split_once('-') {
        Some((c, p)) if !p.is_empty() => (c, Some(p)),
        Some(_) => return None,
        None => (s, None),
    };
    let mut parts = core.split('.');
    let mut num = || -> Option<u32> {
        let p = parts.next()?;
        if p.is_empty()
            || !p.bytes().all(|b| b.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
        {
            return None;
        }
        p.parse().ok()
    };
    let (a, b, c) = (num()?, num()?, num()?);
    if parts.next().is_some() {
        return None;
    }
    Some((a, b, c, pre))
}

/// Finds `ignition.version` in a decoded document (keys matched case-insensitively, as Go
/// does) and checks it. Errors go to `report` with the path of the field.
pub fn detect(doc: &Value, root: &JsonPath, report: &mut Report) -> Option<Version> {
    let Value::Object(top) = doc else {
        report.error_msg(root, Kind::TypeMismatch, "a config must be a JSON object");
        return None;
    };
    let find = |o: &serde_json::Map<String, Value>, key: &str| -> Option<(String, Value)> {
        o.iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .max_by_key(|(k, _)| *k == key)
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    if top.contains_key("ignitionVersion") {
        report.error_msg(
            &root.key("ignitionVersion"),
            Kind::UnsupportedVersion,
            "unsupported config version: spec 1 (ignitionVersion) is not supported; use 2.x or 3.x",
        );
        return None;
    }
    let ign_at = root.key("ignition");
    let at = ign_at.key("version");
    let Some((_, ign)) = find(top, "ignition") else {
        report.error_msg(
            &at,
            Kind::InvalidVersion,
            "invalid config version (couldn't parse): ignition.version is missing",
        );
        return None;
    };
    let Value::Object(ign) = ign else {
        report.error_msg(&ign_at, Kind::TypeMismatch, "expected an object");
        return None;
    };
    let version = match find(&ign, "version") {
        Some((_, Value::String(s))) => s,
        Some((_, Value::Null)) | None => {
            report.error_msg(
                &at,
                Kind::InvalidVersion,
                "invalid config version (couldn't parse): ignition.version is missing",
            );
            return None;
        }
        Some(_) => {
            report.error_msg(&at, Kind::TypeMismatch, "expected a string");
            return None;
        }
    };
    let Some((major, minor, patch, pre)) = parse_semver(&version) else {
        report.error_msg(
            &at,
            Kind::InvalidVersion,
            format!("invalid config version (couldn't parse): {version:?} is not a full semver version such as \"3.4.0\""),
        );
        return None;
    };
    let v = Version::new(major, minor);
    if pre.is_some() || patch != 0 || !SUPPORTED.contains(&v) {
        let list: Vec<String> = SUPPORTED.iter().map(|v| v.to_string()).collect();
        report.error_msg(
            &at,
            Kind::UnsupportedVersion,
            format!(
                "unsupported config version {version:?} (supported: {})",
                list.join(", ")
            ),
        );
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(doc: &str) -> Result<Version, Kind> {
        let v: Value = serde_json::from_str(doc).unwrap();
        let mut r = Report::new();
        detect(&v, &JsonPath::root(), &mut r).ok_or_else(|| r.entries[0].kind)
    }

    #[test]
    fn versions() {
        let table: &[(&str, Result<Version, Kind>)] = &[
            (
                r#"{"ignition":{"version":"2.0.0"}}"#,
                Ok(Version::new(2, 0)),
            ),
            (
                r#"{"ignition":{"version":"2.3.0"}}"#,
                Ok(Version::new(2, 3)),
            ),
            (
                r#"{"ignition":{"version":"3.0.0"}}"#,
                Ok(Version::new(3, 0)),
            ),
            (
                r#"{"ignition":{"version":"3.4.0"}}"#,
                Ok(Version::new(3, 4)),
            ),
            (
                r#"{"ignition":{"version":"3.5.0"}}"#,
                Ok(Version::new(3, 5)),
            ),
            (
                r#"{"Ignition":{"Version":"3.1.0"}}"#,
                Ok(Version::new(3, 1)),
            ),
            (
                r#"{"ignition":{"version":"3.0"}}"#,
                Err(Kind::InvalidVersion),
            ),
            (
                r#"{"ignition":{"version":"2.2"}}"#,
                Err(Kind::InvalidVersion),
            ),
            (
                r#"{"ignition":{"version":"03.0.0"}}"#,
                Err(Kind::InvalidVersion),
            ),
            (r#"{"ignition":{}}"#, Err(Kind::InvalidVersion)),
            (r#"{}"#, Err(Kind::InvalidVersion)),
            (
                r#"{"ignition":{"version":"1.0.0"}}"#,
                Err(Kind::UnsupportedVersion),
            ),
            (
                r#"{"ignition":{"version":"3.6.0"}}"#,
                Err(Kind::UnsupportedVersion),
            ),
            (
                r#"{"ignition":{"version":"3.0.1"}}"#,
                Err(Kind::UnsupportedVersion),
            ),
            (
                r#"{"ignition":{"version":"3.4.0-experimental"}}"#,
                Err(Kind::UnsupportedVersion),
            ),
            (r#"{"ignitionVersion":1}"#, Err(Kind::UnsupportedVersion)),
            (r#"{"ignition":{"version":3}}"#, Err(Kind::TypeMismatch)),
            (r#"[]"#, Err(Kind::TypeMismatch)),
        ];
        for (doc, want) in table {
            assert_eq!(&check(doc), want, "{doc}");
        }
    }
}
