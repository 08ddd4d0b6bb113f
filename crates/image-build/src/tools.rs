//! Host programs the build needs, and the Debian package each comes from.

use std::path::Path;

/// A host program or file and the package that provides it.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// Program name looked up on PATH, or an absolute path.
    pub name: &'static str,
    /// Debian package to install.
    pub package: &'static str,
}

/// Everything `image-build` runs.
pub const REQUIRED: &[Tool] = &[
    Tool {
        name: "mmdebstrap",
        package: "mmdebstrap",
    },
    Tool {
        name: "mksquashfs",
        package: "squashfs-tools",
    },
    Tool {
        name: "mkfs.vfat",
        package: "dosfstools",
    },
    Tool {
        name: "grub-mkimage",
        package: "grub-common",
    },
    Tool {
        name: "/usr/lib/grub/x86_64-efi/linux.mod",
        package: "grub-efi-amd64-bin",
    },
    Tool {
        name: "/usr/lib/grub/i386-pc/boot.img",
        package: "grub-pc-bin",
    },
    Tool {
        name: "/bin/busybox",
        package: "busybox-static",
    },
    Tool {
        name: "depmod",
        package: "kmod",
    },
    Tool {
        name: "zstd",
        package: "zstd",
    },
    Tool {
        name: "readelf",
        package: "binutils",
    },
    Tool {
        name: "ldconfig",
        package: "libc-bin",
    },
    Tool {
        name: "tar",
        package: "tar",
    },
];

/// A missing host tool.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("missing host tools: {}; install them with: apt-get install {}", names.join(", "), packages.join(" "))]
pub struct MissingTools {
    /// The missing programs or files.
    pub names: Vec<String>,
    /// The Debian packages that provide them.
    pub packages: Vec<String>,
}

fn on_path(name: &str) -> bool {
    if name.starts_with('/') {
        return Path::new(name).exists();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(Into::into))
        .any(|dir| dir.join(name).is_file())
}

/// Check that every tool in `tools` is present; name all missing ones and their packages.
pub fn check(tools: &[Tool]) -> Result<(), MissingTools> {
    check_with(tools, on_path)
}

fn check_with(tools: &[Tool], present: impl Fn(&str) -> bool) -> Result<(), MissingTools> {
    let missing: Vec<&Tool> = tools.iter().filter(|t| !present(t.name)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut packages: Vec<String> = missing.iter().map(|t| t.package.to_string()).collect();
    packages.dedup();
    Err(MissingTools {
        names: missing.iter().map(|t| t.name.to_string()).collect(),
        packages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_missing_tool_and_its_package() {
        let err = check_with(REQUIRED, |n| n != "mksquashfs" && n != "mkfs.vfat").unwrap_err();
        assert_eq!(err.names, vec!["mksquashfs", "mkfs.vfat"]);
        assert_eq!(err.packages, vec!["squashfs-tools", "dosfstools"]);
        assert!(err
            .to_string()
            .contains("apt-get install squashfs-tools dosfstools"));
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("surely-not-a-keel-tool"));
    }
}
