//! Which slot the running system booted, from the kernel command line GRUB wrote.

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

/// Read `keel.slot=A|B` or `keel.live` from kernel command-line text.
pub fn from_cmdline(cmdline: &str) -> Booted {
    let mut booted = Booted::Unknown;
    for arg in cmdline.split_whitespace() {
        if arg == "keel.live" {
            return Booted::Live;
        }
        if let Some(slot) = arg.strip_prefix("keel.slot=").and_then(|v| v.parse().ok()) {
            booted = Booted::Slot(slot);
        }
    }
    booted
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
            /// `keel.live`.
            Live,
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
                    Arg::Live => "keel.live".into(),
                    Arg::Other(o) => o.clone(),
                }
            }
        }

        fn arg() -> impl Strategy<Value = Arg> {
            prop_oneof![
                (prop::sample::select(Slot::ALL.to_vec()), any::<bool>())
                    .prop_map(|(s, lower)| Arg::Slot(s, lower)),
                "([C-Zc-z0-9]|[AaBb][A-Za-z0-9=]+)?".prop_map(Arg::BadSlot),
                Just(Arg::Live),
                "(keel\\.)?[a-z_.]{1,12}(=[!-~]{0,16})?"
                    .prop_filter("not a keel marker", |o| {
                        o != "keel.live" && !o.starts_with("keel.slot=")
                    })
                    .prop_map(Arg::Other),
            ]
        }

        /// What the command line says, by the rule: `keel.live` anywhere wins, else the last
        /// valid `keel.slot=`, else nothing.
        fn expected(args: &[Arg]) -> Booted {
            if args.iter().any(|a| matches!(a, Arg::Live)) {
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
