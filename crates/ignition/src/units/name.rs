//! systemd unit names as systemd itself checks them, for the names that become paths when a
//! unit is enabled: `[Install]` `WantedBy=`, `RequiredBy=` (a link in `NAME.wants/` or
//! `NAME.requires/`) and `Alias=` (a link named after the alias).
//!
//!  * [`parse`] follows systemd's `unit_name_is_valid`: at most 255 bytes, a known unit type
//!    suffix, the characters `[A-Za-z0-9:_.\-@\\]`, and `@` either closing a template name
//!    (`foo@.service`) or opening an instance (`foo@bar.service`). Keel also refuses `..`
//!    anywhere, so no name can climb out of the unit directory.
//!  * [`check_alias`] follows `unit_validate_alias_symlink_and_warn`: only some unit types may
//!    have aliases or templates, the suffix must be the unit's, and a template's alias is a
//!    template (an instance's alias an instance of the same instance).
//!  * [`resolve_install`] expands the specifiers that depend on the unit name (`%n %N %p %i
//!    %j %%`), checks every name, and instantiates template names for an instance unit, as
//!    `systemctl enable` does. Other specifiers (`%H`, `%u`, ...) depend on the machine and are
//!    refused.

use crate::units::Install;

/// The longest unit name systemd accepts (`UNIT_NAME_MAX` - 1).
pub const NAME_MAX: usize = 255;

/// Unit types systemd knows (the suffix after the last dot).
pub const TYPES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// Unit types that may have an `Alias=` (`unit_type_may_alias`).
const MAY_ALIAS: &[&str] = &["service", "socket", "target", "device", "timer", "path"];

/// Unit types that may be templates (`unit_type_may_template`).
const MAY_TEMPLATE: &[&str] = &["service", "socket", "target", "timer", "path"];

/// Plain, template or instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// `foo.service`.
    Plain,
    /// `foo@.service`.
    Template,
    /// `foo@bar.service`.
    Instance,
}

impl NameKind {
    fn as_str(self) -> &'static str {
        match self {
            NameKind::Plain => "plain",
            NameKind::Template => "template",
            NameKind::Instance => "instance",
        }
    }
}

/// A valid unit name, split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitName<'a> {
    /// The part before `@` (or before the suffix).
    pub prefix: &'a str,
    /// The instance of `foo@bar.service` (`bar`); empty for a template.
    pub instance: Option<&'a str>,
    /// The unit type, without the dot.
    pub suffix: &'a str,
    /// Plain, template or instance.
    pub kind: NameKind,
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\' | '@')
}

/// Parses `name` as systemd would; the error says what is wrong with it.
pub fn parse(name: &str) -> Result<UnitName<'_>, String> {
    if name.is_empty() {
        return Err("empty unit name".into());
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "unit name is longer than {NAME_MAX} bytes ({})",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| !allowed(*c) && *c != '.') {
        let what = match c {
            '/' => "\"/\" (unit names are file names, not paths)".to_string(),
            '\0' => "a NUL byte".to_string(),
            c => format!("{c:?}"),
        };
        return Err(format!(
            "not a valid unit name: contains {what}; allowed are letters, digits and \":-_.\\@\""
        ));
    }
    if name.contains("..") {
        return Err("not a valid unit name: contains \"..\"".into());
    }
    let Some(dot) = name.rfind('.') else {
        return Err("not a valid unit name: no unit type suffix (.service, .target, ...)".into());
    };
    let suffix = &name[dot + 1..];
    if !TYPES.contains(&suffix) {
        return Err(format!(
            "not a valid unit name: unknown unit type \".{suffix}\" (known: .{})",
            TYPES.join(", .")
        ));
    }
    let stem = &name[..dot];
    if stem.is_empty() {
        return Err("not a valid unit name: nothing before the suffix".into());
    }
    Ok(match stem.find('@') {
        None => UnitName {
            prefix: stem,
            instance: None,
            suffix,
            kind: NameKind::Plain,
        },
        Some(0) => return Err("not a valid unit name: starts with \"@\"".into()),
        Some(at) if at + 1 == stem.len() => UnitName {
            prefix: &stem[..at],
            instance: Some(""),
            suffix,
            kind: NameKind::Template,
        },
        Some(at) => UnitName {
            prefix: &stem[..at],
            instance: Some(&stem[at + 1..]),
            suffix,
            kind: NameKind::Instance,
        },
    })
}

/// Checks that `alias` may be an `Alias=` of `unit`.
pub fn check_alias(unit: &str, alias: &str) -> Result<(), String> {
    let a = parse(alias)?;
    let u = parse(unit)?;
    if !MAY_ALIAS.contains(&a.suffix) {
        return Err(format!(
            "aliases (symlinks) are not allowed for .{} units",
            a.suffix
        ));
    }
    if a.kind != NameKind::Plain && !MAY_TEMPLATE.contains(&a.suffix) {
        return Err(format!("templates are not allowed for .{} units", a.suffix));
    }
    if a.suffix != u.suffix {
        return Err(format!(
            "an alias must have the same suffix as the unit (.{})",
            u.suffix
        ));
    }
    let compatible = match (u.kind, a.kind) {
        (x, y) if x == y => x != NameKind::Instance || a.instance == u.instance,
        // An instance alias of a template, or a template alias an instance fills in.
        (NameKind::Template, NameKind::Instance) | (NameKind::Instance, NameKind::Template) => true,
        _ => false,
    };
    if !compatible {
        return Err(
            if u.kind == NameKind::Instance && a.kind == NameKind::Instance {
                format!(
                    "the alias's instance {:?} is not the unit's instance {:?}",
                    a.instance.unwrap_or(""),
                    u.instance.unwrap_or("")
                )
            } else {
                format!(
                    "an alias of a {} unit name must be a {} name too, not a {} one",
                    u.kind.as_str(),
                    u.kind.as_str(),
                    a.kind.as_str()
                )
            },
        );
    }
    Ok(())
}

/// Expands the specifiers of `value` that depend only on the unit name.
pub fn expand(value: &str, unit: &str) -> Result<String, String> {
    if !value.contains('%') {
        return Ok(value.to_string());
    }
    let u = parse(unit)?;
    let full_prefix = u.prefix;
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('n') => out.push_str(unit),
            Some('N') => out.push_str(&unit[..unit.len() - u.suffix.len() - 1]),
            Some('p') => out.push_str(full_prefix),
            Some('i') => out.push_str(u.instance.unwrap_or("")),
            Some('j') => out.push_str(full_prefix.rsplit('-').next().unwrap_or(full_prefix)),
            Some(s) => {
                return Err(format!(
                    "specifier %{s} is not supported here (only %n %N %p %i %j %%)"
                ))
            }
            None => return Err("a lone % at the end".into()),
        }
    }
    Ok(out)
}

/// A bad name in an `[Install]` section.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value}: {reason}")]
pub struct InstallError {
    /// `WantedBy`, `RequiredBy` or `Alias`.
    pub key: &'static str,
    /// The name as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

/// `foo@.target` filled with `instance` → `foo@instance.target`.
fn instantiate(template: &str, instance: &str) -> String {
    match template.split_once("@.") {
        Some((p, s)) => format!("{p}@{instance}.{s}"),
        None => template.to_string(),
    }
}

/// Expands and checks every `WantedBy=`, `RequiredBy=` and `Alias=` name of `install` for
/// `unit`. Returns the names `systemctl enable UNIT` would link, or every bad one.
pub fn resolve_install(unit: &str, install: &Install) -> Result<Install, Vec<InstallError>> {
    let mut errors = Vec::new();
    let mut out = Install {
        also: install.also.clone(),
        present: install.present,
        ..Default::default()
    };
    let instance = parse(unit)
        .ok()
        .filter(|u| u.kind == NameKind::Instance)
        .and_then(|u| u.instance);
    let lists: [(&'static str, &Vec<String>, &str); 3] = [
        ("WantedBy", &install.wanted_by, ".wants"),
        ("RequiredBy", &install.required_by, ".requires"),
        ("Alias", &install.alias, ""),
    ];
    for (key, values, dir_suffix) in lists {
        for value in values {
            let fail = |reason: String| InstallError {
                key,
                value: value.clone(),
                reason,
            };
            let name = match expand(value, unit) {
                Ok(n) => n,
                Err(e) => {
                    errors.push(fail(e));
                    continue;
                }
            };
            let checked = if key == "Alias" {
                check_alias(unit, &name)
            } else {
                parse(&name).map(|_| ()).and_then(|()| {
                    if name.len() + dir_suffix.len() > NAME_MAX {
                        Err(format!(
                            "{name}{dir_suffix} is longer than {NAME_MAX} bytes"
                        ))
                    } else {
                        Ok(())
                    }
                })
            };
            if let Err(e) = checked {
                errors.push(fail(e));
                continue;
            }
            let name = match (instance, parse(&name).map(|n| n.kind)) {
                (Some(i), Ok(NameKind::Template)) => instantiate(&name, i),
                _ => name,
            };
            match key {
                "WantedBy" => out.wanted_by.push(name),
                "RequiredBy" => out.required_by.push(name),
                _ => out.alias.push(name),
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_like_systemd() {
        for ok in [
            "a.service",
            "foo@.service",
            "foo@bar.service",
            "foo@b@r.socket",
            "-.slice",
            "dev-disk-by\\x2dlabel-X.device",
            "a:b_c.target",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            ".service",
            "a.conf",
            "a.snapshot",
            "@a.service",
            "a/b.service",
            "../../etc",
            "a..b.service",
            "sp ace.service",
            "nul\0.service",
            "percent%.service",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(parse(&format!("{}.service", "a".repeat(247))).is_ok());
        assert!(parse(&format!("{}.service", "a".repeat(248))).is_err());
        let n = parse("getty@tty1.service").unwrap();
        assert_eq!(
            (n.prefix, n.instance, n.suffix, n.kind),
            ("getty", Some("tty1"), "service", NameKind::Instance)
        );
    }

    #[test]
    fn aliases_like_systemd() {
        let table = [
            ("a.service", "b.service", true),
            ("a.service", "b.socket", false),
            ("a@.service", "b@.service", true),
            ("a@.service", "b.service", false),
            ("a.service", "b@.service", false),
            ("a@x.service", "b@x.service", true),
            ("a@x.service", "b@y.service", false),
            ("a@x.service", "b@.service", true),
            ("a@.service", "b@x.service", true),
            ("a.mount", "b.mount", false),
            ("a.device", "b.device", true),
            ("a@.slice", "b@.slice", false),
        ];
        for (unit, alias, ok) in table {
            assert_eq!(check_alias(unit, alias).is_ok(), ok, "{unit} {alias}");
        }
    }

    #[test]
    fn specifiers_and_instances() {
        assert_eq!(
            expand("%p-%i.%j/%N/%n%%", "my-app@x.service").unwrap(),
            "my-app-x.app/my-app@x/my-app@x.service%"
        );
        assert!(expand("%H.service", "a.service").is_err());
        let install = Install {
            wanted_by: vec!["multi-user.target".into(), "grp@.target".into()],
            alias: vec!["alt@.service".into(), "%p-b@%i.service".into()],
            ..Default::default()
        };
        let r = resolve_install("app@x.service", &install).unwrap();
        assert_eq!(r.wanted_by, ["multi-user.target", "grp@x.target"]);
        assert_eq!(r.alias, ["alt@x.service", "app-b@x.service"]);
        let bad = Install {
            alias: vec!["../../../etc".into()],
            required_by: vec!["x".into()],
            ..Default::default()
        };
        let errs = resolve_install("app.service", &bad).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(text.len(), 2);
        assert!(text[0].starts_with("RequiredBy=x: "), "{text:?}");
        assert!(text[1].starts_with("Alias=../../../etc: "), "{text:?}");
    }
}
