//! Where fetched file contents wait between the fetch and the write: a private directory in
//! the root (`/.ignition-staging`, mode 0700), so large files land on the disk they are
//! for rather than in memory (in the initramfs, `/tmp` is memory too). It is made on first
//! use and removed with everything in it when dropped, whether the apply succeeded or not.
//! A power cut leaves it behind; the next apply into the root clears it first
//! ([`Staging::clear`]). Its name is fixed, as only one apply at a time works in a root (the
//! progress journal locks it).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The staging directory of one apply.
#[derive(Debug)]
pub(super) struct Staging {
    dir: PathBuf,
    made: bool,
    next: usize,
}

impl Staging {
    /// A staging directory in `root` (not made yet).
    pub(super) fn new(root: &Path) -> Staging {
        Staging {
            dir: root.join(".ignition-staging"),
            made: false,
            next: 0,
        }
    }

    /// The directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes what an earlier, interrupted apply left in the staging directory.
    pub(super) fn clear(&self) -> io::Result<()> {
        match fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&self.dir),
            Ok(_) => fs::remove_file(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A new, empty file to stage into, and its path.
    pub(super) fn file(&mut self) -> io::Result<(fs::File, PathBuf)> {
        if !self.made {
            if fs::symlink_metadata(&self.dir).is_ok() {
                fs::remove_dir_all(&self.dir)?;
            }
            fs::DirBuilder::new().mode(0o700).create(&self.dir)?;
            self.made = true;
        }
        self.next += 1;
        let path = self.dir.join(self.next.to_string());
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok((f, path))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.made {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                tracing::warn!("removing {}: {e}", self.dir.display());
            }
        }
    }
}
