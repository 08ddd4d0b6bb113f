//! The `ignition` command's contract: what it prints for a failure and its exit status,
//! the same for `validate` and `apply`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn ignition(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ignition"))
        .args(args)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A hash that does not match: named at the verification hash, as Ignition names it; its
/// reason said once; the same exit status as an invalid config; nothing written.
#[test]
fn a_hash_mismatch_names_the_hash_once_and_fails_like_an_invalid_config() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    fs::create_dir(&root).unwrap();
    let bad_hash = write(
        t.path(),
        "hash.json",
        &format!(
            r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{{"path":"/etc/motd",
               "contents":{{"source":"data:,hello","verification":{{"hash":"sha512-{}"}}}}}}]}}}}"#,
            "0".repeat(128)
        ),
    );
    let out = ignition(&["apply", "--root", root.to_str().unwrap(), &bad_hash]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("$.storage.files[0].contents.verification.hash: verifying: hash mismatch"),
        "{err}"
    );
    assert_eq!(err.matches("hash mismatch").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0);

    let invalid = write(
        t.path(),
        "invalid.json",
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"etc/motd"}]}}"#,
    );
    let validate = ignition(&["validate", &invalid]);
    assert_eq!(validate.status.code(), Some(1));
    let apply_invalid = ignition(&["apply", "--root", root.to_str().unwrap(), &invalid]);
    assert_eq!(apply_invalid.status.code(), Some(1));
    assert_eq!(
        out.status.code(),
        validate.status.code(),
        "an apply that fails exits as an invalid config does"
    );
    let missing = ignition(&[
        "validate",
        &t.path().join("nope.json").display().to_string(),
    ]);
    assert_eq!(missing.status.code(), Some(1));
}
