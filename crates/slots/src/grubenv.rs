//! The GRUB environment block: a 1024-byte file GRUB's `load_env`/`save_env` read and write in
//! place. It starts with `# GRUB Environment Block\n`, holds `name=value\n` lines and is padded
//! with `#` to exactly 1024 bytes. Pure encode and decode; no I/O.

/// The size GRUB requires.
pub const BLOCK_SIZE: usize = 1024;
/// The header line GRUB checks.
pub const HEADER: &str = "# GRUB Environment Block\n";

/// Why a block could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrubenvError {
    /// Not 1024 bytes.
    #[error("environment block is {0} bytes, GRUB needs exactly 1024")]
    Size(usize),
    /// Missing the `# GRUB Environment Block` line.
    #[error("environment block has no GRUB header")]
    Header,
    /// A line with no `=`, or bytes that are not text.
    #[error("environment block line {0} is damaged")]
    Line(usize),
    /// The variables do not fit in 1024 bytes.
    #[error("variables need {0} bytes, more than a 1024-byte block holds")]
    TooLong(usize),
    /// A name or value GRUB could not read back as written.
    #[error("variable {0:?} has a name or value with characters GRUB would escape")]
    BadVariable(String),
}

/// Decode a block into its variables, in file order.
pub fn decode(block: &[u8]) -> Result<Vec<(String, String)>, GrubenvError> {
    if block.len() != BLOCK_SIZE {
        return Err(GrubenvError::Size(block.len()));
    }
    let text = std::str::from_utf8(block).map_err(|_| GrubenvError::Line(0))?;
    let body = text.strip_prefix(HEADER).ok_or(GrubenvError::Header)?;
    let mut vars = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line.split_once('=').ok_or(GrubenvError::Line(i + 2))?;
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(GrubenvError::Line(i + 2));
        }
        vars.push((name.to_string(), value.to_string()));
    }
    Ok(vars)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Encode variables into a 1024-byte block, `#`-padded.
pub fn encode(vars: &[(&str, &str)]) -> Result<[u8; BLOCK_SIZE], GrubenvError> {
    let mut text = String::from(HEADER);
    for (name, value) in vars {
        let ok_value = value.chars().all(|c| c.is_ascii_graphic() && c != '\\');
        if name.is_empty() || !name.chars().all(is_name_char) || !ok_value {
            return Err(GrubenvError::BadVariable(name.to_string()));
        }
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    if text.len() > BLOCK_SIZE {
        return Err(GrubenvError::TooLong(text.len()));
    }
    let mut block = [b'#'; BLOCK_SIZE];
    block[..text.len()].copy_from_slice(text.as_bytes());
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads_with_hashes() {
        let block = encode(&[("keel_good", "A"), ("keel_next", "B"), ("keel_tries", "3")]).unwrap();
        assert!(block.starts_with(b"# GRUB Environment Block\nkeel_good=A\nkeel_next=B\n"));
        assert_eq!(block[BLOCK_SIZE - 1], b'#');
        let vars = decode(&block).unwrap();
        assert_eq!(
            vars,
            vec![
                ("keel_good".into(), "A".into()),
                ("keel_next".into(), "B".into()),
                ("keel_tries".into(), "3".into())
            ]
        );
    }

    #[test]
    fn reads_what_grub_editenv_writes() {
        // grub-editenv create; grub-editenv set keel_good=B: the header, one line, # padding.
        let mut block = [b'#'; BLOCK_SIZE];
        let text = b"# GRUB Environment Block\nkeel_good=B\n";
        block[..text.len()].copy_from_slice(text);
        assert_eq!(
            decode(&block).unwrap(),
            vec![("keel_good".into(), "B".into())]
        );
    }

    #[test]
    fn damaged_blocks_are_refused() {
        assert_eq!(decode(&[b'#'; 512]), Err(GrubenvError::Size(512)));
        assert_eq!(decode(&[0u8; BLOCK_SIZE]), Err(GrubenvError::Header));
        let mut block = encode(&[("keel_good", "A")]).unwrap();
        block[HEADER.len() + 4] = b'\n'; // cut "keel_good=A" into "keel" + "good=A"
        assert!(matches!(decode(&block), Err(GrubenvError::Line(_))));
    }

    #[test]
    fn refuses_values_grub_would_escape_or_overflow() {
        assert!(encode(&[("x", "a b")]).is_err());
        assert!(encode(&[("x", "a\\b")]).is_err());
        let long = "v".repeat(1100);
        assert!(matches!(
            encode(&[("x", &long)]),
            Err(GrubenvError::TooLong(_))
        ));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Names GRUB reads back as written: ASCII letters, digits, `_`.
        fn name() -> impl Strategy<Value = String> {
            "[A-Za-z0-9_]{1,16}"
        }

        /// Values GRUB reads back as written: printable ASCII without space and `\`.
        fn value() -> impl Strategy<Value = String> {
            r"[!-\[\]-~]{0,24}"
        }

        /// Up to 40 variables, in any order, names repeated or not: sometimes more than a
        /// block holds, so the overflow check is exercised too.
        fn vars() -> impl Strategy<Value = Vec<(String, String)>> {
            prop::collection::vec((name(), value()), 0..40)
        }

        /// One line of a block some other writer produced.
        #[derive(Debug, Clone)]
        enum Line {
            Comment(String),
            Var(String, String),
            Junk(String),
        }

        fn line() -> impl Strategy<Value = Line> {
            prop_oneof![
                1 => "#[ -~]{0,20}".prop_map(Line::Comment),
                4 => (name(), "[ -~]{0,20}").prop_map(|(n, v)| Line::Var(n, v)),
                1 => "[^
            ]{0,20}".prop_map(Line::Junk),
            ]
        }

        fn refs(vars: &[(String, String)]) -> Vec<(&str, &str)> {
            vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever fits encodes into exactly one 1024-byte block, header first and
            /// `#`-padded, and decodes to the same variables in the same order; encoding
            /// that again gives the same bytes. Whatever does not fit is refused with its size.
            #[test]
            fn variables_round_trip_or_are_refused_as_too_long(vars in vars()) {
                let needed = HEADER.len()
                    + vars.iter().map(|(n, v)| n.len() + v.len() + 2).sum::<usize>();
                match encode(&refs(&vars)) {
                    Ok(block) => {
                        prop_assert!(needed <= BLOCK_SIZE);
                        prop_assert!(block.starts_with(HEADER.as_bytes()));
                        prop_assert!(block[needed..].iter().all(|&b| b == b'#'));
                        let decoded = decode(&block).unwrap();
                        prop_assert_eq!(&decoded, &vars);
                        prop_assert_eq!(encode(&refs(&decoded)).unwrap(), block);
                    }
                    Err(GrubenvError::TooLong(n)) => {
                        prop_assert!(needed > BLOCK_SIZE);
                        prop_assert_eq!(n, needed);
                    }
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
            }

            /// A value with a character GRUB would escape (space, tab, newline, `\`, non-ASCII)
            /// is refused, naming its variable, wherever it sits among good ones.
            #[test]
            fn values_grub_would_escape_are_refused(
                mut vars in prop::collection::vec((name(), value()), 0..8),
                bad in r"[ \t\n\\é]",
                at in any::<prop::sample::Index>(),
                cut in any::<prop::sample::Index>(),
            ) {
                let (name, mut value) = (String::from("bad_var"), String::from("abc"));
                value.insert_str(cut.index(value.len() + 1), &bad);
                let at = at.index(vars.len() + 1);
                vars.insert(at, (name.clone(), value));
                prop_assert_eq!(encode(&refs(&vars)), Err(GrubenvError::BadVariable(name)));
            }

            /// A block as another writer may leave it (comments, variables whose values GRUB
            /// would have escaped, junk lines) decodes without a panic; with no junk line, to
            /// exactly its variables, each value taken verbatim after the first `=`.
            #[test]
            fn written_blocks_decode_to_their_variables(
                lines in prop::collection::vec(line(), 0..48),
            ) {
                let mut text = String::from(HEADER);
                for l in &lines {
                    match l {
                        Line::Comment(c) | Line::Junk(c) => text.push_str(c),
                        Line::Var(n, v) => text.push_str(&format!("{n}={v}")),
                    }
                    text.push('\n');
                }
                let mut block = text.into_bytes();
                let fits = block.len() <= BLOCK_SIZE;
                block.resize(BLOCK_SIZE, b'#');
                let decoded = decode(&block);
                if fits && !lines.iter().any(|l| matches!(l, Line::Junk(_))) {
                    let vars: Vec<(String, String)> = lines
                        .iter()
                        .filter_map(|l| match l {
                            Line::Var(n, v) => Some((n.clone(), v.clone())),
                            _ => None,
                        })
                        .collect();
                    prop_assert_eq!(decoded, Ok(vars));
                }
            }
        }
    }
}
