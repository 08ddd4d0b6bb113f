//! Pick the public key `coreos-install` trusts: `$KEEL_TRUSTED_KEY` (a PEM file) if set at build
//! time, else the repository's TEST key (and the programs warn about it at run time).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=KEEL_TRUSTED_KEY");
    println!("cargo:rerun-if-changed=keys/test-key.pub.pem");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let pem = match std::env::var_os("KEEL_TRUSTED_KEY").filter(|v| !v.is_empty()) {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("KEEL_TRUSTED_KEY={}: {e}", PathBuf::from(&path).display())
            })
        }
        None => std::fs::read_to_string("keys/test-key.pub.pem").expect("keys/test-key.pub.pem"),
    };
    std::fs::write(out.join("trusted-key.pub.pem"), pem)
        .expect("writing OUT_DIR/trusted-key.pub.pem");
}
