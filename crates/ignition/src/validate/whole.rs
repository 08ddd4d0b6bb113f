//! The last checks, on a whole config, and their result: [`ValidConfig`].

use std::collections::HashSet;

use super::validate;
use crate::model::Config;
use crate::parse::version::Version;
use crate::report::{JsonPath, Kind, Report, Severity};

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
