//! http(s) sources against a tiny HTTP server on 127.0.0.1 started by each test: file
//! contents, referenced configs, retries on 5xx, headers, hash checks, and that a failed
//! fetch applies nothing.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha512};

/// A canned response: status and body. A route may hold several, served in turn (the last
/// one repeats).
type Routes = HashMap<String, Vec<(u16, Vec<u8>)>>;

/// Requests seen: (path, request headers in lower case).
type Log = Arc<Mutex<Vec<(String, Vec<String>)>>>;

struct Server {
    base: String,
    requests: Log,
}

/// Serves `routes` on 127.0.0.1 (only) for at most 50 connections or 30 seconds.
fn serve(routes: Routes) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests: Log = Arc::new(Mutex::new(Vec::new()));
    let log = requests.clone();
    thread::spawn(move || {
        let mut routes = routes;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while served < 50 && Instant::now() < deadline {
            let (stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(_) => {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            served += 1;
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                headers.push(h.trim().to_ascii_lowercase());
            }
            log.lock().unwrap().push((path.clone(), headers));
            let (status, body) = match routes.get_mut(&path) {
                Some(list) if list.len() > 1 => list.remove(0),
                Some(list) => list[0].clone(),
                None => (404, b"not found".to_vec()),
            };
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(&body);
        }
    });
    Server { base, requests }
}

fn apply(root: &Path, config: &str) -> Output {
    let cfg = root.join("..").join(format!(
        "cfg-{}.json",
        root.file_name().unwrap().to_string_lossy()
    ));
    fs::write(&cfg, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_ignition"))
        .args([
            "apply",
            "--root",
            root.to_str().unwrap(),
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

fn root() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let r = t.path().join("root");
    fs::create_dir(&r).unwrap();
    (t, r)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn contents_and_merged_configs_come_over_http() {
    let motd = b"welcome to keel\n";
    let hash = hex::encode(Sha512::digest(motd));
    let child = r#"{"ignition":{"version":"3.0.0"},
        "systemd":{"units":[{"name":"hello.service","contents":"[Service]\nExecStart=/bin/true\n"}]}}"#;
    let srv = serve(HashMap::from([
        ("/motd.gz".to_string(), vec![(200, gzip(motd))]),
        (
            "/child.ign".to_string(),
            vec![(200, child.as_bytes().to_vec())],
        ),
    ]));
    let (_t, root) = root();
    let out = apply(
        &root,
        &format!(
            r#"{{"ignition":{{"version":"3.1.0","config":{{"merge":[{{"source":"{b}/child.ign"}}]}}}},
            "storage":{{"files":[{{"path":"/etc/motd","mode":420,
              "contents":{{"source":"{b}/motd.gz","compression":"gzip",
                "httpHeaders":[{{"name":"X-Keel","value":"yes"}}],
                "verification":{{"hash":"sha512-{hash}"}}}}}}]}}}}"#,
            b = srv.base
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(root.join("etc/motd")).unwrap(), motd);
    assert_eq!(
        fs::read_to_string(root.join("etc/systemd/system/hello.service")).unwrap(),
        "[Service]\nExecStart=/bin/true\n"
    );
    let reqs = srv.requests.lock().unwrap();
    let child_req = reqs.iter().find(|(p, _)| p == "/child.ign").unwrap();
    assert!(
        child_req
            .1
            .iter()
            .any(|h| h.starts_with("accept: application/vnd.coreos.ignition+json")),
        "configs are fetched with Ignition's Accept header: {:?}",
        child_req.1
    );
    let motd_req = reqs.iter().find(|(p, _)| p == "/motd.gz").unwrap();
    assert!(
        motd_req.1.iter().any(|h| h == "x-keel: yes"),
        "{:?}",
        motd_req.1
    );
}

#[test]
fn server_errors_are_retried() {
    let srv = serve(HashMap::from([(
        "/flaky".to_string(),
        vec![
            (503, b"busy".to_vec()),
            (500, b"oops".to_vec()),
            (200, b"third time".to_vec()),
        ],
    )]));
    let (_t, root) = root();
    let out = apply(
        &root,
        &format!(
            r#"{{"ignition":{{"version":"3.0.0"}},"storage":{{"files":[{{"path":"/f","contents":{{"source":"{}/flaky"}}}}]}}}}"#,
            srv.base
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(root.join("f")).unwrap(), "third time");
    assert_eq!(srv.requests.lock().unwrap().len(), 3);
}

#[test]
fn a_missing_resource_or_bad_hash_applies_nothing() {
    let srv = serve(HashMap::from([(
        "/tampered".to_string(),
        vec![(200, b"not what was signed".to_vec())],
    )]));
    for (source, hash) in [
        ("/missing", None),
        (
            "/tampered",
            Some(format!(
                "sha512-{}",
                hex::encode(Sha512::digest(b"original"))
            )),
        ),
    ] {
        let (_t, root) = root();
        let verification = hash
            .map(|h| format!(r#","verification":{{"hash":"{h}"}}"#))
            .unwrap_or_default();
        let out = apply(
            &root,
            &format!(
                r#"{{"ignition":{{"version":"3.0.0"}},"storage":{{"files":[
                    {{"path":"/etc/first","contents":{{"source":"data:,x"}}}},
                    {{"path":"/etc/second","contents":{{"source":"{}{source}"{verification}}}}}]}},
                  "passwd":{{"users":[{{"name":"core"}}]}}}}"#,
                srv.base
            ),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{source}: must fail");
        // A bad hash is named where Ignition names it: the verification hash.
        let at = if verification.is_empty() {
            "$.storage.files[1].contents.source"
        } else {
            "$.storage.files[1].contents.verification.hash"
        };
        assert!(err.contains(at), "{source}: names the resource: {err}");
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "{source}: nothing is written when a fetch fails"
        );
    }
}

#[test]
fn a_missing_referenced_config_is_a_config_error() {
    let srv = serve(HashMap::new());
    let (_t, root) = root();
    let out = apply(
        &root,
        &format!(
            r#"{{"ignition":{{"version":"2.2.0","config":{{"append":[{{"source":"{}/nope.ign"}}]}}}}}}"#,
            srv.base
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error: $.ignition.config.append[0].source: ")),
        "{err}"
    );
}

#[test]
fn huge_timeouts_do_not_panic() {
    let srv = serve(HashMap::from([(
        "/f".to_string(),
        vec![(200, b"ok".to_vec())],
    )]));
    let (_t, root) = root();
    let out = apply(
        &root,
        &format!(
            r#"{{"ignition":{{"version":"3.0.0","timeouts":{{"httpResponseHeaders":9223372036854775807,"httpTotal":9223372036854775807}}}},
              "storage":{{"files":[{{"path":"/f","contents":{{"source":"{}/f"}}}}]}}}}"#,
            srv.base
        ),
    );
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(root.join("f")).unwrap(), "ok");
}

/// Serves one GET on 127.0.0.1 (then stops listening): the headers at once, with the
/// Content-Length of all chunks, then each chunk after its delay. Returns the URL.
fn serve_slowly(chunks: Vec<(Duration, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
        }
        let total: usize = chunks.iter().map(|(_, c)| c.len()).sum();
        let mut s = stream;
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
        );
        let _ = s.flush();
        for (delay, chunk) in chunks {
            thread::sleep(delay);
            if s.write_all(&chunk).and_then(|()| s.flush()).is_err() {
                return;
            }
        }
    });
    url
}

#[test]
fn a_slow_body_is_not_cut_by_the_header_timeout() {
    // Headers at once, then the body over 3 s, in pieces 0.5 s apart: longer than the 1 s
    // httpResponseHeaders, but it never stalls.
    let chunks: Vec<(Duration, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                Duration::from_millis(500),
                format!("part {i}\n").into_bytes(),
            )
        })
        .collect();
    let want: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    let url = serve_slowly(chunks);
    let (_t, root) = root();
    let out = apply(
        &root,
        &format!(
            r#"{{"ignition":{{"version":"3.0.0","timeouts":{{"httpResponseHeaders":1}}}},
              "storage":{{"files":[{{"path":"/slow","contents":{{"source":"{url}"}}}}]}}}}"#
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(root.join("slow")).unwrap(), want);
}

#[test]
fn a_stalled_body_fails_naming_the_url() {
    // Headers and a few bytes, then nothing for 4 s: longer than the stall timeout.
    let url = serve_slowly(vec![
        (Duration::ZERO, b"first bytes".to_vec()),
        (Duration::from_secs(4), b"too late".to_vec()),
    ]);
    let fetcher = ignition::StdFetcher {
        max_attempts: Some(1),
        stall_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let mut opts = ignition::FetchOptions::default();
    opts.timeouts.http_response_headers = Some(1);
    let start = Instant::now();
    let err = ignition::Fetcher::fetch(&fetcher, &url, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url) && err.contains("stalled"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn waiting_for_headers_is_still_bounded() {
    // A server that takes the request and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/silent", listener.local_addr().unwrap());
    thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            thread::sleep(Duration::from_secs(5));
            drop(stream);
        }
    });
    let fetcher = ignition::StdFetcher {
        max_attempts: Some(1),
        ..Default::default()
    };
    let mut opts = ignition::FetchOptions::default();
    opts.timeouts.http_response_headers = Some(1);
    let start = Instant::now();
    let err = ignition::Fetcher::fetch(&fetcher, &url, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&url) && err.contains("no response headers within 1 s"),
        "{err}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}
