//! The GRUB environment block: the file GRUB's `load_env`/`save_env` read and write in place. It
//! starts with `# GRUB Environment Block\n`, holds `name=value\n` lines and is padded with `#`
//! (Keel's copies are exactly 1024 bytes). Pure encode and decode; no I/O.
//!
//! Reading follows GRUB 2.06 byte for byte (`grub-core/lib/envblk.c`, the code `load_env`,
//! `save_env` and `grub-editenv` share), so the updater sees what GRUB sees in any file:
//!  * the block is refused only when its first 25 bytes are not the header or it has no byte
//!    after the header; its size is otherwise free (GRUB reads a 512- or 2048-byte file too);
//!  * a line starting with `#` is a comment, and so is every line a `\` at its end continues;
//!  * anything else is a name up to the next `=`, *across newlines*: a blank line or a line
//!    without `=` becomes the front of the next variable's name (`junk\nkeel_good`), hiding it;
//!  * a value runs to the next newline not escaped by `\`; `\x` stands for `x`;
//!  * a variable whose value reaches the end of the block without a newline, and everything
//!    after it, is dropped;
//!  * names and values are C strings: a NUL byte ends them;
//!  * nothing is trimmed (`A ` and `A\r` are not `A`), nothing is case-folded, duplicates are
//!    all passed on in file order and `load_env` keeps the last.
//!
//! Writing ([`encode`]) produces only what every reader takes back verbatim; [`set`] is GRUB's
//! own in-place update (what `save_env` does at boot), so tests can follow a boot's writes.

use std::collections::BTreeMap;

/// The size of Keel's blocks (and of `grub-editenv create`'s).
pub const BLOCK_SIZE: usize = 1024;
/// The header line GRUB checks.
pub const HEADER: &str = "# GRUB Environment Block\n";
/// The shortest block GRUB opens: the header and one byte more (`sizeof` the signature with its
/// NUL, in `grub_envblk_open`).
pub const MIN_SIZE: usize = HEADER.len() + 1;

/// Why a block could not be read or written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrubenvError {
    /// Shorter than GRUB opens.
    #[error("environment block is {0} bytes; GRUB opens none shorter than {MIN_SIZE}")]
    Size(usize),
    /// Missing the `# GRUB Environment Block` line.
    #[error("environment block has no GRUB header")]
    Header,
    /// A variable GRUB reads whose name or value is not UTF-8 ([`decode`] only; [`decode_bytes`]
    /// takes any bytes).
    #[error("environment block variable {0:?} is not UTF-8 text")]
    NotText(String),
    /// The variables do not fit in 1024 bytes.
    #[error("variables need {0} bytes, more than a 1024-byte block holds")]
    TooLong(usize),
    /// A name or value GRUB could not read back as written.
    #[error("variable {0:?} has a name or value with characters GRUB would escape")]
    BadVariable(String),
}

/// One variable as GRUB's iterator hands it on: name and unescaped value, each cut at a NUL.
pub type RawVar = (Vec<u8>, Vec<u8>);

/// Check the header as `grub_envblk_open` does.
fn open(block: &[u8]) -> Result<(), GrubenvError> {
    if block.len() < MIN_SIZE {
        return Err(GrubenvError::Size(block.len()));
    }
    if !block.starts_with(HEADER.as_bytes()) {
        return Err(GrubenvError::Header);
    }
    Ok(())
}

/// `find_next_line`: from `p`, the index after the next newline not escaped by `\` (past the
/// end of the block when there is none).
fn next_line(block: &[u8], mut p: usize) -> usize {
    while p < block.len() {
        match block[p] {
            b'\\' => p += 2,
            b'\n' => break,
            _ => p += 1,
        }
    }
    p + 1
}

/// A C string's view of bytes: up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or_default()
}

/// Every variable in the block, in file order and with duplicates, exactly as GRUB's
/// `grub_envblk_iterate` hands them to `load_env` and `grub-editenv list`.
pub fn decode_bytes(block: &[u8]) -> Result<Vec<RawVar>, GrubenvError> {
    open(block)?;
    let end = block.len();
    let mut vars = Vec::new();
    let mut p = HEADER.len();
    while p < end {
        if block[p] != b'#' {
            let name_start = p;
            while p < end && block[p] != b'=' {
                p += 1;
            }
            if p == end {
                break; // a name without `=`: GRUB stops here
            }
            let name = &block[name_start..p];
            p += 1;
            let mut value = Vec::new();
            loop {
                match block.get(p) {
                    None => return Ok(vars), // no newline before the end: GRUB stops here
                    Some(b'\n') => break,
                    Some(b'\\') => {
                        if p + 1 >= end {
                            return Ok(vars);
                        }
                        value.push(block[p + 1]);
                        p += 2;
                    }
                    Some(&b) => {
                        value.push(b);
                        p += 1;
                    }
                }
            }
            vars.push((c_str(name).to_vec(), c_str(&value).to_vec()));
        }
        p = next_line(block, p);
    }
    Ok(vars)
}

/// [`decode_bytes`], for blocks whose variables are text: the same variables as strings, or
/// [`GrubenvError::NotText`] naming the first that is not UTF-8.
pub fn decode(block: &[u8]) -> Result<Vec<(String, String)>, GrubenvError> {
    decode_bytes(block)?
        .into_iter()
        .map(|(name, value)| match (String::from_utf8(name), value) {
            (Ok(name), value) => match String::from_utf8(value) {
                Ok(value) => Ok((name, value)),
                Err(_) => Err(GrubenvError::NotText(name)),
            },
            (Err(e), _) => Err(GrubenvError::NotText(
                String::from_utf8_lossy(e.as_bytes()).into_owned(),
            )),
        })
        .collect()
}

/// What `load_env --file F NAME...` leaves set from the block: each named variable's last
/// value (a later duplicate overwrites an earlier one); names not in the block are absent.
pub fn load_env(block: &[u8], names: &[&str]) -> Result<BTreeMap<String, Vec<u8>>, GrubenvError> {
    let mut set = BTreeMap::new();
    for (name, value) in decode_bytes(block)? {
        if let Some(n) = names.iter().find(|n| n.as_bytes() == name.as_slice()) {
            set.insert(n.to_string(), value);
        }
    }
    Ok(set)
}

/// GRUB's `grub_envblk_set`, as `save_env` runs it on each variable before writing the block
/// back in place: replace the first `NAME=` line's value (moving what follows and taking from
/// or giving back to the `#` padding), or append `NAME=value` where the padding starts. Returns
/// false, leaving the block as GRUB would have discarded it, where GRUB's returns 0: the block
/// does not open, its text does not end in a newline before the padding, or there is no room.
/// The size of the block never changes.
pub fn set(block: &mut [u8], name: &str, value: &[u8]) -> bool {
    if open(block).is_err() {
        return false;
    }
    let end = block.len();
    let name = name.as_bytes();
    let nl = name.len();
    let escaped: Vec<u8> = value
        .iter()
        .flat_map(|&b| {
            if b == b'\\' || b == b'\n' {
                vec![b'\\', b]
            } else {
                vec![b]
            }
        })
        .collect();
    let vl = escaped.len();

    // The free space: the `#` run at the end, after the last newline.
    let mut space = end - 1;
    while block[space] == b'#' {
        space -= 1; // stops at the header's newline at the latest
    }
    if block[space] != b'\n' {
        return false;
    }
    space += 1;

    let mut p = HEADER.len();
    let mut at = None;
    while p + nl + 1 < space {
        if &block[p..p + nl] == name && block[p + nl] == b'=' {
            at = Some(p + nl + 1);
            break;
        }
        p = next_line(block, p);
    }
    let p = match at {
        Some(p) => {
            let mut len = 0;
            while p + len < end && block[p + len] != b'\n' {
                len += if block[p + len] == b'\\' { 2 } else { 1 };
            }
            if p + len >= end {
                return false;
            }
            if vl > len && end - space < vl - len {
                return false;
            }
            if vl < len {
                // Move what follows back and fill the bytes freed at the end with `#` (GRUB
                // 2.06; older copies of envblk.c fill from `space + len - vl`, past the block).
                block.copy_within(p + len..end, p + vl);
                block[end - (len - vl)..].fill(b'#');
            } else {
                block.copy_within(p + len..end - (vl - len), p + vl);
            }
            p
        }
        None => {
            if end - space < nl + 1 + vl + 1 {
                return false;
            }
            block[space..space + nl].copy_from_slice(name);
            block[space + nl] = b'=';
            space + nl + 1
        }
    };
    block[p..p + vl].copy_from_slice(&escaped);
    block[p + vl] = b'\n';
    true
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Encode variables into a 1024-byte block, `#`-padded. Names are ASCII letters, digits and `_`;
/// values printable ASCII without space and `\`: what every reader takes back verbatim.
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

    /// A block of `text` after the header, `#`-padded to 1024 bytes.
    fn block(text: &[u8]) -> Vec<u8> {
        let mut b = HEADER.as_bytes().to_vec();
        b.extend_from_slice(text);
        b.resize(BLOCK_SIZE, b'#');
        b
    }

    fn raw(vars: &[(&str, &str)]) -> Vec<RawVar> {
        vars.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

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
        // grub-editenv create; grub-editenv set keel_good=B: the header, Debian's warning
        // comment, one line, # padding.
        let b = block(
            b"# WARNING: Do not edit this file by tools other than grub-editenv!!!\nkeel_good=B\n",
        );
        assert_eq!(decode(&b).unwrap(), vec![("keel_good".into(), "B".into())]);
    }

    #[test]
    fn only_a_missing_header_or_a_block_too_short_is_refused() {
        assert_eq!(decode(&[b'#'; 20]), Err(GrubenvError::Size(20)));
        assert_eq!(decode(HEADER.as_bytes()), Err(GrubenvError::Size(25)));
        assert_eq!(decode(&[0u8; BLOCK_SIZE]), Err(GrubenvError::Header));
        assert_eq!(
            decode(b"# GRUB Environment Block\nk=v\n"),
            Ok(vec![("k".into(), "v".into())]),
            "any size from 26 bytes on"
        );
        let mut big = block(b"keel_good=B\n");
        big.resize(4096, b'#');
        assert_eq!(decode(&big).unwrap().len(), 1);
    }

    #[test]
    fn grub_quirks() {
        type Case<'a> = (&'a [u8], &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            // duplicates are all passed on; load_env keeps the last
            (b"k=1\nk=2\n", &[("k", "1"), ("k", "2")]),
            // a blank line or junk line glues onto the next name
            (b"\nkeel_good=A\n", &[("\nkeel_good", "A")]),
            (b"junk\nkeel_good=A\n", &[("junk\nkeel_good", "A")]),
            // nothing is trimmed
            (
                b"keel_good=A \n keel_next=B\r\n",
                &[("keel_good", "A "), (" keel_next", "B\r")],
            ),
            // escapes: \x is x, an escaped newline continues the value
            (b"k=\\A\nv=a\\\nb\\\\\n", &[("k", "A"), ("v", "a\nb\\")]),
            // a comment a trailing \ continues swallows the next line
            (b"#c\\\nkeel_good=B\nk=v\n", &[("k", "v")]),
            // the value without a newline before the end is dropped, and so is all after it
            (b"k=v\nlast=x", &[("k", "v")]),
            // C strings
            (
                b"keel_good=A\0junk\nk\0x=v\n",
                &[("keel_good", "A"), ("k", "v")],
            ),
            // empty name, empty value
            (b"=x\nk=\n", &[("", "x"), ("k", "")]),
        ];
        for (text, want) in cases {
            let mut b = HEADER.as_bytes().to_vec();
            b.extend_from_slice(text);
            assert_eq!(
                decode_bytes(&b).unwrap(),
                raw(want),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn non_utf8_counts_only_where_grub_reads_a_variable() {
        let comment = block(b"#\xff\xfe\nkeel_good=A\n");
        assert_eq!(
            decode(&comment).unwrap(),
            vec![("keel_good".into(), "A".into())]
        );
        let value = block(b"keel_good=\xc1\n");
        assert_eq!(
            decode(&value),
            Err(GrubenvError::NotText("keel_good".into()))
        );
        assert_eq!(
            decode_bytes(&value).unwrap(),
            vec![(b"keel_good".to_vec(), vec![0xc1])]
        );
    }

    #[test]
    fn load_env_keeps_the_last_of_the_named_variables() {
        let b = block(b"keel_good=A\nkeel_next=A\nother=1\nkeel_good=b\n");
        let vars = load_env(&b, &["keel_good", "keel_tries"]).unwrap();
        assert_eq!(vars.len(), 1);
        assert_eq!(vars["keel_good"], b"b");
    }

    #[test]
    fn set_replaces_in_place_appends_and_refuses_as_grub() {
        let mut b = encode(&[("keel_good", "A"), ("keel_tries", "3")])
            .unwrap()
            .to_vec();
        assert!(set(&mut b, "keel_tries", b"2"));
        assert_eq!(
            b,
            encode(&[("keel_good", "A"), ("keel_tries", "2")]).unwrap()
        );
        assert!(set(&mut b, "keel_next", b"B"));
        assert_eq!(
            b,
            encode(&[("keel_good", "A"), ("keel_tries", "2"), ("keel_next", "B")]).unwrap()
        );
        assert!(set(&mut b, "keel_good", b"long\\value"));
        assert!(b.starts_with(b"# GRUB Environment Block\nkeel_good=long\\\\value\nkeel_tries=2\n"));
        assert!(set(&mut b, "keel_good", b"A"));
        assert_eq!(
            b,
            encode(&[("keel_good", "A"), ("keel_tries", "2"), ("keel_next", "B")]).unwrap()
        );
        assert_eq!(b.len(), BLOCK_SIZE);

        // Only the first of duplicates is set: load_env will still read the last.
        let mut dup = block(b"keel_tries=3\nkeel_tries=3\n");
        assert!(set(&mut dup, "keel_tries", b"2"));
        assert_eq!(dup, block(b"keel_tries=2\nkeel_tries=3\n"));

        // No room, text not ending in a newline, no header: refused.
        let mut full = b"# GRUB Environment Block\nk=v\n".to_vec();
        assert!(!set(&mut full, "keel_tries", b"2"));
        assert!(set(&mut full, "k", b"w"));
        let mut torn = block(b"keel_tries=3\nzzz");
        torn.truncate(HEADER.len() + 16);
        assert!(!set(&mut torn, "keel_tries", b"2"));
        let mut bad = vec![0u8; BLOCK_SIZE];
        assert!(!set(&mut bad, "keel_tries", b"2"));
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
                1 => "#[ -<>-\\[\\]-~]{0,20}".prop_map(Line::Comment),
                4 => (name(), "[ -\\[\\]-~]{0,20}").prop_map(|(n, v)| Line::Var(n, v)),
                1 => "[^\n=\\\\\0]{0,20}".prop_map(Line::Junk),
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

            /// A block as another writer may leave it (comments, variables with spaces in
            /// their values, lines without `=`) decodes without a panic to exactly what GRUB
            /// reads: each variable verbatim after the first `=`, a line without `=` glued
            /// onto the next variable's name, everything after a last such line dropped.
            #[test]
            fn written_blocks_decode_as_grub_reads_them(
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
                if block.len() > BLOCK_SIZE {
                    return Ok(());
                }
                block.resize(BLOCK_SIZE, b'#');
                let mut want = Vec::new();
                let mut glue = String::new();
                for l in &lines {
                    match l {
                        Line::Comment(c) | Line::Junk(c)
                            if glue.is_empty() && c.starts_with('#') => {}
                        Line::Comment(c) | Line::Junk(c) => {
                            glue.push_str(c);
                            glue.push('\n');
                        }
                        Line::Var(n, v) => {
                            want.push((format!("{glue}{n}"), v.clone()));
                            glue.clear();
                        }
                    }
                }
                prop_assert_eq!(decode(&block), Ok(want));
            }
        }
    }
}
