//! The kernel command line, as far as first boot cares: whether this is a first boot and
//! where the config comes from. Pure: the text comes in as a string.
//!
//! Arguments understood (later ones win, as the kernel's own parsing does):
//!  * `ignition.firstboot` (Fedora CoreOS, PXE) and `coreos.first_boot=1|true|yes|detected`
//!    (Container Linux; GRUB adds `=detected` when its stamp file exists, PXE users pass `=1`);
//!    a bare `coreos.first_boot` counts too, `=0|false|no` does not;
//!  * `ignition.config.url=URL` (Ignition ≥ 0.32) and `coreos.config.url=URL` (Container
//!    Linux); if both are given, `ignition.config.url` wins, as in Ignition's cmdline provider.

/// Splits a kernel command line into `(key, value)` pairs. Double quotes group a value that
/// holds spaces (`key="a b"`); they are removed, as the kernel does.
pub fn parse(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_quotes = false;
    let mut started = false;
    let flush = |word: &mut String, out: &mut Vec<(String, Option<String>)>| {
        let w = std::mem::take(word);
        match w.split_once('=') {
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((w, None)),
        }
    };
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    flush(&mut word, &mut out);
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        flush(&mut word, &mut out);
    }
    out
}

/// What the kernel command line says about first boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstbootArgs {
    /// `ignition.firstboot` or a true `coreos.first_boot`.
    pub firstboot: bool,
    /// The config URL, if one is given.
    pub config_url: Option<String>,
}

fn truthy(v: Option<&str>) -> bool {
    match v {
        None => true,
        Some(v) => !matches!(
            v.to_ascii_lowercase().as_str(),
            "0" | "false" | "no" | "off" | "n"
        ),
    }
}

/// Reads the first-boot arguments out of the command line `text`.
pub fn firstboot_args(text: &str) -> FirstbootArgs {
    let mut args = FirstbootArgs::default();
    let mut ignition_url = None;
    let mut coreos_url = None;
    for (k, v) in parse(text) {
        match k.as_str() {
            "ignition.firstboot" => args.firstboot = truthy(v.as_deref()),
            "coreos.first_boot" | "flatcar.first_boot" => args.firstboot = truthy(v.as_deref()),
            "ignition.config.url" => ignition_url = v.filter(|u| !u.is_empty()),
            "coreos.config.url" | "flatcar.config.url" => coreos_url = v.filter(|u| !u.is_empty()),
            _ => {}
        }
    }
    args.config_url = ignition_url.or(coreos_url);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_keeps_quoted_spaces() {
        let got = parse("  ro keel.slot=A  sshkey=\"ssh-ed25519 AAAA c\" x=\n");
        assert_eq!(
            got,
            [
                ("ro".to_string(), None),
                ("keel.slot".to_string(), Some("A".to_string())),
                ("sshkey".to_string(), Some("ssh-ed25519 AAAA c".to_string())),
                ("x".to_string(), Some(String::new())),
            ]
        );
    }

    #[test]
    fn first_boot_flags() {
        struct Case {
            cmdline: &'static str,
            firstboot: bool,
        }
        let cases = [
            Case {
                cmdline: "keel.slot=A console=ttyS0",
                firstboot: false,
            },
            Case {
                cmdline: "ignition.firstboot",
                firstboot: true,
            },
            Case {
                cmdline: "coreos.first_boot=1",
                firstboot: true,
            },
            Case {
                cmdline: "coreos.first_boot=detected",
                firstboot: true,
            },
            Case {
                cmdline: "coreos.first_boot=0",
                firstboot: false,
            },
            Case {
                cmdline: "coreos.first_boot=1 coreos.first_boot=no",
                firstboot: false,
            },
            Case {
                cmdline: "coreos.first_boot_x=1",
                firstboot: false,
            },
        ];
        for c in cases {
            assert_eq!(
                firstboot_args(c.cmdline).firstboot,
                c.firstboot,
                "{}",
                c.cmdline
            );
        }
    }

    #[test]
    fn config_url_prefers_ignition_over_coreos() {
        let a = firstboot_args("coreos.config.url=http://a/c.ign ignition.config.url=oem:///x.ign");
        assert_eq!(a.config_url.as_deref(), Some("oem:///x.ign"));
        let a = firstboot_args("coreos.config.url=http://a/c.ign?x=1");
        assert_eq!(a.config_url.as_deref(), Some("http://a/c.ign?x=1"));
        let a = firstboot_args("ignition.config.url= coreos.config.url=data:,{}");
        assert_eq!(a.config_url.as_deref(), Some("data:,{}"));
        assert_eq!(firstboot_args("quiet").config_url, None);
    }
}
