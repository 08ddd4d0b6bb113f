//! HTTP GET with retries and a stall timeout.
//!
//! The start of a request: transport errors (a stall included), 408, 429 and 5xx are tried again
//! after 1 s, 2 s, 4 s … (at most 60 s apart), up to `--fetch-retries` times; any other answer is
//! final. Redirects are followed.
//!
//! Nothing waits forever: connecting is bounded (30 s), and so is every wait for data — for an
//! answer's headers and for each read of its body: no byte for [`STALL`] (30 s; tests shorten it
//! with [`Http::with_stall`]) fails that read with a timeout. A whole download has no time limit:
//! it may take hours as long as data keeps coming.
//!
//! A body cut off or stalled half-way is picked up again where it stopped by
//! [`crate::resume::Resuming`] (the image download): a `Range` request, each one a retry against
//! the same `--fetch-retries`, with the same backoff.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::blocking::{Client, Response};
use reqwest::header::RANGE;
use reqwest::StatusCode;

use crate::cli::Retries;

/// Longest pause between two tries.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Small files (version.txt, digests, signatures, Ignition configs) are at most this big.
const SMALL_LIMIT: u64 = 1 << 20;
/// How long a request may wait for the next byte (of its answer's headers or body) by default.
pub const STALL: Duration = Duration::from_secs(30);

/// Whether an answer with this status is worth trying again.
pub fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || matches!(status.as_u16(), 408 | 429)
}

/// The pause before retry number `n` (0-based).
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(MAX_DELAY)
}

/// A duration as people say it: `30 s`, `0.3 s`.
pub fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What went wrong with a request, in words: "no answer within 30 s" for a stall, else the
/// whole cause chain ("error sending request …: connection refused").
pub fn describe(err: reqwest::Error, stall: Duration) -> String {
    if err.is_timeout() {
        format!("no answer within {}", seconds(stall))
    } else {
        format!("{:#}", anyhow::Error::new(err))
    }
}

/// A blocking HTTP client with the installer's retry policy and stall timeout.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    retries: Retries,
    stall: Duration,
    /// Pauses are multiplied by this (tests use zero).
    pub delay_scale: u32,
}

impl Http {
    /// A client that gives up on a connection after [`STALL`] without data.
    pub fn new(retries: Retries) -> Result<Self> {
        Self::with_stall(retries, STALL)
    }

    /// A client that gives up on a connection after `stall` without data (connecting, waiting
    /// for the headers, each read of a body); a download as a whole may take hours.
    pub fn with_stall(retries: Retries, stall: Duration) -> Result<Self> {
        let client = Client::builder()
            .connect_timeout(stall.min(Duration::from_secs(30)))
            // The blocking client applies this to each wait on its own: the answer's headers,
            // then every read of the body (reqwest::blocking::Response's Read). Not a total.
            .timeout(stall)
            .user_agent(concat!(
                "coreos-install/",
                env!("CARGO_PKG_VERSION"),
                " (Keel)"
            ))
            .build()
            .context("creating the HTTP client")?;
        Ok(Http {
            client,
            retries,
            stall,
            delay_scale: 1,
        })
    }

    /// How long a read may wait for data before it fails.
    pub fn stall(&self) -> Duration {
        self.stall
    }

    /// How often a download may be tried again (`--fetch-retries`).
    pub fn retries(&self) -> Retries {
        self.retries
    }

    /// Whether retry number `n` (0-based) may happen.
    pub fn may_retry(&self, n: u32) -> bool {
        match self.retries {
            Retries::Infinite => true,
            Retries::Count(max) => n < max,
        }
    }

    /// The pause before retry number `n` (0-based), as this client takes it.
    pub fn pause(&self, n: u32) -> Duration {
        backoff(n) * self.delay_scale
    }

    /// "retry 2 of 5" for retry number `n` (0-based).
    pub fn retry_note(&self, n: u32) -> String {
        format!("retry {} of {}", n + 1, self.retries)
    }

    /// GET `url`, retrying as the policy says; the answer is a 2xx.
    pub fn get(&self, url: &str) -> Result<Response> {
        self.get_counted(url, &mut 0)
    }

    /// [`Self::get`], counting the retries it takes in `tries` (which may have some already):
    /// the tries of one download share one `--fetch-retries`.
    pub fn get_counted(&self, url: &str, tries: &mut u32) -> Result<Response> {
        self.send(url, false, tries)?
            .with_context(|| format!("GET {url}: server answered 404 Not Found"))
    }

    /// GET `url` as [`Self::get`] does, but `None` when the server answers 404 Not Found (the
    /// file is not there); any other failure is an error.
    pub fn get_if_present(&self, url: &str) -> Result<Option<Response>> {
        self.send(url, true, &mut 0)
    }

    /// One GET of `url` from byte `from` on (`Range: bytes=FROM-`), no retries: what the server
    /// answered, whatever it is.
    pub fn get_from(&self, url: &str, from: u64) -> reqwest::Result<Response> {
        self.client
            .get(url)
            .header(RANGE, format!("bytes={from}-"))
            .send()
    }

    fn send(&self, url: &str, absent_ok: bool, n: &mut u32) -> Result<Option<Response>> {
        loop {
            let why = match self.client.get(url).send() {
                Ok(resp) if resp.status().is_success() => return Ok(Some(resp)),
                Ok(resp) if absent_ok && resp.status() == StatusCode::NOT_FOUND => return Ok(None),
                Ok(resp) if retryable_status(resp.status()) => {
                    format!("server answered {}", resp.status())
                }
                Ok(resp) => bail!("GET {url}: server answered {}", resp.status()),
                Err(e) => describe(e, self.stall),
            };
            if !self.may_retry(*n) {
                bail!("GET {url}: {why} (gave up after {n} retries)");
            }
            let delay = self.pause(*n);
            eprintln!(
                "coreos-install: GET {url}: {why}; retrying in {}s ({})",
                delay.as_secs(),
                self.retry_note(*n)
            );
            std::thread::sleep(delay);
            *n += 1;
        }
    }

    /// GET a small text file.
    pub fn get_text(&self, url: &str) -> Result<String> {
        small_text(url, self.get(url)?)
    }

    /// GET a small text file; `None` when the server answers 404 Not Found.
    pub fn get_text_if_present(&self, url: &str) -> Result<Option<String>> {
        self.get_if_present(url)?
            .map(|resp| small_text(url, resp))
            .transpose()
    }
}

fn small_text(url: &str, resp: Response) -> Result<String> {
    let mut body = Vec::new();
    resp.take(SMALL_LIMIT + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("reading {url}"))?;
    if body.len() as u64 > SMALL_LIMIT {
        bail!("{url} is larger than {SMALL_LIMIT} bytes; that is no small text file");
    }
    String::from_utf8(body).with_context(|| format!("{url} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// Answer each connection with the next canned status (body "ok"), on 127.0.0.1.
    fn server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let mut served = 0;
            for status in statuses {
                let (mut s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    line.clear();
                }
                write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                )
                .unwrap();
                served += 1;
            }
            served
        });
        (url, t)
    }

    #[test]
    fn server_errors_are_retried_until_success() {
        let (url, t) = server(vec![503, 500, 200]);
        let mut http = Http::new(Retries::Count(3)).unwrap();
        http.delay_scale = 0;
        assert_eq!(http.get_text(&url).unwrap(), "ok");
        assert_eq!(t.join().unwrap(), 3);
    }

    #[test]
    fn client_errors_are_final_and_retries_run_out() {
        let (url, t) = server(vec![404, 404, 403]);
        let mut http = Http::new(Retries::Count(3)).unwrap();
        http.delay_scale = 0;
        let err = http.get(&url).unwrap_err().to_string();
        assert!(err.contains("404"), "{err}");
        // 404 alone means "not there"; any other refusal stays an error.
        assert_eq!(http.get_text_if_present(&url).unwrap(), None);
        let err = http.get_text_if_present(&url).unwrap_err().to_string();
        assert!(err.contains("403"), "{err}");
        assert_eq!(t.join().unwrap(), 3);

        let (url, t) = server(vec![502, 502]);
        let mut http = Http::new(Retries::Count(1)).unwrap();
        http.delay_scale = 0;
        let err = http.get(&url).unwrap_err().to_string();
        assert!(
            err.contains("502") && err.contains("gave up after 1 retries"),
            "{err}"
        );
        assert_eq!(t.join().unwrap(), 2);
    }

    #[test]
    fn a_server_that_goes_quiet_fails_after_the_stall_timeout_instead_of_hanging() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            // First no answer at all, then a body that stops half-way; both stay open for long.
            let (silent, _) = listener.accept().unwrap();
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                line.clear();
            }
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf").unwrap();
            std::thread::sleep(Duration::from_secs(10));
            drop(silent);
        });
        let http = Http::with_stall(Retries::Count(0), Duration::from_millis(300)).unwrap();
        let start = std::time::Instant::now();
        let err = http.get(&url).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("GET {url}: no answer within 0.3 s (gave up after 0 retries)")
        );
        let err = format!("{:#}", http.get_text(&url).unwrap_err());
        assert!(
            err.starts_with(&format!("reading {url}: ")) && err.contains("timed out"),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(seconds(STALL), "30 s");
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let secs: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(
            retryable_status(StatusCode::BAD_GATEWAY)
                && retryable_status(StatusCode::TOO_MANY_REQUESTS)
        );
        assert!(
            !retryable_status(StatusCode::NOT_FOUND) && !retryable_status(StatusCode::FORBIDDEN)
        );
    }
}
