//! Files, directories and links: paths, owners, modes, link targets, and the one key space
//! they share (duplicates, nothing below a file or a link, nothing where a unit goes).

use std::collections::{HashMap, HashSet};

use super::{ancestors, lexical, unusable_path, Use, PATH_MAX, V};
use crate::model::*;
use crate::parse::version::Version;
use crate::report::{JsonPath, Kind};
use crate::units;

impl V<'_> {
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

    pub(super) fn storage(&mut self, cfg: &Config) {
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
}
