//! HTTP GET with retries: transport errors, 408, 429 and 5xx are tried again after 1 s, 2 s,
//! 4 s … (at most 60 s apart); any other answer is final. Redirects are followed.

use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;

use crate::cli::Retries;

/// Longest pause between two tries.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Small files (version.txt, digests, signatures, Ignition configs) are at most this big.
const SMALL_LIMIT: u64 = 1 << 20;

/// Whether an answer with this status is worth trying again.
pub fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error() || matches!(status.as_u16(), 408 | 429)
}

/// The pause before retry number `n` (0-based).
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.min(6)).min(MAX_DELAY)
}

/// Whether retry number `n` (0-based) may happen.
fn may_retry(retries: Retries, n: u32) -> bool {
    match retries {
        Retries::Infinite => true,
        Retries::Count(max) => n < max,
    }
}

/// A blocking HTTP client with the installer's retry policy.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    retries: Retries,
    /// Pauses are multiplied by this (tests use zero).
    pub delay_scale: u32,
}

impl Http {
    /// A client; downloads may take hours, connecting may not.
    pub fn new(retries: Retries) -> Result<Self> {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(4 * 3600))
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
            delay_scale: 1,
        })
    }

    /// GET `url`, retrying as the policy says; the answer is a 2xx.
    pub fn get(&self, url: &str) -> Result<Response> {
        self.send(url, false)?
            .with_context(|| format!("GET {url}: server answered 404 Not Found"))
    }

    /// GET `url` as [`Self::get`] does, but `None` when the server answers 404 Not Found (the
    /// file is not there); any other failure is an error.
    pub fn get_if_present(&self, url: &str) -> Result<Option<Response>> {
        self.send(url, true)
    }

    fn send(&self, url: &str, absent_ok: bool) -> Result<Option<Response>> {
        let mut n = 0;
        loop {
            let why = match self.client.get(url).send() {
                Ok(resp) if resp.status().is_success() => return Ok(Some(resp)),
                Ok(resp) if absent_ok && resp.status() == StatusCode::NOT_FOUND => return Ok(None),
                Ok(resp) if retryable_status(resp.status()) => {
                    format!("server answered {}", resp.status())
                }
                Ok(resp) => bail!("GET {url}: server answered {}", resp.status()),
                // The whole cause chain: "error sending request: connection refused".
                Err(e) => format!("{:#}", anyhow::Error::new(e)),
            };
            if !may_retry(self.retries, n) {
                bail!("GET {url}: {why} (gave up after {n} retries)");
            }
            let delay = backoff(n) * self.delay_scale;
            eprintln!(
                "coreos-install: GET {url}: {why}; retrying in {}s",
                delay.as_secs()
            );
            std::thread::sleep(delay);
            n += 1;
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
