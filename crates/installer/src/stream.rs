//! Download → hash → gunzip → device, in one pass.
//!
//! The download is a [`crate::resume::Resuming`] reader: a connection cut or stalled half-way
//! (no byte for 30 s) is picked up where it stopped with a `Range` request, up to
//! `--fetch-retries` times, and the bytes read here are the file's exactly once and in order —
//! so the hash below covers the whole file however many connections brought it. When the
//! retries run out, its error ends the stream like any other failure (the ends are wiped).
//!
//! The signature was verified before the stream starts (see `install`): what it signs is a
//! [`Statement`] of the image's size and SHA-256. Every byte of the compressed stream goes
//! through [`StreamHash`] before it is decompressed, and a stream that goes past the signed size
//! is cut off there. The first MiB of the decompressed image (protective MBR and primary GPT)
//! stays in memory; the rest goes to the device as it arrives. Only when the stream has ended
//! and its size and digest are the signed ones is the first MiB written, then everything synced.
//! Until then the device has no partition table (its ends were zeroed before the first write),
//! and on any failure the ends are zeroed again: a half-written or tampered image never looks
//! bootable.

use std::io::{self, BufRead, BufReader, Read};

use anyhow::{bail, Context, Result};
use flate2::bufread::MultiGzDecoder;
use release::{CheckError, Statement, StreamHash};

use crate::device::Device;
use crate::progress::Progress;
use crate::MIB;

/// What the stream must turn out to be.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// The verified signed statement: the compressed stream must have its size and SHA-256.
    pub statement: Option<Statement>,
    /// Without a statement (`--insecure` only): the unsigned `.sha256` file's digest, if any.
    pub digest: Option<[u8; 32]>,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes of the stream as received (compressed).
    pub received: u64,
    /// Bytes of the image written to the device.
    pub image: u64,
    /// Whether the stream was gzip.
    pub gzip: bool,
}

/// Hashes and counts what is read through it; fails once more than `limit` bytes came.
struct Hashing<R> {
    inner: R,
    hash: StreamHash,
    limit: Option<u64>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        match self.limit {
            Some(max) if self.hash.len() > max => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                CheckError::SizeMismatch {
                    expected: max,
                    actual: self.hash.len(),
                    longer: true,
                },
            )),
            _ => Ok(n),
        }
    }
}

enum Decoder<R: Read> {
    Gzip(MultiGzDecoder<BufReader<Hashing<R>>>),
    Raw(BufReader<Hashing<R>>),
}

impl<R: Read> Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Raw(r) => r.read(buf),
        }
    }
    fn received(&self) -> u64 {
        match self {
            Decoder::Gzip(d) => d.get_ref().get_ref().hash.len(),
            Decoder::Raw(r) => r.get_ref().hash.len(),
        }
    }
    fn into_source(self) -> BufReader<Hashing<R>> {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Raw(r) => r,
        }
    }
}

/// Write the image read from `src` onto `dev`, checking it against `expect` (see the module doc).
/// On failure the device's ends are zeroed before the error is returned.
pub fn write_image<R: Read>(
    src: R,
    dev: &mut Device,
    expect: &Expect,
    progress: &mut Progress,
) -> Result<Written> {
    let mut image_end = 0u64;
    match write_inner(src, dev, expect, progress, &mut image_end) {
        Ok(w) => Ok(w),
        Err(err) => {
            progress.abandon();
            if let Err(wipe_err) = dev.wipe(&[image_end]) {
                return Err(err.context(format!(
                    "and wiping {} failed too: {wipe_err:#}",
                    dev.path().display()
                )));
            }
            Err(err)
        }
    }
}

fn write_inner<R: Read>(
    src: R,
    dev: &mut Device,
    expect: &Expect,
    progress: &mut Progress,
    image_end: &mut u64,
) -> Result<Written> {
    // Zero both ends first: from here on the old table is gone and the disk cannot boot until the
    // verified first MiB is written.
    dev.wipe(&[]).context("clearing the old partition tables")?;

    let mut source = BufReader::with_capacity(
        256 << 10,
        Hashing {
            inner: src,
            hash: StreamHash::new(),
            limit: expect.statement.as_ref().map(|s| s.size),
        },
    );
    let head = source.fill_buf().context("reading the image")?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    if head.is_empty() {
        bail!("the image is empty");
    }
    let mut dec = if gzip {
        Decoder::Gzip(MultiGzDecoder::new(source))
    } else {
        Decoder::Raw(source)
    };

    let mut first_mib = Vec::with_capacity(MIB as usize);
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let what = if gzip {
                    "downloading or decompressing"
                } else {
                    "reading"
                };
                return Err(e).context(format!(
                    "{what} the image (after {} bytes of it)",
                    dec.received()
                ));
            }
        };
        let mut data = &buf[..n];
        if offset < MIB {
            let take = data.len().min((MIB - offset) as usize);
            first_mib.extend_from_slice(&data[..take]);
            data = &data[take..];
            offset += take as u64;
        }
        if !data.is_empty() {
            dev.write_at(data, offset)?;
            offset += data.len() as u64;
            *image_end = offset;
        }
        progress.update(dec.received(), offset);
    }
    // Hash whatever follows the compressed data too: the signature covers the whole file.
    let mut source = dec.into_source();
    io::copy(&mut source, &mut io::sink()).context("reading the end of the image")?;
    let hashing = source.into_inner();
    let received = hashing.hash.len();
    progress.update(received, offset);

    let checked = match (&expect.statement, &expect.digest) {
        (Some(statement), _) => hashing.hash.check(statement),
        (None, Some(digest)) => hashing.hash.check_digest(digest, "the digest file"),
        (None, None) => Ok(()),
    };
    checked.context("the image is not the release it claims to be")?;
    if (first_mib.len() as u64) < MIB {
        bail!(
            "the image is only {} bytes: not a disk image",
            first_mib.len()
        );
    }
    if &first_mib[512..520] != b"EFI PART" {
        bail!("the image has no GPT in its second sector: not a Keel disk image");
    }
    dev.sync()?;
    dev.write_at(&first_mib, 0)
        .context("writing the partition table")?;
    dev.sync()?;
    progress.finish(received, offset);
    Ok(Written {
        received,
        image: offset,
        gzip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// A fake disk image: GPT signature in sector 1, a marker in each MiB.
    fn image(mib: u64) -> Vec<u8> {
        let mut img = vec![0u8; (mib * MIB) as usize];
        img[512..520].copy_from_slice(b"EFI PART");
        for m in 0..mib {
            img[(m * MIB + 4096) as usize] = 0x40 + m as u8;
        }
        img
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// What a verified signature over `bytes` says (the signature itself is checked before
    /// the stream, in `install`).
    fn signed(bytes: &[u8]) -> Expect {
        let mut h = StreamHash::new();
        h.update(bytes);
        Expect {
            statement: Some(Statement::of(&h, "1.0.0", "stable", "image.gz")),
            digest: None,
        }
    }

    /// A "disk" file full of 0xaa, as an old install would leave it.
    fn old_disk(mib: u64) -> (tempfile::TempDir, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("disk");
        std::fs::write(&p, vec![0xaau8; (mib * MIB) as usize]).unwrap();
        (t, p)
    }

    fn zero(bytes: &[u8], r: std::ops::Range<u64>) -> bool {
        bytes[r.start as usize..r.end as usize]
            .iter()
            .all(|&b| b == 0)
    }

    #[test]
    fn a_signed_gzip_image_is_written_whole_and_the_old_backup_gpt_is_gone() {
        let img = image(4);
        let stream = gz(&img);
        let (_t, p) = old_disk(16);
        let mut dev = Device::open(&p).unwrap();
        let w = write_image(
            &stream[..],
            &mut dev,
            &signed(&stream),
            &mut Progress::quiet(),
        )
        .unwrap();
        assert_eq!(
            w,
            Written {
                received: stream.len() as u64,
                image: 4 * MIB,
                gzip: true
            }
        );
        let disk = std::fs::read(&p).unwrap();
        assert_eq!(&disk[..img.len()], &img[..]);
        assert!(
            zero(&disk, 15 * MIB..16 * MIB),
            "old backup GPT region zeroed"
        );
        assert!(disk[(5 * MIB) as usize] == 0xaa, "the rest is left alone");
    }

    #[test]
    fn raw_images_and_unsigned_streams_work_when_nothing_is_expected_and_a_digest_is_checked() {
        let img = image(2);
        let (_t, p) = old_disk(4);
        let mut dev = Device::open(&p).unwrap();
        let w = write_image(
            &img[..],
            &mut dev,
            &Expect::default(),
            &mut Progress::quiet(),
        )
        .unwrap();
        assert!(!w.gzip);
        assert_eq!(&std::fs::read(&p).unwrap()[..img.len()], &img[..]);
        // --insecure with a .sha256 file: the digest alone is checked.
        let digest = signed(&img).statement.unwrap().sha256;
        let expect = Expect {
            statement: None,
            digest: Some(digest),
        };
        write_image(&img[..], &mut dev, &expect, &mut Progress::quiet()).unwrap();
        let err = write_image(
            &img[..MIB as usize * 3 / 2],
            &mut dev,
            &expect,
            &mut Progress::quiet(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("the digest file says"),
            "{err:#}"
        );
    }

    /// Each broken case must fail, say why, and leave both ends (and the first MiB) zeroed.
    #[test]
    fn bad_digest_bad_signature_truncation_and_oversize_abort_and_wipe() {
        let img = image(4);
        let stream = gz(&img);
        let mut tampered = stream.clone();
        let mid = tampered.len() / 2;
        tampered[mid] ^= 0x01;
        let mut wrong_digest = signed(&stream);
        wrong_digest.statement.as_mut().unwrap().sha256 = [0u8; 32];
        let mut longer = stream.clone();
        longer.extend_from_slice(&[0u8; 4 << 20]);
        let mut shorter_claim = signed(&stream);
        shorter_claim.statement.as_mut().unwrap().size -= 1;

        let cases: Vec<(&str, Vec<u8>, Expect, u64, &str)> = vec![
            ("tampered", tampered, signed(&stream), 16, ""),
            (
                "another digest signed",
                stream.clone(),
                wrong_digest,
                16,
                "SHA-256 mismatch",
            ),
            (
                "more bytes than signed",
                longer,
                signed(&stream),
                16,
                "goes on past the",
            ),
            (
                "fewer bytes signed than sent",
                stream.clone(),
                shorter_claim,
                16,
                "size mismatch",
            ),
            (
                "truncated download",
                stream[..stream.len() - 100].to_vec(),
                signed(&stream),
                16,
                "the image",
            ),
            (
                "disk too small",
                stream.clone(),
                signed(&stream),
                3,
                "does not fit",
            ),
            (
                "not a disk image",
                gz(&[7u8; 1000]),
                signed(&gz(&[7u8; 1000])),
                16,
                "not a disk image",
            ),
        ];
        for (name, data, expect, disk_mib, want) in cases {
            let (_t, p) = old_disk(disk_mib);
            let mut dev = Device::open(&p).unwrap();
            let err =
                write_image(&data[..], &mut dev, &expect, &mut Progress::quiet()).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(want), "{name}: {msg}");
            let disk = std::fs::read(&p).unwrap();
            let size = disk.len() as u64;
            assert!(zero(&disk, 0..MIB), "{name}: first MiB zeroed");
            assert!(zero(&disk, size - MIB..size), "{name}: last MiB zeroed");
        }
    }

    #[test]
    fn digest_failures_are_typed_for_callers() {
        let stream = gz(&image(2));
        let mut expect = signed(&stream);
        expect.statement.as_mut().unwrap().sha256 = [1u8; 32];
        let (_t, p) = old_disk(4);
        let mut dev = Device::open(&p).unwrap();
        let err = write_image(&stream[..], &mut dev, &expect, &mut Progress::quiet()).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<release::CheckError>(),
                Some(release::CheckError::DigestMismatch { .. })
            ),
            "{err:#}"
        );
    }
}
