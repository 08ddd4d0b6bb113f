//! `coreos-install` end to end against a loopback HTTP server (127.0.0.1 only) serving a small
//! fake release, written into a sparse temp file.
//!
//! Releases are signed with tests/fixtures/release-key.pem and the installer is given its public
//! half with `-k`, so these tests mean the same in every trust mode (a test build with
//! `--features test-keys`, a production build with `KEEL_TRUSTED_KEY`, or neither). Where the
//! mode matters (an image signed with Keel's public TEST key), the test asks `release::TRUST`
//! what this build is and checks the installer behaves as that mode must.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use flate2::write::GzEncoder;
use release::layout::{self, IMAGE_NAME};
use release::sign::digest_line;
use release::{SecretKey, Statement, StreamHash, TrustMode, TRUST};
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
    slots::fat::format(file.try_clone().unwrap(), oem.offset, oem.len, "OEM").unwrap();
    drop(file);
    fs::read(path).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The key that stands for a real release key (tests/fixtures/README.md).
fn release_key() -> SecretKey {
    SecretKey::read(&manifest_path("tests/fixtures/release-key.pem")).unwrap()
}

/// Its public half, for `-k`.
fn release_pub() -> String {
    manifest_path("tests/fixtures/release-key.pub.pem")
        .display()
        .to_string()
}

/// Keel's public TEST key, read from the repository (no library holds it).
fn test_key() -> SecretKey {
    SecretKey::read(&manifest_path("../release/keys/test-key.pem")).unwrap()
}

/// Publish `gz` as VERSION under `root` with digest and a signature by the release key.
fn publish(root: &Path, gz: &[u8]) {
    publish_signed(root, gz, &release_key(), VERSION);
}

/// Publish `gz` under `root/VERSION/`, signed by `key` as version `signed_as`.
fn publish_signed(root: &Path, gz: &[u8], key: &SecretKey, signed_as: &str) {
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
    let sig = Statement::of(&h, signed_as, layout::DEFAULT_CHANNEL, IMAGE_NAME)
        .sign(key)
        .unwrap();
    fs::write(dir.join(format!("{IMAGE_NAME}.sig")), sig.to_text()).unwrap();
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
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

/// The old install's bytes are still at both ends: nothing was written.
fn untouched(path: &Path) -> bool {
    range(path, 0, MIB) == vec![0xaa; MIB as usize]
        && range(path, 255 * MIB, MIB) == vec![0xaa; MIB as usize]
}

/// A refusal before the write: failure, the reason on stderr, no success line, disk untouched.
fn assert_refused(out: &Output, disk: &Path, want: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "must fail: {err}");
    assert!(err.contains(want), "want {want:?} in:\n{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Success!"));
    assert!(untouched(disk), "a refused install writes nothing");
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
        "-k",
        &release_pub(),
        "-i",
        fx.config().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim_end(),
        format!("Success! Keel {VERSION} is installed on {d}")
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "is a valid signature by key {}: Keel {VERSION} (stable channel)",
            release_key().public().id()
        )),
        "{err}"
    );
    assert!(
        err.contains("signature, size and SHA-256 verified"),
        "{err}"
    );
    assert_eq!(
        err.contains("WARNING: test build: trusts only Keel's public TEST key (id "),
        TRUST == TrustMode::Test,
        "a test build says so on every run, and only a test build does"
    );
    assert_eq!(
        server.paths.lock().unwrap().clone(),
        [
            "/current/version.txt".to_string(),
            format!("/{VERSION}/{IMAGE_NAME}.sig"),
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
    // (2) A byte flipped in transit: the digest fails (or gunzip does first).
    let flipped = fx.dir.path().join("flipped");
    publish(&flipped, &fx.gz);
    let mut bad = fx.gz.clone();
    let i = bad.len() / 3;
    bad[i] ^= 0x10;
    fs::write(flipped.join(VERSION).join(IMAGE_NAME), &bad).unwrap();
    // (3) The image goes on past the signed size.
    let longer = fx.dir.path().join("longer");
    publish(&longer, &fx.gz);
    let mut more = fx.gz.clone();
    more.extend_from_slice(&fx.gz);
    fs::write(longer.join(VERSION).join(IMAGE_NAME), &more).unwrap();

    for (root, want) in [
        (swapped, "mismatch"),
        (flipped, "wiped"),
        (longer, "goes on past the"),
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
            "-k",
            &release_pub(),
            "-i",
            fx.config().to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let stderr = stderr(&out);
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

/// The signature names the release: a mirror cannot serve another correctly signed release
/// (here 0.1.0, or a release of another channel) under the asked-for version.
#[test]
fn a_correctly_signed_release_of_another_version_or_channel_is_refused_before_any_write() {
    let fx = fixture();
    let old = fx.dir.path().join("old");
    publish_signed(&old, &fx.gz, &release_key(), "0.1.0");
    let server = serve(old);
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();
    let k = release_pub();
    for version in [VERSION, "current"] {
        let out = run(&["-d", d, "-b", &server.base(), "-V", version, "-k", &k]);
        assert_refused(
            &out,
            &disk,
            &format!("the signature is for version 0.1.0, not {VERSION} (the mirror serves a different release under this name)"),
        );
    }
    // The same mirror as the beta channel's: the signature says stable.
    let server = serve(fx.release());
    let out = run(&[
        "-d",
        d,
        "-b",
        &server.base(),
        "-C",
        "beta",
        "-V",
        VERSION,
        "-k",
        &k,
    ]);
    assert_refused(
        &out,
        &disk,
        "the signature is for the stable channel, not beta",
    );
    // A local file: the version given with -V must be the signed one too.
    let local = fx.release().join(VERSION).join(IMAGE_NAME);
    let out = run(&[
        "-d",
        d,
        "-f",
        local.to_str().unwrap(),
        "-V",
        "9.0.0",
        "-k",
        &k,
    ]);
    assert_refused(&out, &disk, "the signature is for version 9.8.7, not 9.0.0");
    // A v1 signature is refused with a reason.
    fs::write(
        fx.release().join(VERSION).join(format!("{IMAGE_NAME}.sig")),
        "keel-signature-v1 ed25519ph key=x sig=AAAA\n",
    )
    .unwrap();
    let out = run(&["-d", d, "-b", &server.base(), "-V", VERSION, "-k", &k]);
    assert_refused(&out, &disk, "keel-signature-v1");
}

/// Keel's public TEST key: trusted by a test build only, refused everywhere by any other.
#[test]
fn an_image_signed_with_the_test_key_installs_only_on_a_test_build() {
    let fx = fixture();
    let root = fx.dir.path().join("test-signed");
    publish_signed(&root, &fx.gz, &test_key(), VERSION);
    let server = serve(root);
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();
    let base = server.base();
    let test_pub = manifest_path("../release/keys/test-key.pub.pem");
    let test_pub = test_pub.to_str().unwrap();

    // With the release key given: the TEST key's signature is named and refused in every build.
    let out = run(&["-d", d, "-b", &base, "-V", VERSION, "-k", &release_pub()]);
    assert_refused(
        &out,
        &disk,
        "the image is signed with Keel's public TEST key",
    );

    let plain = run(&["-d", d, "-b", &base, "-V", VERSION]);
    let with_k = run(&["-d", d, "-b", &base, "-V", VERSION, "-k", test_pub]);
    match TRUST {
        TrustMode::Test => {
            for out in [plain, with_k] {
                assert!(out.status.success(), "{}", stderr(&out));
                assert!(stderr(&out).contains("WARNING: test build"));
            }
        }
        TrustMode::Production => {
            assert_refused(
                &plain,
                &disk,
                "the image is signed with Keel's public TEST key; this production installer refuses it",
            );
            assert_refused(
                &with_k,
                &disk,
                &format!("refusing to trust -k {test_pub}: key "),
            );
            assert!(stderr(&with_k).contains("this production build refuses it"));
        }
        TrustMode::Unconfigured => {
            assert_refused(&plain, &disk, "this coreos-install trusts no key");
            assert!(
                stderr(&plain).contains("-k KEYFILE")
                    && stderr(&plain).contains("KEEL_TRUSTED_KEY=")
            );
            assert_refused(
                &with_k,
                &disk,
                &format!("refusing to trust -k {test_pub}: key "),
            );
        }
    }
}

#[test]
fn missing_release_dry_run_and_local_files() {
    let fx = fixture();
    let server = serve(fx.release());
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();
    let k = release_pub();

    // A version the server does not have: nothing is written.
    let out = run(&[
        "-d",
        d,
        "-b",
        &server.base(),
        "-V",
        "0.0.1",
        "-k",
        &k,
        "--fetch-retries",
        "0",
    ]);
    assert_refused(&out, &disk, "404");

    // Dry run: checks everything, writes nothing.
    let out = run(&["-d", d, "-b", &server.base(), "-V", VERSION, "-k", &k, "-y"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with(&format!("Dry run: would install Keel {VERSION} from ")));
    assert!(untouched(&disk));

    // -f with the signature beside the file: verified; the signed version names it.
    let local = fx.release().join(VERSION).join(IMAGE_NAME);
    let out = run(&["-d", d, "-f", local.to_str().unwrap(), "-k", &k]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("is a valid signature by key"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!(
        "Success! Keel {VERSION} (from {}) is installed on {d}",
        local.display()
    )));
    assert_eq!(range(&disk, 0, MIB), fx.image[..MIB as usize]);
}

/// Only an explicit --insecure installs an image without a valid signature; only a .sig that
/// does not exist at all counts as "unsigned".
#[test]
fn an_image_without_a_valid_signature_needs_insecure() {
    let fx = fixture();
    let k = release_pub();
    let dir = fx.dir.path();

    // Local files: the image copied alone, and with a .sig that is a directory or a dangling link.
    let lone = dir.join("lone.bin.gz");
    fs::write(&lone, &fx.gz).unwrap();
    let in_dir = dir.join("sigdir.bin.gz");
    fs::write(&in_dir, &fx.gz).unwrap();
    fs::create_dir(dir.join("sigdir.bin.gz.sig")).unwrap();
    let dangling = dir.join("dangling.bin.gz");
    fs::write(&dangling, &fx.gz).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.sig"), dir.join("dangling.bin.gz.sig")).unwrap();
    fs::write(
        dir.join("dangling.bin.gz.sha256"),
        digest_line(&[0u8; 32], "x"),
    )
    .unwrap();
    for (image, want) in [
        (&lone, "the image is unsigned: there is no "),
        (&in_dir, "exists but cannot be read"),
        (&dangling, "is a dangling symlink"),
    ] {
        let disk = fx.target("disk");
        let d = disk.to_str().unwrap();
        let out = run(&["-d", d, "-f", image.to_str().unwrap(), "-k", &k]);
        assert_refused(&out, &disk, want);
        assert!(stderr(&out).contains("refusing to install an image without a valid signature"));
        let out = run(&[
            "-d",
            d,
            "-f",
            image.to_str().unwrap(),
            "-k",
            &k,
            "--insecure",
        ]);
        let err = stderr(&out);
        if image == &dangling {
            // --insecure falls back to the unsigned .sha256 beside it, which is wrong here.
            assert!(
                !out.status.success() && err.contains("the digest file says"),
                "{err}"
            );
            assert!(zeroed(&disk, 0, MIB), "wiped");
            continue;
        }
        assert!(out.status.success(), "{err}");
        assert!(err.contains("WARNING: --insecure: installing an image WITHOUT A VALID SIGNATURE"));
        assert!(err.contains(want), "the warning gives the reason: {err}");
        assert!(err.contains("NOT checked at all"), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!(
            "Success! Keel (from {}) is installed on {d}",
            image.display()
        )));
        assert_eq!(range(&disk, 0, MIB), fx.image[..MIB as usize]);
    }

    // HTTP: a 404 on the .sig is "unsigned": refused, or with --insecure checked against the
    // (unsigned) .sha256 only.
    let unsigned = dir.join("unsigned");
    publish(&unsigned, &fx.gz);
    fs::remove_file(unsigned.join(VERSION).join(format!("{IMAGE_NAME}.sig"))).unwrap();
    let server = serve(unsigned);
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();
    let out = run(&["-d", d, "-b", &server.base(), "-V", VERSION, "-k", &k]);
    assert_refused(
        &out,
        &disk,
        &format!(
            "the image is unsigned: there is no {}/{VERSION}/{IMAGE_NAME}.sig (404 Not Found)",
            server.base()
        ),
    );
    let out = run(&[
        "-d",
        d,
        "-b",
        &server.base(),
        "-V",
        VERSION,
        "-k",
        &k,
        "--insecure",
    ]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("WITHOUT A VALID SIGNATURE") && err.contains("only the unsigned SHA-256"),
        "{err}"
    );
    assert!(
        err.contains("UNSIGNED (--insecure): only the unsigned SHA-256 checked"),
        "{err}"
    );
    // A build without a key and no -k: --insecure still installs, and says nothing was verified.
    if TRUST == TrustMode::Unconfigured {
        let out = run(&["-d", d, "-b", &server.base(), "-V", VERSION, "--insecure"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
}

/// The Ignition config is validated in full before the disk is touched.
#[test]
fn an_invalid_ignition_config_is_refused_before_anything_is_written() {
    let fx = fixture();
    let server = serve(fx.release());
    let disk = fx.target("disk");
    let d = disk.to_str().unwrap();
    let k = release_pub();
    for (config, want) in [
        ("{not json", "invalid JSON"),
        (
            // Valid JSON, invalid config: a relative path and an unknown version.
            r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/x","contents":{"source":"data:,x"}}]}}"#,
            "error: $.storage.files[0].path",
        ),
        (
            r#"{"ignition":{"version":"1.0.0"}}"#,
            "error: $.ignition.version",
        ),
    ] {
        let bad = fx.dir.path().join("bad.ign");
        fs::write(&bad, config).unwrap();
        let out = run(&[
            "-d",
            d,
            "-b",
            &server.base(),
            "-V",
            VERSION,
            "-k",
            &k,
            "-i",
            bad.to_str().unwrap(),
        ]);
        assert_refused(&out, &disk, want);
        assert!(stderr(&out).contains("is invalid"), "{}", stderr(&out));
        assert!(
            server.paths.lock().unwrap().is_empty(),
            "refused before even asking the server"
        );
    }
}

/// `coreos-install -d DISK -i cfg -k KEY` on a live system (as the CoreOS lab types it, plus
/// the key this test signs with), run through the library with this live system's command line
/// and carried-image directory.
fn install_on_live(fx: &Fixture, disk: &Path, cmdline: &str, carried: &Path) -> anyhow::Result<()> {
    use clap::Parser;
    let os_release = fx.dir.path().join("os-release");
    fs::write(&os_release, format!("ID=keel\nVERSION_ID={VERSION}\n")).unwrap();
    let cmdline_file = fx.dir.path().join("cmdline");
    fs::write(&cmdline_file, cmdline).unwrap();
    let key = release_pub();
    let args = installer::cli::InstallArgs::try_parse_from([
        "coreos-install",
        "-d",
        disk.to_str().unwrap(),
        "-i",
        fx.config().to_str().unwrap(),
        "-k",
        &key,
    ])
    .unwrap();
    let env = installer::install::Env {
        os_release,
        cmdline: cmdline_file,
        carried_dir: carried.to_path_buf(),
        ..Default::default()
    };
    installer::install::install(&args, &env).map(|_| ())
}

#[test]
fn a_live_system_installs_from_the_release_server_on_its_kernel_command_line() {
    let fx = fixture();
    let server = serve(fx.release());
    let disk = fx.target("disk");
    let cmdline = format!("console=ttyS0 keel.live keel.release_url={}", server.base());
    install_on_live(&fx, &disk, &cmdline, &fx.dir.path().join("nothing-carried")).unwrap();
    assert!(
        range(&disk, 0, MIB) == fx.image[..MIB as usize],
        "the image's table was written"
    );
    let paths = server.paths.lock().unwrap().clone();
    assert!(
        paths.contains(&format!("/{VERSION}/{IMAGE_NAME}")),
        "the live system's own version comes from its server: {paths:?}"
    );
}

#[test]
fn a_live_system_with_no_server_installs_the_release_it_carries() {
    let fx = fixture();
    // What install.cpio puts in RAM: the release image and its signature.
    let carried = fx.dir.path().join("run-keel-install");
    fs::create_dir_all(&carried).unwrap();
    for name in [IMAGE_NAME.to_string(), format!("{IMAGE_NAME}.sig")] {
        fs::copy(fx.release().join(VERSION).join(&name), carried.join(&name)).unwrap();
    }
    let disk = fx.target("disk");
    install_on_live(&fx, &disk, "keel.live", &carried).unwrap();
    assert!(
        range(&disk, 0, MIB) == fx.image[..MIB as usize],
        "the image's table was written"
    );

    // A carried image is verified like any other: a tampered one is refused, nothing written.
    let mut gz = fx.gz.clone();
    let last = gz.len() - 1;
    gz[last] ^= 1;
    fs::write(carried.join(IMAGE_NAME), &gz).unwrap();
    let disk = fx.target("tampered");
    let err = install_on_live(&fx, &disk, "keel.live", &carried).unwrap_err();
    assert!(
        zeroed(&disk, 0, MIB),
        "a carried image that fails verification leaves nothing bootable: {err:#}"
    );
}

#[test]
fn a_live_system_with_neither_says_what_to_do_and_writes_nothing() {
    let fx = fixture();
    let disk = fx.target("disk");
    let err = install_on_live(&fx, &disk, "keel.live", &fx.dir.path().join("none"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("knows no release server") && err.contains("keel.release_url="),
        "{err}"
    );
    assert!(untouched(&disk));
}
