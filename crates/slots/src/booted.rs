//! Which slot the running system booted, from the kernel command line GRUB wrote.

use crate::kargs;
use crate::layout::Slot;

/// How the running system was booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Booted {
    /// From a disk slot.
    Slot(Slot),
    /// The live system (PXE): the OS runs from RAM and has no slots.
    Live,
    /// No Keel argument on the command line.
    Unknown,
}

/// Read `keel.slot=A|B` or the flag `keel.live` from kernel command-line text, by the rules of
/// [`kargs`]: the live system when `keel.live` is on, else the slot the last `keel.slot=` that
/// names one gives (`keel.slot=`, `keel.slot=C` are ignored), else [`Booted::Unknown`].
pub fn from_cmdline(cmdline: &str) -> Booted {
    let mut live = false;
    let mut slot = None;
    for (key, value) in kargs::split(cmdline) {
        match key.as_str() {
            "keel.live" => live = kargs::flag(value.as_deref()),
            "keel.slot" => {
                if let Some(s) = kargs::value(value.as_deref()).and_then(|v| v.parse().ok()) {
                    slot = Some(s);
                }
            }
            _ => {}
        }
    }
    match (live, slot) {
        (true, _) => Booted::Live,
        (false, Some(s)) => Booted::Slot(s),
        (false, None) => Booted::Unknown,
    }
}

impl std::fmt::Display for Booted {
    /// `A`, `B`, `live` or `unknown`, as status output spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Booted::Slot(s) => write!(f, "{s}"),
            Booted::Live => f.write_str("live"),
            Booted::Unknown => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slot_and_live_markers() {
        assert_eq!(
            from_cmdline("BOOT_IMAGE=/keel/B/vmlinuz keel.slot=B keel.usr=PARTUUID=x quiet"),
            Booted::Slot(Slot::B)
        );
        assert_eq!(from_cmdline("console=ttyS0 keel.live"), Booted::Live);
        assert_eq!(from_cmdline("root=/dev/sda1 keel.slot=C"), Booted::Unknown);
        assert_eq!(
            from_cmdline("keel.slot=A keel.slot="),
            Booted::Slot(Slot::A)
        );
        // keel.live is a flag: `keel.live=` and `keel.live=0` are not live.
        assert_eq!(
            from_cmdline("keel.slot=B keel.live=0"),
            Booted::Slot(Slot::B)
        );
        assert_eq!(from_cmdline("keel.live="), Booted::Unknown);
        assert_eq!(from_cmdline("keel.live=1"), Booted::Live);
        // Quoted text is one argument's value, not arguments of its own.
        assert_eq!(
            from_cmdline(r#"keel.slot=A x="keel.live keel.slot=B""#),
            Booted::Slot(Slot::A)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// One kernel argument, as GRUB or an operator may write it.
        #[derive(Debug, Clone)]
        enum Arg {
            /// `keel.slot=A`, `keel.slot=b`, ...
            Slot(Slot, bool),
            /// `keel.slot=` with anything but a slot letter.
            BadSlot(String),
            /// `keel.live`, or `keel.live=` with a value (`1`, `0`, `no`, nothing, ...).
            Live(Option<String>),
            /// Anything else: `quiet`, `root=/dev/sda1`, `keel.usr=PARTUUID=...`, `keel.livex`.
            Other(String),
        }

        impl Arg {
            fn render(&self) -> String {
                match self {
                    Arg::Slot(s, lower) if *lower => {
                        format!("keel.slot={}", s.letter().to_lowercase())
                    }
                    Arg::Slot(s, _) => format!("keel.slot={s}"),
                    Arg::BadSlot(v) => format!("keel.slot={v}"),
                    Arg::Live(None) => "keel.live".into(),
                    Arg::Live(Some(v)) => format!("keel.live={v}"),
                    Arg::Other(o) => o.clone(),
                }
            }
        }

        fn arg() -> impl Strategy<Value = Arg> {
            prop_oneof![
                (prop::sample::select(Slot::ALL.to_vec()), any::<bool>())
                    .prop_map(|(s, lower)| Arg::Slot(s, lower)),
                "([C-Zc-z0-9]|[AaBb][A-Za-z0-9=]+)?".prop_map(Arg::BadSlot),
                prop::option::of("|0|1|no|NO|off|false|yes|detected|[a-z0-9]{1,4}")
                    .prop_map(Arg::Live),
                // No `"`: a double quote groups what follows into this argument.
                "(keel\\.)?[a-z_.]{1,12}(=[!#-~]{0,16})?"
                    .prop_filter("not a keel marker", |o| {
                        o != "keel.live"
                            && !o.starts_with("keel.live=")
                            && !o.starts_with("keel.slot=")
                    })
                    .prop_map(Arg::Other),
            ]
        }

        /// What the command line says, by the rule: live when the last `keel.live` is bare or
        /// has a value other than an empty one or a false word, else the last valid
        /// `keel.slot=`, else nothing.
        fn expected(args: &[Arg]) -> Booted {
            let live = args.iter().rev().find_map(|a| match a {
                Arg::Live(v) => Some(v),
                _ => None,
            });
            let on = |v: &Option<String>| match v.as_deref() {
                None => true,
                Some(v) => !["", "0", "n", "no", "f", "false", "off"]
                    .contains(&v.to_ascii_lowercase().as_str()),
            };
            if live.is_some_and(on) {
                return Booted::Live;
            }
            args.iter()
                .rev()
                .find_map(|a| match a {
                    Arg::Slot(s, _) => Some(Booted::Slot(*s)),
                    _ => None,
                })
                .unwrap_or(Booted::Unknown)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any command line, its arguments separated by any run of spaces, tabs or a
            /// trailing newline (as /proc/cmdline ends), reads as the booted slot it names.
            #[test]
            fn command_lines_read_as_the_slot_they_name(
                args in prop::collection::vec((arg(), "[ \t]{1,3}"), 0..12),
                lead in "[ \t]{0,2}",
                tail in "[ \t]{0,2}\n?",
            ) {
                let mut line = lead;
                for (a, sep) in &args {
                    line.push_str(&a.render());
                    line.push_str(sep);
                }
                line.push_str(&tail);
                let args: Vec<Arg> = args.into_iter().map(|(a, _)| a).collect();
                prop_assert_eq!(from_cmdline(&line), expected(&args));
            }
        }
    }
}
