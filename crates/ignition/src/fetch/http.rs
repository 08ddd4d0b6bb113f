//! http(s) for [`StdFetcher`], with Ignition's timeouts:
//!  * `httpResponseHeaders` (default 10 s) bounds the wait for the response headers of each
//!    attempt, and only that: a large file may take as long as it needs;
//!  * the body gets a stall timeout instead: no bytes for [`StdFetcher::stall_timeout`]
//!    (30 s by default, or `httpResponseHeaders` if that is longer) fails the fetch;
//!  * `httpTotal` (default 0 = none) bounds the whole fetch, retries included (checked
//!    between reads, so it can be overshot by at most one stall timeout).
//!
//! Attempts that get no answer, a connection error or a 5xx are retried with exponential
//! backoff; any other status ends the fetch (2xx succeeds). Once body bytes have been
//! written to the sink, a failure is not retried: the sink cannot take them back.
//!
//! The blocking client bounds `send` and every single read by one timeout; it is set to the
//! stall timeout, and the (shorter) header wait is kept by running `send` on a helper thread.
//! After a header timeout that thread ends by itself within the stall timeout.

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{timeout, FetchError, FetchOptions, StdFetcher};

const ACCEPT_CONFIG: &str = "application/vnd.coreos.ignition+json;version=3.5.0, application/vnd.coreos.ignition+json;version=2.4.0;q=0.5, */*;q=0.1";

/// The default wait for response headers.
const DEFAULT_HEADERS: Duration = Duration::from_secs(10);

fn client(
    opts: &FetchOptions,
    headers: Duration,
    stall: Duration,
) -> Result<reqwest::blocking::Client, String> {
    let mut b = reqwest::blocking::Client::builder()
        .connect_timeout(headers)
        .timeout(stall)
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

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut reason = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        reason = format!("{reason}: {s}");
        src = s.source();
    }
    reason
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

impl StdFetcher {
    /// GETs `url` into `out`; returns the number of body bytes.
    pub(super) fn http(
        &self,
        url: &str,
        opts: &FetchOptions,
        out: &mut dyn Write,
    ) -> Result<u64, FetchError> {
        let fail = |reason: String| FetchError::Http {
            url: url.to_string(),
            reason,
        };
        let headers = timeout(opts.timeouts.http_response_headers).unwrap_or(DEFAULT_HEADERS);
        let stall = self.stall_timeout.max(headers);
        let client = client(opts, headers, stall).map_err(fail)?;
        let total = timeout(opts.timeouts.http_total);
        let start = Instant::now();
        let deadline = total.map(|t| start + t);
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
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(req.send());
            });
            let wait = match deadline {
                Some(d) => headers.min(d.saturating_duration_since(Instant::now())),
                None => headers,
            };
            let outcome = match rx.recv_timeout(wait) {
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    if status.is_success() {
                        return body(url, resp, out, stall, deadline);
                    } else if status.is_server_error() {
                        format!("HTTP status {}", status.as_u16())
                    } else {
                        return Err(FetchError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                        });
                    }
                }
                Ok(Err(e)) => chain(&e),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    format!("no response headers within {}", secs(wait))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    "the request ended without a response".to_string()
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

/// Copies the body into `out`, failing when no byte comes for `stall`.
fn body(
    url: &str,
    mut resp: reqwest::blocking::Response,
    out: &mut dyn Write,
    stall: Duration,
    deadline: Option<Instant>,
) -> Result<u64, FetchError> {
    let fail = |reason: String| FetchError::Http {
        url: url.to_string(),
        reason,
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut n: u64 = 0;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(fail(format!(
                "httpTotal ran out while reading the body (after {n} bytes)"
            )));
        }
        let asked = Instant::now();
        match resp.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                out.write_all(&buf[..k]).map_err(FetchError::Write)?;
                n += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let timed_out = e
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<reqwest::Error>())
                    .is_some_and(|r| r.is_timeout())
                    || asked.elapsed() >= stall;
                return Err(fail(if timed_out {
                    format!(
                        "stalled: no data for {} while reading the body (after {n} bytes)",
                        secs(stall)
                    )
                } else {
                    format!("reading the body (after {n} bytes): {}", chain(&e))
                }));
            }
        }
    }
}
