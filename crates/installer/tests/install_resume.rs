//! A download that breaks off half-way, end to end: `coreos-install` (and the library's stream)
//! against a loopback server (127.0.0.1 only) whose image answers are scripted: cut off,
//! stalled, resumed with `206 Partial Content`, or resumed wrongly. The installed disk must be
//! the signed image exactly, or, when the download cannot be completed, have no partition table.
//!
//! The image is signed with tests/fixtures/release-key.pem and the installer is given its public
//! half with `-k`, so these tests mean the same in every trust mode.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flate2::write::GzEncoder;
use installer::cli::Retries;
use installer::device::Device;
use installer::http::Http;
use installer::progress::Progress;
use installer::resume::Resuming;
use installer::stream::{write_image, Expect};
use release::layout::IMAGE_NAME;
use release::{SecretKey, Statement, StreamHash};

const MIB: u64 = 1 << 20;

/// How the server answers one GET of the image.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// `200 OK` with the whole length announced, closed after this many bytes.
    Cut(usize),
    /// `200 OK` with the whole length announced, this many bytes, then silence for this long.
    Stall(usize, Duration),
    /// `Range: bytes=N-` honoured: `206 Partial Content` from N (the whole file without Range).
    Resume,
    /// `206 Partial Content` from byte 0, whatever was asked.
    WrongRange,
}

/// A loopback server: the image's signature at IMAGE.sig, the image answered as `answers` say
/// (one per GET, in order); the `Range` starts asked for with the image GETs.
struct Server {
    url: String,
    ranges: Arc<Mutex<Vec<Option<u64>>>>,
}

fn serve(gz: Vec<u8>, sig: String, answers: Vec<Answer>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{IMAGE_NAME}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let gz = Arc::new(gz);
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for stream in listener.incoming() {
            let Ok(s) = stream else { continue };
            let (path, range) = request(&s);
            if path.ends_with(".sig") {
                reply(s, "200 OK", "", sig.as_bytes());
                continue;
            }
            seen.lock().unwrap().push(range);
            let Some(answer) = answers.next() else {
                reply(s, "410 Gone", "", b"");
                continue;
            };
            let gz = gz.clone();
            // A thread each: a stalled answer must not hold up the next connection.
            std::thread::spawn(move || answer_image(s, answer, range, &gz));
        }
    });
    Server { url, ranges }
}

/// The path and the `Range: bytes=N-` start of a request.
fn request(s: &TcpStream) -> (String, Option<u64>) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut first = String::new();
    r.read_line(&mut first).unwrap_or(0);
    let (mut line, mut range) = (String::new(), None);
    while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse().ok();
        }
        line.clear();
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
    (path, range)
}

fn reply(mut s: TcpStream, status: &str, extra: &str, body: &[u8]) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body);
}

fn answer_image(mut s: TcpStream, answer: Answer, range: Option<u64>, gz: &[u8]) {
    let whole = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        gz.len()
    );
    match answer {
        Answer::Cut(n) => {
            let _ = s.write_all(whole.as_bytes());
            let _ = s.write_all(&gz[..n]);
        }
        Answer::Stall(n, pause) => {
            let _ = s.write_all(whole.as_bytes());
            let _ = s.write_all(&gz[..n]);
            let _ = s.flush();
            std::thread::sleep(pause);
        }
        Answer::Resume | Answer::WrongRange => {
            let from = match (answer, range) {
                (Answer::Resume, Some(from)) => from as usize,
                (Answer::Resume, None) => return reply(s, "200 OK", "", gz),
                _ => 0,
            };
            let extra = format!(
                "Content-Range: bytes {from}-{}/{}\r\n",
                gz.len() - 1,
                gz.len()
            );
            reply(s, "206 Partial Content", &extra, &gz[from..]);
        }
    }
}

/// A 3 MiB disk image (GPT signature in sector 1, the rest varied enough that its gzip is about
/// a MiB), its gzip, and a signature over the gzip by the fixture release key.
fn release() -> (Vec<u8>, Vec<u8>, String) {
    let mut image = vec![0u8; (3 * MIB) as usize];
    let mut x = 0x2545_f491u32;
    for b in image.iter_mut().skip(MIB as usize).step_by(3) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    image[512..520].copy_from_slice(b"EFI PART");
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&image).unwrap();
    let gz = e.finish().unwrap();
    let key = SecretKey::read(&manifest_path("tests/fixtures/release-key.pem")).unwrap();
    let sig = Statement::of(&hash(&gz), "9.8.7", "stable", IMAGE_NAME)
        .sign(&key)
        .unwrap()
        .to_text();
    (image, gz, sig)
}

fn hash(bytes: &[u8]) -> StreamHash {
    let mut h = StreamHash::new();
    h.update(bytes);
    h
}

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A sparse 64 MiB "disk" whose first and last MiB hold an old install's bytes.
fn target(dir: &Path) -> PathBuf {
    let p = dir.join("disk");
    let f = File::create(&p).unwrap();
    f.set_len(64 * MIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &vec![0xaa; MIB as usize], 0).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &vec![0xaa; MIB as usize], 63 * MIB).unwrap();
    p
}

fn range(path: &Path, start: u64, len: u64) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; len as usize];
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start)).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf
}

/// No partition table at either end.
fn wiped(path: &Path) -> bool {
    range(path, 0, MIB).iter().all(|&b| b == 0)
        && range(path, 63 * MIB, MIB).iter().all(|&b| b == 0)
}

fn install(url: &str, disk: &Path, retries: &str) -> Output {
    let key = manifest_path("tests/fixtures/release-key.pub.pem");
    let args = [
        "-d",
        disk.to_str().unwrap(),
        "-u",
        url,
        "-k",
        key.to_str().unwrap(),
        "--fetch-retries",
        retries,
    ];
    let out = Command::new(env!("CARGO_BIN_EXE_coreos-install"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    eprintln!(
        "coreos-install {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_download_cut_half_way_is_resumed_and_the_image_installed_verified() {
    let (image, gz, sig) = release();
    let (half, len) = (gz.len() / 2, gz.len());
    let server = serve(gz, sig, vec![Answer::Cut(half), Answer::Resume]);
    let dir = tempfile::tempdir().unwrap();
    let disk = target(dir.path());
    let out = install(&server.url, &disk, "3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "at byte {half} of {len}; resuming in 1s (retry 1 of 3)"
        )) && err.contains(&format!("resumed at byte {half}"))
            && err.contains("signature, size and SHA-256 verified"),
        "{err}"
    );
    assert_eq!(*server.ranges.lock().unwrap(), [None, Some(half as u64)]);
    assert!(range(&disk, 0, image.len() as u64) == image);
    assert!(
        range(&disk, 63 * MIB, MIB).iter().all(|&b| b == 0),
        "old backup GPT gone"
    );
}

#[test]
fn when_the_retries_run_out_the_install_fails_and_the_disk_has_no_partition_table() {
    let (_image, gz, sig) = release();
    let half = gz.len() / 2;
    let len = gz.len();
    // The resume is answered with the whole file (no Range support), which breaks off too.
    let server = serve(gz, sig, vec![Answer::Cut(half), Answer::Cut(half)]);
    let dir = tempfile::tempdir().unwrap();
    let disk = target(dir.path());
    let out = install(&server.url, &disk, "1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("skipping the") && err.contains("already received"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "at byte {half} of {len}; gave up after 1 retries (--fetch-retries 1)"
        )) && err.contains("its partition tables were wiped"),
        "{err}"
    );
    assert!(wiped(&disk));
}

/// The library path the install takes: [`Resuming`] into [`write_image`], with a short stall.
/// The image, the temporary directory and the disk in it, how the write ended, the server.
struct Written {
    image: Vec<u8>,
    _dir: tempfile::TempDir,
    disk: PathBuf,
    result: anyhow::Result<()>,
    server: Server,
}

fn write(answers: Vec<Answer>, retries: u32) -> Written {
    let (image, gz, sig) = release();
    let expect = Expect {
        statement: Some(Statement::of(&hash(&gz), "9.8.7", "stable", IMAGE_NAME)),
        digest: None,
    };
    let server = serve(gz, sig, answers);
    let dir = tempfile::tempdir().unwrap();
    let disk = target(dir.path());
    let mut http = Http::with_stall(Retries::Count(retries), Duration::from_millis(300)).unwrap();
    http.delay_scale = 0;
    let result = Resuming::open(
        &http,
        &server.url,
        expect.statement.as_ref().map(|s| s.size),
    )
    .and_then(|download| {
        let mut dev = Device::open(&disk)?;
        write_image(download, &mut dev, &expect, &mut Progress::quiet()).map(|_| ())
    });
    Written {
        image,
        _dir: dir,
        disk,
        result,
        server,
    }
}

#[test]
fn a_stalled_download_is_resumed_and_written_verified() {
    let stall = Answer::Stall(300_000, Duration::from_secs(5));
    let w = write(vec![stall, Answer::Resume], 1);
    w.result.unwrap();
    assert_eq!(*w.server.ranges.lock().unwrap(), [None, Some(300_000)]);
    assert!(range(&w.disk, 0, w.image.len() as u64) == w.image);

    // No retry allowed: the stall is the error, and the disk has no partition table.
    let w = write(vec![stall], 0);
    let msg = format!("{:#}", w.result.unwrap_err());
    assert!(
        msg.contains(&format!(
            "no data from {} for 0.3 s at byte 300000 of ",
            w.server.url
        )),
        "{msg}"
    );
    assert!(wiped(&w.disk));
}

#[test]
fn a_resume_from_the_wrong_place_fails_and_nothing_is_spliced_in() {
    let w = write(vec![Answer::Cut(400_000), Answer::WrongRange], 3);
    let msg = format!("{:#}", w.result.unwrap_err());
    assert!(
        msg.contains("from byte 400000: the server sent bytes 0-") && msg.contains("not splicing"),
        "{msg}"
    );
    assert!(wiped(&w.disk));
    assert_eq!(*w.server.ranges.lock().unwrap(), [None, Some(400_000)]);
}
