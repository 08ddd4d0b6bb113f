//! The kernel command line, as far as first boot cares: whether this is a first boot and
//! where the config comes from. Pure: the text comes in as a string.
//!
//! The command line is split and read by the rules of [`slots::kargs`], shared by every Keel
//! program that reads it. Arguments understood:
//!  * the flags `ignition.firstboot` (Fedora CoreOS, PXE) and `coreos.first_boot` (Container
//!    Linux; GRUB adds `=detected` when its stamp file exists, PXE users pass `=1`): on bare or
//!    with any value but an empty one or `0`, `no`, `off`, `false`, `n`, `f`; the last one given
//!    decides;
//!  * `ignition.config.url=URL` (Ignition ≥ 0.32) and `coreos.config.url=URL` (Container
//!    Linux), the last non-empty one of each (`key=` names no URL and is ignored); if both are
//!    given, `ignition.config.url` wins, as in Ignition's cmdline provider.

use slots::kargs;

/// Splits a kernel command line into `(key, value)` pairs: [`slots::kargs::split`], the
/// parser every Keel program shares.
pub use slots::kargs::split as parse;

/// What the kernel command line says about first boot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstbootArgs {
    /// `ignition.firstboot` or a true `coreos.first_boot`.
    pub firstboot: bool,
    /// The config URL, if one is given.
    pub config_url: Option<String>,
}

/// Reads the first-boot arguments out of the command line `text`.
pub fn firstboot_args(text: &str) -> FirstbootArgs {
    let mut args = FirstbootArgs::default();
    let mut ignition_url = None;
    let mut coreos_url = None;
    for (k, v) in kargs::split(text) {
        let url = kargs::value(v.as_deref()).map(str::to_string);
        match k.as_str() {
            "ignition.firstboot" | "coreos.first_boot" | "flatcar.first_boot" => {
                args.firstboot = kargs::flag(v.as_deref())
            }
            "ignition.config.url" => ignition_url = url.or(ignition_url),
            "coreos.config.url" | "flatcar.config.url" => coreos_url = url.or(coreos_url),
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
            Case {
                cmdline: "coreos.first_boot=",
                firstboot: false,
            },
            Case {
                cmdline: "ignition.firstboot=OFF",
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
        let a = firstboot_args("ignition.config.url=http://a/c.ign ignition.config.url=");
        assert_eq!(a.config_url.as_deref(), Some("http://a/c.ign"));
    }
}
