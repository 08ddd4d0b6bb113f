//! PXE artifacts: the kernel, and an initramfs that carries the whole OS (our initramfs with the
//! OS image appended as a second, uncompressed archive), plus an example iPXE script.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::cpio;

/// The example iPXE script; `BASE` is where vmlinuz and initramfs.img are served.
pub fn ipxe_script(base: &str) -> String {
    format!(
        "#!ipxe\n# Boot Keel's live system: the whole OS runs from RAM (give the machine 2 GiB or more).\n\
# Serve vmlinuz and initramfs.img over HTTP at {base} and chainload this script.\n\
dhcp\n\
kernel {base}/vmlinuz {}\n\
initrd {base}/initramfs.img\n\
boot\n",
        crate::kargs::live()
    )
}

/// Write `out_dir/{vmlinuz,initramfs.img,boot.ipxe}`.
pub fn write(out_dir: &Path, kernel: &Path, disk_initrd: &Path, usr_image: &Path) -> Result<()> {
    fs::create_dir_all(out_dir)?;
    fs::copy(kernel, out_dir.join("vmlinuz"))
        .with_context(|| format!("copying {}", kernel.display()))?;
    let initramfs = out_dir.join("initramfs.img");
    fs::copy(disk_initrd, &initramfs)?;
    let file = OpenOptions::new().append(true).open(&initramfs)?;
    let mut w = cpio::Writer::new(io::BufWriter::new(file));
    w.entry("live", 0o040755, 0, 0, &[])?;
    let usr = fs::read(usr_image).with_context(|| format!("reading {}", usr_image.display()))?;
    w.entry("live/usr.squashfs", 0o100444, 0, 0, &usr)?;
    let mut out: io::BufWriter<File> = w.finish()?;
    out.flush()?;
    fs::write(
        out_dir.join("boot.ipxe"),
        ipxe_script("http://10.0.2.2:8080"),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_loads_kernel_and_initramfs_with_live_args() {
        let s = ipxe_script("http://10.0.2.2:9000");
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.contains(
            "kernel http://10.0.2.2:9000/vmlinuz keel.live console=tty0 console=ttyS0,115200n8 panic=10 quiet transparent_hugepage=never"
        ));
        assert!(s.contains("initrd http://10.0.2.2:9000/initramfs.img\n"));
    }
}
