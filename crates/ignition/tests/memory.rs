//! Resources are streamed to their files: a gzip resource of a few hundred KiB that expands
//! to hundreds of MiB is written without the `ignition` process holding it in memory.
//!
//! The peak is the child's maximum resident set size from `getrusage(RUSAGE_CHILDREN)`, so
//! this file holds a single test (one child). `getrusage` is declared here rather than
//! taken from libc, to keep the crate's dependencies (and Cargo.lock) as they are.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

use base64::Engine;
use sha2::{Digest, Sha512};

/// `struct rusage` on 64-bit Linux: two `timeval`s, then fourteen `long`s.
#[repr(C)]
#[derive(Default)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    maxrss_kib: i64,
    rest: [i64; 13],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

const RUSAGE_CHILDREN: i32 = -1;

/// The largest resident set of any child waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    let mut u = Rusage::default();
    // SAFETY: `u` is a valid, writable `struct rusage` for the duration of the call.
    let rc = unsafe { getrusage(RUSAGE_CHILDREN, &mut u) };
    assert_eq!(rc, 0, "getrusage failed");
    u.maxrss_kib
}

const MIB: usize = 1 << 20;

/// `n` MiB of zeros, gzip-compressed (one member).
fn zeros_gz(n: usize) -> Vec<u8> {
    let chunk = vec![0u8; MIB];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..n {
        gz.write_all(&chunk).unwrap();
    }
    gz.finish().unwrap()
}

/// The SHA-512 of `n` MiB of zeros.
fn zeros_sha512(n: usize) -> String {
    let chunk = vec![0u8; MIB];
    let mut hash = Sha512::new();
    for _ in 0..n {
        hash.update(&chunk);
    }
    hex::encode(hash.finalize())
}

/// Serves `body` once on 127.0.0.1; returns the URL.
fn serve_once(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/bomb.gz", listener.local_addr().unwrap());
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
        let mut s = stream;
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = s.write_all(&body);
    });
    url
}

#[test]
fn gzip_resources_are_streamed_to_their_files() {
    // 256 MiB from a data: URL; 32 MiB over http, verified (SHA-512 is slow in a debug build).
    let data_gz = zeros_gz(256);
    let http_gz = zeros_gz(32);
    let http_hash = zeros_sha512(32);
    assert!(data_gz.len() < MIB && http_gz.len() < MIB);
    let url = serve_once(http_gz);
    let t = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let cfg = t.path().join("bomb.json");
    fs::write(
        &cfg,
        format!(
            r#"{{"ignition":{{"version":"3.1.0"}},"storage":{{"files":[
                {{"path":"/var/zeros","contents":{{"compression":"gzip",
                  "source":"data:;base64,{}"}}}},
                {{"path":"/var/more-zeros","contents":{{"compression":"gzip","source":"{url}",
                  "verification":{{"hash":"sha512-{http_hash}"}}}}}}]}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(&data_gz)
        ),
    )
    .unwrap();
    let before = children_max_rss_kib();
    let out = Command::new(env!("CARGO_BIN_EXE_ignition"))
        .args([
            "apply",
            "--root",
            root.to_str().unwrap(),
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak_kib = children_max_rss_kib();
    assert_eq!(
        before, 0,
        "this test must be the only one that runs a child"
    );
    assert_eq!(
        fs::metadata(root.join("var/zeros")).unwrap().len(),
        256 * MIB as u64
    );
    assert_eq!(
        fs::metadata(root.join("var/more-zeros")).unwrap().len(),
        32 * MIB as u64
    );
    assert!(
        peak_kib < 64 * 1024,
        "ignition apply peaked at {} MiB of memory for 288 MiB of files",
        peak_kib / 1024
    );
    assert_eq!(
        fs::read_dir(&root).unwrap().count(),
        1,
        "only /var is left in the root (no staging files)"
    );
}
