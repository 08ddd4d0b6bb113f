//! The tree `apply` works on, behind one seam with two faces:
//!  * [`Tree::journaled`] reads and writes the file system;
//!  * [`Tree::dry`] reads the file system through an overlay and writes only to the overlay,
//!    so a whole apply can run first without writing anything: each step sees what the
//!    steps before it would have made, and fails where the real run would fail.
//!
//! The real tree carries the progress [`Journal`]: before each change of a path it asks the
//! journal to record what the path was (and to move a node that would be replaced aside),
//! so a run cut at any instant can be rolled back to the start of the operation under way.
//!
//! Host paths given here come from [`super::root::Root`], so they are inside the root.
//! Errors a real write would hit only because of the data (a NUL byte, a name longer than
//! 255 bytes) are reproduced by the dry run, as are missing parents and nodes in the way.
//! What it cannot foresee: the disk filling up, I/O errors, permissions.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::journal::{Intent, Journal, TMP};
use super::root::{Lookup, NodeType};

/// A piece of a file's contents.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    /// Bytes in memory.
    Bytes(Arc<Vec<u8>>),
    /// The contents of a regular file on the host (an existing file that is kept, a fetched
    /// resource staged on disk).
    File(PathBuf),
}

impl Part {
    pub(crate) fn bytes(b: impl Into<Vec<u8>>) -> Part {
        Part::Bytes(Arc::new(b.into()))
    }
}

/// What is at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    kind: Kind,
    /// Permission bits.
    pub(crate) mode: u32,
    /// Owner.
    pub(crate) uid: u32,
    /// Group.
    pub(crate) gid: u32,
    /// (device, inode): equal for two names of one file.
    pub(crate) id: (u64, u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Meta {
    pub(crate) fn is_file(&self) -> bool {
        self.kind == Kind::File
    }
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
    pub(crate) fn is_symlink(&self) -> bool {
        self.kind == Kind::Symlink
    }

    fn from_fs(m: &fs::Metadata) -> Meta {
        let t = m.file_type();
        let kind = if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        Meta {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            id: (m.dev(), m.ino()),
        }
    }
}

/// A node the dry run made (or removed).
#[derive(Debug, Clone)]
enum Node {
    /// Removed: nothing there, and nothing of the real tree below it.
    Absent,
    /// A new directory (the real tree has nothing below it).
    Dir(Meta),
    /// A new regular file.
    File(Meta, Vec<Part>),
    /// A new symlink.
    Symlink(Meta, PathBuf),
}

/// The dry run's view: the real tree with these changes on top.
#[derive(Debug, Default)]
struct Overlay {
    nodes: BTreeMap<PathBuf, Node>,
    next_ino: u64,
}

/// What the dry run sees at a path.
enum Seen<'a> {
    /// A node of the overlay.
    Made(&'a Node),
    /// Below a node of the overlay: the real tree there is gone.
    Hidden,
    /// Untouched: ask the file system.
    Real,
}

impl Overlay {
    fn seen(&self, p: &Path) -> Seen<'_> {
        if let Some(n) = self.nodes.get(p) {
            return Seen::Made(n);
        }
        if p.ancestors().skip(1).any(|a| self.nodes.contains_key(a)) {
            return Seen::Hidden;
        }
        Seen::Real
    }

    fn meta(&mut self, kind: Kind, mode: u32, owner: Option<(u32, u32)>) -> Meta {
        self.next_ino += 1;
        let (uid, gid) = owner.unwrap_or((0, 0));
        Meta {
            kind,
            mode,
            uid,
            gid,
            id: (u64::MAX, self.next_ino),
        }
    }

    /// Puts `node` at `p`, dropping whatever the overlay had below it.
    fn put(&mut self, p: &Path, node: Node) {
        self.nodes.retain(|k, _| !(k.starts_with(p) && k != p));
        self.nodes.insert(p.to_path_buf(), node);
    }
}

/// The tree `apply` works on; see the module documentation.
#[derive(Debug)]
pub(crate) struct Tree {
    dry: Option<Overlay>,
    journal: Option<Journal>,
}

fn exists(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} exists already", p.display()),
    )
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} does not exist", p.display()),
    )
}

/// What creating `p` would fail on because of its name alone.
fn check_name(p: &Path) -> io::Result<()> {
    let bytes = p.as_os_str().as_bytes();
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file name contained an unexpected NUL byte",
        ));
    }
    if p.file_name().is_some_and(|n| n.len() > 255) || bytes.len() > 4095 {
        return Err(io::Error::other("File name too long (os error 36)"));
    }
    Ok(())
}

impl Tree {
    /// The file system itself, every change recorded in `journal` first.
    pub(crate) fn journaled(journal: Journal) -> Tree {
        Tree {
            dry: None,
            journal: Some(journal),
        }
    }

    /// The journal of a real tree.
    pub(crate) fn journal(&mut self) -> Option<&mut Journal> {
        self.journal.as_mut()
    }

    /// Gives the journal back.
    pub(crate) fn into_journal(self) -> Option<Journal> {
        self.journal
    }

    /// Before a real change of `p`: the journal records it (and counts the step).
    fn guard(&mut self, p: &Path, intent: Intent) -> io::Result<()> {
        match &mut self.journal {
            Some(j) => {
                j.before(p, intent)?;
                j.tick()
            }
            None => Ok(()),
        }
    }

    /// Moves `p` aside to the backup its guard recorded (a real, journaled tree only).
    fn set_aside(&mut self, p: &Path) -> io::Result<()> {
        match &mut self.journal {
            Some(j) => j.set_aside(p),
            None => Ok(()),
        }
    }

    /// One more step of a change already guarded (counts towards a simulated cut).
    fn step(&mut self) -> io::Result<()> {
        match &mut self.journal {
            Some(j) => j.tick(),
            None => Ok(()),
        }
    }

    /// True once a simulated power cut has stopped the run: nothing may be cleaned up.
    fn is_cut(&self) -> bool {
        self.journal.as_ref().is_some_and(Journal::is_cut)
    }

    /// An overlay on the file system; nothing is written.
    pub(crate) fn dry() -> Tree {
        Tree {
            dry: Some(Overlay::default()),
            journal: None,
        }
    }

    /// True for the dry run.
    pub(crate) fn is_dry(&self) -> bool {
        self.dry.is_some()
    }

    /// Dry run: puts the node `make` builds at `p`.
    fn made(&mut self, p: &Path, make: impl FnOnce(&mut Overlay) -> Node) {
        if let Some(o) = &mut self.dry {
            let node = make(o);
            o.put(p, node);
        }
    }

    /// What is at `p` (not following a symlink there); `None` when nothing is or it cannot
    /// be looked at.
    pub(crate) fn lstat(&self, p: &Path) -> Option<Meta> {
        if let Some(o) = &self.dry {
            match o.seen(p) {
                Seen::Made(Node::Absent) | Seen::Hidden => return None,
                Seen::Made(Node::Dir(m) | Node::File(m, _) | Node::Symlink(m, _)) => {
                    return Some(*m)
                }
                Seen::Real => {}
            }
        }
        fs::symlink_metadata(p).ok().map(|m| Meta::from_fs(&m))
    }

    /// The target of the symlink at `p`.
    pub(crate) fn read_link(&self, p: &Path) -> io::Result<PathBuf> {
        if let Some(o) = &self.dry {
            match o.seen(p) {
                Seen::Made(Node::Symlink(_, t)) => return Ok(t.clone()),
                Seen::Made(_) | Seen::Hidden => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{} is not a symlink", p.display()),
                    ))
                }
                Seen::Real => {}
            }
        }
        fs::read_link(p)
    }

    /// The contents of the regular file at `p` (not following a symlink there); `None` when
    /// there is no regular file.
    pub(crate) fn read(&self, p: &Path) -> io::Result<Option<Vec<u8>>> {
        if let Some(o) = &self.dry {
            match o.seen(p) {
                Seen::Made(Node::File(_, parts)) => {
                    let mut out = Vec::new();
                    for part in parts {
                        match part {
                            Part::Bytes(b) => out.extend_from_slice(b),
                            Part::File(f) => out.extend(fs::read(f)?),
                        }
                    }
                    return Ok(Some(out));
                }
                Seen::Made(_) | Seen::Hidden => return Ok(None),
                Seen::Real => {}
            }
        }
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_file() => fs::read(p).map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The contents of the file at `p` as parts that stay valid while the tree changes.
    pub(crate) fn parts_of(&self, p: &Path) -> Vec<Part> {
        if let Some(o) = &self.dry {
            if let Seen::Made(Node::File(_, parts)) = o.seen(p) {
                return parts.clone();
            }
        }
        vec![Part::File(p.to_path_buf())]
    }

    /// The names in the directory `dir` (empty when it is not there).
    pub(crate) fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let mut names = BTreeSet::new();
        let real = match &self.dry {
            Some(o) => matches!(o.seen(dir), Seen::Real),
            None => true,
        };
        if real {
            match fs::read_dir(dir) {
                Ok(entries) => {
                    for e in entries {
                        names.insert(e?.file_name());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(o) = &self.dry {
            for (k, n) in &o.nodes {
                if k.parent() == Some(dir) {
                    let name = k.file_name().unwrap_or_default().to_os_string();
                    if matches!(n, Node::Absent) {
                        names.remove(&name);
                    } else {
                        names.insert(name);
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Checks, in the dry run, that `p` can be created: a directory holds it and nothing is
    /// there yet (unless `replace`).
    fn creatable(&self, p: &Path, replace: bool) -> io::Result<()> {
        check_name(p)?;
        let parent = p.parent().unwrap_or(Path::new("/"));
        match self.lstat(parent) {
            Some(m) if m.is_dir() => {}
            Some(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    parent.display()
                )))
            }
            None => return Err(not_found(parent)),
        }
        if !replace && self.lstat(p).is_some() {
            return Err(exists(p));
        }
        Ok(())
    }

    /// Creates the directory `p` with `mode`.
    pub(crate) fn mkdir(&mut self, p: &Path, mode: u32) -> io::Result<()> {
        if self.is_dry() {
            self.creatable(p, false)?;
            self.made(p, |o| Node::Dir(o.meta(Kind::Dir, mode, None)));
            return Ok(());
        }
        self.guard(p, Intent::Create)?;
        fs::create_dir(p)?;
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
    }

    /// Sets the permission bits of `p`.
    pub(crate) fn set_mode(&mut self, p: &Path, mode: u32) -> io::Result<()> {
        match &mut self.dry {
            Some(o) => {
                if let Some(Node::Dir(m) | Node::File(m, _)) = o.nodes.get_mut(p) {
                    m.mode = mode;
                }
                Ok(())
            }
            None => {
                self.guard(p, Intent::Attrs)?;
                fs::set_permissions(p, fs::Permissions::from_mode(mode))
            }
        }
    }

    /// Changes the owner of `p` (not following a symlink).
    pub(crate) fn chown(&mut self, p: &Path, uid: u32, gid: u32) -> io::Result<()> {
        match &mut self.dry {
            Some(o) => {
                if let Some(Node::Dir(m) | Node::File(m, _) | Node::Symlink(m, _)) =
                    o.nodes.get_mut(p)
                {
                    (m.uid, m.gid) = (uid, gid);
                }
                Ok(())
            }
            None => {
                self.guard(p, Intent::Attrs)?;
                std::os::unix::fs::lchown(p, Some(uid), Some(gid))
            }
        }
    }

    /// Creates the symlink `p` → `target`.
    pub(crate) fn symlink(&mut self, target: &Path, p: &Path) -> io::Result<()> {
        if self.is_dry() {
            self.creatable(p, false)?;
            if target.as_os_str().as_bytes().contains(&0) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "symlink target contained an unexpected NUL byte",
                ));
            }
            self.made(p, |o| {
                Node::Symlink(o.meta(Kind::Symlink, 0o777, None), target.to_path_buf())
            });
            return Ok(());
        }
        self.guard(p, Intent::Create)?;
        std::os::unix::fs::symlink(target, p)
    }

    /// Creates `p` as another name of the file `target`.
    pub(crate) fn hard_link(&mut self, target: &Path, p: &Path) -> io::Result<()> {
        if self.is_dry() {
            self.creatable(p, false)?;
            let m = self.lstat(target).ok_or_else(|| not_found(target))?;
            if m.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "hard links to directories are not allowed",
                ));
            }
            let parts = self.parts_of(target);
            self.made(p, |_| Node::File(m, parts));
            return Ok(());
        }
        self.guard(p, Intent::Create)?;
        fs::hard_link(target, p)
    }

    /// Removes whatever is at `p` (a directory with everything below it); nothing there is
    /// fine.
    pub(crate) fn remove(&mut self, p: &Path) -> io::Result<()> {
        if self.is_dry() {
            if self.lstat(p).is_some() {
                self.made(p, |_| Node::Absent);
            }
            return Ok(());
        }
        self.guard(p, Intent::Replace)?;
        self.set_aside(p)?;
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(p),
            Ok(_) => fs::remove_file(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Writes `parts` to `p` through a temporary file and a rename, so whatever is at `p`
    /// (a symlink too) is replaced, never written through. The owner is set before the
    /// rename; `Ok(false)` says the process was not permitted to set it.
    pub(crate) fn write(
        &mut self,
        p: &Path,
        parts: &[Part],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> io::Result<bool> {
        if self.is_dry() {
            self.creatable(p, true)?;
            for part in parts {
                if let Part::File(f) = part {
                    if !self.lstat(f).is_some_and(|m| m.is_file()) {
                        return Err(not_found(f));
                    }
                }
            }
            self.made(p, |o| {
                Node::File(o.meta(Kind::File, mode, owner), parts.to_vec())
            });
            return Ok(true);
        }
        // A fixed short name, so a target name of 255 bytes still has a temporary sibling,
        // and a rollback knows what a cut write may have left next to its target (the
        // journal's lock keeps other applies out of the root).
        let dir = p.parent().unwrap_or(Path::new("/"));
        let tmp = dir.join(TMP);
        // Recorded before the temporary file exists, so a rollback also removes that.
        self.guard(p, Intent::Replace)?;
        let _ = fs::remove_file(&tmp);
        let result = fill(&tmp, parts, mode, owner).and_then(|owned| {
            // The data is safe in the temporary file (read from `p` too, for an append); now
            // what is at `p` goes (aside, when journaled) and the file takes its place.
            self.set_aside(p)?;
            if fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
                fs::remove_dir_all(p)?;
            }
            self.step()?;
            fs::rename(&tmp, p)?;
            Ok(owned)
        });
        if result.is_err() && !self.is_cut() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Creates `tmp` with `parts`, synced, with `mode` and `owner`; `Ok(false)` when the owner
/// could not be set for lack of permission.
fn fill(tmp: &Path, parts: &[Part], mode: u32, owner: Option<(u32, u32)>) -> io::Result<bool> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    for part in parts {
        match part {
            Part::Bytes(b) => f.write_all(b)?,
            Part::File(src) => {
                io::copy(&mut fs::File::open(src)?, &mut f)?;
            }
        }
    }
    f.sync_all()?;
    fs::set_permissions(tmp, fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        match std::os::unix::fs::lchown(tmp, Some(uid), Some(gid)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

impl Lookup for Tree {
    fn node_type(&self, host: &Path) -> io::Result<Option<NodeType>> {
        if let Some(o) = &self.dry {
            match o.seen(host) {
                Seen::Made(Node::Absent) | Seen::Hidden => return Ok(None),
                Seen::Made(Node::Dir(_)) => return Ok(Some(NodeType::Dir)),
                Seen::Made(Node::File(..)) => return Ok(Some(NodeType::Other)),
                Seen::Made(Node::Symlink(..)) => return Ok(Some(NodeType::Symlink)),
                Seen::Real => {}
            }
        }
        super::root::RealFs.node_type(host)
    }

    fn link_target(&self, host: &Path) -> io::Result<PathBuf> {
        self.read_link(host)
    }

    fn make_dir(&mut self, host: &Path) -> io::Result<()> {
        if self.is_dry() {
            return self.mkdir(host, 0o755);
        }
        self.guard(host, Intent::Create)?;
        super::root::RealFs.make_dir(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dry_run_sees_its_own_changes_and_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        fs::create_dir(r.join("etc")).unwrap();
        fs::write(r.join("etc/old"), "x").unwrap();
        let mut tree = Tree::dry();
        tree.mkdir(&r.join("var"), 0o700).unwrap();
        assert!(tree.mkdir(&r.join("var"), 0o700).is_err(), "exists now");
        tree.write(&r.join("var/f"), &[Part::bytes("ab")], 0o644, None)
            .unwrap();
        assert_eq!(tree.read(&r.join("var/f")).unwrap().unwrap(), b"ab");
        assert!(
            tree.write(&r.join("var/f/g"), &[], 0o644, None).is_err(),
            "a file is not a directory"
        );
        assert!(tree.write(&r.join("nope/f"), &[], 0o644, None).is_err());
        tree.remove(&r.join("etc")).unwrap();
        assert!(
            tree.lstat(&r.join("etc/old")).is_none(),
            "removed with /etc"
        );
        tree.mkdir(&r.join("etc"), 0o755).unwrap();
        assert!(tree.list(&r.join("etc")).unwrap().is_empty());
        tree.symlink(Path::new("/x"), &r.join("etc/l")).unwrap();
        assert_eq!(tree.read_link(&r.join("etc/l")).unwrap(), Path::new("/x"));
        tree.hard_link(&r.join("var/f"), &r.join("etc/h")).unwrap();
        assert_eq!(
            tree.lstat(&r.join("etc/h")).unwrap().id,
            tree.lstat(&r.join("var/f")).unwrap().id
        );
        assert!(tree.write(&r.join("etc/a\0b"), &[], 0o644, None).is_err());
        // Nothing of it reached the disk.
        assert!(!r.join("var").exists());
        assert_eq!(fs::read_to_string(r.join("etc/old")).unwrap(), "x");
    }
}
