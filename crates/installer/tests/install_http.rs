//! `coreos-install` end to end against a loopback HTTP server (127.0.0.1 only) serving a small
//! fake release signed with the TEST key, written into a sparse temp file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use flate2::write::GzEncoder;
use release::layout::{self, IMAGE_NAME};
use release::sign::digest_line;
use release::{SecretKey, StreamHash};
use slots::layout::{partitions, place, Sizes};

const MIB: u64 = 1 << 20;
const VERSION: &str = "9.8.7";
const CONFIG: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/installed","contents":{"source":"data:,yes"}}]}}"#;

/// A static file server on 127.0.0.1 that records the paths asked for.
struct Server {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
}

fn serve(root: PathBuf) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let paths = Arc::new(Mutex::new(Vec::new()));
    let seen = paths.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap_or(0);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
            seen.lock().unwrap().push(path.clone());
            let file = root.join(path.trim_start_matches('/'));
            let _ = match (path.contains(".."), fs::read(&file)) {
                (false, Ok(body)) => write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .and_then(|_| s.write_all(&body)),
                _ => write!(
                    s,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                ),
            };
        }
    });
    Server { port, paths }
}

impl Server {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A Keel-shaped disk image: the nine partitions (small), a FAT on OEM, a pattern in USR-A.
fn disk_image(path: &Path) -> Vec<u8> {
    let sizes = Sizes {
        esp_mib: 1,
        usr_mib: 2,
        oem_mib: 8,
        root_mib: 1,
    };
    let (placed, size) = place(&partitions(sizes));
    File::create(path).unwrap().set_len(size).unwrap();
    slots::table::write_table(path, &placed, uuid::Uuid::new_v4()).unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let at = |label: &str| {
        placed
            .iter()
            .find(|p| p.spec.label == label)
            .unwrap()
            .clone()
    };
    let usr = at("USR-A");
    let pattern: Vec<u8> = (0..usr.len).map(|i| (i * 7 % 251) as u8).collect();
    std::os::unix::fs::FileExt::write_all_at(&file, &pattern, usr.offset).unwrap();
    let oem = at("OEM");
    let mut fat = vec![0u8; oem.len as usize];
    fatfs::format_volume(
        std::io::Cursor::new(&mut fat[..]),
        fatfs::FormatVolumeOptions::new().volume_label(*b"OEM        "),
    )
    .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &fat, oem.offset).unwrap();
    drop(file);
    fs::read(path).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Publish `gz` as VERSION under `root` with digest and TEST-key signature.
fn publish(root: &Path, gz: &[u8]) {
    let dir = root.join(VERSION);
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(root.join("current")).unwrap();
    let mut h = StreamHash::new();
    h.update(gz);
    fs::write(dir.join(IMAGE_NAME), gz).unwrap();
    fs::write(
        dir.join(format!("{IMAGE_NAME}.sha256")),
        digest_line(&h.sha256(), IMAGE_NAME),
    )
    .unwrap();
    fs::write(
        dir.join(format!("{IMAGE_NAME}.sig")),
        h.sign(&SecretKey::test()).to_text(),
    )
    .unwrap();
    fs::write(
        root.join("current/version.txt"),
        layout::version_txt(VERSION),
    )
    .unwrap();
}

struct Fixture {
    dir: tempfile::TempDir,
    image: Vec<u8>,
    gz: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let image = disk_image(&dir.path().join("disk.img"));
    let gz = gzip(&image);
    publish(&dir.path().join("release"), &gz);
    fs::write(dir.path().join("config.ign"), CONFIG).unwrap();
    Fixture { dir, image, gz }
}

impl Fixture {
    /// A sparse "disk" of 256 MiB whose first and last MiB hold an old install's bytes.
    fn target(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        let f = File::create(&p).unwrap();
        f.set_len(256 * MIB).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &vec![0xaa; MIB as usize], 0).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &vec![0xaa; MIB as usize], 255 * MIB).unwrap();
        p
    }
    fn release(&self) -> PathBuf {
        self.dir.path().join("release")
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("config.ign")
    }
}

fn run(args: &[&str]) -> Output {
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

fn range(path: &Path, start: u64, len: u64) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; len as usize];
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start)).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf
}

fn zeroed(path: &Path, start: u64, len: u64) -> bool {
    range(path, start, len).iter().all(|&b| b == 0)
}

#[test]
fn installs_the_current_release_over_http_with_the_config_on_oem() {
    let fx = fixture();
    let server = serve(fx.release());
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();
    let out = run(&[
        "-d",
        d,
        "-b",
        &server.base(),
        "-V",
        "current",
        "-i",
        fx.config().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim_end(),
        format!("Success! Keel {VERSION} is installed on {d}")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TEST signing key"),
        "the test key is never trusted silently"
    );
    assert_eq!(
        server.paths.lock().unwrap().clone(),
        [
            "/current/version.txt".to_string(),
            format!("/{VERSION}/{IMAGE_NAME}.sig"),
            format!("/{VERSION}/{IMAGE_NAME}.sha256"),
            format!("/{VERSION}/{IMAGE_NAME}"),
        ]
    );

    // The GPT reads back with Keel's nine partitions, and the bytes outside OEM are the image's.
    let parts = slots::table::read_partitions(&disk).unwrap();
    let labels: Vec<&str> = parts.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "EFI-SYSTEM",
            "BIOS-BOOT",
            "USR-A",
            "USR-B",
            "ROOT-C",
            "OEM",
            "OEM-CONFIG",
            "RESERVED",
            "ROOT"
        ]
    );
    let oem = parts.iter().find(|p| p.label == "OEM").unwrap();
    assert_eq!(oem.number, 6);
    assert_eq!(range(&disk, 0, oem.offset), fx.image[..oem.offset as usize]);
    let after = oem.offset + oem.len;
    assert_eq!(
        range(&disk, after, fx.image.len() as u64 - after),
        fx.image[after as usize..]
    );
    // The old install's backup GPT area at the end of the disk is gone.
    assert!(zeroed(&disk, 255 * MIB, MIB));

    let f = File::open(&disk).unwrap();
    assert_eq!(
        installer::oem::read_config(&disk, &f).unwrap(),
        CONFIG.as_bytes()
    );
}

#[test]
fn a_tampered_or_resigned_image_fails_and_leaves_no_partition_table() {
    let fx = fixture();
    // (1) An attacker on the server swaps the image and fixes the digest file, but cannot sign.
    let evil = {
        let mut img = fx.image.clone();
        img[(3 * MIB) as usize] ^= 0xff;
        gzip(&img)
    };
    let swapped = fx.dir.path().join("swapped");
    publish(&swapped, &fx.gz);
    fs::write(swapped.join(VERSION).join(IMAGE_NAME), &evil).unwrap();
    let mut h = StreamHash::new();
    h.update(&evil);
    fs::write(
        swapped.join(VERSION).join(format!("{IMAGE_NAME}.sha256")),
        digest_line(&h.sha256(), IMAGE_NAME),
    )
    .unwrap();
    // (2) A byte flipped in transit: digest and signature both fail (or gunzip does first).
    let flipped = fx.dir.path().join("flipped");
    publish(&flipped, &fx.gz);
    let mut bad = fx.gz.clone();
    let i = bad.len() / 3;
    bad[i] ^= 0x10;
    fs::write(flipped.join(VERSION).join(IMAGE_NAME), &bad).unwrap();

    for (root, want) in [
        (swapped, "signature verification failed"),
        (flipped, "wiped"),
    ] {
        let server = serve(root);
        let disk = fx.target("disk");
        let out = run(&[
            "-d",
            disk.to_str().unwrap(),
            "-b",
            &server.base(),
            "-V",
            VERSION,
            "-i",
            fx.config().to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(want) && stderr.contains("wiped"),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Success!"));
        assert!(zeroed(&disk, 0, MIB), "first MiB (MBR + GPT) zeroed");
        assert!(
            zeroed(&disk, 255 * MIB, MIB),
            "last MiB (backup GPT) zeroed"
        );
        assert!(
            slots::table::read_partitions(&disk).is_err(),
            "no partition table can be read"
        );
    }
}

#[test]
fn missing_release_dry_run_and_local_files() {
    let fx = fixture();
    let server = serve(fx.release());
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();

    // A version the server does not have: nothing is written.
    let out = run(&[
        "-d",
        d,
        "-b",
        &server.base(),
        "-V",
        "0.0.1",
        "--fetch-retries",
        "0",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert_eq!(
        range(&disk, 0, 16),
        vec![0xaa; 16],
        "a failed lookup touches nothing"
    );

    // Dry run: checks everything, writes nothing.
    let out = run(&["-d", d, "-b", &server.base(), "-V", VERSION, "-y"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with(&format!("Dry run: would install Keel {VERSION} from ")));
    assert_eq!(range(&disk, 0, 16), vec![0xaa; 16]);

    // A bad Ignition config is refused before the disk is touched.
    let bad = fx.dir.path().join("bad.ign");
    fs::write(&bad, "{not json").unwrap();
    let out = run(&[
        "-d",
        d,
        "-b",
        &server.base(),
        "-V",
        VERSION,
        "-i",
        bad.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not JSON"));
    assert_eq!(range(&disk, 0, 16), vec![0xaa; 16]);

    // -f with the signature beside the file: verified; copied alone: installed, said UNVERIFIED.
    let local = fx.release().join(VERSION).join(IMAGE_NAME);
    let out = run(&["-d", d, "-f", local.to_str().unwrap(), "-V", VERSION]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("will be verified with"));
    assert_eq!(range(&disk, 0, MIB), fx.image[..MIB as usize]);
    let lone = fx.dir.path().join("lone.bin.gz");
    fs::write(&lone, &fx.gz).unwrap();
    let out = run(&["-d", d, "-f", lone.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("UNVERIFIED"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!(
        "Success! Keel (from {}) is installed on {d}",
        lone.display()
    )));
}
