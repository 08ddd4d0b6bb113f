//! The unattended install: `coreos.inst.*` kernel arguments of a live boot, mapped onto the same
//! [`InstallArgs`] as the command line (as coreos-installer's generator does).
//!
//! | kernel argument | becomes |
//! |---|---|
//! | `coreos.inst.install_dev=/dev/vda` (bare `vda` accepted) | `-d /dev/vda`; without it, no install |
//! | `coreos.inst.ignition_url=URL` | `-I URL` (http allowed, as on CL) |
//! | `coreos.inst.image_url=URL` | `-u URL` |
//! | `coreos.inst.base_url=URL` | `-b URL` |
//! | `coreos.inst.version=V`, `coreos.inst.channel=C` | `-V V`, `-C C` |
//! | `coreos.inst.insecure` | `--insecure` (an image without a valid signature is installed, with a warning) |
//! | `coreos.inst.skip_reboot` | read by the generator: no reboot after the install |
//! | (always) | `--fetch-retries infinite`: a PXE-booted machine waits for its server |

use anyhow::{bail, Result};

use crate::cli::{InstallArgs, Retries};

/// Split a kernel command line into (key, value) pairs; double quotes group spaces, as the
/// kernel parses them (`key="a b"`).
pub fn split(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

/// Whether a boolean karg is on: present without a value, or with any value but
/// `0`, `no`, `off`, `false` or nothing.
fn truthy(v: &Option<String>) -> bool {
    match v.as_deref() {
        None => true,
        Some(s) => !matches!(s, "" | "0" | "no" | "off" | "false"),
    }
}

/// What the kernel arguments ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unattended {
    /// The installer's arguments.
    pub args: InstallArgs,
    /// `coreos.inst.skip_reboot`.
    pub skip_reboot: bool,
}

/// The install the kernel command line asks for, or `None` when it has no
/// `coreos.inst.install_dev`. The last occurrence of an argument wins, as in the kernel.
pub fn from_cmdline(cmdline: &str) -> Result<Option<Unattended>> {
    let mut args = InstallArgs {
        fetch_retries: Retries::Infinite,
        ..InstallArgs::default()
    };
    let mut skip_reboot = false;
    let mut dev = None;
    for (key, value) in split(cmdline) {
        let Some(name) = key.strip_prefix("coreos.inst.") else {
            continue;
        };
        let need = |v: &Option<String>| -> Result<String> {
            match v.as_deref() {
                Some(s) if !s.is_empty() => Ok(s.to_string()),
                _ => bail!("kernel argument {key} needs a value ({key}=...)"),
            }
        };
        match name {
            "install_dev" => dev = Some(need(&value)?),
            "ignition_url" => {
                let url = need(&value)?;
                // coreos-installer ignores `skip`, the old "no config" marker.
                args.ignition_url = (url != "skip").then_some(url);
            }
            "image_url" => args.image_url = Some(need(&value)?),
            "base_url" => args.base_url = Some(need(&value)?),
            "version" => args.os_version = Some(need(&value)?),
            "channel" => args.channel = Some(need(&value)?),
            "skip_reboot" => skip_reboot = truthy(&value),
            "insecure" => args.insecure = truthy(&value),
            // Accepted elsewhere or obsolete (`coreos.inst=yes`): not ours to refuse.
            _ => {}
        }
    }
    let Some(dev) = dev else { return Ok(None) };
    let dev = if dev.starts_with('/') {
        dev
    } else {
        format!("/dev/{dev}")
    };
    args.device = Some(dev.into());
    if args.image_url.is_some() {
        args.base_url = None;
    }
    Ok(Some(Unattended { args, skip_reboot }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn command_lines_split_like_the_kernel_does() {
        let got = split(r#"BOOT_IMAGE=/vmlinuz  quiet keel.live x="a b" coreos.inst.skip_reboot"#);
        let want: Vec<(String, Option<String>)> = vec![
            ("BOOT_IMAGE".into(), Some("/vmlinuz".into())),
            ("quiet".into(), None),
            ("keel.live".into(), None),
            ("x".into(), Some("a b".into())),
            ("coreos.inst.skip_reboot".into(), None),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn kernel_arguments_become_installer_arguments() {
        struct Case {
            cmdline: &'static str,
            device: Option<&'static str>,
            ignition_url: Option<&'static str>,
            base_url: Option<&'static str>,
            image_url: Option<&'static str>,
            version: Option<&'static str>,
            skip_reboot: bool,
        }
        let none = Case {
            cmdline: "",
            device: None,
            ignition_url: None,
            base_url: None,
            image_url: None,
            version: None,
            skip_reboot: false,
        };
        let cases = [
            Case { cmdline: "keel.live console=ttyS0", ..none },
            Case { cmdline: "keel.live coreos.inst.ignition_url=http://h/c.ign", ..none },
            Case {
                cmdline: "keel.live coreos.inst.install_dev=/dev/vda coreos.inst.ignition_url=http://10.0.2.2:8/cfg.ign coreos.inst.base_url=http://10.0.2.2:8 coreos.inst.version=0.1.0",
                device: Some("/dev/vda"),
                ignition_url: Some("http://10.0.2.2:8/cfg.ign"),
                base_url: Some("http://10.0.2.2:8"),
                version: Some("0.1.0"),
                ..none
            },
            Case { cmdline: "coreos.inst.install_dev=sda coreos.inst.skip_reboot", device: Some("/dev/sda"), skip_reboot: true, ..none },
            Case { cmdline: "coreos.inst.install_dev=sda coreos.inst.skip_reboot=0", device: Some("/dev/sda"), ..none },
            Case { cmdline: "coreos.inst.install_dev=sda coreos.inst.ignition_url=skip", device: Some("/dev/sda"), ..none },
            Case {
                cmdline: "coreos.inst.install_dev=/dev/sdb coreos.inst.install_dev=/dev/vdb coreos.inst.base_url=http://a coreos.inst.image_url=http://h/i.gz",
                device: Some("/dev/vdb"),
                image_url: Some("http://h/i.gz"),
                ..none
            },
        ];
        for c in cases {
            let got = from_cmdline(c.cmdline).unwrap();
            let Some(dev) = c.device else {
                assert_eq!(got, None, "{}", c.cmdline);
                continue;
            };
            let u = got.unwrap_or_else(|| panic!("no install from {}", c.cmdline));
            assert_eq!(u.args.device, Some(PathBuf::from(dev)), "{}", c.cmdline);
            assert_eq!(
                u.args.ignition_url.as_deref(),
                c.ignition_url,
                "{}",
                c.cmdline
            );
            assert_eq!(u.args.base_url.as_deref(), c.base_url, "{}", c.cmdline);
            assert_eq!(u.args.image_url.as_deref(), c.image_url, "{}", c.cmdline);
            assert_eq!(u.args.os_version.as_deref(), c.version, "{}", c.cmdline);
            assert_eq!(u.args.fetch_retries, Retries::Infinite);
            assert_eq!(u.skip_reboot, c.skip_reboot, "{}", c.cmdline);
            // Whatever the kernel asked for must also be a valid plan.
            crate::cli::plan(&u.args, &crate::live::Running::default()).unwrap();
        }
    }

    #[test]
    fn insecure_is_only_ever_asked_for_explicitly() {
        for (cmdline, want) in [
            ("coreos.inst.install_dev=sda", false),
            ("coreos.inst.install_dev=sda coreos.inst.insecure", true),
            ("coreos.inst.install_dev=sda coreos.inst.insecure=0", false),
        ] {
            let u = from_cmdline(cmdline).unwrap().unwrap();
            assert_eq!(u.args.insecure, want, "{cmdline}");
            assert_eq!(
                crate::cli::plan(&u.args, &crate::live::Running::default())
                    .unwrap()
                    .insecure,
                want
            );
        }
    }

    #[test]
    fn arguments_without_their_value_are_refused() {
        for cmdline in [
            "coreos.inst.install_dev",
            "coreos.inst.install_dev= x",
            "coreos.inst.install_dev=/dev/vda coreos.inst.ignition_url",
        ] {
            let err = from_cmdline(cmdline).unwrap_err().to_string();
            assert!(err.contains("needs a value"), "{cmdline}: {err}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// How one argument is written: bare, with its value quoted, or quoted whole
        /// (`"key=a b"`, which the kernel also accepts).
        #[derive(Debug, Clone, Copy)]
        enum Quote {
            None,
            Value,
            Whole,
        }

        /// Kernel-argument text for `(key, value)`; a value with whitespace is always quoted.
        fn render(key: &str, value: &Option<String>, quote: Quote) -> String {
            let Some(v) = value else {
                return key.to_string();
            };
            let quote = match quote {
                Quote::None if v.chars().any(char::is_whitespace) => Quote::Value,
                q => q,
            };
            match quote {
                Quote::None => format!("{key}={v}"),
                Quote::Value => format!("{key}=\"{v}\""),
                Quote::Whole => format!("\"{key}={v}\""),
            }
        }

        fn quote() -> impl Strategy<Value = Quote> {
            prop_oneof![Just(Quote::None), Just(Quote::Value), Just(Quote::Whole)]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any arguments (keys of printable ASCII without `"` and `=`, values of anything
            /// but `"`, spaces and tabs and newlines included) written as a command line
            /// split back into the same (key, value) pairs, in order.
            #[test]
            fn rendered_arguments_split_back(
                args in prop::collection::vec(
                    ("[!#-<>-~]{1,12}", prop::option::of("[^\"]{0,16}"), quote()),
                    0..12,
                ),
                seps in prop::collection::vec("[ \t]{1,3}", 12),
                tail in "[ \t]{0,2}\n?",
            ) {
                let mut line = String::new();
                for ((k, v, q), sep) in args.iter().zip(&seps) {
                    line.push_str(&render(k, v, *q));
                    line.push_str(sep);
                }
                line.push_str(&tail);
                let want: Vec<(String, Option<String>)> =
                    args.into_iter().map(|(k, v, _)| (k, v)).collect();
                prop_assert_eq!(split(&line), want);
            }
        }
    }
}
