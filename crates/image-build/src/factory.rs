//! Factory defaults: /etc and /var move into the OS image under `usr/share/keel/factory`,
//! with the top-level skeleton. The initramfs copies them into ROOT on first boot, so the slot
//! holds everything and ROOT holds only what the node changed.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// Where the defaults live inside /usr.
pub const FACTORY: &str = "usr/share/keel/factory";

/// Top-level directories of ROOT and their modes.
const SKELETON: &[(&str, u32)] = &[
    ("boot", 0o755),
    ("dev", 0o755),
    ("home", 0o755),
    ("media", 0o755),
    ("mnt", 0o755),
    ("oem", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
];

/// merged-/usr links at the top of ROOT.
const LINKS: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("sbin", "usr/sbin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
];

/// Move etc, var and root under the factory directory and lay out the skeleton beside them.
pub fn split(tree: &Path) -> Result<()> {
    let factory = tree.join(FACTORY);
    if factory.exists() {
        fs::remove_dir_all(&factory)?;
    }
    fs::create_dir_all(&factory)?;
    for dir in ["etc", "var", "root"] {
        let from = tree.join(dir);
        fs::rename(&from, factory.join(dir))
            .with_context(|| format!("moving {} into the factory", from.display()))?;
    }
    for (dir, mode) in SKELETON {
        let p = factory.join(dir);
        fs::create_dir_all(&p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
    }
    for (name, target) in LINKS {
        symlink(target, factory.join(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_and_var_become_factory_defaults_with_a_root_skeleton() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path();
        for dir in ["etc", "var/lib", "root", "usr/bin"] {
            fs::create_dir_all(t.join(dir)).unwrap();
        }
        fs::write(t.join("etc/hostname"), "keel\n").unwrap();
        split(t).unwrap();
        let f = t.join(FACTORY);
        assert_eq!(
            fs::read_to_string(f.join("etc/hostname")).unwrap(),
            "keel\n"
        );
        assert!(f.join("var/lib").is_dir());
        assert!(!t.join("etc").exists());
        assert_eq!(
            fs::read_link(f.join("sbin")).unwrap(),
            Path::new("usr/sbin")
        );
        let tmp_mode = fs::metadata(f.join("tmp")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(tmp_mode, 0o1777);
    }
}
