//! [`Server`]: a static-file HTTP/1.1 server on 127.0.0.1, for PXE files, Ignition configs and
//! release images.
//!
//! It serves one directory, answers GET and HEAD (with `Content-Length`, single `Range`
//! requests, keep-alive) and 404s anything outside it. Every request is logged and recorded
//! ([`Server::requests`]), so a test can check what a guest fetched. It listens on loopback only;
//! guests on QEMU user networking reach it as `10.0.2.2` ([`Server::guest_url`]). Dropping the
//! server stops it.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{debug, info, warn};

/// The address of the host as seen from a guest on QEMU user networking.
pub const GUEST_HOST_ADDR: &str = "10.0.2.2";

/// Starting the server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The directory to serve does not exist.
    #[error("serve: directory {0} not found")]
    NoDir(PathBuf),
    /// Binding or configuring the listening socket failed.
    #[error("serve: listening on 127.0.0.1")]
    Listen(#[source] std::io::Error),
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The decoded path, e.g. `/vmlinuz`.
    pub path: String,
    /// The status code sent.
    pub status: u16,
}

/// A loopback static-file HTTP server; stops on drop.
#[derive(Debug)]
pub struct Server {
    root: PathBuf,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Serve the files under `root` on a free port of 127.0.0.1.
    pub fn serve_dir(root: impl AsRef<Path>) -> Result<Server, ServeError> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(ServeError::NoDir(root));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(ServeError::Listen)?;
        let addr = listener.local_addr().map_err(ServeError::Listen)?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (root, stop, requests) = (root.clone(), stop.clone(), requests.clone());
            std::thread::spawn(move || accept_loop(listener, &root, &stop, &requests))
        };
        info!(root = %root.display(), %addr, "serve: started");
        Ok(Server {
            root,
            addr,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The URL of `path` (relative to the served directory) from the host.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port(),
            path.trim_start_matches('/')
        )
    }

    /// The URL of `path` from a guest on QEMU user networking (host = 10.0.2.2).
    pub fn guest_url(&self, path: &str) -> String {
        format!(
            "http://{GUEST_HOST_ADDR}:{}/{}",
            self.port(),
            path.trim_start_matches('/')
        )
    }

    /// The requests answered so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        debug!(addr = %self.addr, "serve: stopped");
    }
}

fn accept_loop(
    listener: TcpListener,
    root: &Path,
    stop: &AtomicBool,
    requests: &Arc<Mutex<Vec<Request>>>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(err) => {
                warn!(%err, "serve: accept failed");
                continue;
            }
        };
        let (root, requests) = (root.to_path_buf(), requests.clone());
        std::thread::spawn(move || {
            if let Err(err) = handle_connection(stream, &root, &requests) {
                debug!(%err, "serve: connection ended");
            }
        });
    }
}

/// Answer requests on one connection until the client closes it or asks to.
fn handle_connection(
    stream: TcpStream,
    root: &Path,
    requests: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default();
        let version = parts.next().unwrap_or("HTTP/1.0");
        let close = match header("connection").map(str::to_ascii_lowercase) {
            Some(c) if c == "close" => true,
            Some(c) if c == "keep-alive" => false,
            _ => version == "HTTP/1.0",
        };
        let path = decode_path(target);
        let status = respond(&mut writer, root, &method, &path, header("range"), close)?;
        info!(%method, %path, status, "serve: request");
        requests.lock().expect("requests lock").push(Request {
            method,
            path,
            status,
        });
        if close {
            return Ok(());
        }
    }
}

/// `/a%20b?x=1` → `/a b`.
fn decode_path(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or_default();
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// The file under `root` that `path` names, if `path` stays inside `root`.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

/// Parse a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a file of `len` bytes.
/// `Some(None)` means the range is unsatisfiable.
fn parse_range(range: &str, len: u64) -> Option<Option<(u64, u64)>> {
    let spec = range.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: answer with the whole file
    }
    if len == 0 {
        return Some(None);
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (len.saturating_sub(n), len.checked_sub(1)?)
        }
        (start, "") => (start.parse().ok()?, len.checked_sub(1)?),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(len - 1)),
    };
    Some((start <= end && start < len).then_some((start, end)))
}

fn respond(
    out: &mut TcpStream,
    root: &Path,
    method: &str,
    path: &str,
    range: Option<&str>,
    close: bool,
) -> std::io::Result<u16> {
    let connection = if close { "close" } else { "keep-alive" };
    let simple = |out: &mut TcpStream, status: u16, reason: &str| -> std::io::Result<u16> {
        let body = format!("{status} {reason}\n");
        write!(
            out,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        )?;
        if method != "HEAD" {
            out.write_all(body.as_bytes())?;
        }
        out.flush()?;
        Ok(status)
    };
    if method != "GET" && method != "HEAD" {
        return simple(out, 405, "Method Not Allowed");
    }
    let file = resolve(root, path)
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::File::open(p).ok());
    let Some(mut file) = file else {
        return simple(out, 404, "Not Found");
    };
    let len = file.metadata()?.len();
    let (status, start, count) = match range.and_then(|r| parse_range(r, len)) {
        None => (200, 0, len),
        Some(None) => {
            write!(
                out,
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: {connection}\r\n\r\n"
            )?;
            return Ok(416);
        }
        Some(Some((start, end))) => (206, start, end - start + 1),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/octet-stream\r\nContent-Length: {count}\r\nAccept-Ranges: bytes\r\nConnection: {connection}\r\n",
        if status == 206 { "Partial Content" } else { "OK" }
    );
    if status == 206 {
        head.push_str(&format!(
            "Content-Range: bytes {start}-{}/{len}\r\n",
            start + count - 1
        ));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if method == "GET" {
        file.seek(SeekFrom::Start(start))?;
        std::io::copy(&mut (&mut file).take(count), out)?;
    }
    out.flush()?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal HTTP/1.1 client: one request on a fresh connection; returns the head and body.
    fn fetch(server: &Server, request: &str) -> (String, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut all = Vec::new();
        stream.read_to_end(&mut all).unwrap();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            String::from_utf8(all[..split].to_vec()).unwrap(),
            all[split + 4..].to_vec(),
        )
    }

    fn get(path: &str, extra: &str) -> String {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n")
    }

    #[test]
    fn serves_files_heads_ranges_and_404s() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinuz"), b"0123456789").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a b.ign"), b"{}").unwrap();
        let server = Server::serve_dir(dir.path()).unwrap();
        assert_eq!(
            server.url("/vmlinuz"),
            format!("http://127.0.0.1:{}/vmlinuz", server.port())
        );
        assert_eq!(
            server.guest_url("x"),
            format!("http://10.0.2.2:{}/x", server.port())
        );

        let (head, body) = fetch(&server, &get("/vmlinuz", ""));
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.contains("Content-Length: 10"), "{head}");
        assert_eq!(body, b"0123456789");

        let (head, body) = fetch(&server, &get("/sub/a%20b.ign?x=1", ""));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body, b"{}");

        let (head, body) = fetch(
            &server,
            "HEAD /vmlinuz HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(head.contains("Content-Length: 10"), "{head}");
        assert!(body.is_empty());

        let (head, body) = fetch(&server, &get("/vmlinuz", "Range: bytes=2-4\r\n"));
        assert!(head.starts_with("HTTP/1.1 206"), "{head}");
        assert!(head.contains("Content-Range: bytes 2-4/10"), "{head}");
        assert_eq!(body, b"234");

        let (_, body) = fetch(&server, &get("/vmlinuz", "Range: bytes=-3\r\n"));
        assert_eq!(body, b"789");
        let (head, _) = fetch(&server, &get("/vmlinuz", "Range: bytes=20-\r\n"));
        assert!(head.starts_with("HTTP/1.1 416"), "{head}");

        for missing in ["/nope", "/../etc/passwd", "/sub", "/%2e%2e/x"] {
            let (head, _) = fetch(&server, &get(missing, ""));
            assert!(head.starts_with("HTTP/1.1 404"), "{missing}: {head}");
        }

        let log = server.requests();
        assert_eq!(
            log[0],
            Request {
                method: "GET".into(),
                path: "/vmlinuz".into(),
                status: 200
            }
        );
        assert_eq!(log[1].path, "/sub/a b.ign");
        assert_eq!(log.len(), 10);
    }

    #[test]
    fn keeps_the_connection_alive_between_requests() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"AA").unwrap();
        let server = Server::serve_dir(dir.path()).unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
        stream
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut all = String::new();
        stream.read_to_string(&mut all).unwrap();
        assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    }

    #[test]
    fn parse_range_cases() {
        assert_eq!(parse_range("bytes=0-0", 5), Some(Some((0, 0))));
        assert_eq!(parse_range("bytes=3-99", 5), Some(Some((3, 4))));
        assert_eq!(parse_range("bytes=4-", 5), Some(Some((4, 4))));
        assert_eq!(parse_range("bytes=-2", 5), Some(Some((3, 4))));
        assert_eq!(parse_range("bytes=5-", 5), Some(None));
        assert_eq!(parse_range("bytes=0-1,3-4", 5), None);
        assert_eq!(parse_range("items=0-1", 5), None);
        assert_eq!(parse_range("bytes=0-", 0), Some(None));
    }

    #[test]
    fn a_missing_directory_is_named() {
        let err = Server::serve_dir("/nonexistent/keel").unwrap_err();
        assert_eq!(
            err.to_string(),
            "serve: directory /nonexistent/keel not found"
        );
    }
}
