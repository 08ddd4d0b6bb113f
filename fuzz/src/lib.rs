//! Keel's fuzz targets: one function per target, each taking the fuzzer's bytes. The binaries in
//! `src/bin/` wrap them in `afl::fuzz!`; `./keel fuzz` builds and runs them (see README.md).
//!
//! A target must never panic on any input (a panic is a crash to AFL++), and asserts the
//! properties that are cheap to check: a value that is read back after being written is the
//! same value, two parsers of the same syntax agree.

use std::path::PathBuf;

use base64::Engine as _;

/// Ignition: parse and validate a config (every spec version), resolve the configs it references
/// (`data:` URLs are decoded for real; anything else is "not found"), and plan what applying it
/// would do. The report of a refused config is rendered as the programs print it.
pub fn ignition_config(data: &[u8]) {
    match ignition::load(data, &ignition::MapFetcher::new()) {
        Ok(cfg) => {
            let _ = ignition::plan(&cfg);
            for w in &cfg.warnings {
                let _ = w.to_string();
            }
        }
        Err(report) => {
            assert!(report.has_errors(), "a refused config carries an error");
            let _ = report.to_string();
        }
    }
}

/// Ignition's `data:` URL decoder (RFC 2397), directly and through the scheme check every
/// `source` goes through. Whatever it decodes, decodes again the same from base64.
pub fn data_url(data: &[u8]) {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = ignition::resource::decode_data_url(url);
    for v in [ignition::Version::new(2, 0), ignition::Version::new(3, 5)] {
        let checked = ignition::resource::check_url(url, v);
        if url.starts_with("data:") {
            assert_eq!(
                checked.is_ok(),
                decoded.is_ok(),
                "check_url agrees with the decoder"
            );
        }
    }
    if let Ok(bytes) = decoded {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let again = ignition::resource::decode_data_url(&format!("data:;base64,{b64}"));
        assert_eq!(again.as_deref(), Ok(&bytes[..]), "base64 round trip");
    }
}

/// The GRUB environment block, read as GRUB reads it: decode (bytes and text), `load_env`, the
/// boot-time `set` that `save_env` runs, and the whole boot decision of keel/grub.cfg with the
/// input as copy 1, copy 2 and the fallback record. A block whose variables can be written
/// back encodes to a block that decodes to the same variables.
pub fn grubenv(data: &[u8]) {
    use slots::grubenv;
    let raw = grubenv::decode_bytes(data);
    let names = ["keel_good", "keel_next", "keel_tries", "keel_failed"];
    assert_eq!(grubenv::load_env(data, &names).is_ok(), raw.is_ok());
    let mut block = data.to_vec();
    for (name, value) in [
        ("keel_tries", &b"2"[..]),
        ("keel_next", b"B\\\n"),
        ("x", b""),
    ] {
        let _ = grubenv::set(&mut block, name, value);
    }
    let _ = slots::store::grub_boot(Some(data), Some(&block), Some(data));
    let _ = slots::store::grub_boot(None, Some(data), None);
    let Ok(vars) = grubenv::decode(data) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    if let Ok(block) = grubenv::encode(&pairs) {
        assert_eq!(
            grubenv::decode(&block).as_ref(),
            Ok(&vars),
            "encode then decode gives the variables back"
        );
    }
}

/// Where the GPT target writes its disk image: one file per process, in `$TMPDIR`.
fn disk_path() -> PathBuf {
    std::env::temp_dir().join(format!("keel-fuzz-gpt-{}.img", std::process::id()))
}

/// The GPT reader: the input is a whole disk image (512-byte sectors), read as the programs
/// read a disk. The checksums of both headers and of their entry arrays are set right first
/// ([`fix_gpt_checksums`]), so that mutated headers and entries get past the CRC checks. Every partition found has a first sector before its last and an end that a
/// byte offset can hold.
pub fn gpt(data: &[u8]) {
    let path = disk_path();
    let mut disk = data.to_vec();
    fix_gpt_checksums(&mut disk);
    std::fs::write(&path, &disk).expect("writing the fuzz disk image");
    let read = slots::table::read_partitions(&path);
    let by_label = read
        .as_ref()
        .ok()
        .and_then(|parts| parts.first())
        .map(|first| (first, slots::table::find_by_label(&path, &first.label)));
    // Under AFL++'s CmpLog stage every run is a new process: leave no file behind.
    std::fs::remove_file(&path).expect("removing the fuzz disk image");
    if let Some((first, found)) = by_label {
        assert!(
            matches!(found, Ok(p) if p.label == first.label),
            "finding the label {:?} just read",
            first.label
        );
    }
    let Ok(parts) = read else {
        return;
    };
    for p in &parts {
        assert!(p.len > 0, "partition {} is empty or reversed", p.number);
        let end = p.offset.checked_add(p.len);
        assert!(end.is_some(), "partition {} ends past 2^64", p.number);
    }
}

/// The kernel command-line parsers that read `/proc/cmdline`: Ignition's (first boot), the
/// installer's (`coreos.inst.*`) and slots' (`keel.slot=`). Ignition's and the installer's
/// splitters implement the same rules and must agree.
pub fn cmdline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let words = ignition::cmdline::parse(text);
    assert_eq!(
        words,
        installer::kargs::split(text),
        "ignition and installer split the command line alike"
    );
    let _ = ignition::cmdline::firstboot_args(text);
    let _ = installer::kargs::from_cmdline(text);
    let _ = slots::booted::from_cmdline(text).to_string();
}

/// The release readers: a `.sig` file (parsed, then verified against the TEST key), a `.sha256`
/// line, a `version.txt`, and a public key in PEM. A statement that parses is written back to
/// the same text it parses from again.
pub fn release_sig(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(signed) = release::SignedStatement::parse(text) {
        let again = release::SignedStatement::parse(&signed.to_text());
        assert_eq!(again.as_ref(), Ok(&signed), "to_text then parse round trip");
        let _ = signed.verify(&release::PublicKey::test(), release::TrustMode::Test);
    }
    let _ = release::sign::parse_digest_line(text);
    if let Some(v) = release::layout::parse_version_txt(text) {
        assert!(!v.is_empty());
    }
    let _ = release::PublicKey::from_pem(text, "fuzz input");
}

const SECTOR: usize = 512;

/// CRC-32 (IEEE, as GPT uses it), bit by bit: inputs are small.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Sets the CRCs of the GPT headers at LBA 1 and at the last LBA of `disk` (where a header
/// with the `EFI PART` signature is), each after its entry array's CRC, when that array lies
/// within the disk. Every other byte is left as the fuzzer made it.
pub fn fix_gpt_checksums(disk: &mut [u8]) {
    let last = (disk.len() / SECTOR).saturating_sub(1);
    for lba in [1, last] {
        let h = lba * SECTOR;
        if lba == 0 || disk.len() < h + 92 || &disk[h..h + 8] != b"EFI PART" {
            continue;
        }
        let part_start = u64::from_le_bytes(disk[h + 72..h + 80].try_into().expect("8 bytes"));
        let array_len = u64::from(le32(disk, h + 80)) * u64::from(le32(disk, h + 84));
        let array = part_start
            .checked_mul(SECTOR as u64)
            .and_then(|start| Some((start, start.checked_add(array_len)?)))
            .filter(|(_, end)| *end <= disk.len() as u64);
        if let Some((start, end)) = array {
            let crc = crc32(&disk[start as usize..end as usize]);
            disk[h + 88..h + 92].copy_from_slice(&crc.to_le_bytes());
        }
        disk[h + 16..h + 20].fill(0);
        let crc = crc32(&disk[h..h + 92]);
        disk[h + 16..h + 20].copy_from_slice(&crc.to_le_bytes());
    }
}
