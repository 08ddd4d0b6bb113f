//! Disk image files for VMs: sparse copies of build artifacts and blank disks.
//!
//! Tests never boot a build artifact in place: the VM gets a sparse copy in its work directory,
//! optionally grown (as a bigger physical disk would be).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::info;

/// Creating a disk file failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The source image could not be read.
    #[error("disk: reading {path}")]
    Read {
        /// The source image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The disk file could not be written.
    #[error("disk: writing {path}")]
    Write {
        /// The disk file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The requested size is smaller than the source image.
    #[error("disk: {path} is {actual} bytes, cannot shrink it to {requested}")]
    Shrink {
        /// The source image.
        path: PathBuf,
        /// Its size.
        actual: u64,
        /// The size asked for.
        requested: u64,
    },
}

const BLOCK: usize = 64 * 1024;

/// Copy `src` to `dst`, skipping all-zero blocks (they stay holes), and make `dst`
/// `grow_to` bytes long if given (the grown part is a hole too).
pub fn sparse_copy(src: &Path, dst: &Path, grow_to: Option<u64>) -> Result<(), DiskError> {
    let read_err = |source| DiskError::Read {
        path: src.to_path_buf(),
        source,
    };
    let write_err = |source| DiskError::Write {
        path: dst.to_path_buf(),
        source,
    };
    let mut input = File::open(src).map_err(read_err)?;
    let len = input.metadata().map_err(read_err)?.len();
    if let Some(requested) = grow_to {
        if requested < len {
            return Err(DiskError::Shrink {
                path: src.to_path_buf(),
                actual: len,
                requested,
            });
        }
    }
    let mut output = File::create(dst).map_err(write_err)?;
    let mut buf = vec![0u8; BLOCK];
    let mut offset = 0u64;
    loop {
        let n = read_full(&mut input, &mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            output.seek(SeekFrom::Start(offset)).map_err(write_err)?;
            output.write_all(&buf[..n]).map_err(write_err)?;
        }
        offset += n as u64;
    }
    output.set_len(grow_to.unwrap_or(len)).map_err(write_err)?;
    info!(src = %src.display(), dst = %dst.display(), size = grow_to.unwrap_or(len), "disk: sparse copy made");
    Ok(())
}

/// Create a blank (all-hole) disk file of `size` bytes.
pub fn blank(path: &Path, size: u64) -> Result<(), DiskError> {
    let write_err = |source| DiskError::Write {
        path: path.to_path_buf(),
        source,
    };
    File::create(path)
        .and_then(|f| f.set_len(size))
        .map_err(write_err)
}

fn read_full(input: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn sparse_copy_keeps_data_leaves_holes_and_grows() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.img");
        let mut f = File::create(&src).unwrap();
        f.set_len(8 << 20).unwrap();
        f.write_all(b"MBR").unwrap();
        f.seek(SeekFrom::Start(5 << 20)).unwrap();
        f.write_all(b"data in the middle").unwrap();
        drop(f);

        let dst = dir.path().join("dst.img");
        sparse_copy(&src, &dst, Some(64 << 20)).unwrap();
        let copy = std::fs::read(&dst).unwrap();
        assert_eq!(copy.len(), 64 << 20);
        assert_eq!(&copy[..3], b"MBR");
        assert_eq!(&copy[5 << 20..(5 << 20) + 18], b"data in the middle");
        // Two 64 KiB blocks written, the rest holes (allow for filesystem overhead).
        assert!(dst.metadata().unwrap().blocks() * 512 <= 1 << 20);

        let err = sparse_copy(&src, &dst, Some(1 << 20)).unwrap_err();
        assert!(
            err.to_string().contains("cannot shrink it to 1048576"),
            "{err}"
        );

        sparse_copy(&src, &dst, None).unwrap();
        assert_eq!(dst.metadata().unwrap().len(), 8 << 20);
    }
}
