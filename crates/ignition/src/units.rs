//! systemd units, pure: name and content checks, the `[Install]` section, the enablement
//! symlinks `systemctl enable` would create, and preset lines.
//!
//! Enabling a unit creates, for every `WantedBy=T` / `RequiredBy=T` of its `[Install]`
//! section, `/etc/systemd/system/T.wants/NAME` (or `T.requires/NAME`) pointing at the unit
//! file, and for every `Alias=A` a link `/etc/systemd/system/A`. An instance `foo@bar.service`
//! takes `[Install]` from its template `foo@.service` and its links point at the template.
//! Ignition itself only writes preset lines; Keel writes both, so the unit is enabled in the
//! tree even if presets are never applied.

/// Extensions a systemd unit name may have.
pub const UNIT_EXTENSIONS: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

/// Where units written by a config live, relative to the root.
pub const UNIT_DIR: &str = "/etc/systemd/system";
/// Where vendor units live.
pub const VENDOR_UNIT_DIRS: &[&str] = &["/usr/lib/systemd/system", "/lib/systemd/system"];
/// The preset file Ignition writes.
pub const PRESET_FILE: &str = "/etc/systemd/system-preset/20-ignition.preset";

/// True when `name` has a valid unit extension.
pub fn valid_unit_name(name: &str) -> bool {
    UNIT_EXTENSIONS
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
        && !name.contains('/')
}

/// True when `name` is a valid drop-in name.
pub fn valid_dropin_name(name: &str) -> bool {
    name.len() > ".conf".len() && name.ends_with(".conf") && !name.contains('/')
}

/// Checks unit text the way go-systemd's parser (used by Ignition) does.
pub fn check_contents(text: &str) -> Result<(), String> {
    let mut continued = false;
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        if line.len() > 2048 {
            return Err(format!("line {n}: line too long"));
        }
        let trimmed = line.trim();
        if continued {
            continued = trimmed.ends_with('\\');
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.starts_with('[') {
            if !trimmed.contains(']') {
                return Err(format!("line {n}: unable to find end of section"));
            }
            continue;
        }
        if !trimmed.contains('=') {
            return Err(format!(
                "line {n}: unexpected newline encountered while parsing option name"
            ));
        }
        continued = trimmed.ends_with('\\');
    }
    Ok(())
}

/// The parts of `[Install]` that enabling uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Install {
    /// `WantedBy=` targets.
    pub wanted_by: Vec<String>,
    /// `RequiredBy=` targets.
    pub required_by: Vec<String>,
    /// `Alias=` names.
    pub alias: Vec<String>,
    /// `Also=` units (enabled together by systemctl; reported, not followed).
    pub also: Vec<String>,
    /// True when the text has an `[Install]` section at all.
    pub present: bool,
}

impl Install {
    /// True when enabling would create at least one link.
    pub fn is_empty(&self) -> bool {
        self.wanted_by.is_empty() && self.required_by.is_empty() && self.alias.is_empty()
    }

    /// Adds another `[Install]` (e.g. from a drop-in).
    pub fn extend(&mut self, other: Install) {
        self.wanted_by.extend(other.wanted_by);
        self.required_by.extend(other.required_by);
        self.alias.extend(other.alias);
        self.also.extend(other.also);
        self.present |= other.present;
    }
}

/// Reads the `[Install]` section of unit text.
pub fn parse_install(text: &str) -> Install {
    let mut out = Install::default();
    let mut in_install = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_install = line.starts_with("[Install]");
            out.present |= in_install;
            continue;
        }
        if !in_install || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let list = match key.trim() {
            "WantedBy" => &mut out.wanted_by,
            "RequiredBy" => &mut out.required_by,
            "Alias" => &mut out.alias,
            "Also" => &mut out.also,
            _ => continue,
        };
        let value = value.trim();
        if value.is_empty() {
            list.clear();
        } else {
            list.extend(value.split_whitespace().map(str::to_string));
        }
    }
    out
}

/// `foo@bar.service` → `Some("foo@.service")`; anything else → `None`.
pub fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let dot = rest.rfind('.')?;
    if dot == 0 {
        return None;
    }
    Some(format!("{prefix}@{}", &rest[dot..]))
}

/// A symlink to create: `link` (absolute, in the root) → `target` (absolute, as the booted
/// system sees it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnableLink {
    /// Link path.
    pub link: String,
    /// Link target.
    pub target: String,
}

/// The links `systemctl enable NAME` creates for `install`, pointing at `unit_path`.
pub fn enable_links(name: &str, install: &Install, unit_path: &str) -> Vec<EnableLink> {
    let mut out = Vec::new();
    for (targets, suffix) in [
        (&install.wanted_by, "wants"),
        (&install.required_by, "requires"),
    ] {
        for t in targets {
            out.push(EnableLink {
                link: format!("{UNIT_DIR}/{t}.{suffix}/{name}"),
                target: unit_path.to_string(),
            });
        }
    }
    for a in &install.alias {
        if a != name {
            out.push(EnableLink {
                link: format!("{UNIT_DIR}/{a}"),
                target: unit_path.to_string(),
            });
        }
    }
    out.dedup();
    out
}

/// Preset lines for `(unit, enabled)` pairs, spec 3.x style: sorted by unit, one line per
/// unit (the last setting wins), instances of one template folded into one line
/// (`enable foo@.service a b`).
pub fn preset_lines(units: &[(String, bool)]) -> Vec<String> {
    use std::collections::BTreeMap;
    let mut last: BTreeMap<&str, bool> = BTreeMap::new();
    for (name, on) in units {
        last.insert(name, *on);
    }
    // (verb, template) -> instances
    let mut folded: BTreeMap<(String, bool), Vec<String>> = BTreeMap::new();
    let mut lines = Vec::new();
    for (name, on) in last {
        let verb = if on { "enable" } else { "disable" };
        match (template_of(name), name.split_once('@')) {
            (Some(tpl), Some((_, rest))) => {
                let inst = &rest[..rest.rfind('.').unwrap_or(rest.len())];
                folded.entry((tpl, on)).or_default().push(inst.to_string());
            }
            _ => lines.push(format!("{verb} {name}")),
        }
    }
    for ((tpl, on), insts) in folded {
        let verb = if on { "enable" } else { "disable" };
        lines.push(format!("{verb} {tpl} {}", insts.join(" ")));
    }
    lines.sort_by(|a, b| {
        let key = |l: &str| l.split_whitespace().nth(1).unwrap_or("").to_string();
        key(a).cmp(&key(b))
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a.service",
            "b.timer",
            "x@.service",
            "y@z.socket",
            "-.slice",
        ] {
            assert!(valid_unit_name(ok), "{ok}");
        }
        for bad in [
            "a",
            "a.conf",
            ".service",
            "a.services",
            "a/b.service",
            "a.network",
        ] {
            assert!(!valid_unit_name(bad), "{bad}");
        }
        assert!(valid_dropin_name("10-x.conf"));
        assert!(!valid_dropin_name("10-x"));
        assert!(!valid_dropin_name(".conf"));
    }

    #[test]
    fn contents() {
        assert!(check_contents(
            "[Unit]\nDescription=x\n\n# c\n[Service]\nExecStart=/bin/a \\\n  b\n"
        )
        .is_ok());
        assert!(check_contents("").is_ok());
        assert_eq!(
            check_contents("[Unit\nA=b").unwrap_err(),
            "line 1: unable to find end of section"
        );
        assert!(check_contents("[Unit]\nDescription\n")
            .unwrap_err()
            .contains("unexpected newline"));
        assert!(check_contents(&format!("[Unit]\nA={}", "x".repeat(3000)))
            .unwrap_err()
            .contains("line too long"));
    }

    #[test]
    fn install_and_links() {
        let text = "[Unit]\nA=b\n[Install]\nWantedBy=multi-user.target\nWantedBy=a.target b.target\nRequiredBy=c.target\nAlias=x.service\n";
        let inst = parse_install(text);
        assert_eq!(
            inst.wanted_by,
            ["multi-user.target", "a.target", "b.target"]
        );
        let links = enable_links("e.service", &inst, "/etc/systemd/system/e.service");
        let got: Vec<&str> = links.iter().map(|l| l.link.as_str()).collect();
        assert_eq!(
            got,
            [
                "/etc/systemd/system/multi-user.target.wants/e.service",
                "/etc/systemd/system/a.target.wants/e.service",
                "/etc/systemd/system/b.target.wants/e.service",
                "/etc/systemd/system/c.target.requires/e.service",
                "/etc/systemd/system/x.service",
            ]
        );
        assert!(links
            .iter()
            .all(|l| l.target == "/etc/systemd/system/e.service"));
        assert!(!parse_install("[Service]\nWantedBy=x.target\n").present);
        assert!(parse_install("[Service]\nA=b\n").is_empty());
    }

    #[test]
    fn templates_and_presets() {
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("getty@.service"), None);
        assert_eq!(template_of("plain.service"), None);
        let lines = preset_lines(&[
            ("foo.service".into(), true),
            ("echo@b.service".into(), true),
            ("echo@a.service".into(), true),
            ("bar.service".into(), false),
            ("foo.service".into(), true),
        ]);
        assert_eq!(
            lines,
            [
                "disable bar.service",
                "enable echo@.service a b",
                "enable foo.service"
            ]
        );
    }
}
