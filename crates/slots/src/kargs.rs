//! The kernel command line: the one parser every Keel program uses to read `/proc/cmdline`
//! (the updater and agent through [`crate::booted`], the installer's unattended install,
//! Ignition's first boot), and the rules the shell scripts that read it follow too (the
//! initramfs's `/init`, the install and autologin generators).
//!
//! Splitting ([`split`]), as the kernel does:
//!  * arguments are separated by whitespace outside double quotes;
//!  * double quotes group whitespace into an argument and are removed: `key="a b"` and
//!    `"key=a b"` are both `("key", Some("a b"))`;
//!  * an argument splits at its first `=`: `key=a=b` is `("key", Some("a=b"))`;
//!  * `key=` is `("key", Some(""))`, a key with an empty value; a bare `key` is `("key", None)`.
//!
//! Reading, as the kernel and systemd read them:
//!  * a flag (`keel.live`, `keel.break`, `keel.autologin`, `ignition.firstboot`,
//!    `coreos.inst.skip_reboot`, ...) is on when given bare or with any value but an empty one
//!    or a false word (`0`, `n`, `no`, `f`, `false`, `off`, in any case): [`flag`]. So `key=`
//!    is off: neither the kernel (`kstrtobool`) nor systemd (`parse_boolean`) reads an empty
//!    value as true. Other values count as on, so `coreos.first_boot=detected` (GRUB's way of
//!    saying it) is. The last occurrence decides.
//!  * a value (`keel.slot=`, a device, a URL) is given only by a non-empty one: [`value`]. A
//!    bare `key` or `key=` names nothing, and that occurrence is ignored (systemd: "missing
//!    argument, ignoring"), as is a value the reader cannot use (`keel.slot=C`); of the rest,
//!    the last occurrence wins. A reader that acts on the whole disk (the unattended install)
//!    refuses such an occurrence instead of ignoring it.
//!
//! The shell scripts split on whitespace without quote handling (their arguments never hold
//! spaces) and spell the flag rule as `karg_on`, checked against [`flag`] by image-build's tests.

/// The values that turn a flag off, compared without regard to case; the empty value too.
pub const FALSE_WORDS: [&str; 6] = ["0", "n", "no", "f", "false", "off"];

/// Split a kernel command line into `(key, value)` pairs, in order: see the module doc.
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

/// Whether a flag given with `value` (`None` for a bare key) is on: bare, or with any value but
/// an empty one or one of [`FALSE_WORDS`].
pub fn flag(value: Option<&str>) -> bool {
    match value {
        None => true,
        Some(v) => !v.is_empty() && !FALSE_WORDS.iter().any(|w| v.eq_ignore_ascii_case(w)),
    }
}

/// The value an occurrence gives: `None` for a bare key and for `key=`, which name nothing.
pub fn value(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// Whether the flag `key` is on in `cmdline`: its last occurrence decides ([`flag`]); off when
/// absent.
pub fn flag_on(cmdline: &str, key: &str) -> bool {
    split(cmdline)
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .is_some_and(|(_, v)| flag(v.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn splits_words_and_keeps_quoted_spaces() {
        let got = split("  ro keel.slot=A  sshkey=\"ssh-ed25519 AAAA c\" x=\n");
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
    fn an_empty_value_is_no_flag_and_no_value() {
        for (v, on) in [
            (None, true),
            (Some(""), false),
            (Some("1"), true),
            (Some("yes"), true),
            (Some("detected"), true),
            (Some("0"), false),
            (Some("no"), false),
            (Some("NO"), false),
            (Some("Off"), false),
            (Some("false"), false),
            (Some("n"), false),
            (Some("f"), false),
        ] {
            assert_eq!(flag(v), on, "{v:?}");
        }
        assert_eq!(value(None), None);
        assert_eq!(value(Some("")), None);
        assert_eq!(value(Some("x")), Some("x"));
    }

    #[test]
    fn the_last_occurrence_of_a_flag_decides() {
        assert!(flag_on("quiet keel.break", "keel.break"));
        assert!(!flag_on("keel.break keel.break=0", "keel.break"));
        assert!(!flag_on("keel.break=", "keel.break"));
        assert!(flag_on("keel.break= keel.break=1", "keel.break"));
        assert!(!flag_on("keel.breakx", "keel.break"));
        assert!(!flag_on("x=\"keel.break\"", "keel.break"));
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
