//! Release artifacts: the compressed, signed disk image under `OUT/release/`, laid out so that
//! `OUT/release` served over HTTP is a base URL for `coreos-install -b` (see `release::layout`).
//!
//! ```text
//! OUT/release/<VERSION>/keel_production_image.bin.gz          gzip of disk.img
//! OUT/release/<VERSION>/keel_production_image.bin.gz.sha256   sha256sum line
//! OUT/release/<VERSION>/keel_production_image.bin.gz.sig      keel-signature-v2: the signed
//!                                                             version, channel, name, size, SHA-256
//! OUT/release/<VERSION>/version.txt                           KEEL_VERSION=<VERSION>
//! OUT/release/current/version.txt                             KEEL_VERSION=<VERSION>
//! ```
//!
//! The image is compressed and hashed in one streaming pass (never held in memory), then the
//! statement of what it is (`release::Statement`) is signed. The signing key is always given
//! (`--signing-key`); which keys are allowed depends on how image-build was built
//! ([`check_signing_key`]): Keel's public TEST key only in a test build (`--features test-keys`,
//! and then with a warning), and in a production build only the key whose public half the build
//! trusts (`KEEL_TRUSTED_KEY`), so the installers built with it accept what it signs.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use release::layout::{self, IMAGE_NAME, SHA256_SUFFIX, SIG_SUFFIX};
use release::sign::digest_line;
use release::{check_trust, PublicKey, SecretKey, Statement, StreamHash, TrustMode};

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

/// What to say when no `--signing-key` is given.
const NO_SIGNING_KEY: &str = "no --signing-key: give the Ed25519 secret key (PEM) that signs \
the release image. For a production build: `--signing-key /path/key.pem` whose public half this \
image-build and the installers were built to trust (`KEEL_TRUSTED_KEY=/path/key.pub.pem \
KEEL_SIGNING_KEY=/path/key.pem ./keel build` does both). For a test build: `--signing-key \
crates/release/keys/test-key.pem` with image-build built with `--features test-keys` (what \
`./keel build` does)";

/// The signing key: the file given (required), allowed by [`check_signing_key`] for a build of
/// trust `mode`. Signing with the TEST key is said loudly.
pub fn signing_key(path: Option<&Path>, mode: TrustMode) -> Result<SecretKey> {
    let Some(path) = path else {
        bail!("{NO_SIGNING_KEY}")
    };
    let key = SecretKey::read(path)?;
    check_signing_key(mode, &key.public())
        .with_context(|| format!("refusing to sign with --signing-key {}", path.display()))?;
    if key.is_test() {
        tracing::warn!(
            "SIGNING WITH KEEL'S PUBLIC TEST KEY (id {}) from {}: anyone can sign with it; the \
             image is for development and tests only, and only test builds install it",
            key.public().id(),
            path.display()
        );
    }
    Ok(key)
}

/// Whether an image-build of trust `mode` may sign with `key`: the TEST key only in a test build
/// ([`check_trust`]), and in a production build only the compiled-in key, so the installers of
/// the same build accept the image.
pub fn check_signing_key(mode: TrustMode, key: &PublicKey) -> Result<()> {
    check_trust(mode, key)?;
    match (mode, mode.compiled_key()) {
        (TrustMode::Production, Some(trusted)) if trusted != *key => bail!(
            "it is key {}, but this production build trusts only key {} (KEEL_TRUSTED_KEY): \
             the installers built with it would refuse the image. Give the secret half of \
             KEEL_TRUSTED_KEY",
            key.id(),
            trusted.id()
        ),
        (TrustMode::Test, _) if !key.is_test() => tracing::warn!(
            "signing with key {} in a test build: this build's coreos-install trusts only the \
             TEST key, so installing the image needs `coreos-install -k` with its public half",
            key.id()
        ),
        _ => {}
    }
    Ok(())
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

/// Compress `disk_img` into `release_dir/<version>/`, write its digest and the signed statement
/// of what it is (`version` in `channel`), and point `release_dir/current/version.txt` at
/// `version`.
pub fn publish(
    disk_img: &Path,
    release_dir: &Path,
    version: &str,
    channel: &str,
    key: &SecretKey,
) -> Result<Published> {
    ensure!(
        layout::valid_version(version),
        "version {version:?} cannot be a directory name of a release"
    );
    ensure!(
        layout::valid_version(channel),
        "channel {channel:?} is not a plain name (letters, digits, . - _ +)"
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
    let sig = Statement::of(&hash, version, channel, IMAGE_NAME)
        .sign(key)
        .context("signing the release statement")?;
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
    use release::sign::parse_digest_line;
    use release::{SignedStatement, Wanted, TRUST};

    fn manifest_path(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    /// Keel's public TEST key, by path, as `./keel build` passes it.
    fn test_key_path() -> PathBuf {
        manifest_path("../release/keys/test-key.pem")
    }

    /// A key that stands for a real release key (the installer's test fixture).
    fn release_key_path() -> PathBuf {
        manifest_path("../installer/tests/fixtures/release-key.pem")
    }

    #[test]
    fn published_release_decompresses_to_the_disk_and_its_signature_names_it() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("disk.img");
        let mut bytes = vec![0u8; 3 << 20];
        bytes[512..520].copy_from_slice(b"EFI PART");
        bytes[2 << 20] = 0x5a;
        fs::write(&disk, &bytes).unwrap();
        let out = d.path().join("release");
        let key = SecretKey::read(&release_key_path()).unwrap();
        let p = publish(&disk, &out, "1.2.3", "beta", &key).unwrap();
        assert!(!p.test_key);

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
        assert_eq!(digest, hash.sha256());
        let text = fs::read_to_string(out.join("1.2.3/keel_production_image.bin.gz.sig")).unwrap();
        assert!(text.starts_with("keel-signature-v2\n"), "{text}");
        let signed = SignedStatement::parse(&text).unwrap();
        let st = signed.verify(&key.public(), TrustMode::Production).unwrap();
        st.check_wanted(&Wanted {
            version: Some("1.2.3"),
            channel: Some("beta"),
            name: IMAGE_NAME,
        })
        .unwrap();
        hash.check(st).unwrap();
        assert_eq!(st.size, gz.len() as u64);
        assert_eq!(hex::encode(digest), p.sha256);
        assert_eq!(p.key_id, key.public().id());
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
    fn versions_and_channels_that_are_not_one_path_segment_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("disk.img");
        fs::write(&disk, b"x").unwrap();
        let key = SecretKey::read(&release_key_path()).unwrap();
        for (version, channel) in [
            ("../x", "stable"),
            ("current", "stable"),
            ("", "stable"),
            ("1", "a/b"),
        ] {
            assert!(
                publish(&disk, d.path(), version, channel, &key).is_err(),
                "{version} {channel}"
            );
        }
    }

    #[test]
    fn the_test_key_signs_only_in_a_test_build_and_a_key_must_be_given() {
        let err = signing_key(None, TrustMode::Test).unwrap_err().to_string();
        assert!(
            err.contains("no --signing-key")
                && err.contains("--signing-key crates/release/keys/test-key.pem"),
            "{err}"
        );
        let test = test_key_path();
        assert!(signing_key(Some(&test), TrustMode::Test).unwrap().is_test());
        for mode in [TrustMode::Production, TrustMode::Unconfigured] {
            let err = format!("{:#}", signing_key(Some(&test), mode).unwrap_err());
            assert!(
                err.starts_with(&format!(
                    "refusing to sign with --signing-key {}",
                    test.display()
                )) && err.contains("Keel's public TEST key"),
                "{mode:?}: {err}"
            );
        }
        let release = release_key_path();
        for mode in [TrustMode::Test, TrustMode::Unconfigured] {
            signing_key(Some(&release), mode).unwrap();
        }
        // This very build: the TEST key signs only if it is a test build.
        assert_eq!(
            signing_key(Some(&test), TRUST).is_ok(),
            TRUST == TrustMode::Test
        );
    }

    #[test]
    fn a_production_build_signs_only_with_the_key_it_trusts() {
        let release = SecretKey::read(&release_key_path()).unwrap().public();
        match TRUST.compiled_key() {
            Some(trusted) if TRUST == TrustMode::Production => {
                check_signing_key(TRUST, &trusted).unwrap();
                let err = check_signing_key(TRUST, &release).unwrap_err().to_string();
                assert!(
                    err.contains("this production build trusts only key"),
                    "{err}"
                );
            }
            // Not a production build: the rule is checked through the pure function only.
            _ => check_signing_key(TrustMode::Unconfigured, &release).unwrap(),
        }
    }
}
