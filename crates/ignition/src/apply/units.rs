//! systemd units, drop-ins, masks, enablement links and presets; spec 2.x networkd files.

use std::path::Path;

use super::run::Run;
use super::tree::Part;
use super::{io_err, ActionKind, ApplyError};
use crate::units::{self, name as unit_name};

impl Run {
    fn write_text(
        &mut self,
        at: &str,
        path: &str,
        text: &str,
        kind: ActionKind,
    ) -> Result<(), ApplyError> {
        let host = self.resolve(at, path, true)?;
        self.write_host(at, &host, &[Part::bytes(text)], 0o644, None)?;
        self.act(kind, path, "");
        Ok(())
    }

    pub(super) fn unit(&mut self, at: &str, name: &str, contents: &str) -> Result<(), ApplyError> {
        let path = format!("{}/{name}", units::UNIT_DIR);
        self.write_text(at, &path, contents, ActionKind::WriteUnit)
    }

    pub(super) fn dropin(
        &mut self,
        at: &str,
        unit: &str,
        name: &str,
        contents: &str,
    ) -> Result<(), ApplyError> {
        let path = format!("{}/{unit}.d/{name}", units::UNIT_DIR);
        self.write_text(at, &path, contents, ActionKind::WriteDropin)
    }

    pub(super) fn networkd(
        &mut self,
        at: &str,
        path: &str,
        contents: &str,
    ) -> Result<(), ApplyError> {
        self.write_text(at, path, contents, ActionKind::WriteNetworkd)
    }

    pub(super) fn mask(&mut self, at: &str, name: &str, mask: bool) -> Result<(), ApplyError> {
        let path = format!("{}/{name}", units::UNIT_DIR);
        let host = self.resolve(at, &path, true)?;
        let is_masked = self
            .tree
            .read_link(&host)
            .is_ok_and(|t| t == Path::new("/dev/null"));
        if mask {
            if !is_masked {
                self.tree.remove(&host).map_err(io_err(at, &host))?;
                self.tree
                    .symlink(Path::new("/dev/null"), &host)
                    .map_err(io_err(at, &host))?;
            }
            self.act(ActionKind::MaskUnit, path, "-> /dev/null");
        } else if is_masked {
            self.tree.remove(&host).map_err(io_err(at, &host))?;
            self.act(ActionKind::UnmaskUnit, path, "");
        }
        Ok(())
    }

    pub(super) fn presets(&mut self, lines: &[String]) -> Result<(), ApplyError> {
        let at = "$.systemd.units";
        let mut text = self
            .read_followed(at, units::PRESET_FILE)?
            .unwrap_or_default();
        let host = self.resolve(at, units::PRESET_FILE, true)?;
        let mut added = 0;
        for l in lines {
            if !text.lines().any(|x| x == l) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(l);
                text.push('\n');
                added += 1;
            }
        }
        self.write_host(at, &host, &[Part::bytes(text)], 0o644, None)?;
        self.act(
            ActionKind::WritePresets,
            units::PRESET_FILE,
            format!("{added} new lines"),
        );
        Ok(())
    }

    /// Finds the unit file for `name` in the root: its path as the booted system sees it
    /// and its text.
    fn find_unit(&mut self, at: &str, name: &str) -> Option<(String, String)> {
        let mut names = vec![name.to_string()];
        names.extend(units::template_of(name));
        for n in &names {
            for dir in
                std::iter::once(units::UNIT_DIR).chain(units::VENDOR_UNIT_DIRS.iter().copied())
            {
                let path = format!("{dir}/{n}");
                let Ok(host) = self.resolve(at, &path, false) else {
                    continue;
                };
                if self.tree.lstat(&host).is_none_or(|m| m.is_symlink()) {
                    // Missing, or a mask or an alias: not the unit file itself.
                    continue;
                }
                if let Ok(Some(text)) = self.read_text(at, &host) {
                    return Some((path, text));
                }
            }
        }
        None
    }

    pub(super) fn enable(
        &mut self,
        at: &str,
        name: &str,
        enabled: bool,
        contents: Option<&str>,
        dropins: &[String],
    ) -> Result<(), ApplyError> {
        let found = match contents {
            Some(c) => {
                // An instance written with contents is its own unit file.
                Some((format!("{}/{name}", units::UNIT_DIR), c.to_string()))
            }
            None => self.find_unit(at, name),
        };
        let mut raw = found
            .as_ref()
            .map(|(_, text)| units::parse_install(text))
            .unwrap_or_default();
        for d in dropins {
            raw.extend(units::parse_install(d));
        }
        // The names become paths: only unit names that fit this unit (validation checked
        // the config's own texts; this also covers unit files found in the root).
        let install =
            unit_name::resolve_install(name, &raw).map_err(|errors| ApplyError::InstallNames {
                at: at.to_string(),
                unit: name.to_string(),
                file: found
                    .as_ref()
                    .map_or_else(|| "its drop-ins".to_string(), |(p, _)| p.clone()),
                errors,
            })?;
        if enabled {
            let Some((unit_path, _)) = &found else {
                self.warn(format!(
                    "{at}: unit {name} is not in the root (neither /etc/systemd/system nor /usr/lib/systemd/system); only a preset line enables it at boot"
                ));
                return Ok(());
            };
            if install.is_empty() {
                self.warn(format!(
                    "{at}: unit {name} has no WantedBy/RequiredBy/Alias in [Install]; only a preset line is written"
                ));
                return Ok(());
            }
            for l in units::enable_links(name, &install, unit_path) {
                let host = self.resolve(at, &l.link, true)?;
                let same = self
                    .tree
                    .read_link(&host)
                    .is_ok_and(|t| t == Path::new(&l.target));
                if !same {
                    self.tree.remove(&host).map_err(io_err(at, &host))?;
                    self.tree
                        .symlink(Path::new(&l.target), &host)
                        .map_err(io_err(at, &host))?;
                }
                self.act(ActionKind::EnableUnit, &l.link, format!("-> {}", l.target));
            }
            if !install.also.is_empty() {
                self.warn(format!(
                    "{at}: {name} lists Also={}; those units are not enabled by this config",
                    install.also.join(" ")
                ));
            }
        } else {
            // Remove every enablement link named after the unit, plus its aliases.
            let mut links: Vec<String> = units::enable_links(name, &install, "")
                .into_iter()
                .map(|l| l.link)
                .collect();
            if let Ok(dir) = self.resolve_dir(at, units::UNIT_DIR, false) {
                for n in self.tree.list(&dir).unwrap_or_default() {
                    let n = n.to_string_lossy().to_string();
                    if (n.ends_with(".wants") || n.ends_with(".requires"))
                        && self.tree.lstat(&dir.join(&n).join(name)).is_some()
                    {
                        links.push(format!("{}/{n}/{name}", units::UNIT_DIR));
                    }
                }
            }
            links.sort();
            links.dedup();
            for l in links {
                let host = self.resolve(at, &l, false)?;
                if self.tree.lstat(&host).is_some_and(|m| m.is_symlink()) {
                    self.tree.remove(&host).map_err(io_err(at, &host))?;
                    self.act(ActionKind::DisableUnit, l, "");
                }
            }
        }
        Ok(())
    }
}
