//! The Debian bookworm tree the OS is made of, from mmdebstrap, cached as a tarball keyed by
//! everything that goes into it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::cmd;

/// The Debian packages of a Keel node.
pub const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "systemd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iproute2",
    "openssh-server",
    "sudo",
    // The node's own name always resolves (sudo looks it up), whatever Ignition or DHCP sets.
    "libnss-myhostname",
    "docker.io",
    "etcd-server",
    "etcd-client",
    "e2fsprogs",
    "fdisk",
    "apparmor",
    "ca-certificates",
];

/// dpkg path filters: nothing under these is ever unpacked.
pub const DPKG_EXCLUDES: &[&str] = &[
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
];

/// What to fetch.
#[derive(Clone, Debug)]
pub struct RootfsSpec {
    /// Debian suite.
    pub suite: String,
    /// Debian mirror URL.
    pub mirror: String,
    /// Packages on top of the minbase variant.
    pub packages: Vec<String>,
}

impl Default for RootfsSpec {
    fn default() -> Self {
        RootfsSpec {
            suite: "bookworm".into(),
            mirror: "http://deb.debian.org/debian".into(),
            packages: PACKAGES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl RootfsSpec {
    /// Cache key over everything that changes the tree.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.suite.as_bytes());
        h.update(self.mirror.as_bytes());
        for p in self
            .packages
            .iter()
            .map(String::as_str)
            .chain(DPKG_EXCLUDES.iter().copied())
        {
            h.update([0]);
            h.update(p.as_bytes());
        }
        hex::encode(&h.finalize()[..8])
    }

    /// mmdebstrap's arguments to write the tree as `tarball`.
    pub fn mmdebstrap_args(&self, tarball: &Path) -> Vec<String> {
        let mut args = vec![
            "--variant=minbase".to_string(),
            "--quiet".to_string(),
            format!("--include={}", self.packages.join(",")),
            "--aptopt=Acquire::Retries \"3\"".to_string(),
        ];
        for ex in DPKG_EXCLUDES {
            args.push(format!("--dpkgopt=path-exclude={ex}"));
        }
        args.push(self.suite.clone());
        args.push(tarball.display().to_string());
        args.push(self.mirror.clone());
        args
    }
}

/// Build (or take from `cache`) the tree and unpack it into `dest`.
pub fn prepare(spec: &RootfsSpec, cache: &Path, dest: &Path) -> Result<PathBuf> {
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let tarball = cache.join(format!("rootfs-{}-{}.tar", spec.suite, spec.key()));
    if tarball.is_file() {
        tracing::info!("rootfs: using cached {}", tarball.display());
    } else {
        tracing::info!(
            "rootfs: mmdebstrap {} with {} packages (about two minutes)",
            spec.suite,
            spec.packages.len()
        );
        let partial = tarball.with_extension("partial.tar");
        cmd::run_args("mmdebstrap", spec.mmdebstrap_args(&partial))?;
        fs::rename(&partial, &tarball)?;
    }
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("clearing {}", dest.display()))?;
    }
    fs::create_dir_all(dest)?;
    cmd::run_args(
        "tar",
        [
            "-xpf".as_ref(),
            tarball.as_os_str(),
            "--numeric-owner".as_ref(),
            "-C".as_ref(),
            dest.as_os_str(),
        ],
    )?;
    Ok(tarball)
}

/// The single kernel version installed in `tree` (`usr/lib/modules/<version>`).
pub fn kernel_version(tree: &Path) -> Result<String> {
    let dir = tree.join("usr/lib/modules");
    let mut versions: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    match versions.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!(
            "no kernel in {}: is linux-image-amd64 in the package list?",
            dir.display()
        ),
        many => anyhow::bail!("several kernels in {}: {}", dir.display(), many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_the_package_list() {
        let a = RootfsSpec::default();
        let mut b = RootfsSpec::default();
        b.packages.push("less".into());
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), RootfsSpec::default().key());
    }

    #[test]
    fn mmdebstrap_gets_every_package_and_exclude() {
        let args = RootfsSpec::default().mmdebstrap_args(Path::new("/tmp/x.tar"));
        let include = args.iter().find(|a| a.starts_with("--include=")).unwrap();
        assert!(include.contains("docker.io") && include.contains("etcd-server"));
        assert!(args.contains(&"--dpkgopt=path-exclude=/usr/share/doc/*".to_string()));
        assert_eq!(
            args[args.len() - 3..],
            ["bookworm", "/tmp/x.tar", "http://deb.debian.org/debian"]
        );
    }
}
