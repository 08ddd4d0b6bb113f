//! Choose, at build time, which release-signing key the programs trust (see src/trust.rs and
//! build/decide.rs):
//!
//!  * `--features test-keys`: a TEST build; trusts only the repository's public TEST key.
//!  * `KEEL_TRUSTED_KEY=/abs/path/key.pub.pem`: a production build; trusts only that key. The key
//!    is parsed here, so a file that is not an Ed25519 public key in PEM fails the build.
//!  * neither: trusts no compiled-in key (`coreos-install` then needs `-k KEYFILE`).
//!
//! Both at once, or the TEST key given as `KEEL_TRUSTED_KEY`, fail the build.
//!
//! The TUF root the updater trusts (src/tuf.rs, build/tuf_root.rs) is chosen the same way: the
//! feature `test-keys` embeds the repository's TEST root (keys/tuf/root.json);
//! `KEEL_TUF_ROOT=/abs/path/root.json` embeds that root and fails the build if it shares a key
//! with the TEST root; neither embeds none.

use std::path::PathBuf;

#[path = "build/decide.rs"]
mod decide;
#[path = "build/tuf_root.rs"]
mod tuf_root;

use decide::Decision;

fn main() {
    println!("cargo:rerun-if-env-changed=KEEL_TRUSTED_KEY");
    println!("cargo:rerun-if-changed=keys/test-key.pub.pem");
    println!("cargo:rerun-if-changed=build/decide.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let test_feature = std::env::var_os("CARGO_FEATURE_TEST_KEYS").is_some();
    let trusted = std::env::var_os("KEEL_TRUSTED_KEY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(path) = &trusted {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let test_pem =
        std::fs::read_to_string("keys/test-key.pub.pem").expect("reading keys/test-key.pub.pem");
    let decision = decide::decide(
        test_feature,
        trusted.as_deref(),
        |p| std::fs::read_to_string(p),
        &test_pem,
    )
    .unwrap_or_else(|msg| {
        eprintln!("error: {msg}");
        std::process::exit(1);
    });
    let (mode, key, source) = match decision {
        Decision::Test => ("Test", None, None),
        Decision::Production(raw) => (
            "Production",
            Some(raw),
            trusted.map(|p| p.display().to_string()),
        ),
        Decision::Unconfigured => ("Unconfigured", None, None),
    };
    let generated = format!(
        "pub(crate) const MODE: TrustMode = TrustMode::{mode};\n\
         pub(crate) const PRODUCTION_KEY: Option<[u8; 32]> = {key:?};\n\
         pub(crate) const PRODUCTION_KEY_SOURCE: Option<&str> = {source:?};\n"
    );
    std::fs::write(out.join("trust.rs"), generated).expect("writing OUT_DIR/trust.rs");
    tuf_root(&out, test_feature);
}

/// The TUF root: OUT_DIR/tuf_root.rs, and for a production build OUT_DIR/tuf-root.json.
fn tuf_root(out: &std::path::Path, test_feature: bool) {
    println!("cargo:rerun-if-env-changed=KEEL_TUF_ROOT");
    println!("cargo:rerun-if-changed=keys/tuf/root.json");
    println!("cargo:rerun-if-changed=build/tuf_root.rs");
    let root = std::env::var_os("KEEL_TUF_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(path) = &root {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let test_root = std::fs::read("keys/tuf/root.json").expect("reading keys/tuf/root.json");
    let decision = tuf_root::decide(
        test_feature,
        root.as_deref(),
        |p| std::fs::read(p),
        &test_root,
    )
    .unwrap_or_else(|msg| {
        eprintln!("error: {msg}");
        std::process::exit(1);
    });
    let generated = match decision {
        tuf_root::Decision::Test => "const BUILD_ROOT: BuildRoot = BuildRoot::Test;\n".to_string(),
        tuf_root::Decision::Production(bytes) => {
            std::fs::write(out.join("tuf-root.json"), bytes)
                .expect("writing OUT_DIR/tuf-root.json");
            format!(
                "const BUILD_ROOT: BuildRoot = BuildRoot::Production(include_bytes!(\
                 concat!(env!(\"OUT_DIR\"), \"/tuf-root.json\")), {:?});\n",
                root.map(|p| p.display().to_string()).unwrap_or_default()
            )
        }
        tuf_root::Decision::Unconfigured => {
            "const BUILD_ROOT: BuildRoot = BuildRoot::None;\n".to_string()
        }
    };
    std::fs::write(out.join("tuf_root.rs"), generated).expect("writing OUT_DIR/tuf_root.rs");
}
