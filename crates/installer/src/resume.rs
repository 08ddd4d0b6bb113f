//! The image download as one [`Read`] that survives a cut or stalled connection.
//!
//! When the body fails half-way — a transport error (connection reset, …), a stall (no byte for
//! [`Http::stall`], 30 s by default), or an end before the expected size — [`Resuming`] asks
//! again for the rest, `Range: bytes=RECEIVED-`, after the usual backoff:
//!
//!  * `206 Partial Content` whose `Content-Range` starts at RECEIVED (and whose total, if given,
//!    is the size known so far): the download goes on from there;
//!  * `200 OK` (the server ignores `Range`): the whole file comes again and its first RECEIVED
//!    bytes are read and dropped;
//!  * 408, 429, 5xx or another transport error: tried again;
//!  * anything else — another status, a `Content-Range` starting elsewhere, another total size —
//!    is an error: nothing is spliced in that is not the continuation of what was delivered.
//!
//! Every resume, and every failed attempt at one, is a retry against the same `--fetch-retries`
//! as the first request's retries; each is said on stderr in one line
//! (`coreos-install: GET URL: connection reset … at byte N of M; resuming in 2s (retry 1 of 3)`).
//! The caller reads the file's bytes exactly once, in order, so a hash over what it reads is a
//! hash over the file.
//!
//! The expected size (for an end that comes too early) is the server's own: its
//! `Content-Length`, else the signed size. A server whose file is complete but shorter than the
//! signed size is not resumed (that is no transfer error) and fails the size check instead.

use std::error::Error;
use std::io::{self, Read};
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::blocking::Response;
use reqwest::header::CONTENT_RANGE;
use reqwest::StatusCode;

use crate::http::{describe, retryable_status, seconds, Http};

/// A download of one URL that resumes where it broke off; see the module doc.
#[derive(Debug)]
pub struct Resuming {
    http: Http,
    url: String,
    /// The current answer; `None` once the download has failed for good.
    body: Option<Response>,
    /// Bytes handed to the reader so far.
    pos: u64,
    /// Bytes of the current body still to be dropped (a restart from 0 after an ignored `Range`).
    skip: u64,
    /// The file's size, when known.
    size: Option<u64>,
    /// Retries spent (the first request's included).
    tries: u32,
    /// Why the download failed for good.
    failed: Option<String>,
}

/// Whether a read error is the stall timeout.
fn is_stall(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::TimedOut {
        return true;
    }
    let mut cause: Option<&(dyn Error + 'static)> = e.get_ref().map(|c| c as _);
    while let Some(c) = cause {
        if c.downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The innermost cause of a read error, which names what happened ("connection reset by peer",
/// "end of file before message length reached") where the outer ones say where.
fn root_cause(e: &io::Error) -> String {
    let mut last = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        last = c.to_string();
        cause = c.source();
    }
    last
}

/// `Content-Range: bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
fn content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (first <= last && total.is_none_or(|t| last < t)).then_some((first, last, total))
}

/// What an answer to a `Range` request means.
enum Answer {
    /// Go on reading this.
    Resumed,
    /// A passing failure: try again.
    Retry(String),
    /// Give up.
    Fatal(String),
}

impl Resuming {
    /// Start downloading `url` (retrying the start as [`Http::get`] does); `signed_size` is the
    /// size the signature promises, if there is one.
    pub fn open(http: &Http, url: &str, signed_size: Option<u64>) -> Result<Self> {
        let mut tries = 0;
        let resp = http
            .get_counted(url, &mut tries)
            .with_context(|| format!("image unavailable: {url}"))?;
        let size = resp.content_length().or(signed_size);
        Ok(Resuming {
            http: http.clone(),
            url: url.to_string(),
            body: Some(resp),
            pos: 0,
            skip: 0,
            size,
            tries,
            failed: None,
        })
    }

    /// Continue downloading `url` from byte `from` (the bytes before it are already where they
    /// belong: the updater's payload after a reboot or power cut), asking `Range: bytes=FROM-`
    /// and accepting only what [`Read`] accepts on a resume: a 206 from exactly `from` (of
    /// total size `signed_size` if the server gives one), or a 200 whose first `from` bytes are
    /// dropped. Failed starts are retried as resumes are. `from` 0 is [`Self::open`].
    pub fn open_from(http: &Http, url: &str, from: u64, signed_size: Option<u64>) -> Result<Self> {
        if from == 0 {
            return Self::open(http, url, signed_size);
        }
        let mut r = Resuming {
            http: http.clone(),
            url: url.to_string(),
            body: None,
            pos: from,
            skip: 0,
            size: signed_size,
            tries: 0,
            failed: None,
        };
        let why = match http.get_from(url, from) {
            Err(e) => format!("GET {url} from byte {from}: {}", describe(e, http.stall())),
            Ok(resp) => match r.accept(resp) {
                Answer::Resumed => return Ok(r),
                Answer::Retry(why) => why,
                Answer::Fatal(why) => anyhow::bail!(why),
            },
        };
        r.recover(why)?;
        Ok(r)
    }

    /// The file's size, when the server or the signature said it.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Retries spent so far (on the first request and on resumes).
    pub fn retries_used(&self) -> u32 {
        self.tries
    }

    /// " at byte N of M" (or " at byte N").
    fn at(&self) -> String {
        match self.size {
            Some(size) => format!(" at byte {} of {size}", self.pos),
            None => format!(" at byte {}", self.pos),
        }
    }

    /// Fail for good.
    fn give_up(&mut self, why: String) -> io::Error {
        self.body = None;
        self.failed = Some(why.clone());
        io::Error::other(why)
    }

    /// The body failed (`why`, already with its position): resume it, or give up.
    fn recover(&mut self, mut why: String) -> io::Result<()> {
        self.body = None;
        loop {
            if !self.http.may_retry(self.tries) {
                let why = format!(
                    "{why}; gave up after {} retries (--fetch-retries {})",
                    self.tries,
                    self.http.retries()
                );
                return Err(self.give_up(why));
            }
            let delay = self.http.pause(self.tries);
            eprintln!(
                "coreos-install: {why}; resuming in {}s ({})",
                delay.as_secs(),
                self.http.retry_note(self.tries)
            );
            self.tries += 1;
            std::thread::sleep(delay);
            why = match self.http.get_from(&self.url, self.pos) {
                Err(e) => format!(
                    "GET {} from byte {}: {}",
                    self.url,
                    self.pos,
                    describe(e, self.http.stall())
                ),
                Ok(resp) => match self.accept(resp) {
                    Answer::Resumed => return Ok(()),
                    Answer::Retry(why) => why,
                    Answer::Fatal(why) => return Err(self.give_up(why)),
                },
            };
        }
    }

    /// Take the answer to `Range: bytes=POS-` if it continues the file.
    fn accept(&mut self, resp: Response) -> Answer {
        let (url, pos) = (&self.url, self.pos);
        let status = resp.status();
        let changed = |now: u64, was: u64| {
            Answer::Fatal(format!(
                "GET {url} from byte {pos}: the file is now {now} bytes, it was {was}: it \
                 changed on the server; not resuming"
            ))
        };
        if status == StatusCode::PARTIAL_CONTENT {
            let raw = resp
                .headers()
                .get(CONTENT_RANGE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let Some((first, last, total)) = raw.as_deref().and_then(content_range) else {
                return Answer::Fatal(format!(
                    "GET {url} from byte {pos}: the server answered 206 Partial Content without \
                     a valid Content-Range ({raw:?}); not resuming"
                ));
            };
            if first != pos {
                return Answer::Fatal(format!(
                    "GET {url} from byte {pos}: the server sent bytes {first}-{last} instead \
                     (Content-Range: {}); not splicing them in",
                    raw.unwrap_or_default()
                ));
            }
            match (total, self.size) {
                (Some(now), Some(was)) if now != was => return changed(now, was),
                (Some(now), None) => self.size = Some(now),
                _ => {}
            }
            eprintln!("coreos-install: GET {url}: resumed at byte {pos}");
            self.skip = 0;
        } else if status == StatusCode::OK {
            if let (Some(now), Some(was)) = (resp.content_length(), self.size) {
                if now != was {
                    return changed(now, was);
                }
            }
            eprintln!(
                "coreos-install: GET {url}: the server does not resume (it ignored Range and \
                 sent the whole file): reading it again from the start, skipping the {pos} \
                 bytes already received"
            );
            self.skip = pos;
        } else if retryable_status(status) {
            return Answer::Retry(format!(
                "GET {url} from byte {pos}: server answered {status}"
            ));
        } else {
            return Answer::Fatal(format!(
                "GET {url} from byte {pos}: server answered {status}; not resuming"
            ));
        }
        self.body = Some(resp);
        Answer::Resumed
    }

    /// Why the current body failed, with where.
    fn why(&self, e: &io::Error, stall: Duration) -> String {
        if is_stall(e) {
            format!(
                "no data from {} for {}{}",
                self.url,
                seconds(stall),
                self.at()
            )
        } else {
            format!("GET {}: {}{}", self.url, root_cause(e), self.at())
        }
    }
}

impl Read for Resuming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(body) = self.body.as_mut() else {
                let why = self.failed.clone().unwrap_or_default();
                return Err(io::Error::other(why));
            };
            match body.read(buf) {
                Ok(0) => {
                    let short = self.size.is_some_and(|size| self.pos < size) || self.skip > 0;
                    if !short {
                        return Ok(0);
                    }
                    let why = format!("GET {}: the connection closed early{}", self.url, self.at());
                    self.recover(why)?;
                }
                Ok(n) => {
                    let drop = self.skip.min(n as u64) as usize;
                    self.skip -= drop as u64;
                    if drop == n {
                        continue;
                    }
                    buf.copy_within(drop..n, 0);
                    let n = n - drop;
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = self.why(&e, self.http.stall());
                    self.recover(why)?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Retries;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Answers one connection; given the stream and the `Range: bytes=N-` start asked for.
    type Handler = Box<dyn FnOnce(TcpStream, Option<u64>) + Send>;

    /// A loopback server answering its n-th connection with the n-th handler (each in a thread
    /// of its own, so a stalled answer does not hold up the next); the URL, and the `Range`
    /// starts asked for so far.
    fn server(handlers: Vec<Handler>) -> (String, Arc<Mutex<Vec<Option<u64>>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/image", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let seen = asked.clone();
        std::thread::spawn(move || {
            for handler in handlers {
                let (s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let (mut line, mut range) = (String::new(), None);
                while r.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("range: bytes=") {
                        range = v.trim().trim_end_matches('-').parse().ok();
                    }
                    line.clear();
                }
                seen.lock().unwrap().push(range);
                std::thread::spawn(move || handler(s, range));
            }
        });
        (url, asked)
    }

    fn data() -> Arc<Vec<u8>> {
        Arc::new((0..200_000u32).map(|i| (i * 31 % 251) as u8).collect())
    }

    /// `200 OK` with the whole length announced; the body is sent up to `cut`, then the
    /// connection closes.
    fn ok(data: &Arc<Vec<u8>>, cut: usize) -> Handler {
        let data = data.clone();
        Box::new(move |mut s, _| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&data[..cut]);
        })
    }

    /// `206 Partial Content` from the asked-for start (or `start` if given), saying the file is
    /// `total` bytes (default: its length).
    fn partial(data: &Arc<Vec<u8>>, start: Option<u64>, total: Option<usize>) -> Handler {
        let data = data.clone();
        Box::new(move |mut s, asked| {
            let from = start.or(asked).unwrap() as usize;
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                data.len() - 1,
                total.unwrap_or(data.len()),
                data.len() - from
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&data[from..]);
        })
    }

    /// A bare status line.
    fn status(line: &'static str) -> Handler {
        Box::new(move |mut s, _| {
            let _ = write!(
                s,
                "HTTP/1.1 {line}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        })
    }

    /// `200 OK` sending `at` bytes, then nothing for `pause`, holding the connection open.
    fn stall(data: &Arc<Vec<u8>>, at: usize, pause: Duration) -> Handler {
        let data = data.clone();
        Box::new(move |mut s, _| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                data.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&data[..at]);
            let _ = s.flush();
            std::thread::sleep(pause);
        })
    }

    fn http(retries: u32, stall: Duration) -> Http {
        let mut http = Http::with_stall(Retries::Count(retries), stall).unwrap();
        http.delay_scale = 0;
        http
    }

    /// Read everything, in small pieces; what was read and how it ended.
    fn drain(r: &mut Resuming) -> (Vec<u8>, io::Result<()>) {
        let mut got = Vec::new();
        let mut buf = [0u8; 7000];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return (got, Ok(())),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, Err(e)),
            }
        }
    }

    const SLOW: Duration = Duration::from_secs(30);

    #[test]
    fn a_cut_connection_is_resumed_with_a_range_request_from_where_it_stopped() {
        let d = data();
        let half = d.len() / 2;
        let (url, asked) = server(vec![ok(&d, half), partial(&d, None, None)]);
        let mut r = Resuming::open(&http(3, SLOW), &url, None).unwrap();
        assert_eq!(r.size(), Some(d.len() as u64));
        let (got, end) = drain(&mut r);
        end.unwrap();
        assert!(got == *d, "the bytes are the file's, once, in order");
        assert_eq!(*asked.lock().unwrap(), [None, Some(half as u64)]);
        assert_eq!(r.retries_used(), 1);
    }

    #[test]
    fn a_stalled_body_fails_after_the_stall_timeout_and_is_resumed() {
        let d = data();
        let at = 70_000;
        let short = Duration::from_millis(300);
        let (url, asked) = server(vec![
            stall(&d, at, Duration::from_secs(5)),
            partial(&d, None, None),
        ]);
        let t = Instant::now();
        let mut r = Resuming::open(&http(1, short), &url, None).unwrap();
        let (got, end) = drain(&mut r);
        end.unwrap();
        assert!(got == *d);
        assert_eq!(*asked.lock().unwrap(), [None, Some(at as u64)]);
        let took = t.elapsed();
        assert!(took >= short && took < Duration::from_secs(4), "{took:?}");

        // No retries left: the error names the URL, the wait and the offset.
        let (url, _) = server(vec![stall(&d, at, Duration::from_secs(5))]);
        let mut r = Resuming::open(&http(0, short), &url, None).unwrap();
        let (got, end) = drain(&mut r);
        assert_eq!(got.len(), at);
        let msg = end.unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "no data from {url} for 0.3 s at byte {at} of {}; gave up after 0 retries \
                 (--fetch-retries 0)",
                d.len()
            )
        );
    }

    #[test]
    fn a_server_that_ignores_range_is_read_again_and_the_received_part_skipped() {
        let d = data();
        let half = d.len() / 2;
        // The second answer breaks off again before it even reaches the resume point.
        let (url, asked) = server(vec![ok(&d, half), ok(&d, half / 2), ok(&d, d.len())]);
        let mut r = Resuming::open(&http(2, SLOW), &url, None).unwrap();
        let (got, end) = drain(&mut r);
        end.unwrap();
        assert!(got == *d);
        let h = Some(half as u64);
        assert_eq!(*asked.lock().unwrap(), [None, h, h]);
        assert_eq!(r.retries_used(), 2);
    }

    #[test]
    fn when_the_retries_run_out_the_error_says_where_and_why() {
        let d = data();
        let half = d.len() / 2;
        let (url, asked) = server(vec![
            ok(&d, half),
            status("503 Service Unavailable"),
            ok(&d, half),
        ]);
        let mut r = Resuming::open(&http(2, SLOW), &url, None).unwrap();
        let (got, end) = drain(&mut r);
        assert!(got[..] == d[..half], "only the file's own bytes");
        let msg = end.unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "GET {url}: end of file before message length reached at byte {half} of {}; \
                 gave up after 2 retries (--fetch-retries 2)",
                d.len()
            )
        );
        assert_eq!(asked.lock().unwrap().len(), 3);
        // Reading on after the failure fails again: no byte comes from nowhere.
        assert_eq!(r.read(&mut [0u8; 10]).unwrap_err().to_string(), msg);
    }

    #[test]
    fn a_206_from_elsewhere_of_another_size_or_a_refusal_is_an_error_not_data() {
        let d = data();
        let half = d.len() / 2;
        let cases = [
            (
                partial(&d, Some(0), None),
                format!("the server sent bytes 0-{} instead", d.len() - 1),
            ),
            (
                partial(&d, None, Some(d.len() + 1)),
                format!("the file is now {} bytes, it was {}", d.len() + 1, d.len()),
            ),
            (
                status("416 Range Not Satisfiable"),
                "server answered 416 Range Not Satisfiable; not resuming".into(),
            ),
            (
                status("206 Partial Content"),
                "206 Partial Content without a valid Content-Range (None)".into(),
            ),
        ];
        for (answer, want) in cases {
            let (url, asked) = server(vec![ok(&d, half), answer]);
            let mut r = Resuming::open(&http(5, SLOW), &url, None).unwrap();
            let (got, end) = drain(&mut r);
            assert!(got[..] == d[..half], "{want}: nothing spliced in");
            let msg = end.unwrap_err().to_string();
            assert!(
                msg.starts_with(&format!("GET {url} from byte {half}: ")) && msg.contains(&want),
                "{msg}"
            );
            assert_eq!(asked.lock().unwrap().len(), 2, "{want}: final, not retried");
        }
    }

    #[test]
    fn an_early_end_without_a_content_length_is_caught_by_the_signed_size() {
        let d = data();
        let half = d.len() / 2;
        // Close-delimited: the end of the connection is the end of the body.
        let no_length = |data: &Arc<Vec<u8>>| -> Handler {
            let data = data.clone();
            Box::new(move |mut s, _| {
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(&data[..half]);
            })
        };
        let (url, asked) = server(vec![no_length(&d), partial(&d, None, None)]);
        let mut r = Resuming::open(&http(1, SLOW), &url, Some(d.len() as u64)).unwrap();
        let (got, end) = drain(&mut r);
        end.unwrap();
        assert!(got == *d);
        assert_eq!(*asked.lock().unwrap(), [None, Some(half as u64)]);
        // Without a size from anywhere such an end cannot be told from the real one (the hash
        // check after the stream then fails).
        let (url, _) = server(vec![no_length(&d)]);
        let mut r = Resuming::open(&http(1, SLOW), &url, None).unwrap();
        assert_eq!(drain(&mut r).0.len(), half);
    }

    #[test]
    fn a_download_opened_from_an_offset_asks_for_the_rest_only() {
        let d = data();
        let from = 123_456u64;
        // A 206 from there, a server that ignores Range, and a 503 before a good answer.
        let (url, asked) = server(vec![
            partial(&d, None, None),
            ok(&d, d.len()),
            status("503 Service Unavailable"),
            partial(&d, None, None),
        ]);
        for _ in 0..3 {
            let mut r =
                Resuming::open_from(&http(2, SLOW), &url, from, Some(d.len() as u64)).unwrap();
            let (got, end) = drain(&mut r);
            end.unwrap();
            assert!(
                got[..] == d[from as usize..],
                "only the bytes from the offset on"
            );
        }
        let f = Some(from);
        assert_eq!(*asked.lock().unwrap(), [f, f, f, f]);
        // Bytes from elsewhere are refused at the start too.
        let (url, _) = server(vec![partial(&d, Some(0), None)]);
        let err = Resuming::open_from(&http(2, SLOW), &url, from, None).unwrap_err();
        assert!(err.to_string().contains("instead"), "{err}");
    }

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(content_range("bytes 5-9/10"), Some((5, 9, Some(10))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, 9, None)));
        for bad in [
            "bytes 5-9/9",
            "bytes 9-5/10",
            "items 5-9/10",
            "bytes */10",
            "bytes 5-/10",
        ] {
            assert_eq!(content_range(bad), None, "{bad}");
        }
    }
}
