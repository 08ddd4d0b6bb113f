//! The writers fetched bytes flow through on their way to their destination, so nothing
//! holds a whole resource in memory: gzip decompression (every member, as Go's reader), then
//! the verification hash and a byte count over the decompressed data.
//!
//! [`Sink::write_error`] tells a failure of the destination (a full disk) from a failure of
//! the data (corrupt gzip), since both surface as an I/O error from `write`.

use std::io::{self, Write};

use sha2::Digest;

use crate::resource::{Hash, HashFn};

enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

/// Counts and hashes what reaches `inner`.
pub(super) struct Verify<'a> {
    inner: &'a mut dyn Write,
    hasher: Option<(Hasher, &'a Hash)>,
    count: u64,
    inner_failed: bool,
}

impl<'a> Verify<'a> {
    pub(super) fn new(inner: &'a mut dyn Write, hash: Option<&'a Hash>) -> Self {
        Verify {
            inner,
            hasher: hash.map(|h| {
                let hasher = match h.function {
                    HashFn::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
                    HashFn::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
                };
                (hasher, h)
            }),
            count: 0,
            inner_failed: false,
        }
    }

    /// Bytes written so far.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Checks the digest of everything written.
    pub(super) fn verify(self) -> Result<(), String> {
        let Some((hasher, want)) = self.hasher else {
            return Ok(());
        };
        let got = match hasher {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        want.check(&got)
    }
}

impl Write for Verify<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .inner
            .write(buf)
            .inspect_err(|_| self.inner_failed = true)?;
        match &mut self.hasher {
            Some((Hasher::Sha256(h), _)) => h.update(&buf[..n]),
            Some((Hasher::Sha512(h), _)) => h.update(&buf[..n]),
            None => {}
        }
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.inner_failed = true)
    }
}

/// Where raw (possibly compressed) bytes go: straight to [`Verify`], or through a gzip
/// decoder first.
pub(super) enum Sink<'a> {
    /// Uncompressed.
    Plain(Box<Verify<'a>>),
    /// gzip: every member is decoded.
    Gzip(Box<flate2::write::MultiGzDecoder<Verify<'a>>>),
}

impl<'a> Sink<'a> {
    pub(super) fn new(verify: Verify<'a>, gzip: bool) -> Self {
        if gzip {
            Sink::Gzip(Box::new(flate2::write::MultiGzDecoder::new(verify)))
        } else {
            Sink::Plain(Box::new(verify))
        }
    }

    fn verify(&self) -> &Verify<'a> {
        match self {
            Sink::Plain(v) => v,
            Sink::Gzip(d) => d.get_ref(),
        }
    }

    /// True when an error came from the destination rather than from the data.
    pub(super) fn write_error(&self) -> bool {
        self.verify().inner_failed
    }

    /// Ends the stream (a truncated gzip member is an error) and returns the counter.
    pub(super) fn finish(self) -> io::Result<Verify<'a>> {
        match self {
            Sink::Plain(v) => Ok(*v),
            Sink::Gzip(d) => d.finish(),
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(v) => v.write(buf),
            Sink::Gzip(d) => d.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(v) => v.flush(),
            Sink::Gzip(d) => d.flush(),
        }
    }
}
