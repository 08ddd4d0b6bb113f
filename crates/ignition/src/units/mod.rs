//! systemd units, pure: name and content checks, the `[Install]` section, the enablement
//! symlinks `systemctl enable` would create, and preset lines.
//!
//! Enabling a unit creates, for every `WantedBy=T` / `RequiredBy=T` of its `[Install]`
//! section, `/etc/systemd/system/T.wants/NAME` (or `T.requires/NAME`) pointing at the unit
//! file, and for every `Alias=A` a link `/etc/systemd/system/A`. An instance `foo@bar.service`
//! takes `[Install]` from its template `foo@.service` and its links point at the template.
//! Ignition itself only writes preset lines; Keel writes both, so the unit is enabled in the
//! tree even if presets are never applied.

pub mod name;
pub mod networkd;

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

/// The longest line unit text may have, in bytes (go-systemd's `SYSTEMD_LINE_MAX`): systemd
/// used to cut longer lines short, so Ignition refuses them.
pub const LINE_MAX: usize = 2048;

/// One `Name=value` of unit text, with the section it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitOption {
    /// The section (`Unit` for `[Unit]`).
    pub section: String,
    /// The option's name.
    pub name: String,
    /// The value (continuation lines kept, joined by newlines).
    pub value: String,
}

/// Reads unit text as go-systemd's unit deserializer does (Ignition validates unit and
/// drop-in contents with it), so that Keel accepts and refuses what Ignition does:
///  * before the first section header, everything is skipped but a `[`, which opens a
///    section, and `#` or `;`, which comment out the rest of the line (a comment line ending
///    in `\` goes on on the next line): a drop-in may start with any text, as systemd, which
///    ignores assignments outside a section, allows;
///  * a section name runs to the first `]`; only white space may follow it on its line;
///  * in a section, a line is blank, a comment, a section header or `Name=value`, whose value
///    goes on on the next line when it ends in `\`;
///  * a line of [`LINE_MAX`] bytes or more is refused. (go-systemd checks this only where its
///    4 KiB read buffer happens to hold the whole line; the rule here does not depend on
///    buffering.)
///
/// Errors name the line (1-based) where the lexer stopped.
pub fn parse_options(text: &str) -> Result<Vec<UnitOption>, String> {
    for (i, line) in text.split('\n').enumerate() {
        if line.split('\r').any(|l| l.len() >= LINE_MAX) {
            return Err(format!(
                "line {}: line too long (max {LINE_MAX} bytes)",
                i + 1
            ));
        }
    }
    let mut lx = Lexer {
        text,
        pos: 0,
        line: 1,
    };
    let mut options = Vec::new();
    let mut section: Option<String> = None;
    while let Some(c) = lx.next_char() {
        match (c, &section) {
            ('[', _) => {
                let line = lx.line;
                let Some(len) = lx.rest().find(']') else {
                    return Err(format!("line {line}: unable to find end of section"));
                };
                let name = lx.take(len);
                lx.take(1);
                let garbage = lx.rest_of_line().0.trim();
                if !garbage.is_empty() {
                    return Err(format!(
                        "line {line}: found garbage after section name {name}: {garbage:?}"
                    ));
                }
                section = Some(name.to_string());
            }
            ('#' | ';', _) => lx.skip_comment(),
            (_, None) => {}
            (c, Some(_)) if c.is_whitespace() => {}
            (c, Some(s)) => {
                let line = lx.line;
                let mut name = String::from(c);
                loop {
                    match lx.next_char() {
                        Some('=') => break,
                        Some('\n' | '\r') => {
                            return Err(format!(
                            "line {line}: unexpected newline encountered while parsing option name"
                        ))
                        }
                        Some(c) => name.push(c),
                        None => {
                            return Err(format!(
                                "line {line}: unexpected end of text while parsing option name"
                            ))
                        }
                    }
                }
                options.push(UnitOption {
                    section: s.clone(),
                    name: name.trim().to_string(),
                    value: lx.value(),
                });
            }
        }
    }
    Ok(options)
}

/// Checks unit text; see [`parse_options`].
pub fn check_contents(text: &str) -> Result<(), String> {
    parse_options(text).map(drop)
}

/// A cursor over unit text that counts lines.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// The next `len` bytes (a char boundary), consumed.
    fn take(&mut self, len: usize) -> &'a str {
        let s = &self.rest()[..len];
        self.pos += len;
        self.line += s.matches('\n').count();
        s
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.take(c.len_utf8());
        Some(c)
    }

    /// The rest of the line, its newline consumed; a `\r` before the newline stays (as in
    /// go-systemd). The flag says the text ended.
    fn rest_of_line(&mut self) -> (&'a str, bool) {
        match self.rest().find('\n') {
            Some(i) => {
                let line = self.take(i);
                self.take(1);
                (line, false)
            }
            None => {
                let line = self.take(self.rest().len());
                (line.strip_suffix('\r').unwrap_or(line), true)
            }
        }
    }

    /// A comment: the rest of the line, and the next ones while a line ends in `\` (one
    /// trailing space allowed).
    fn skip_comment(&mut self) {
        loop {
            let (line, eof) = self.rest_of_line();
            let line = line.strip_suffix(' ').unwrap_or(line);
            if eof || !line.ends_with('\\') {
                return;
            }
        }
    }

    /// An option's value: the rest of the line, and the next non-blank ones while a line ends
    /// in `\`.
    fn value(&mut self) -> String {
        let mut value = String::new();
        loop {
            let (line, eof) = self.rest_of_line();
            if line.trim().is_empty() {
                break;
            }
            value.push_str(line);
            if !line.ends_with('\\') || eof {
                break;
            }
            value.push('\n');
        }
        if value.ends_with('\n') {
            format!("{}\n", value.trim())
        } else {
            value.trim().to_string()
        }
    }
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
        assert!(check_contents(&format!("[Unit]\nA={}\n", "x".repeat(2045))).is_ok());
        assert_eq!(
            check_contents(&format!("[Unit]\nA={}\n", "x".repeat(2046))),
            Err("line 2: line too long (max 2048 bytes)".into())
        );
    }

    /// Text before the first section header is skipped, as go-systemd's lexer (and so
    /// Ignition's validation) and systemd skip it: a drop-in or unit may start with prose.
    #[test]
    fn text_before_the_first_section_is_ignored() {
        for ok in [
            "This drop-in raises the limit for the database.\n[Service]\nLimitNOFILE=65536\n",
            "Environment=A=b\n[Service]\nExecStart=/bin/true\n",
            "\n\n   \n[Unit]\nDescription=x\n",
            "; note\n# another \\\n  continued comment without an equals sign\n[Unit]\nA=b\n",
            "no section at all, only words\n",
        ] {
            assert_eq!(check_contents(ok), Ok(()), "{ok:?}");
        }
        let opts =
            parse_options("x=1\nwords\n[Unit]\nDescription=d\n[Install]\nWantedBy=a.target\n")
                .unwrap();
        let got: Vec<(&str, &str, &str)> = opts
            .iter()
            .map(|o| (o.section.as_str(), o.name.as_str(), o.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("Unit", "Description", "d"),
                ("Install", "WantedBy", "a.target")
            ]
        );
    }

    /// The rest of go-systemd's grammar: section names end at the first `]` with nothing but
    /// white space after it; comments and values go on after a trailing backslash.
    #[test]
    fn sections_comments_and_continuations() {
        assert_eq!(
            check_contents("[Unit] trailing\nA=b\n"),
            Err("line 1: found garbage after section name Unit: \"trailing\"".into())
        );
        assert_eq!(
            check_contents("intro [see below\n"),
            Err("line 1: unable to find end of section".into())
        );
        assert_eq!(
            check_contents("[Unit]\nA=b\nDescription\n"),
            Err("line 3: unexpected newline encountered while parsing option name".into())
        );
        assert!(check_contents("[Unit]\nA")
            .unwrap_err()
            .starts_with("line 2: unexpected end of text"));
        // A comment line ending in a backslash swallows the next line.
        assert_eq!(
            check_contents("[Unit]\n# c \\\nnot an option\nA=b\n"),
            Ok(())
        );
        let opts = parse_options("[Service]\nExecStart=/bin/a \\\n  b\nX = y \n").unwrap();
        assert_eq!(opts[0].value, "/bin/a \\\n  b");
        assert_eq!((opts[1].name.as_str(), opts[1].value.as_str()), ("X", "y"));
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
