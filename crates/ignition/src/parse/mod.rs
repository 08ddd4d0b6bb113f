//! Bytes → validated [`Config`]: detect the version, decode the raw spec types (lifting 2.x
//! into the 3.x raw form), translate them into the model and validate it. Every error is
//! returned at once; warnings travel with the config.

use serde_json::Value;

use crate::model::Config;
use crate::report::{JsonPath, Kind, Report, Severity};
use crate::validate;
use decode::{Cx, Decode};
use spec::{v2, v3};

pub mod decode;
pub mod lift;
pub mod spec;
pub mod translate;
pub mod version;

/// Parses and validates a config. On success the config holds its warnings
/// ([`Config::warnings`]); on failure the report holds every error (and the warnings).
///
/// Referenced configs (`ignition.config.merge/append/replace`) are not fetched here; see
/// [`crate::merge::resolve`].
pub fn parse(bytes: &[u8]) -> Result<Config, Report> {
    parse_config(bytes, &JsonPath::root(), true)
}

/// [`parse`] for a config referenced by another, found at `root` (a root such as
/// `$.ignition.config.merge[0]>$`, so its findings say where it came from). Its spec 2.x
/// filesystem names are only checked once it is merged (the referencing config may define
/// them).
pub fn parse_at(bytes: &[u8], root: &JsonPath) -> Result<Config, Report> {
    parse_config(bytes, root, false)
}

/// `whole`: the config is not referenced by another one.
fn parse_config(bytes: &[u8], root: &JsonPath, whole: bool) -> Result<Config, Report> {
    let mut report = Report::new();
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        report.error(root, Kind::EmptyConfig);
        return Err(report);
    }
    if trimmed.starts_with("#cloud-config") {
        report.error_msg(
            root,
            Kind::NotAConfig,
            "not a config (found coreos-cloudconfig)",
        );
        return Err(report);
    }
    if trimmed.starts_with("#!") {
        report.error_msg(
            root,
            Kind::NotAConfig,
            "not a config (found coreos-cloudinit script)",
        );
        return Err(report);
    }
    let doc: Value = match serde_json::from_str(trimmed) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            // Line numbers refer to the input as given.
            let offset_lines = text[..text.find(trimmed).unwrap_or(0)]
                .matches('\n')
                .count();
            report.error_msg(
                root,
                Kind::InvalidJson,
                format!(
                    "invalid JSON at line {} column {}: {msg}",
                    e.line() + offset_lines,
                    e.column()
                ),
            );
            return Err(report);
        }
    };
    let Some(ver) = version::detect(&doc, root, &mut report) else {
        return Err(report);
    };
    let mut cx = Cx {
        version: ver,
        report: &mut report,
    };
    let mut cfg = if ver.is_v2() {
        let raw = v2::Config::decode(&doc, root, &mut cx).unwrap_or_default();
        let lifted = lift::lift(raw, ver, root, &mut report);
        translate::translate(lifted.config, Some(&lifted.v2), ver, root)
    } else {
        let raw = v3::Config::decode(&doc, root, &mut cx).unwrap_or_default();
        translate::translate(raw, None, ver, root)
    };

    // A field that failed to decode is left unset; findings below it would only repeat it.
    let decode_errors: Vec<String> = report.errors().map(|e| e.path.clone()).collect();
    let mut findings = Report::new();
    validate::validate(&cfg, &mut findings);
    validate::filesystem_names(&cfg, whole && !cfg.has_references(), &mut findings);
    findings.entries.retain(|f| {
        !decode_errors.iter().any(|p| {
            f.path == *p
                || f.path
                    .strip_prefix(p.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    });
    report.extend(findings);
    if report.has_errors() {
        return Err(report);
    }
    cfg.warnings = report
        .entries
        .into_iter()
        .filter(|e| e.severity == Severity::Warning)
        .collect();
    Ok(cfg)
}

#[cfg(test)]
mod tests;
