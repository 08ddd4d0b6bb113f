//! What the running system says about where an install comes from when the command line names
//! no source (`coreos-install -d /dev/sda -i cfg.json`, as the CoreOS lab types it).
//!
//! On Keel's live (PXE) system, with no `-b`, `-u` or `-f`, the install takes the release the
//! live system runs:
//!  1. from the release server named on the kernel command line, `keel.release_url=URL` (the
//!     iPXE script image-build writes passes it when built with `--release-url`; an operator can
//!     add it to any live boot), at the live system's own version unless `-V`/`-C` say
//!     otherwise;
//!  2. else, with no server at all, from the release image the live system carries in RAM
//!     (booted with image-build's `install.ipxe`, which loads `install.cpio` beside the live
//!     initramfs; the initramfs moves it to [`CARRIED_DIR`]): an offline install, still
//!     verified against the trusted key;
//!  3. else it is refused with what to do, instead of trying a server that does not exist.
//!
//! On an installed node (not live) nothing changes: the channel's default base URL.

use std::fs;
use std::path::{Path, PathBuf};

use release::layout::{IMAGE_NAME, RELEASE_URL_KARG, SIG_SUFFIX};
use slots::booted::{self, Booted};
use slots::kargs;

/// Where the live initramfs puts the release image it carries.
pub const CARRIED_DIR: &str = "/run/keel/install";

/// The running system, as far as choosing an install source goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// Its `VERSION_ID` (the default `-V`, as CL took it from /etc/os-release).
    pub version: Option<String>,
    /// A live boot (`keel.live` on the kernel command line).
    pub live: bool,
    /// `keel.release_url=` from the kernel command line.
    pub release_url: Option<String>,
    /// The release image the live system carries, when it has one (with its signature beside
    /// it).
    pub carried_image: Option<PathBuf>,
}

impl Running {
    /// An installed system of this version (no live boot): what most tests need.
    pub fn installed(version: Option<&str>) -> Self {
        Running {
            version: version.map(str::to_string),
            ..Running::default()
        }
    }

    /// Read from the kernel command line text (by the rules of [`slots::kargs`]: the flag
    /// `keel.live`, the last `keel.release_url=` with a value) and the carried-image directory.
    pub fn read(version: Option<String>, cmdline: &str, carried_dir: &Path) -> Self {
        let live = booted::from_cmdline(cmdline) == Booted::Live;
        let release_url = kargs::split(cmdline)
            .into_iter()
            .rev()
            .filter(|(k, _)| k == RELEASE_URL_KARG)
            .find_map(|(_, v)| kargs::value(v.as_deref()).map(str::to_string));
        let image = carried_dir.join(IMAGE_NAME);
        let sig = carried_dir.join(format!("{IMAGE_NAME}{SIG_SUFFIX}"));
        let carried_image = (live && is_file(&image) && is_file(&sig)).then_some(image);
        Running {
            version,
            live,
            release_url,
            carried_image,
        }
    }
}

fn is_file(p: &Path) -> bool {
    fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_url_and_the_carried_image_come_from_a_live_boot_only() {
        let d = tempfile::tempdir().unwrap();
        let r = Running::read(
            Some("1.0".into()),
            "console=ttyS0 keel.live keel.release_url=http://10.0.2.2:9/r",
            d.path(),
        );
        assert!(r.live);
        assert_eq!(r.release_url.as_deref(), Some("http://10.0.2.2:9/r"));
        assert_eq!(r.carried_image, None, "nothing carried yet");

        // An image without its signature is not a carried release.
        fs::write(d.path().join(IMAGE_NAME), b"x").unwrap();
        assert_eq!(
            Running::read(None, "keel.live", d.path()).carried_image,
            None
        );
        fs::write(d.path().join(format!("{IMAGE_NAME}{SIG_SUFFIX}")), b"s").unwrap();
        assert_eq!(
            Running::read(None, "keel.live", d.path()).carried_image,
            Some(d.path().join(IMAGE_NAME))
        );
        // An installed system ignores what /run might hold.
        let r = Running::read(None, "root=x keel.release_url=", d.path());
        assert!(!r.live && r.carried_image.is_none() && r.release_url.is_none());
        // keel.live is a flag and `keel.release_url=` names no server (slots::kargs).
        let r = Running::read(None, "keel.live=0", d.path());
        assert!(!r.live && r.carried_image.is_none());
        let r = Running::read(
            None,
            "keel.live keel.release_url=http://a/r keel.release_url=",
            d.path(),
        );
        assert!(r.live);
        assert_eq!(r.release_url.as_deref(), Some("http://a/r"));
    }
}
