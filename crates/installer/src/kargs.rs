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
//!
//! The command line is read by the rules of [`slots::kargs`]: `coreos.inst.skip_reboot` and
//! `coreos.inst.insecure` are flags (on bare or with a value but an empty one or `0`, `no`,
//! `off`, `false`, `n`, `f`); an argument that takes a value and is given bare or as `key=` is
//! refused (the install writes a whole disk, so a half-written request is not guessed at).

use anyhow::{bail, Result};
use slots::kargs;

use crate::cli::{InstallArgs, Retries};

/// The kernel command-line splitter, [`slots::kargs::split`]: the rules of [`slots::kargs`]
/// hold here too (flags off with `key=`, a value needs a non-empty one).
pub use slots::kargs::split;

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
            match kargs::value(v.as_deref()) {
                Some(s) => Ok(s.to_string()),
                None => bail!("kernel argument {key} needs a value ({key}=...)"),
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
            "skip_reboot" => skip_reboot = kargs::flag(value.as_deref()),
            "insecure" => args.insecure = kargs::flag(value.as_deref()),
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
            Case { cmdline: "coreos.inst.install_dev=sda coreos.inst.skip_reboot=", device: Some("/dev/sda"), ..none },
            Case { cmdline: "coreos.inst.install_dev=sda coreos.inst.skip_reboot=OFF", device: Some("/dev/sda"), ..none },
            Case { cmdline: "coreos.inst.install_dev=sda coreos.inst.skip_reboot=1", device: Some("/dev/sda"), skip_reboot: true, ..none },
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
            ("coreos.inst.install_dev=sda coreos.inst.insecure=", false),
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
}
