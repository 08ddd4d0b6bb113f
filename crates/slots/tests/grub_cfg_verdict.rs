//! What keel/grub.cfg (crates/image-build/src/grub.rs) boots for each kind of boot state on the
//! ESP, worked out by hand from that script, and the updater agreeing: `store::grub_boot` (the
//! script as code) and `EspStore::load` (what `updater status` and `mark-good` act on).
//!
//! The script, in short: `load_env` copy 1 (`keel_good keel_next keel_tries`); if `keel_good` is
//! not the string `A` or `B`, `load_env` copy 2 over it; if still not, `keel_next=""` and source
//! keel/fallback.cfg; if still not, `keel_good=A`. Then if `keel_next` != `keel_good` and is `A`
//! or `B`: tries `3`/`2`/`1` become `2`/`1`/`0`, saved to copy 1 (and, if that worked, copy 2)
//! and `keel_next` boots; any other tries, or a failed save, boot `keel_good`. `[ x = y ]` is a
//! string comparison: `03` is not `3`, `a` is not `A`, `A ` is not `A`.

use std::fs;

use slots::grubenv::HEADER;
use slots::state::Phase;
use slots::store::{grub_boot, EspStore, Source};
use slots::Slot::{self, A, B};

/// A block holding `text` after the header, `#`-padded to `size` bytes.
fn sized(text: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut b = HEADER.as_bytes().to_vec();
    b.extend_from_slice(text);
    b.resize(size.max(b.len()), b'#');
    Some(b)
}

fn env(text: &[u8]) -> Option<Vec<u8>> {
    sized(text, 1024)
}

/// Exactly these bytes after the header, no padding.
fn tight(text: &[u8]) -> Option<Vec<u8>> {
    sized(text, 0)
}

fn record(text: &str) -> Option<Vec<u8>> {
    Some(text.as_bytes().to_vec())
}

struct Row {
    what: &'static str,
    env1: Option<Vec<u8>>,
    env2: Option<Vec<u8>>,
    fallback: Option<Vec<u8>>,
    /// Where the script found `keel_good`.
    source: Source,
    /// The phase the variables describe (before a try is spent).
    phase: Phase,
    good: Slot,
    /// The slot the script boots.
    boots: Slot,
    /// `keel_tries` in copy 1 after GRUB's save, read back as GRUB reads it (`None`: no save).
    saved_tries: Option<&'static str>,
}

const COMMITTED: Phase = Phase::Committed;
const fn trial(slot: Slot, tries: u8) -> Phase {
    Phase::Trial { slot, tries }
}
const fn failed(slot: Slot) -> Phase {
    Phase::Failed { slot }
}

#[allow(clippy::too_many_arguments)]
fn row(
    what: &'static str,
    env1: Option<Vec<u8>>,
    env2: Option<Vec<u8>>,
    fallback: Option<Vec<u8>>,
    source: Source,
    phase: Phase,
    good: Slot,
    boots: Slot,
    saved_tries: Option<&'static str>,
) -> Row {
    Row {
        what,
        env1,
        env2,
        fallback,
        source,
        phase,
        good,
        boots,
        saved_tries,
    }
}

#[rustfmt::skip]
fn table() -> Vec<Row> {
    use Source::*;
    let good_b = || env(b"keel_good=B\nkeel_next=B\nkeel_tries=0\n");
    vec![
        row("committed A", env(b"keel_good=A\nkeel_next=A\nkeel_tries=0\n"), None, None, Env1, COMMITTED, A, A, None),
        row("committed B", good_b(), None, None, Env1, COMMITTED, B, B, None),
        row("trial of B, 3 tries", env(b"keel_good=A\nkeel_next=B\nkeel_tries=3\n"), None, None, Env1, trial(B, 3), A, B, Some("2")),
        row("trial of B, last try", env(b"keel_good=A\nkeel_next=B\nkeel_tries=1\n"), None, None, Env1, trial(B, 1), A, B, Some("0")),
        row("trial of A from B", env(b"keel_good=B\nkeel_next=A\nkeel_tries=2\n"), None, None, Env1, trial(A, 2), B, A, Some("1")),
        row("tries spent", env(b"keel_good=A\nkeel_next=B\nkeel_tries=0\n"), None, None, Env1, failed(B), A, A, None),
        // "03" = "3" is false in GRUB's test: no try to spend.
        row("tries 03", env(b"keel_good=A\nkeel_next=B\nkeel_tries=03\n"), None, None, Env1, failed(B), A, A, None),
        row("tries 4", env(b"keel_good=A\nkeel_next=B\nkeel_tries=4\n"), None, None, Env1, failed(B), A, A, None),
        row("tries with a space", env(b"keel_good=A\nkeel_next=B\nkeel_tries= 3\n"), None, None, Env1, failed(B), A, A, None),
        row("tries missing", env(b"keel_good=A\nkeel_next=B\n"), None, None, Env1, failed(B), A, A, None),
        // "b" is neither "A" nor "B": nothing to try.
        row("next lower-case", env(b"keel_good=A\nkeel_next=b\nkeel_tries=3\n"), None, None, Env1, COMMITTED, A, A, None),
        row("next C", env(b"keel_good=A\nkeel_next=C\nkeel_tries=3\n"), None, None, Env1, COMMITTED, A, A, None),
        row("next missing", env(b"keel_good=A\nkeel_tries=3\n"), None, None, Env1, COMMITTED, A, A, None),
        row("next with CR", env(b"keel_good=A\r\nkeel_next=B\r\nkeel_tries=3\r\n"), good_b(), None, Env2, COMMITTED, B, B, None),
        // Copy 1's keel_good not exactly A or B: copy 2 decides.
        row("good lower-case", env(b"keel_good=a\nkeel_next=a\nkeel_tries=0\n"), good_b(), None, Env2, COMMITTED, B, B, None),
        row("good with a trailing space", env(b"keel_good=A \n"), good_b(), None, Env2, COMMITTED, B, B, None),
        row("good indented", env(b" keel_good=A\n"), good_b(), None, Env2, COMMITTED, B, B, None),
        row("blank line glued to keel_good", env(b"keel_next=A\n\nkeel_good=A\n"), good_b(), None, Env2, COMMITTED, B, B, None),
        row("good not UTF-8", env(b"keel_good=\xc1\n"), good_b(), None, Env2, COMMITTED, B, B, None),
        // load_env keeps the last of duplicates.
        // (then keel_next=A is the other slot, with no tries: a spent trial of A)
        row("good twice, B last", env(b"keel_good=A\nkeel_next=A\nkeel_tries=0\nkeel_good=B\n"), None, None, Env1, failed(A), B, B, None),
        row("next twice, A last", env(b"keel_good=A\nkeel_next=B\nkeel_tries=3\nkeel_next=A\n"), None, None, Env1, COMMITTED, A, A, None),
        row("tries twice, 0 last", env(b"keel_good=A\nkeel_next=B\nkeel_tries=3\nkeel_tries=0\n"), None, None, Env1, failed(B), A, A, None),
        // save_env sets the first keel_tries; load_env reads the last: the count never moves.
        row("tries twice, 3 last", env(b"keel_good=A\nkeel_next=B\nkeel_tries=0\nkeel_tries=3\n"), None, None, Env1, trial(B, 3), A, B, Some("3")),
        row("escaped value", env(b"keel_good=\\A\nkeel_next=\\B\nkeel_tries=3\n"), None, None, Env1, trial(B, 3), A, B, Some("2")),
        row("NUL ends the value", env(b"keel_good=A\0x\nkeel_next=A\n"), None, None, Env1, COMMITTED, A, A, None),
        row("comment in another encoding", env(b"#\xff\xfe\nkeel_good=B\n"), None, None, Env1, COMMITTED, B, B, None),
        // Any size GRUB opens.
        row("512-byte copy", sized(b"keel_good=A\nkeel_next=B\nkeel_tries=2\n", 512), None, None, Env1, trial(B, 2), A, B, Some("1")),
        row("2048-byte copy", sized(b"keel_good=A\nkeel_next=B\nkeel_tries=2\n", 2048), None, None, Env1, trial(B, 2), A, B, Some("1")),
        row("header only", Some(HEADER.as_bytes().to_vec()), good_b(), None, Env2, COMMITTED, B, B, None),
        // Copy 1 unreadable, copy 2 on trial: the try cannot be saved to copy 1, A boots.
        row("no header, copy 2 on trial", Some(vec![0; 1024]), env(b"keel_good=A\nkeel_next=B\nkeel_tries=3\n"), None, Env2, trial(B, 3), A, A, None),
        row("copy 1 missing, copy 2 on trial", None, env(b"keel_good=A\nkeel_next=B\nkeel_tries=3\n"), None, Env2, trial(B, 3), A, A, None),
        // Copy 1 readable but its text does not end in a newline: save_env refuses it.
        row("copy 1 torn at the end", tight(b"keel_good=A\nkeel_next=B\nkeel_tries=3\nzz"), None, None, Env1, trial(B, 3), A, A, None),
        // Copy 2 fills in over copy 1: copy 1's next and tries stay.
        row("copies mixed", env(b"keel_good=x\nkeel_next=B\nkeel_tries=3\n"), env(b"keel_good=A\n"), None, Env2, trial(B, 3), A, B, Some("2")),
        // ... and copy 1 without room to take keel_good: the save fails, A boots.
        row("copies mixed, no room", tight(b"keel_next=B\nkeel_tries=3\n"), env(b"keel_good=A\n"), None, Env2, trial(B, 3), A, A, None),
        // The last-good record, with keel_next cleared first.
        row("fallback record", env(b"keel_good=x\nkeel_next=A\nkeel_tries=3\n"), None, record("set keel_good=B\n"), FallbackRecord, COMMITTED, B, B, None),
        row("fallback record quoted", None, None, record("set keel_good=\"B\"\n"), FallbackRecord, COMMITTED, B, B, None),
        row("fallback record lower-case", None, None, record("set keel_good=b\n"), BuiltIn, COMMITTED, A, A, None),
        row("nothing at all", None, None, None, BuiltIn, COMMITTED, A, A, None),
    ]
}

#[test]
fn the_updater_reads_every_state_as_grub_cfg_does() {
    for r in table() {
        let grub = grub_boot(r.env1.as_deref(), r.env2.as_deref(), r.fallback.as_deref());
        let phase = grub.state.phase();
        assert_eq!(
            (grub.source, phase, grub.state.good, grub.boots),
            (r.source, r.phase, r.good, r.boots),
            "{}",
            r.what
        );
        let saved_tries = grub.saved.as_ref().map(|(one, _)| {
            let vars = slots::grubenv::load_env(one, &["keel_tries"]).unwrap();
            String::from_utf8(vars["keel_tries"].clone()).unwrap()
        });
        assert_eq!(saved_tries.as_deref(), r.saved_tries, "{}", r.what);

        // The same files on disk, read by the store the updater uses.
        let dir = tempfile::tempdir().unwrap();
        let store = EspStore::new(dir.path());
        for (path, content) in [
            (store.env_path(1), &r.env1),
            (store.env_path(2), &r.env2),
            (store.fallback_path(), &r.fallback),
        ] {
            if let Some(bytes) = content {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, bytes).unwrap();
            }
        }
        let loaded = store.load();
        assert_eq!(
            (loaded.source, loaded.state, loaded.boots),
            (grub.source, grub.state, grub.boots),
            "{}",
            r.what
        );
        // Unless GRUB cannot save the try, the state alone says which slot boots.
        if r.saved_tries.is_some() || !matches!(r.phase, Phase::Trial { .. }) {
            assert_eq!(loaded.state.boots_next(), r.boots, "{}", r.what);
        }
    }
}
