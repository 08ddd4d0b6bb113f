//! PXE artifacts: the kernel, and an initramfs that carries the whole OS (our initramfs with the
//! OS image appended as a second, uncompressed archive), plus example iPXE scripts: `boot.ipxe`
//! (the live system) and `install.ipxe` (the live system carrying the signed release image in
//! `install.cpio`, for an offline `coreos-install`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};

use release::layout::RELEASE_URL_KARG;

/// Where the example scripts expect vmlinuz, the initramfs and install.cpio to be served.
pub const EXAMPLE_BASE: &str = "http://10.0.2.2:8080";
/// The second initrd of `install.ipxe`: the release image the live system carries for an
/// offline install. The live initramfs moves its `keel-install/` directory to /run/keel/install.
pub const CARRIED_CPIO: &str = "install.cpio";
/// The directory inside [`CARRIED_CPIO`].
pub const CARRIED_DIR: &str = "keel-install";

/// An iPXE script that boots the live system from `base`. With `release_url`, the live system's
/// `coreos-install` installs from that release server by default; with `carry`, the script also
/// loads [`CARRIED_CPIO`], so the live system can install with no server at all.
pub fn ipxe_script(base: &str, release_url: Option<&str>, carry: bool) -> String {
    let mut args = crate::kargs::live();
    if let Some(url) = release_url {
        args.push_str(&format!(" {RELEASE_URL_KARG}={url}"));
    }
    let mut s = format!(
        "#!ipxe\n# Boot Keel's live system: the whole OS runs from RAM (give the machine 2 GiB or more{}).\n\
# Serve vmlinuz, initramfs.img{} over HTTP at {base} and chainload this script.\n\
dhcp\n\
kernel {base}/vmlinuz {args}\n\
initrd {base}/initramfs.img\n",
        if carry { ", 3 GiB to install from the release it carries" } else { "" },
        if carry { " and install.cpio" } else { "" },
    );
    if carry {
        s.push_str(&format!("initrd {base}/{CARRIED_CPIO}\n"));
    }
    s.push_str("boot\n");
    s
}

/// Write `out_dir/{vmlinuz,initramfs.img,boot.ipxe}`; `boot.ipxe` names `release_url` when given.
pub fn write(
    out_dir: &Path,
    kernel: &Path,
    disk_initrd: &Path,
    usr_image: &Path,
    release_url: Option<&str>,
) -> Result<()> {
    fs::create_dir_all(out_dir)?;
    fs::copy(kernel, out_dir.join("vmlinuz"))
        .with_context(|| format!("copying {}", kernel.display()))?;
    let initramfs = out_dir.join("initramfs.img");
    fs::copy(disk_initrd, &initramfs)?;
    let file = OpenOptions::new().append(true).open(&initramfs)?;
    let mut w = cpio::Writer::new(io::BufWriter::new(file));
    w.dir("live", 0o755)?;
    let usr = fs::read(usr_image).with_context(|| format!("reading {}", usr_image.display()))?;
    w.file("live/usr.squashfs", 0o444, &usr)?;
    let mut out: io::BufWriter<File> = w.finish()?;
    out.flush()?;
    fs::write(
        out_dir.join("boot.ipxe"),
        ipxe_script(EXAMPLE_BASE, release_url, false),
    )?;
    Ok(())
}

/// Write `out_dir/install.cpio` (the signed release image and its signature, from the release
/// directory `release_version_dir`) and `out_dir/install.ipxe`, which boots the live system
/// with it: `coreos-install -d DEV -i cfg.json` then installs offline, verified as always.
pub fn write_carried(
    out_dir: &Path,
    release_version_dir: &Path,
    release_url: Option<&str>,
) -> Result<()> {
    use release::layout::{IMAGE_NAME, SIG_SUFFIX};
    let file = File::create(out_dir.join(CARRIED_CPIO))?;
    let mut w = cpio::Writer::new(io::BufWriter::new(file));
    w.dir(CARRIED_DIR, 0o755)?;
    for name in [IMAGE_NAME.to_string(), format!("{IMAGE_NAME}{SIG_SUFFIX}")] {
        let src = release_version_dir.join(&name);
        let bytes = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        w.file(&format!("{CARRIED_DIR}/{name}"), 0o444, &bytes)?;
    }
    let mut out: io::BufWriter<File> = w.finish()?;
    out.flush()?;
    fs::write(
        out_dir.join("install.ipxe"),
        ipxe_script(EXAMPLE_BASE, release_url, true),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_loads_kernel_and_initramfs_with_live_args() {
        let s = ipxe_script("http://10.0.2.2:9000", None, false);
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains(
            "kernel http://10.0.2.2:9000/vmlinuz keel.live console=tty0 console=ttyS0,115200n8 panic=10 quiet transparent_hugepage=never"
        ));
        assert!(s.contains("initrd http://10.0.2.2:9000/initramfs.img\n"));
        assert!(!s.contains("install.cpio") && !s.contains("keel.release_url"));
    }

    #[test]
    fn the_install_script_names_the_release_server_and_carries_the_image() {
        let s = ipxe_script("http://h:1", Some("http://h:1/release"), true);
        assert!(s.contains(" keel.release_url=http://h:1/release\n"), "{s}");
        assert!(
            s.contains("initrd http://h:1/initramfs.img\ninitrd http://h:1/install.cpio\nboot\n"),
            "{s}"
        );
    }
}
