//! The progress journal on disk: `/.ignition-progress` in the root (the records and what they
//! mean are in [`super::progress`]).
//!
//! Life of a journal:
//!  * [`Journal::open`] locks the root directory (one apply at a time, so the fixed names
//!    of the staging directory and temporary files are safe) and reads what an earlier run
//!    left;
//!  * [`Journal::resume`] acts on it for the config about to be applied: the same config is
//!    resumed (the cut operation's changes rolled back newest first, each rollback recorded,
//!    backups of done operations deleted, the journal compacted); another config's journal
//!    has its cut operation rolled back as far as possible and is then dropped;
//!  * [`Journal::begin`] writes the config record before the first change, and
//!    [`Journal::storage_done`] the first boot's storage record;
//!  * for each operation, the tree calls [`Journal::before`] ahead of every change of a path:
//!    the first change of a path (not below a path already recorded) is recorded and synced
//!    before it happens; a node that would be replaced or removed is then moved aside to a
//!    backup next to it ([`Journal::set_aside`]) instead. [`Journal::end_op`] syncs the touched directories, records the
//!    operation done and deletes its backups;
//!  * [`Journal::complete`] rewrites the journal as the config record and `complete`; first
//!    boot keeps it as the record that the config was applied, `apply --root` deletes it
//!    ([`Journal::discard`]).
//!
//! Test seam: [`Journal::cut_after`] makes every change after the first N fail as if the
//! machine had stopped there (the append that is cut is torn in half, nothing is cleaned up).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::progress::{self, Before, Change, Progress, Record, Verdict, FILE};

/// The temporary file a write goes through, next to its target.
pub(super) const TMP: &str = ".ignition.tmp";

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Another process holds the root's lock.
    #[error("another Ignition is applying into {} (the directory is locked)", .0.display())]
    Busy(PathBuf),
    /// I/O on the journal, a backup or a rollback.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

fn jerr(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { what, path, source }
}

/// How a tree change uses a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Intent {
    /// Makes a node where there is none.
    Create,
    /// Replaces or removes whatever is there.
    Replace,
    /// Changes mode or owner in place.
    Attrs,
}

/// What a resumed journal means for the apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resume {
    /// Operations done by earlier runs (skipped).
    pub done: usize,
    /// Every operation is done.
    pub complete: bool,
    /// What was found and done, for the log.
    pub notes: Vec<String>,
}

/// The changes of the operation under way.
#[derive(Debug, Default)]
struct OpLog {
    index: usize,
    /// Recorded absent or saved: they and everything below them roll back with them.
    covered: Vec<PathBuf>,
    /// Recorded with their attributes.
    attrs: BTreeSet<PathBuf>,
    /// Nodes recorded as saved that are still in place: (node, backup).
    pending: Vec<(PathBuf, PathBuf)>,
    /// Backups to delete once the operation is done.
    backups: Vec<PathBuf>,
    /// Directories (and nodes) to sync before the operation is recorded done.
    dirty: BTreeSet<PathBuf>,
}

/// The journal of one root; see the module documentation.
#[derive(Debug)]
pub struct Journal {
    root: PathBuf,
    path: PathBuf,
    _lock: File,
    file: Option<File>,
    /// Bytes of the file that hold readable records (a torn tail follows).
    valid: u64,
    earlier: Progress,
    digest: Option<String>,
    records: usize,
    op: Option<OpLog>,
    cut: Option<usize>,
    fired: bool,
}

fn cut_error() -> io::Error {
    io::Error::other("simulated power cut")
}

/// Removes whatever is at `p`; nothing there is fine.
fn remove_any(p: &Path) -> io::Result<()> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Syncs the directory or file at `p` (its entries, or its attributes); nothing there, or a
/// symlink, is fine.
fn sync_node(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.file_type().is_symlink() => Ok(()),
        Ok(_) => File::open(p)?.sync_all(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Journal {
    /// Locks `root` and reads the journal an earlier run left there, if any.
    pub fn open(root: &Path) -> Result<Journal, JournalError> {
        let root = root.canonicalize().map_err(jerr("opening", root))?;
        let lock = File::open(&root).map_err(jerr("opening", &root))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(JournalError::Busy(root)),
            // A filesystem without locks (some network ones): the lock only guards against
            // two applies at once, so go on without it.
            Err(fs::TryLockError::Error(e)) => {
                tracing::warn!(
                    "cannot lock {}: {e}; going on without the lock",
                    root.display()
                )
            }
        }
        let path = root.join(FILE);
        let (earlier, valid) = match fs::read(&path) {
            Ok(bytes) => {
                let (records, valid) = progress::parse_prefix(&bytes);
                let mut p = progress::replay(&records);
                if p.records == 0 && !bytes.is_empty() {
                    // Something is there, but not one record of it can be read.
                    p.records = 1;
                }
                (p, valid as u64)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Progress::default(), 0),
            Err(e) => return Err(jerr("reading", &path)(e)),
        };
        Ok(Journal {
            records: earlier.records,
            root,
            path,
            _lock: lock,
            file: None,
            valid,
            earlier,
            digest: None,
            op: None,
            cut: None,
            fired: false,
        })
    }

    /// Test seam: every change after the first `n` fails as a power cut would leave it
    /// (`None`: never).
    pub fn cut_after(mut self, n: Option<usize>) -> Journal {
        self.cut = n;
        self
    }

    /// True once the simulated power cut has happened.
    pub fn is_cut(&self) -> bool {
        self.fired
    }

    /// What the journal found on disk said.
    pub fn earlier(&self) -> &Progress {
        &self.earlier
    }

    /// What to do for the config with `digest`, from what the journal found.
    pub fn verdict(&self, digest: &str) -> Verdict {
        self.earlier.verdict(digest)
    }

    /// Counts one change towards the simulated cut (first boot counts the marker's removal).
    pub fn tick(&mut self) -> io::Result<()> {
        match self.cut {
            Some(0) => {
                self.fired = true;
                Err(cut_error())
            }
            Some(n) => {
                self.cut = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn rel<'a>(&self, host: &'a Path) -> io::Result<&'a Path> {
        host.strip_prefix(&self.root)
            .map_err(|_| io::Error::other(format!("{} is outside the root", host.display())))
    }

    fn append(&mut self, r: &Record) -> io::Result<()> {
        if self.file.is_none() {
            let f = OpenOptions::new().append(true).open(&self.path)?;
            if f.metadata()?.len() > self.valid {
                // A torn last line: records after it could not be read.
                f.set_len(self.valid)?;
            }
            self.file = Some(f);
        }
        let line = r.line();
        let cut = self.cut == Some(0);
        if !cut {
            self.tick()?;
        }
        let file = self.file.as_mut().expect("opened");
        if cut {
            // A cut in the middle of the write: half a line reaches the disk.
            file.write_all(&line.as_bytes()[..line.len() / 2])?;
            self.fired = true;
            return Err(cut_error());
        }
        file.write_all(line.as_bytes())?;
        file.sync_data()?;
        self.records += 1;
        Ok(())
    }

    /// Replaces the journal with `records`, atomically.
    fn rewrite(&mut self, records: &[Record]) -> io::Result<()> {
        let tmp = self.root.join(format!("{FILE}.tmp"));
        self.tick()?;
        let mut f = File::create(&tmp)?;
        for r in records {
            f.write_all(r.line().as_bytes())?;
        }
        f.sync_all()?;
        self.tick()?;
        fs::rename(&tmp, &self.path)?;
        File::open(&self.root)?.sync_all()?;
        self.file = None;
        self.valid = fs::metadata(&self.path)?.len();
        self.records = records.len();
        Ok(())
    }

    fn digest(&self) -> &str {
        self.digest
            .as_deref()
            .expect("resume() sets the digest first")
    }

    /// Acts on what an earlier run left for the config with `digest`; see the module
    /// documentation.
    pub fn resume(&mut self, digest: &str) -> Result<Resume, JournalError> {
        let verdict = self.earlier.verdict(digest);
        self.digest = Some(digest.to_string());
        let mut out = Resume::default();
        let short = |d: &str| d.chars().take(12).collect::<String>();
        let path = self.path.clone();
        match verdict {
            Verdict::Fresh => {}
            Verdict::Other { digest: old } => {
                let failed = self.roll_back(true)?;
                self.drop_stale()?;
                self.tick().map_err(jerr("removing", &path))?;
                remove_any(&path).map_err(jerr("removing", &path))?;
                self.file = None;
                self.records = 0;
                out.notes.push(format!(
                    "{FILE} was left by an interrupted apply of another config ({}); it is ignored, after rolling back that apply's unfinished operation ({} changes{})",
                    old.as_deref().map_or("unreadable".into(), short),
                    self.earlier.open.len(),
                    if failed.is_empty() { String::new() } else { format!("; could not roll back: {}", failed.join("; ")) }
                ));
            }
            Verdict::Resume { storage, done } => {
                let open = self.earlier.open.len();
                self.roll_back(false)?;
                self.drop_stale()?;
                let mut records = vec![Record::Config(digest.to_string())];
                if storage {
                    records.push(Record::Storage);
                }
                if done > 0 {
                    records.push(Record::Done(done - 1));
                }
                self.rewrite(&records).map_err(jerr("compacting", &path))?;
                out.done = done;
                out.notes.push(format!(
                    "resuming an interrupted apply of this config: {done} operations were done{}{}",
                    if storage { ", and the disks and filesystems" } else { "" },
                    if open > 0 { format!("; the unfinished one was rolled back ({open} changes) and is done again") } else { String::new() }
                ));
            }
            Verdict::Complete => {
                self.drop_stale()?;
                self.rewrite(&[Record::Config(digest.to_string()), Record::Complete])
                    .map_err(jerr("compacting", &path))?;
                out.complete = true;
                out.notes.push(format!(
                    "this config was applied in full already ({FILE}); nothing is applied again"
                ));
            }
        }
        Ok(out)
    }

    /// Rolls back the open changes, newest first, recording each. With `best_effort`, a
    /// change that cannot be rolled back is skipped and named in the result.
    fn roll_back(&mut self, best_effort: bool) -> Result<Vec<String>, JournalError> {
        let changes: Vec<Change> = self.earlier.rollback().cloned().collect();
        let mut failed = Vec::new();
        for c in changes {
            let host = self.root.join(&c.path);
            self.tick().map_err(jerr("rolling back", &host))?;
            match self.undo(&host, &c.before) {
                Ok(()) => {}
                Err(e) if best_effort => failed.push(format!("{}: {e}", host.display())),
                Err(e) => return Err(jerr("rolling back", &host)(e)),
            }
            self.append(&Record::Undone(c.index))
                .map_err(jerr("writing", &self.path.clone()))?;
        }
        self.earlier.open.clear();
        Ok(failed)
    }

    fn undo(&self, host: &Path, before: &Before) -> io::Result<()> {
        match before {
            Before::Absent => remove_any(host)?,
            Before::Saved(backup) => {
                let backup = self.root.join(backup);
                if fs::symlink_metadata(&backup).is_ok() {
                    remove_any(host)?;
                    fs::rename(&backup, host)?;
                }
            }
            Before::Attrs { mode, uid, gid } => {
                if let Ok(m) = fs::symlink_metadata(host) {
                    if !m.file_type().is_symlink() {
                        fs::set_permissions(host, fs::Permissions::from_mode(*mode))?;
                    }
                    match std::os::unix::fs::lchown(host, Some(*uid), Some(*gid)) {
                        Err(e) if e.kind() != io::ErrorKind::PermissionDenied => return Err(e),
                        _ => {}
                    }
                }
            }
        }
        if let Some(dir) = host.parent() {
            remove_any(&dir.join(TMP))?;
            sync_node(dir)?;
        }
        Ok(())
    }

    /// Deletes backups that done operations left.
    fn drop_stale(&mut self) -> Result<(), JournalError> {
        for b in std::mem::take(&mut self.earlier.stale) {
            let host = self.root.join(b);
            self.tick().map_err(jerr("removing", &host))?;
            remove_any(&host).map_err(jerr("removing", &host))?;
        }
        Ok(())
    }

    /// Writes the config record, if the journal does not hold it yet.
    pub fn begin(&mut self) -> Result<(), JournalError> {
        if self.records == 0 {
            let path = self.path.clone();
            let record = Record::Config(self.digest().to_string());
            self.rewrite(&[record]).map_err(jerr("creating", &path))?;
        }
        Ok(())
    }

    /// Records that first boot's disks and filesystems are done.
    pub fn storage_done(&mut self) -> Result<(), JournalError> {
        self.begin()?;
        let path = self.path.clone();
        self.append(&Record::Storage)
            .map_err(jerr("writing", &path))
    }

    /// Starts operation `index`.
    pub(super) fn begin_op(&mut self, index: usize) {
        self.op = Some(OpLog {
            index,
            ..Default::default()
        });
    }

    /// Called before the tree changes `host`; see the module documentation.
    pub(super) fn before(&mut self, host: &Path, intent: Intent) -> io::Result<()> {
        let Some(mut op) = self.op.take() else {
            return Ok(());
        };
        let r = self.record(&mut op, host, intent);
        self.op = Some(op);
        r
    }

    fn record(&mut self, op: &mut OpLog, host: &Path, intent: Intent) -> io::Result<()> {
        let rel = self.rel(host)?.to_path_buf();
        if let Some(dir) = host.parent() {
            op.dirty.insert(dir.to_path_buf());
        }
        if op.covered.iter().any(|c| host.starts_with(c)) {
            return Ok(());
        }
        let found = fs::symlink_metadata(host).ok();
        let before = match (intent, &found) {
            // Making a node where one is fails by itself, and changes nothing.
            (Intent::Create, Some(_)) => return Ok(()),
            (Intent::Create | Intent::Replace, None) => Before::Absent,
            (Intent::Replace, Some(_)) => {
                let name = format!(".ignition-undo.{}", self.records);
                Before::Saved(rel.with_file_name(name))
            }
            (Intent::Attrs, None) => return Ok(()),
            (Intent::Attrs, Some(_)) if op.attrs.contains(host) => return Ok(()),
            (Intent::Attrs, Some(m)) => {
                use std::os::unix::fs::MetadataExt;
                op.dirty.insert(host.to_path_buf());
                op.attrs.insert(host.to_path_buf());
                Before::Attrs {
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                }
            }
        };
        let record = Record::Change {
            op: op.index,
            path: rel,
            before: before.clone(),
        };
        self.append(&record)?;
        match before {
            Before::Absent => op.covered.push(host.to_path_buf()),
            Before::Saved(backup) => {
                op.covered.push(host.to_path_buf());
                op.pending
                    .push((host.to_path_buf(), self.root.join(backup)));
            }
            Before::Attrs { .. } => {}
        }
        Ok(())
    }

    /// Moves `host` to its backup, if [`Journal::before`] recorded it as saved and it is
    /// still in place. Split from recording so a write can first fill its temporary file
    /// from the node it replaces.
    pub(super) fn set_aside(&mut self, host: &Path) -> io::Result<()> {
        let Some(op) = &mut self.op else {
            return Ok(());
        };
        let Some(i) = op.pending.iter().position(|(p, _)| p == host) else {
            return Ok(());
        };
        let (node, backup) = op.pending.remove(i);
        op.backups.push(backup.clone());
        self.tick()?;
        remove_any(&backup)?;
        fs::rename(node, backup)
    }

    /// Ends the operation under way: its changes synced, recorded done, backups deleted.
    pub(super) fn end_op(&mut self) -> io::Result<()> {
        let Some(op) = self.op.take() else {
            return Ok(());
        };
        for p in &op.dirty {
            sync_node(p)?;
        }
        self.append(&Record::Done(op.index))?;
        for b in &op.backups {
            self.tick()?;
            remove_any(b)?;
        }
        Ok(())
    }

    /// Records that every operation is done (the journal becomes the config record and
    /// `complete`).
    pub fn complete(&mut self) -> Result<(), JournalError> {
        let path = self.path.clone();
        let records = [Record::Config(self.digest().to_string()), Record::Complete];
        self.rewrite(&records).map_err(jerr("completing", &path))
    }

    /// Deletes the journal.
    pub fn discard(mut self) -> Result<(), JournalError> {
        let path = self.path.clone();
        self.tick().map_err(jerr("removing", &path))?;
        remove_any(&path).map_err(jerr("removing", &path))?;
        File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(jerr("syncing", &self.root))
    }
}
