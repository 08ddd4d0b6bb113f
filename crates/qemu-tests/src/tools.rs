//! Host programs the harness runs (ssh, mkfs.vfat, ...), found on `PATH`.
//!
//! A missing program is a [`ToolError`] that names the Debian package providing it, so a test
//! on a machine without it fails with the fix in the message.

use std::path::{Path, PathBuf};

/// A host program was not found.
#[derive(Debug, thiserror::Error)]
#[error("`{program}` not found on PATH: install the Debian package `{package}` (apt-get install {package})")]
pub struct ToolError {
    /// The program looked for.
    pub program: String,
    /// The Debian package that provides it.
    pub package: String,
}

/// Find `program` on `PATH` (and in the sbin directories, which a non-root `PATH` may lack).
pub fn require(program: &str, package: &str) -> Result<PathBuf, ToolError> {
    find(program).ok_or_else(|| ToolError {
        program: program.to_string(),
        package: package.to_string(),
    })
}

/// Find `program` on `PATH` or in the sbin directories.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_names_the_package_of_a_missing_program() {
        assert!(require("sh", "dash").is_ok());
        let err = require("keel-no-such-program", "keel-pkg").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`keel-no-such-program` not found on PATH: install the Debian package `keel-pkg` \
             (apt-get install keel-pkg)"
        );
    }
}
