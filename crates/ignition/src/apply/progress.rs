//! The progress journal's contents, without I/O: the records, their text form, and what a
//! journal left by an earlier (interrupted) run says about it.
//!
//! A power cut during the first boot leaves the marker in place, so the next boot runs the
//! same config again. To make the result the same as one uninterrupted run, `apply` keeps a
//! write-ahead journal in the root ([`FILE`]; the I/O is in `apply`'s journal module):
//!  * [`Record::Config`]: the digest of the resolved config ([`digest`]); a journal of another
//!    config is not resumed;
//!  * [`Record::Storage`]: first boot finished the disks and filesystems;
//!  * [`Record::Change`]: before an operation first changes a path, what the path was
//!    ([`Before`]): absent, moved aside to a backup, or only its mode and owner;
//!  * [`Record::Done`]: the operation and every one before it are done (their backups may go);
//!  * [`Record::Undone`]: a change was rolled back (rolling back can be cut too);
//!  * [`Record::Complete`]: every operation is done.
//!
//! A rerun with the same config skips the done operations, rolls back the changes of the one
//! that was cut (newest first), and goes on from there ([`Progress`], [`Verdict`]).
//!
//! Text form: one record a line, `<8 hex digits of its SHA-256> <record>`; a path is relative
//! to the root with every byte outside `!`..`~` (and `%`) written `%XX`. Reading stops at the
//! first line that is torn (no newline), fails its checksum or cannot be read: only the last
//! append can be cut, and nothing it announced has happened yet.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::Config;

/// The journal's file name, in the root directory (never below a filesystem the config
/// mounts).
pub const FILE: &str = ".ignition-progress";

/// The first word of the config record, with the format's version.
const MAGIC: &str = "keel-ignition-progress 1";

/// The digest that keys a journal: SHA-256 of the resolved config's debug rendering, which
/// holds every field of every entry. It is stable within one build of Ignition, which is all
/// a resume needs: the boot after a cut runs the same initramfs.
pub fn digest(cfg: &Config) -> String {
    hex::encode(Sha256::digest(format!("{cfg:?}").as_bytes()))
}

/// What a path was before an operation first changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// Nothing was there: rolling back removes whatever is there now.
    Absent,
    /// It was moved aside to this backup (relative to the root, a sibling of the path):
    /// rolling back puts it back, if the move happened.
    Saved(PathBuf),
    /// It stays; only its mode and owner may change: rolling back sets them again.
    Attrs {
        /// Permission bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The first record: the config's [`digest`].
    Config(String),
    /// First boot's disks and filesystems are done.
    Storage,
    /// Operation `op` is about to change `path` (relative to the root), which was `before`.
    Change {
        /// Index of the operation in the plan.
        op: usize,
        /// The path, relative to the root.
        path: PathBuf,
        /// What it was.
        before: Before,
    },
    /// The change recorded at this index (0-based, counting every record) is rolled back.
    Undone(usize),
    /// Operation `op` and every one before it are done.
    Done(usize),
    /// Every operation is done.
    Complete,
}

/// Escapes a relative path into one word.
pub fn escape(p: &Path) -> String {
    let mut out = String::new();
    for &b in p.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape`]; `None` for a word it cannot have made.
pub fn unescape(s: &str) -> Option<PathBuf> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_graphic() => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(PathBuf::from(OsStr::from_bytes(&out)))
}

/// `p` when it is relative and only goes down (no `..`, no `.`), so joining it to the root
/// stays in the root.
fn plain(p: PathBuf) -> Option<PathBuf> {
    p.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then_some(p)
}

fn checksum(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..4])
}

impl Record {
    /// The record as text, without checksum or newline.
    fn text(&self) -> String {
        match self {
            Record::Config(d) => format!("{MAGIC} {d}"),
            Record::Storage => "storage".into(),
            Record::Change { op, path, before } => {
                let before = match before {
                    Before::Absent => "absent".to_string(),
                    Before::Saved(b) => format!("saved {}", escape(b)),
                    Before::Attrs { mode, uid, gid } => format!("attrs {mode:o} {uid} {gid}"),
                };
                format!("change {op} {} {before}", escape(path))
            }
            Record::Undone(i) => format!("undone {i}"),
            Record::Done(op) => format!("done {op}"),
            Record::Complete => "complete".into(),
        }
    }

    /// The record as one journal line: checksum, text, newline.
    pub fn line(&self) -> String {
        let text = self.text();
        format!("{} {text}\n", checksum(&text))
    }

    fn from_text(text: &str) -> Option<Record> {
        if let Some(d) = text.strip_prefix(MAGIC).and_then(|r| r.strip_prefix(' ')) {
            return (!d.is_empty() && !d.contains(' ')).then(|| Record::Config(d.into()));
        }
        let w: Vec<&str> = text.split(' ').collect();
        let num = |s: &str| s.parse::<usize>().ok();
        Some(match w.as_slice() {
            ["storage"] => Record::Storage,
            ["complete"] => Record::Complete,
            ["undone", i] => Record::Undone(num(i)?),
            ["done", op] => Record::Done(num(op)?),
            ["change", op, path, rest @ ..] => {
                let before = match rest {
                    ["absent"] => Before::Absent,
                    ["saved", b] => Before::Saved(plain(unescape(b)?)?),
                    ["attrs", mode, uid, gid] => Before::Attrs {
                        mode: u32::from_str_radix(mode, 8).ok()?,
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    },
                    _ => return None,
                };
                Record::Change {
                    op: num(op)?,
                    path: plain(unescape(path)?)?,
                    before,
                }
            }
            _ => return None,
        })
    }
}

/// Reads a journal: every record up to the first torn, corrupt or unreadable line.
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    parse_prefix(bytes).0
}

/// [`parse`], and how many bytes those records take: where a torn tail starts, which the
/// next append cuts off first.
pub fn parse_prefix(bytes: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    while let Some(end) = bytes[used..].iter().position(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(&bytes[used..used + end]) else {
            break;
        };
        let Some(r) = line
            .split_once(' ')
            .filter(|(sum, text)| *sum == checksum(text))
            .and_then(|(_, text)| Record::from_text(text))
        else {
            break;
        };
        out.push(r);
        used += end + 1;
    }
    (out, used)
}

/// A change that may have to be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Index of its record in the journal.
    pub index: usize,
    /// The path, relative to the root.
    pub path: PathBuf,
    /// What it was.
    pub before: Before,
}

/// What a journal says about the run that wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The config's digest (`None`: no journal, or one that cannot be read).
    pub digest: Option<String>,
    /// Disks and filesystems are done.
    pub storage: bool,
    /// How many operations are done (operations `0..done`).
    pub done: usize,
    /// Changes of the operation that was cut, not rolled back yet, oldest first.
    pub open: Vec<Change>,
    /// Backups of done operations that may still be there (relative to the root).
    pub stale: Vec<PathBuf>,
    /// Every operation is done.
    pub complete: bool,
    /// How many records the journal holds (the index of the next one).
    pub records: usize,
}

/// What to do with a journal, given the config about to be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No journal: a fresh run.
    Fresh,
    /// A journal of another config (or one that cannot be read): roll back its cut
    /// operation, then start afresh.
    Other {
        /// Its digest, if it could be read.
        digest: Option<String>,
    },
    /// The same config, cut before it was done: go on from there.
    Resume {
        /// Disks and filesystems are done.
        storage: bool,
        /// Operations done.
        done: usize,
    },
    /// The same config, applied in full.
    Complete,
}

/// Replays `records` (as [`parse`] read them) into what they say.
pub fn replay(records: &[Record]) -> Progress {
    let mut p = Progress {
        records: records.len(),
        ..Default::default()
    };
    let Some(Record::Config(d)) = records.first() else {
        return p;
    };
    p.digest = Some(d.clone());
    let mut changes: Vec<(usize, usize, PathBuf, Before)> = Vec::new();
    let mut undone = std::collections::BTreeSet::new();
    for (index, r) in records.iter().enumerate().skip(1) {
        match r {
            Record::Config(_) => {}
            Record::Storage => p.storage = true,
            Record::Change { op, path, before } => {
                changes.push((index, *op, path.clone(), before.clone()))
            }
            Record::Undone(i) => {
                undone.insert(*i);
            }
            Record::Done(op) => p.done = p.done.max(op + 1),
            Record::Complete => p.complete = true,
        }
    }
    for (index, op, path, before) in changes {
        if op < p.done || p.complete {
            if let Before::Saved(b) = before {
                p.stale.push(b);
            }
        } else if !undone.contains(&index) {
            p.open.push(Change {
                index,
                path,
                before,
            });
        }
    }
    p
}

impl Progress {
    /// What to do with this journal when applying the config with `digest`.
    pub fn verdict(&self, digest: &str) -> Verdict {
        match &self.digest {
            None if self.records == 0 => Verdict::Fresh,
            Some(d) if d == digest && self.complete => Verdict::Complete,
            Some(d) if d == digest => Verdict::Resume {
                storage: self.storage,
                done: self.done,
            },
            other => Verdict::Other {
                digest: other.clone(),
            },
        }
    }

    /// The open changes in the order to roll them back: newest first, so a path is put back
    /// after everything changed below it.
    pub fn rollback(&self) -> impl Iterator<Item = &Change> {
        self.open.iter().rev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(op: usize, path: &str, before: Before) -> Record {
        Record::Change {
            op,
            path: path.into(),
            before,
        }
    }

    fn text(records: &[Record]) -> Vec<u8> {
        records.iter().map(Record::line).collect::<String>().into()
    }

    #[test]
    fn records_round_trip_with_odd_paths() {
        let odd = PathBuf::from(OsStr::from_bytes(b"etc/a b%c\n\xff"));
        let records = vec![
            Record::Config("ab12".into()),
            Record::Storage,
            change(
                0,
                "etc/passwd",
                Before::Saved("etc/.ignition-undo.2".into()),
            ),
            Record::Change {
                op: 1,
                path: odd.clone(),
                before: Before::Absent,
            },
            change(
                1,
                "srv",
                Before::Attrs {
                    mode: 0o750,
                    uid: 0,
                    gid: 10,
                },
            ),
            Record::Undone(3),
            Record::Done(1),
            Record::Complete,
        ];
        assert_eq!(parse(&text(&records)), records);
        assert_eq!(escape(&odd), "etc/a%20b%25c%0A%FF");
        assert_eq!(unescape("etc/a%20b%25c%0A%FF"), Some(odd));
        assert_eq!(unescape("bad%2"), None);
        assert_eq!(unescape(""), None);
    }

    #[test]
    fn reading_stops_at_a_torn_or_corrupt_line() {
        let records = vec![Record::Config("d".into()), Record::Done(0), Record::Done(1)];
        let mut bytes = text(&records);
        // Torn: the last line lost its end.
        let torn = &bytes[..bytes.len() - 3];
        assert_eq!(parse(torn), records[..2]);
        let two = records[..2].iter().map(|r| r.line().len()).sum::<usize>();
        assert_eq!(parse_prefix(torn).1, two, "the torn line is not counted");
        assert_eq!(parse_prefix(&bytes).1, bytes.len());
        // Corrupt: a flipped byte in the middle line, and zeros after a cut.
        let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 12;
        bytes[second] ^= 1;
        assert_eq!(parse(&bytes), records[..1]);
        assert_eq!(parse(&[0u8; 64]), []);
        assert_eq!(parse(b"deadbeef done 0\n"), []);
        // A path that would climb out of the root is not a record this crate writes.
        let climb = change(0, "../etc", Before::Absent).line();
        assert_eq!(parse(climb.as_bytes()), []);
    }

    #[test]
    fn replay_resumes_after_the_done_operations_and_rolls_back_the_cut_one() {
        let records = vec![
            Record::Config("d".into()),
            Record::Storage,
            change(0, "etc/hosts", Before::Saved("etc/.ignition-undo.2".into())),
            Record::Done(0),
            change(1, "home/core", Before::Absent),
            change(
                1,
                "etc/passwd",
                Before::Saved("etc/.ignition-undo.5".into()),
            ),
            change(1, "etc/group", Before::Saved("etc/.ignition-undo.6".into())),
            Record::Undone(6),
        ];
        let p = replay(&records);
        assert_eq!(p.digest.as_deref(), Some("d"));
        assert!(p.storage && !p.complete);
        assert_eq!(p.done, 1);
        assert_eq!(p.stale, [PathBuf::from("etc/.ignition-undo.2")]);
        let back: Vec<usize> = p.rollback().map(|c| c.index).collect();
        assert_eq!(back, [5, 4], "newest first; the undone one is left out");
        assert_eq!(p.records, 8);
        assert_eq!(
            p.verdict("d"),
            Verdict::Resume {
                storage: true,
                done: 1
            }
        );
        assert_eq!(
            p.verdict("e"),
            Verdict::Other {
                digest: Some("d".into())
            }
        );
    }

    #[test]
    fn verdicts_for_no_journal_an_unreadable_one_and_a_complete_one() {
        assert_eq!(replay(&[]).verdict("d"), Verdict::Fresh);
        let unreadable = replay(&[Record::Done(3)]);
        assert_eq!(unreadable.verdict("d"), Verdict::Other { digest: None });
        let done = replay(&[
            Record::Config("d".into()),
            change(0, "a", Before::Saved(".ignition-undo.1".into())),
            Record::Complete,
        ]);
        assert_eq!(done.verdict("d"), Verdict::Complete);
        assert!(done.open.is_empty());
        assert_eq!(done.stale, [PathBuf::from(".ignition-undo.1")]);
    }

    #[test]
    fn the_digest_changes_with_any_field() {
        let a = crate::parse(
            br#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","mode":420}]}}"#,
        )
        .unwrap();
        let b = crate::parse(
            br#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","mode":384}]}}"#,
        )
        .unwrap();
        assert_eq!(digest(&a), digest(&a.clone()));
        assert_ne!(digest(&a), digest(&b));
        assert_eq!(digest(&a).len(), 64);
    }
}
