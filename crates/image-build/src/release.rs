//! Release artifacts: the compressed, signed disk image under `OUT/release/`, laid out so that
//! `OUT/release` served over HTTP is a base URL for `coreos-install -b` (see `release::layout`).
//!
//! ```text
//! OUT/release/<VERSION>/keel_production_image.bin.gz          gzip of disk.img
//! OUT/release/<VERSION>/keel_production_image.bin.gz.sha256   sha256sum line
//! OUT/release/<VERSION>/keel_production_image.bin.gz.sig      Ed25519ph signature
//! OUT/release/<VERSION>/version.txt                           KEEL_VERSION=<VERSION>
//! OUT/release/current/version.txt                             KEEL_VERSION=<VERSION>
//! ```
//!
//! The image is compressed and hashed in one streaming pass (never held in memory). Without
//! `--signing-key` it is signed with the repository's TEST key, and the build says so loudly.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use release::layout::{self, IMAGE_NAME, SHA256_SUFFIX, SIG_SUFFIX};
use release::sign::digest_line;
use release::{SecretKey, StreamHash};

/// The files one release consists of.
#[derive(Clone, Debug)]
pub struct Published {
    /// `OUT/release/<VERSION>/keel_production_image.bin.gz`.
    pub image: PathBuf,
    /// Hex SHA-256 of the compressed image.
    pub sha256: String,
    /// Id of the key that signed it.
    pub key_id: String,
    /// Whether that key is the TEST key.
    pub test_key: bool,
}

/// The signing key: `path` if given, else the TEST key (with a warning).
pub fn signing_key(path: Option<&Path>) -> Result<SecretKey> {
    let key = match path {
        Some(p) => SecretKey::read(p)?,
        None => SecretKey::test(),
    };
    if key.is_test() {
        tracing::warn!(
            "SIGNING WITH THE PUBLIC TEST KEY (id {}): this image is for development and tests only; \
             pass --signing-key FILE to sign a real release",
            key.public().id()
        );
    }
    Ok(key)
}

/// Hashes what passes through it on the way to the file.
struct HashingWriter<W> {
    inner: W,
    hash: StreamHash,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Compress `disk_img` into `release_dir/<version>/`, write its digest and signature, and point
/// `release_dir/current/version.txt` at `version`.
pub fn publish(
    disk_img: &Path,
    release_dir: &Path,
    version: &str,
    key: &SecretKey,
) -> Result<Published> {
    ensure!(
        layout::valid_version(version),
        "version {version:?} cannot be a directory name of a release"
    );
    ensure!(
        version != layout::CURRENT,
        "version cannot be {:?}: that name points at the newest one",
        layout::CURRENT
    );
    let dir = release_dir.join(version);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let image = dir.join(IMAGE_NAME);
    let partial = dir.join(format!("{IMAGE_NAME}.partial"));

    let mut src = BufReader::with_capacity(
        1 << 20,
        File::open(disk_img).with_context(|| format!("opening {}", disk_img.display()))?,
    );
    let out = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, out),
        hash: StreamHash::new(),
    };
    let mut gz = GzEncoder::new(hashing, Compression::new(6));
    copy(&mut src, &mut gz).with_context(|| {
        format!(
            "compressing {} into {}",
            disk_img.display(),
            partial.display()
        )
    })?;
    let mut hashing = gz.finish().context("finishing the gzip stream")?;
    hashing.flush()?;
    let file = hashing.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let hash = hashing.hash;

    let digest = hash.sha256();
    let sig = hash.sign(key);
    write_file(
        &dir.join(format!("{IMAGE_NAME}{SHA256_SUFFIX}")),
        &digest_line(&digest, IMAGE_NAME),
    )?;
    write_file(
        &dir.join(format!("{IMAGE_NAME}{SIG_SUFFIX}")),
        &sig.to_text(),
    )?;
    write_file(&dir.join("version.txt"), &layout::version_txt(version))?;
    fs::rename(&partial, &image)
        .with_context(|| format!("renaming {} to {}", partial.display(), image.display()))?;
    // `current` last: a server never points at a version whose files are not all there.
    let current = release_dir.join(layout::CURRENT);
    fs::create_dir_all(&current)?;
    write_file(&current.join("version.txt"), &layout::version_txt(version))?;
    if key.is_test() {
        tracing::warn!(
            "{} is signed with the public TEST key: do not ship it",
            image.display()
        );
    }
    Ok(Published {
        image,
        sha256: hex::encode(digest),
        key_id: sig.key_id,
        test_key: key.is_test(),
    })
}

fn copy(src: &mut impl Read, dst: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Write `text` to `path` atomically (temp file + rename).
fn write_file(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use release::sign::{parse_digest_line, Signature};

    #[test]
    fn published_release_decompresses_to_the_disk_and_verifies_with_the_test_key() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("disk.img");
        let mut bytes = vec![0u8; 3 << 20];
        bytes[512..520].copy_from_slice(b"EFI PART");
        bytes[2 << 20] = 0x5a;
        fs::write(&disk, &bytes).unwrap();
        let out = d.path().join("release");
        let key = signing_key(None).unwrap();
        let p = publish(&disk, &out, "1.2.3", &key).unwrap();
        assert!(p.test_key);

        let gz = fs::read(out.join("1.2.3").join(IMAGE_NAME)).unwrap();
        let mut back = Vec::new();
        GzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);

        let mut hash = StreamHash::new();
        hash.update(&gz);
        let digest = parse_digest_line(
            &fs::read_to_string(out.join("1.2.3/keel_production_image.bin.gz.sha256")).unwrap(),
        )
        .unwrap();
        let sig = Signature::parse(
            &fs::read_to_string(out.join("1.2.3/keel_production_image.bin.gz.sig")).unwrap(),
        )
        .unwrap();
        hash.check(Some(&digest), Some((&sig, &key.public())))
            .unwrap();
        assert_eq!(hex::encode(digest), p.sha256);
        assert_eq!(
            fs::read_to_string(out.join("current/version.txt")).unwrap(),
            "KEEL_VERSION=1.2.3\n"
        );
        assert_eq!(
            fs::read_to_string(out.join("1.2.3/version.txt")).unwrap(),
            "KEEL_VERSION=1.2.3\n"
        );
        assert!(!out
            .join("1.2.3")
            .join(format!("{IMAGE_NAME}.partial"))
            .exists());
    }

    #[test]
    fn versions_that_are_not_one_path_segment_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("disk.img");
        fs::write(&disk, b"x").unwrap();
        for bad in ["../x", "current", ""] {
            assert!(
                publish(&disk, d.path(), bad, &SecretKey::test()).is_err(),
                "{bad}"
            );
        }
    }
}
