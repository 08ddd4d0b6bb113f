//! Find the build outputs the VM tests boot: `build/disk.img` and `build/pxe/`.
//!
//! The build directory is `$KEEL_BUILD_DIR` if set, else `<workspace root>/build`. A missing
//! output is an error that says which command builds it.

use std::path::PathBuf;

/// The command that builds the image and PXE artifacts.
pub const BUILD_COMMAND: &str = "./keel build";

/// A build output is missing.
#[derive(Debug, thiserror::Error)]
#[error("{} not found: run `{BUILD_COMMAND}` first", .0.display())]
pub struct MissingArtifact(pub PathBuf);

/// The build directory: `$KEEL_BUILD_DIR`, else `<workspace root>/build`.
pub fn build_dir() -> PathBuf {
    match std::env::var_os("KEEL_BUILD_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("build"),
    }
}

/// The workspace root: two levels above this crate.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
}

/// The raw disk image, `build/disk.img`. Boot a copy of it ([`crate::VmBuilder::disk_copy_of`]).
pub fn disk_image() -> Result<PathBuf, MissingArtifact> {
    existing(build_dir().join("disk.img"))
}

/// The PXE artifacts directory, `build/pxe`, holding `vmlinuz` and `initramfs.img`.
pub fn pxe_dir() -> Result<PathBuf, MissingArtifact> {
    let dir = build_dir().join("pxe");
    for file in [crate::pxe::KERNEL, crate::pxe::INITRAMFS] {
        existing(dir.join(file))?;
    }
    Ok(dir)
}

fn existing(path: PathBuf) -> Result<PathBuf, MissingArtifact> {
    if path.exists() {
        Ok(path)
    } else {
        Err(MissingArtifact(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_outputs_say_how_to_build_them() {
        let err = MissingArtifact(PathBuf::from("build/disk.img"));
        assert_eq!(
            err.to_string(),
            "build/disk.img not found: run `./keel build` first"
        );
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("crates/qemu-tests").is_dir());
    }
}
