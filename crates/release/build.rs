//! Choose, at build time, which release-signing key the programs trust (see src/trust.rs and
//! build/decide.rs):
//!
//!  * `--features test-keys`: a TEST build; trusts only the repository's public TEST key.
//!  * `KEEL_TRUSTED_KEY=/abs/path/key.pub.pem`: a production build; trusts only that key. The key
//!    is parsed here, so a file that is not an Ed25519 public key in PEM fails the build.
//!  * neither: trusts no compiled-in key (`coreos-install` then needs `-k KEYFILE`).
//!
//! Both at once, or the TEST key given as `KEEL_TRUSTED_KEY`, fail the build.

use std::path::PathBuf;

#[path = "build/decide.rs"]
mod decide;

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
}
