//! The kernel's answer to the ESP check ([`slots::store::EspStore::check`]): is the directory
//! a mount point, and which filesystem is it on.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use slots::store::{Filesystems, MountFacts};

/// Asks the running kernel: `stat` of the directory and of its parent (a mount point's device
/// differs from its parent's; `/` is its own parent), `statfs` for the filesystem type.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel;

impl Filesystems for Kernel {
    fn mount(&self, dir: &Path) -> std::io::Result<MountFacts> {
        let here = std::fs::metadata(dir)?;
        let parent = std::fs::metadata(dir.join(".."))?;
        let mount_point = here.dev() != parent.dev() || here.ino() == parent.ino();
        let fs = nix::sys::statfs::statfs(dir).map_err(std::io::Error::from)?;
        Ok(MountFacts {
            mount_point,
            fs_type: fs.filesystem_type().0 as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_no_mount_point_and_the_root_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let facts = Kernel.mount(dir.path()).unwrap();
        assert!(!facts.mount_point);
        assert!(Kernel.mount(Path::new("/")).unwrap().mount_point);
        assert!(Kernel.mount(&dir.path().join("missing")).is_err());
    }
}
