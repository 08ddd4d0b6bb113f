//! A writer for "newc" cpio archives, the format the kernel unpacks as an initramfs: the one
//! Keel has (image-build's initramfs and PXE archives, the test harness's tiny guests).
//!
//! Directories, regular files, symbolic links and device nodes; every entry has mtime 0 and
//! inodes count up from 1, and [`Writer::tree`] adds a directory's entries sorted by name, so
//! the same input gives the same archive byte for byte.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The file type bits of a mode (`S_IFMT`) and the types an archive holds.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Writes entries one by one, then the trailer ([`Writer::finish`]).
pub struct Writer<W: Write> {
    out: W,
    ino: u32,
    written: u64,
}

impl Writer<Vec<u8>> {
    /// A new archive in memory.
    pub fn in_memory() -> Self {
        Writer::new(Vec::new())
    }
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
        self.entry_with_rdev(name, mode, uid, gid, (0, 0), data)
    }

    /// Add one entry with a device number (major, minor), for device nodes.
    fn entry_with_rdev(
        &mut self,
        name: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        let len = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: newc entries hold at most 4 GiB"),
            )
        })?;
        let fields = [
            self.ino,
            mode,
            uid,
            gid,
            1, // nlink
            0, // mtime
            len,
            0, // dev major, minor
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
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

    /// A directory owned by root with permissions `perm` (e.g. `0o755`).
    pub fn dir(&mut self, name: &str, perm: u32) -> io::Result<()> {
        self.entry(name, S_IFDIR | perm, 0, 0, &[])
    }

    /// A regular file owned by root with permissions `perm` (e.g. `0o644`).
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | perm, 0, 0, data)
    }

    /// A symbolic link owned by root pointing at `target`.
    pub fn symlink(&mut self, name: &str, target: &str) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, 0, 0, target.as_bytes())
    }

    /// A character device node owned by root with permissions `perm` (e.g. `dev/console`,
    /// 5:1, `0o600`).
    pub fn char_device(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry_with_rdev(name, S_IFCHR | perm, 0, 0, (major, minor), &[])
    }

    /// Add the tree under `dir` (entries named relative to it, with their modes and owners),
    /// sorted.
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

    fn gnu_cpio(args: &[&str], archive: &Path, dir: &Path) -> String {
        let out = Command::new("cpio")
            .args(args)
            .arg("-F")
            .arg(archive)
            .current_dir(dir)
            .output()
            .expect("cpio installed");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

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
        gnu_cpio(&["-idm", "--quiet"], &archive, &out);
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

    #[test]
    fn entries_written_one_by_one_list_with_their_types_and_device_numbers() {
        let mut w = Writer::in_memory();
        w.dir("dev", 0o755).unwrap();
        w.char_device("dev/console", 0o600, 5, 1).unwrap();
        w.file("/init", 0o755, b"#!/bin/sh\n").unwrap();
        w.symlink("sh", "busybox").unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));

        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.cpio");
        fs::write(&archive, &bytes).unwrap();
        let listing = gnu_cpio(&["-itv", "--quiet"], &archive, dir.path());
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 4, "{listing}");
        assert!(lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" dev"));
        assert!(lines[1].starts_with("crw-------") && lines[1].contains("5,"));
        assert!(lines[1].ends_with(" dev/console"), "{listing}");
        assert!(lines[2].starts_with("-rwxr-xr-x") && lines[2].ends_with(" init"));
        assert!(lines[3].starts_with("lrwxrwxrwx") && lines[3].ends_with(" sh -> busybox"));
    }
}
