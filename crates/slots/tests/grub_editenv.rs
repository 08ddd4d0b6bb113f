//! The grubenv reader and writer against the real `grub-editenv` (GRUB 2.06, package
//! grub-common), which runs the same `envblk.c` as GRUB's `load_env` and `save_env`:
//!  * for any block, `decode_bytes` yields exactly the variables `grub-editenv FILE list`
//!    prints, and refuses exactly the blocks it refuses;
//!  * `grubenv::set` changes a block exactly as `grub-editenv FILE set` does, and fails where it
//!    fails;
//!  * whatever `encode` (the updater's writer) produces, `grub-editenv` lists verbatim;
//!  * files `grub-editenv` writes read as GRUB reads them: duplicates, `03`, lower-case slots.

use std::path::Path;
use std::process::{Command, Output};

use proptest::prelude::*;
use slots::grubenv::{self, HEADER};
use slots::state::Phase;
use slots::store::{grub_boot, Source};
use slots::Slot;

fn grub_editenv(file: &Path, args: &[&[u8]]) -> Output {
    use std::os::unix::ffi::OsStrExt;
    Command::new("grub-editenv")
        .arg(file)
        .args(args.iter().map(|a| std::ffi::OsStr::from_bytes(a)))
        .output()
        .expect("running grub-editenv (apt-get install grub-common)")
}

/// What `grub-editenv FILE list` prints for a block, or `None` when it refuses it.
fn grub_list(block: &[u8]) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    std::fs::write(&file, block).unwrap();
    let out = grub_editenv(&file, &[b"list"]);
    out.status.success().then_some(out.stdout)
}

/// The same listing from our reader.
fn our_list(block: &[u8]) -> Option<Vec<u8>> {
    let vars = grubenv::decode_bytes(block).ok()?;
    let mut out = Vec::new();
    for (name, value) in vars {
        out.extend_from_slice(&name);
        out.push(b'=');
        out.extend_from_slice(&value);
        out.push(b'\n');
    }
    Some(out)
}

/// A block `grub-editenv set NAME=VALUE` leaves, or `None` when it fails.
fn grub_set(block: &[u8], name: &str, value: &[u8]) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    std::fs::write(&file, block).unwrap();
    let mut arg = format!("{name}=").into_bytes();
    arg.extend_from_slice(value);
    let out = grub_editenv(&file, &[b"set", &arg]);
    let after = std::fs::read(&file).unwrap();
    if out.status.success() {
        Some(after)
    } else {
        assert_eq!(after, block, "a failed set leaves the file alone");
        None
    }
}

fn our_set(block: &[u8], name: &str, value: &[u8]) -> Option<Vec<u8>> {
    let mut b = block.to_vec();
    grubenv::set(&mut b, name, value).then_some(b)
}

fn padded(text: &[u8], size: usize) -> Vec<u8> {
    let mut b = HEADER.as_bytes().to_vec();
    b.extend_from_slice(text);
    b.resize(size, b'#');
    b
}

/// Blocks that exercise each way GRUB's reading differs from a line-by-line `key=value` parse.
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let mut no_header = padded(b"keel_good=A\n", 1024);
    no_header[2] = b'g';
    vec![
        (
            "plain",
            padded(b"keel_good=A\nkeel_next=B\nkeel_tries=3\n", 1024),
        ),
        (
            "duplicates",
            padded(
                b"keel_good=A\nkeel_good=B\nkeel_tries=3\nkeel_tries=03\n",
                1024,
            ),
        ),
        (
            "leading zero, lower case",
            padded(b"keel_tries=03\nkeel_next=b\nkeel_good=a\n", 1024),
        ),
        (
            "whitespace",
            padded(b"keel_good=A \n keel_next=B\nkeel_tries =3\n\tk=v\n", 1024),
        ),
        ("CRLF", padded(b"keel_good=A\r\nkeel_next=B\r\n", 1024)),
        (
            "blank line glues",
            padded(b"keel_next=B\n\nkeel_good=A\nk=v\n", 1024),
        ),
        ("junk line glues", padded(b"junk\nkeel_good=A\nk=v\n", 1024)),
        ("escapes", padded(b"k=\\A\nv=a\\\nb\\\\c\nw=\\\\\n", 1024)),
        (
            "comment continued",
            padded(b"#c\\\nkeel_good=B\nk=v\n", 1024),
        ),
        ("no newline at the end", padded(b"k=v\nlast=x", 40)),
        ("escape at the end", padded(b"k=v\nlast=x\\", 41)),
        ("NUL", padded(b"keel_good=A\0junk\nk\0x=v\n", 1024)),
        ("empty name and value", padded(b"=x\nk=\n", 1024)),
        (
            "non-UTF-8 in a comment",
            padded(b"#\xff\xfe\nkeel_good=A\n", 1024),
        ),
        ("non-UTF-8 in a value", padded(b"keel_good=\xc1\n", 1024)),
        ("undersized", padded(b"keel_good=B\n", 512)),
        ("oversized", padded(b"keel_good=B\n", 4096)),
        ("header only", HEADER.as_bytes().to_vec()),
        ("header and one byte", padded(b"", 26)),
        (
            "header without newline",
            b"# GRUB Environment Block".to_vec(),
        ),
        ("no header", no_header),
        ("zeros", vec![0; 1024]),
        ("empty", Vec::new()),
        ("all hashes", vec![b'#'; 1024]),
        ("zeros after the header", {
            let mut b = HEADER.as_bytes().to_vec();
            b.resize(1024, 0);
            b
        }),
        ("no padding left", {
            let mut b = padded(b"keel_good=A\nkeel_next=B\nkeel_tries=3\nfill=", 1023);
            b.push(b'\n');
            b
        }),
    ]
}

#[test]
fn the_reader_lists_crafted_blocks_as_grub_editenv_does() {
    for (what, block) in crafted() {
        assert_eq!(
            our_list(&block).map(|l| String::from_utf8_lossy(&l).into_owned()),
            grub_list(&block).map(|l| String::from_utf8_lossy(&l).into_owned()),
            "{what}"
        );
    }
}

#[test]
fn set_changes_crafted_blocks_as_grub_editenv_does() {
    let values: [&[u8]; 6] = [b"A", b"2", b"", b"a much longer value", b"a\\b", b"a\nb"];
    for (what, block) in crafted() {
        for name in ["keel_good", "keel_tries", "k", "new_var"] {
            for value in values {
                assert_eq!(
                    our_set(&block, name, value),
                    grub_set(&block, name, value),
                    "{what}: set {name}={:?}",
                    String::from_utf8_lossy(value)
                );
            }
        }
    }
}

#[test]
fn files_grub_editenv_writes_read_as_grub_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grubenv");
    let run = |args: &[&[u8]]| {
        let out = grub_editenv(&file, args);
        assert!(out.status.success(), "{:?}", out);
    };
    run(&[b"create"]);
    run(&[b"set", b"keel_good=A", b"keel_next=B", b"keel_tries=3"]);
    let read = || {
        let block = std::fs::read(&file).unwrap();
        assert_eq!(our_list(&block), grub_list(&block));
        grub_boot(Some(&block), None, None)
    };
    let boot = read();
    assert_eq!((boot.source, boot.boots), (Source::Env1, Slot::B));
    assert_eq!(
        boot.state.phase(),
        Phase::Trial {
            slot: Slot::B,
            tries: 3
        }
    );

    // "03" is not "3": the trial is spent, A boots.
    run(&[b"set", b"keel_tries=03"]);
    let boot = read();
    assert_eq!(boot.boots, Slot::A);
    assert_eq!(boot.state.phase(), Phase::Failed { slot: Slot::B });

    // "b" is not "B": nothing to try.
    run(&[b"set", b"keel_tries=3", b"keel_next=b"]);
    assert_eq!(read().state.phase(), Phase::Committed);

    // "a" is not "A": copy 1 is unusable and, with nothing else, GRUB boots A regardless.
    run(&[b"set", b"keel_next=B", b"keel_good=a"]);
    let boot = read();
    assert_eq!((boot.source, boot.boots), (Source::BuiltIn, Slot::A));

    // Values with spaces and backslashes come back unescaped.
    run(&[b"set", b"keel_good=A", b"note=a b\\c"]);
    let block = std::fs::read(&file).unwrap();
    let vars = grubenv::decode(&block).unwrap();
    assert!(vars.contains(&("note".into(), "a b\\c".into())), "{vars:?}");

    // A duplicate appended by hand after grub-editenv's line: the last one counts.
    let mut text = std::fs::read(&file).unwrap();
    let end = text.iter().rposition(|&b| b != b'#').unwrap() + 1;
    text.splice(end..end + 12, b"keel_good=B\n".iter().copied());
    std::fs::write(&file, &text).unwrap();
    let boot = read();
    assert_eq!((boot.state.good, boot.boots), (Slot::B, Slot::B));
}

/// Pieces of blocks, chosen to hit every branch of GRUB's reader.
fn token() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![
        &b"keel_good"[..],
        b"keel_next",
        b"keel_tries",
        b"k",
        b"=",
        b"=",
        b"\n",
        b"\n",
        b"\\",
        b"#",
        b"A",
        b"B",
        b"a",
        b"3",
        b"03",
        b" ",
        b"\r",
        b"\0",
        b"\xff",
        b"\\\n",
        b"=A\n",
        b"=3\n",
    ])
}

fn header() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        8 => Just(HEADER.as_bytes()),
        1 => Just(&b"# GRUB Environment Block"[..]),
        1 => Just(&b"# GRUB environment Block\n"[..]),
    ]
}

fn size() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![
        1 => Just(None),
        4 => Just(Some(1024)),
        1 => Just(Some(512)),
        1 => Just(Some(2048)),
        1 => (20usize..60).prop_map(Some),
    ]
}

fn random_block() -> impl Strategy<Value = Vec<u8>> {
    (header(), prop::collection::vec(token(), 0..40), size()).prop_map(|(h, tokens, size)| {
        let mut b = h.to_vec();
        for t in tokens {
            b.extend_from_slice(t);
        }
        if let Some(size) = size {
            b.resize(size, b'#');
        }
        b
    })
}

proptest! {
    // Each case starts grub-editenv once or twice: few cases, many shapes per case.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any block: the same variables as GRUB, or refused by both.
    #[test]
    fn the_reader_lists_any_block_as_grub_editenv_does(block in random_block()) {
        prop_assert_eq!(our_list(&block), grub_list(&block));
    }

    /// Any 1024-byte block with a header: `set` leaves the same bytes as GRUB, or fails with it.
    #[test]
    fn set_changes_any_block_as_grub_editenv_does(
        tokens in prop::collection::vec(token(), 0..40),
        name in prop::sample::select(vec!["keel_good", "keel_next", "keel_tries", "k"]),
        value in prop::sample::select(vec![&b"A"[..], b"2", b"", b"longer_value", b"a\\b"]),
    ) {
        let block = padded(&tokens.concat(), 1024);
        prop_assert_eq!(our_set(&block, name, value), grub_set(&block, name, value));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Whatever the updater's writer produces, grub-editenv lists exactly its variables, in
    /// order, duplicates and all.
    #[test]
    fn grub_editenv_lists_what_the_writer_wrote(
        vars in prop::collection::vec(("[A-Za-z0-9_]{1,16}", r"[!-\[\]-~]{0,24}"), 0..24),
    ) {
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let Ok(block) = grubenv::encode(&pairs) else {
            return Ok(());
        };
        let want: String = vars.iter().map(|(n, v)| format!("{n}={v}\n")).collect();
        prop_assert_eq!(grub_list(&block), Some(want.into_bytes()));
    }
}
