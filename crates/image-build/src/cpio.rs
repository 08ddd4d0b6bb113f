//! A writer for "newc" cpio archives, the format the kernel unpacks as an initramfs.
//! Directories, regular files and symbolic links; entries sorted so archives are reproducible.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Writes entries one by one, then the trailer.
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    /// A new archive on `out`.
    pub fn new(out: W) -> Self {
        Writer {
            out,
            ino: 1,
            written: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let n = ((4 - (self.written % 4)) % 4) as usize;
        self.put(&[0u8; 3][..n])
    }

    /// Add one entry: `name` without a leading slash, `mode` including the file type bits.
    pub fn entry(
        &mut self,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            uid,
            gid,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    /// Add the tree under `dir` (entries named relative to it), sorted.
    pub fn tree(&mut self, dir: &Path) -> io::Result<()> {
        self.walk(dir, dir)
    }

    fn walk(&mut self, base: &Path, dir: &Path) -> io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(base).expect("walk stays under base");
            let name = rel.to_string_lossy();
            let meta = fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                let target = fs::read_link(&path)?;
                self.entry(
                    &name,
                    meta.mode(),
                    meta.uid(),
                    meta.gid(),
                    target.as_os_str().as_encoded_bytes(),
                )?;
            } else if ft.is_dir() {
                self.entry(&name, meta.mode(), meta.uid(), meta.gid(), &[])?;
                self.walk(base, &path)?;
            } else if ft.is_file() {
                let data = fs::read(&path)?;
                self.entry(&name, meta.mode(), meta.uid(), meta.gid(), &data)?;
            }
        }
        Ok(())
    }

    /// Write the trailer and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, 0, 0, &[])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    #[test]
    fn gnu_cpio_lists_and_extracts_what_we_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        fs::write(src.join("init"), "#!/bin/sh\necho hi\n").unwrap();
        fs::write(src.join("bin/odd"), "12345").unwrap(); // length not a multiple of 4
        symlink("busybox", src.join("bin/sh")).unwrap();
        let archive = dir.path().join("a.cpio");
        let mut w = Writer::new(fs::File::create(&archive).unwrap());
        w.tree(&src).unwrap();
        w.finish().unwrap();

        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        let status = Command::new("cpio")
            .args(["-idm", "--quiet", "-F"])
            .arg(&archive)
            .current_dir(&out)
            .status()
            .expect("cpio installed");
        assert!(status.success());
        assert_eq!(
            fs::read_to_string(out.join("init")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(fs::read_to_string(out.join("bin/odd")).unwrap(), "12345");
        assert_eq!(
            fs::read_link(out.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
    }
}
