//! Fetching resources: the [`Fetcher`] seam and its implementations.
//!
//!  * [`Fetcher`]: the bytes behind a URL, into memory ([`Fetcher::fetch`]) or streamed into
//!    a writer ([`Fetcher::fetch_to`]). Decompression and hash checks are not its job:
//!    [`fetch_resource_to`] does them the same way for every fetcher, while the bytes flow
//!    (`sink`), so a resource is never held whole in memory on its way to a file.
//!  * [`StdFetcher`]: `data:` URLs, `http(s)` with retries and Ignition's timeouts (`http`:
//!    `httpResponseHeaders` bounds the wait for headers, the body has a stall timeout,
//!    `httpTotal` bounds everything), extra CAs, proxies, and spec 2.x `oem://` from a
//!    directory.
//!  * [`MapFetcher`]: a fake that serves canned bytes per URL and records what was asked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::{Proxy, Resource, Timeouts};
use crate::parse::version::Version;
use crate::report::JsonPath;
use crate::resource;

mod http;
mod sink;

/// The longest timeout honoured, in seconds (30 days): longer ones are clamped to it, so a
/// huge value means "wait very long" and never overflows a clock.
pub const MAX_TIMEOUT_SECS: i64 = 30 * 86400;

/// `ignition.timeouts` seconds as a duration: unset or 0 gives `None`; negative values are
/// refused by validation and treated as unset; huge ones are clamped.
fn timeout(secs: Option<i64>) -> Option<Duration> {
    secs.filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.min(MAX_TIMEOUT_SECS) as u64))
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The scheme has no implementation here (tftp, s3, gs, arn).
    #[error("fetching {scheme}: URLs is not supported")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
    },
    /// A `data:` URL that does not decode.
    #[error("invalid data URL: {0}")]
    DataUrl(String),
    /// An HTTP status that ends the fetch.
    #[error("GET {url}: HTTP status {status}")]
    Status {
        /// URL.
        url: String,
        /// Status code.
        status: u16,
    },
    /// Transport failure after all retries.
    #[error("GET {url}: {reason}")]
    Http {
        /// URL.
        url: String,
        /// Last error.
        reason: String,
    },
    /// Decompression failed.
    #[error("decompressing: {0}")]
    Decompress(String),
    /// Writing the fetched data to its destination failed.
    #[error("writing the fetched data: {0}")]
    Write(std::io::Error),
    /// The verification hash does not match.
    #[error("verifying: {0}")]
    Verify(String),
    /// A local read (oem://) failed.
    #[error("reading {path}: {source}")]
    Io {
        /// File read.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The fake has nothing for this URL.
    #[error("no such resource: {0}")]
    NotFound(String),
}

impl FetchError {
    /// The JSON path a failure to fetch `res` is reported at: its `verification.hash` when
    /// the data does not match it (as Ignition names it), else its `source`.
    pub fn path(&self, res: &Resource) -> JsonPath {
        match self {
            FetchError::Verify(_) => res.at.key("verification").key("hash"),
            _ => res.at.key("source"),
        }
    }
}

/// What a fetch may use besides the URL.
#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// `ignition.timeouts`.
    pub timeouts: Timeouts,
    /// Extra trusted CAs (PEM), from `ignition.security.tls`.
    pub ca_pems: Vec<Vec<u8>>,
    /// `ignition.proxy`.
    pub proxy: Proxy,
    /// True when fetching a config (sends Ignition's `Accept` header).
    pub is_config: bool,
}

/// Gets the bytes behind a URL. Implementations must not decompress or verify.
pub trait Fetcher {
    /// Fetches `url` into memory.
    fn fetch(&self, url: &str, opts: &FetchOptions) -> Result<Vec<u8>, FetchError>;

    /// Streams `url` into `out`; returns the number of bytes. A failure to write to `out`
    /// is [`FetchError::Write`]. The default goes through [`Fetcher::fetch`].
    fn fetch_to(
        &self,
        url: &str,
        opts: &FetchOptions,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        let data = self.fetch(url, opts)?;
        out.write_all(&data).map_err(FetchError::Write)?;
        Ok(data.len() as u64)
    }
}

/// Fetches `res` through `fetcher` into memory; see [`fetch_resource_to`].
pub fn fetch_resource(
    fetcher: &dyn Fetcher,
    res: &Resource,
    version: Version,
    base: &FetchOptions,
) -> Result<Vec<u8>, FetchError> {
    let mut out = Vec::new();
    fetch_resource_to(fetcher, res, version, base, &mut out)?;
    Ok(out)
}

/// Fetches `res` through `fetcher` into `out`, decompressing while the bytes flow and
/// checking the verification hash over the decompressed data (as Ignition does). Returns
/// the number of bytes written to `out`. An empty or missing `source` writes nothing. On an
/// error, `out` may hold part of the data: the caller discards it.
pub fn fetch_resource_to(
    fetcher: &dyn Fetcher,
    res: &Resource,
    version: Version,
    base: &FetchOptions,
    out: &mut dyn Write,
) -> Result<u64, FetchError> {
    let url = match res.source.as_deref() {
        None | Some("") => return Ok(0),
        Some(u) => u,
    };
    let mut opts = base.clone();
    for h in &res.http_headers {
        if let (Some(n), Some(v)) = (&h.name, &h.value) {
            opts.headers.push((n.clone(), v.clone()));
        }
    }
    let hash = res
        .hash
        .as_deref()
        .map(|h| resource::parse_hash(h, version).map_err(|(_, m)| FetchError::Verify(m)))
        .transpose()?;
    let gzip = match res.compression.as_deref().unwrap_or("") {
        "" => false,
        "gzip" => true,
        other => {
            return Err(FetchError::Decompress(format!(
                "invalid compression method {other:?}"
            )))
        }
    };
    let mut sink = sink::Sink::new(sink::Verify::new(out, hash.as_ref()), gzip);
    if let Err(e) = fetcher.fetch_to(url, &opts, &mut sink) {
        return Err(match e {
            FetchError::Write(e) if !sink.write_error() => {
                FetchError::Decompress(format!("gzip: {e}"))
            }
            e => e,
        });
    }
    let wrote_error = sink.write_error();
    let verify = sink.finish().map_err(|e| {
        if wrote_error {
            FetchError::Write(e)
        } else {
            FetchError::Decompress(format!("gzip: {e}"))
        }
    })?;
    let n = verify.count();
    verify.verify().map_err(FetchError::Verify)?;
    Ok(n)
}

/// The real fetcher.
#[derive(Debug, Clone)]
pub struct StdFetcher {
    /// Attempts per http(s) fetch; `None` retries until `httpTotal` runs out (or forever when
    /// it is 0, as Ignition does at boot).
    pub max_attempts: Option<u32>,
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Longest wait for more of a response body (at least `httpResponseHeaders`).
    pub stall_timeout: Duration,
    /// Directory that `oem:///NAME` reads from (spec 2.x), e.g. `/usr/share/oem`.
    pub oem_dir: Option<PathBuf>,
}

impl Default for StdFetcher {
    fn default() -> Self {
        StdFetcher {
            max_attempts: Some(8),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(30),
            oem_dir: Some(PathBuf::from("/usr/share/oem")),
        }
    }
}

impl Fetcher for StdFetcher {
    fn fetch(&self, url: &str, opts: &FetchOptions) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        self.fetch_to(url, opts, &mut out)?;
        Ok(out)
    }

    fn fetch_to(
        &self,
        url: &str,
        opts: &FetchOptions,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        let scheme = resource::scheme(url).unwrap_or_default();
        match scheme.as_str() {
            "data" => {
                let data = resource::decode_data_url(url).map_err(FetchError::DataUrl)?;
                out.write_all(&data).map_err(FetchError::Write)?;
                Ok(data.len() as u64)
            }
            "http" | "https" => self.http(url, opts, out),
            "oem" => {
                let Some(dir) = &self.oem_dir else {
                    return Err(FetchError::UnsupportedScheme { scheme });
                };
                let rel = url["oem:".len()..].trim_start_matches('/');
                if rel.split('/').any(|c| c == "..") {
                    return Err(FetchError::NotFound(url.to_string()));
                }
                let path = dir.join(rel);
                let mut f = std::fs::File::open(&path).map_err(|source| FetchError::Io {
                    path: path.clone(),
                    source,
                })?;
                let mut buf = vec![0u8; 64 * 1024];
                let mut n = 0u64;
                loop {
                    let k =
                        std::io::Read::read(&mut f, &mut buf).map_err(|source| FetchError::Io {
                            path: path.clone(),
                            source,
                        })?;
                    if k == 0 {
                        return Ok(n);
                    }
                    out.write_all(&buf[..k]).map_err(FetchError::Write)?;
                    n += k as u64;
                }
            }
            _ => Err(FetchError::UnsupportedScheme { scheme }),
        }
    }
}

/// A fake fetcher: canned bytes per URL (`data:` URLs are decoded for real), and a record of
/// every URL asked for.
#[derive(Debug, Default)]
pub struct MapFetcher {
    /// URL → bytes.
    pub responses: HashMap<String, Vec<u8>>,
    /// URLs fetched, in order.
    pub requests: RefCell<Vec<String>>,
}

impl MapFetcher {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `body` at `url`.
    pub fn with(mut self, url: &str, body: impl Into<Vec<u8>>) -> Self {
        self.responses.insert(url.to_string(), body.into());
        self
    }
}

impl Fetcher for MapFetcher {
    fn fetch(&self, url: &str, _opts: &FetchOptions) -> Result<Vec<u8>, FetchError> {
        self.requests.borrow_mut().push(url.to_string());
        if resource::scheme(url).as_deref() == Some("data") {
            return resource::decode_data_url(url).map_err(FetchError::DataUrl);
        }
        self.responses
            .get(url)
            .cloned()
            .ok_or_else(|| FetchError::NotFound(url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::JsonPath;

    fn res(source: &str) -> Resource {
        Resource {
            at: JsonPath::root(),
            source: Some(source.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn resource_checks_hash_after_decompressing() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"hello").unwrap();
        let gz = enc.finish().unwrap();
        let f = MapFetcher::new().with("http://h/x", gz);
        let mut r = res("http://h/x");
        r.compression = Some("gzip".into());
        r.hash =
            Some("sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".into());
        let v = Version::new(3, 1);
        assert_eq!(
            fetch_resource(&f, &r, v, &FetchOptions::default()).unwrap(),
            b"hello"
        );
        r.hash = Some(format!("sha256-{}", "0".repeat(64)));
        let err = fetch_resource(&f, &r, v, &FetchOptions::default()).unwrap_err();
        assert!(matches!(err, FetchError::Verify(_)), "{err}");
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_decodes_every_member_and_refuses_truncated_or_trailing_data() {
        let v = Version::new(3, 1);
        let opts = FetchOptions::default();
        let mut two = gz(b"first ");
        two.extend(gz(b"second"));
        let f = MapFetcher::new()
            .with("http://h/two", two)
            .with("http://h/cut", gz(b"truncated data")[..12].to_vec())
            .with("http://h/junk", [gz(b"ok"), b"junk".to_vec()].concat())
            .with("http://h/plain", b"not gzip".to_vec());
        let mut r = res("http://h/two");
        r.compression = Some("gzip".into());
        assert_eq!(fetch_resource(&f, &r, v, &opts).unwrap(), b"first second");
        for url in ["http://h/cut", "http://h/junk", "http://h/plain"] {
            r.source = Some(url.into());
            let err = fetch_resource(&f, &r, v, &opts).unwrap_err();
            assert!(matches!(err, FetchError::Decompress(_)), "{url}: {err}");
        }
    }

    /// A destination that takes `room` bytes, then fails.
    struct Full {
        room: usize,
    }

    impl std::io::Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("no space left on device"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_destination_is_a_write_error_not_a_decompression_error() {
        let data = vec![7u8; 1 << 20];
        let f = MapFetcher::new()
            .with("http://h/gz", gz(&data))
            .with("http://h/raw", data);
        for (url, gzip) in [("http://h/gz", true), ("http://h/raw", false)] {
            let mut r = res(url);
            r.compression = gzip.then(|| "gzip".to_string());
            let err = fetch_resource_to(
                &f,
                &r,
                Version::new(3, 1),
                &FetchOptions::default(),
                &mut Full { room: 1000 },
            )
            .unwrap_err();
            assert!(matches!(err, FetchError::Write(_)), "{url}: {err}");
        }
    }

    #[test]
    fn empty_source_is_empty_and_unknown_is_an_error() {
        let f = MapFetcher::new();
        let v = Version::new(3, 0);
        assert!(fetch_resource(&f, &res(""), v, &FetchOptions::default())
            .unwrap()
            .is_empty());
        assert!(fetch_resource(&f, &res("http://h/missing"), v, &FetchOptions::default()).is_err());
        assert!(matches!(
            StdFetcher::default().fetch("tftp://h/x", &FetchOptions::default()),
            Err(FetchError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn oem_reads_from_the_oem_dir_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("coreos-install.json"), b"{}").unwrap();
        let f = StdFetcher {
            oem_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        let opts = FetchOptions::default();
        assert_eq!(f.fetch("oem:///coreos-install.json", &opts).unwrap(), b"{}");
        assert!(f.fetch("oem:///../etc/passwd", &opts).is_err());
    }
}
