//! systemd units and drop-ins (names, text, `[Install]` names), and spec 2.x networkd units.

use std::collections::HashSet;

use super::{unusable_path, NAME_MAX, V};
use crate::model::*;
use crate::report::{JsonPath, Kind};
use crate::units::{self, name as unit_name};

impl V<'_> {
    fn unit_text(&mut self, text: Option<&str>, at: &JsonPath) {
        if let Some(t) = text {
            if let Err(e) = units::check_contents(t) {
                self.r
                    .error_msg(at, Kind::UnitContents, format!("invalid unit content: {e}"));
            }
        }
    }

    pub(super) fn units(&mut self, list: &[Unit]) {
        for u in list {
            match u.name.as_deref() {
                None | Some("") => self.r.error(&u.at.key("name"), Kind::NameMissing),
                Some(n) if !units::valid_unit_name(n) => self.r.error_msg(
                    &u.at.key("name"),
                    Kind::UnitExtension,
                    format!("invalid systemd unit extension: {n:?}"),
                ),
                Some(n) => self.unit_name(u, n),
            }
            self.unit_text(u.contents.as_deref(), &u.at.key("contents"));
            if let (Some(n), Some(_)) = (u.name.as_deref().filter(|n| !n.is_empty()), u.enabled) {
                self.install_names(n, u.contents.as_deref(), &u.at.key("contents"));
                for d in &u.dropins {
                    self.install_names(n, d.contents.as_deref(), &d.at.key("contents"));
                }
            }
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

    /// A unit name Ignition accepts (its suffix is known): it must also be a file name, and
    /// systemd should be able to load it.
    fn unit_name(&mut self, u: &Unit, n: &str) {
        let at = u.at.key("name");
        if let Some(why) = unusable_path(n).or_else(|| {
            (!u.dropins.is_empty() && n.len() + ".d".len() > NAME_MAX).then(|| {
                format!("is too long for its drop-in directory {n}.d ({NAME_MAX} bytes at most)")
            })
        }) {
            self.r
                .error_msg(&at, Kind::UnusablePath, format!("unit name {n:?} {why}"));
        } else if let Err(why) = unit_name::parse(n) {
            self.r.warn_msg(
                &at,
                Kind::UnitExtension,
                format!("systemd will not load a unit named {n:?}: {why}"),
            );
        }
    }

    /// `WantedBy=`, `RequiredBy=` and `Alias=` of an enabled (or disabled) unit become
    /// links in the unit directory: each must be a unit name that fits the unit.
    fn install_names(&mut self, unit: &str, text: Option<&str>, at: &JsonPath) {
        let Some(text) = text else { return };
        if let Err(errors) = unit_name::resolve_install(unit, &units::parse_install(text)) {
            for e in errors {
                self.r
                    .error_msg(at, Kind::InstallName, format!("unit {unit}: [Install] {e}"));
            }
        }
    }

    fn dropin(&mut self, d: &Dropin, what: &str) {
        match d.name.as_deref() {
            None | Some("") => self.r.error(&d.at.key("name"), Kind::NameMissing),
            Some(n) if unusable_path(n).is_some() => self.r.error_msg(
                &d.at.key("name"),
                Kind::UnusablePath,
                format!(
                    "drop-in name {n:?} {}",
                    unusable_path(n).unwrap_or_default()
                ),
            ),
            Some(n) if !units::valid_dropin_name(n) => self.r.error_msg(
                &d.at.key("name"),
                Kind::DropinExtension,
                format!("invalid {what} drop-in extension: {n:?} must end in .conf"),
            ),
            _ => {}
        }
        self.unit_text(d.contents.as_deref(), &d.at.key("contents"));
    }

    pub(super) fn networkd(&mut self, list: &[NetworkdUnit]) {
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
                Some(n) => {
                    if let Some(why) = unusable_path(n) {
                        self.r.error_msg(
                            &u.at.key("name"),
                            Kind::UnusablePath,
                            format!("networkd unit name {n:?} {why}"),
                        );
                    }
                }
            }
            self.unit_text(u.contents.as_deref(), &u.at.key("contents"));
            for d in &u.dropins {
                self.dropin(d, "networkd");
            }
        }
    }
}
