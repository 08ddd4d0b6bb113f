//! Fetching resources: the [`Fetcher`] seam and its implementations.
//!
//!  * [`Fetcher`]: one method, bytes for a URL. Decompression and hash checks are not its job:
//!    [`fetch_resource`] does them the same way for every fetcher.
//!  * [`StdFetcher`]: `data:` URLs, `http(s)` with retries (exponential backoff from 100 ms,
//!    doubling to 5 s; 5xx, timeouts and connection errors are retried, other statuses end the
//!    fetch; `httpResponseHeaders` bounds each attempt, `httpTotal` the whole fetch), extra
//!    CAs, proxies, and spec 2.x `oem://` from a directory.
//!  * [`MapFetcher`]: a fake that serves canned bytes per URL and records what was asked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::model::{Proxy, Resource, Timeouts};
use crate::resource;
use crate::version::Version;

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
    /// Fetches `url`.
    fn fetch(&self, url: &str, opts: &FetchOptions) -> Result<Vec<u8>, FetchError>;
}

/// Fetches `res` through `fetcher`, then decompresses and checks the verification hash (over
/// the decompressed data). An empty or missing `source` yields no bytes.
pub fn fetch_resource(
    fetcher: &dyn Fetcher,
    res: &Resource,
    version: Version,
    base: &FetchOptions,
) -> Result<Vec<u8>, FetchError> {
    let url = match res.source.as_deref() {
        None | Some("") => return Ok(Vec::new()),
        Some(u) => u,
    };
    let mut opts = base.clone();
    for h in &res.http_headers {
        if let (Some(n), Some(v)) = (&h.name, &h.value) {
            opts.headers.push((n.clone(), v.clone()));
        }
    }
    let raw = fetcher.fetch(url, &opts)?;
    let data =
        resource::decompress(raw, res.compression.as_deref()).map_err(FetchError::Decompress)?;
    if let Some(h) = &res.hash {
        let hash = resource::parse_hash(h, version).map_err(|(_, m)| FetchError::Verify(m))?;
        hash.verify(&data).map_err(FetchError::Verify)?;
    }
    Ok(data)
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
    /// Directory that `oem:///NAME` reads from (spec 2.x), e.g. `/usr/share/oem`.
    pub oem_dir: Option<PathBuf>,
}

impl Default for StdFetcher {
    fn default() -> Self {
        StdFetcher {
            max_attempts: Some(8),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            oem_dir: Some(PathBuf::from("/usr/share/oem")),
        }
    }
}

const ACCEPT_CONFIG: &str = "application/vnd.coreos.ignition+json;version=3.5.0, application/vnd.coreos.ignition+json;version=2.4.0;q=0.5, */*;q=0.1";

impl StdFetcher {
    fn client(&self, opts: &FetchOptions) -> Result<reqwest::blocking::Client, String> {
        let headers =
            timeout(opts.timeouts.http_response_headers).unwrap_or(Duration::from_secs(10));
        let mut b = reqwest::blocking::Client::builder()
            .connect_timeout(headers)
            .timeout(headers)
            .user_agent(concat!("keel-ignition/", env!("CARGO_PKG_VERSION")));
        for pem in &opts.ca_pems {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("bad certificate authority: {e}"))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let no_proxy = reqwest::NoProxy::from_string(&opts.proxy.no_proxy.join(","));
        if let Some(p) = &opts.proxy.http_proxy {
            let proxy = reqwest::Proxy::http(p).map_err(|e| format!("bad httpProxy: {e}"))?;
            b = b.proxy(proxy.no_proxy(no_proxy.clone()));
        }
        if let Some(p) = &opts.proxy.https_proxy {
            let proxy = reqwest::Proxy::https(p).map_err(|e| format!("bad httpsProxy: {e}"))?;
            b = b.proxy(proxy.no_proxy(no_proxy));
        }
        if opts.proxy.http_proxy.is_none() && opts.proxy.https_proxy.is_none() {
            b = b.no_proxy();
        }
        b.build().map_err(|e| e.to_string())
    }

    fn http(&self, url: &str, opts: &FetchOptions) -> Result<Vec<u8>, FetchError> {
        let fail = |reason: String| FetchError::Http {
            url: url.to_string(),
            reason,
        };
        let client = self.client(opts).map_err(fail)?;
        let total = timeout(opts.timeouts.http_total);
        let start = Instant::now();
        let mut delay = self.initial_backoff;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = client.get(url);
            if opts.is_config {
                req = req.header(reqwest::header::ACCEPT, ACCEPT_CONFIG);
            }
            for (n, v) in &opts.headers {
                req = req.header(n.as_str(), v.as_str());
            }
            let outcome = match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        match resp.bytes() {
                            Ok(b) => return Ok(b.to_vec()),
                            Err(e) => format!("reading body: {e}"),
                        }
                    } else if status.is_server_error() {
                        format!("HTTP status {}", status.as_u16())
                    } else {
                        return Err(FetchError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                        });
                    }
                }
                Err(e) => {
                    let mut reason = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        reason = format!("{reason}: {s}");
                        src = s.source();
                    }
                    reason
                }
            };
            tracing::warn!(url, attempt, reason = %outcome, "fetch attempt failed");
            let out_of_attempts = self.max_attempts.is_some_and(|m| attempt >= m);
            let out_of_time = total.is_some_and(|t| start.elapsed() + delay >= t);
            if out_of_attempts || out_of_time {
                return Err(fail(format!("{outcome} (after {attempt} attempts)")));
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(self.max_backoff);
        }
    }
}

impl Fetcher for StdFetcher {
    fn fetch(&self, url: &str, opts: &FetchOptions) -> Result<Vec<u8>, FetchError> {
        let scheme = resource::scheme(url).unwrap_or_default();
        match scheme.as_str() {
            "data" => resource::decode_data_url(url).map_err(FetchError::DataUrl),
            "http" | "https" => self.http(url, opts),
            "oem" => {
                let Some(dir) = &self.oem_dir else {
                    return Err(FetchError::UnsupportedScheme { scheme });
                };
                let rel = url["oem:".len()..].trim_start_matches('/');
                if rel.split('/').any(|c| c == "..") {
                    return Err(FetchError::NotFound(url.to_string()));
                }
                let path = dir.join(rel);
                std::fs::read(&path).map_err(|source| FetchError::Io { path, source })
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
