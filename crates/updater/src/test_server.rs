//! A static file server on 127.0.0.1 for the repository and payload tests: `GET` of a file
//! under a directory, `Range: bytes=N-` answered with 206, 404 for anything missing, and
//! injected faults: the next answers cut off after some bytes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the server saw and what it is told to do.
#[derive(Debug, Default)]
pub struct State {
    /// Each request: its path and the `Range` start asked for.
    pub requests: Vec<(String, Option<u64>)>,
    /// The next answers to a file send at most this many body bytes, then close.
    pub cuts: VecDeque<u64>,
}

/// A running server; it stops with the test process.
pub struct Server {
    /// `http://127.0.0.1:PORT/`.
    pub base: url::Url,
    /// Requests and faults.
    pub state: Arc<Mutex<State>>,
}

impl Server {
    /// Serve `root` on a free port.
    pub fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (root, shared) = (root.to_path_buf(), state.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (root, state) = (root.clone(), shared.clone());
                std::thread::spawn(move || {
                    let _ = answer(conn, &root, &state);
                });
            }
        });
        Server { base, state }
    }

    /// The requests for paths ending in `suffix`, with their `Range` starts.
    pub fn requests_for(&self, suffix: &str) -> Vec<Option<u64>> {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, r)| *r)
            .collect()
    }

    /// Cut the next answers to a file after these many body bytes each.
    pub fn cut_next(&self, cuts: &[u64]) {
        self.state.lock().unwrap().cuts.extend(cuts);
    }
}

fn answer(mut conn: TcpStream, root: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse::<u64>().ok();
        }
    }
    let decoded = percent_decode(path.trim_start_matches('/'));
    let file: PathBuf = root.join(decoded);
    let cut = {
        let mut s = state.lock().unwrap();
        s.requests.push((path.clone(), range));
        if file.is_file() {
            s.cuts.pop_front()
        } else {
            None
        }
    };
    let Ok(data) = std::fs::read(&file) else {
        return write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    };
    let from = range.unwrap_or(0).min(data.len() as u64) as usize;
    let body = &data[from..];
    let head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
            data.len().max(1) - 1,
            data.len()
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    write!(
        conn,
        "{head}Accept-Ranges: bytes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    let send = cut.map_or(body.len(), |c| (c as usize).min(body.len()));
    conn.write_all(&body[..send])?;
    conn.flush()
}

/// `%XX` escapes decoded (tough escapes nothing in Keel's names, but be exact).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(url: &url::Url, range: Option<u64>) -> (u16, Vec<u8>) {
        let mut req = reqwest::blocking::Client::new().get(url.clone());
        if let Some(from) = range {
            req = req.header("Range", format!("bytes={from}-"));
        }
        let mut resp = req.send().unwrap();
        let mut body = Vec::new();
        let _ = resp.read_to_end(&mut body);
        (resp.status().as_u16(), body)
    }

    #[test]
    fn files_ranges_misses_and_cuts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f.bin"), b"0123456789").unwrap();
        let s = Server::start(dir.path());
        let url = s.base.join("a/f.bin").unwrap();
        assert_eq!(get(&url, None), (200, b"0123456789".to_vec()));
        assert_eq!(get(&url, Some(4)), (206, b"456789".to_vec()));
        assert_eq!(get(&s.base.join("a/g.bin").unwrap(), None).0, 404);
        s.cut_next(&[3]);
        assert_eq!(get(&url, None).1, b"012");
        assert_eq!(s.requests_for("f.bin"), [None, Some(4), None]);
        assert_eq!(percent_decode("a%2Fb%zz"), "a/b%zz");
    }
}
