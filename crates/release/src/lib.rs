//! Keel's signed release images, shared by the program that publishes them (`image-build`) and
//! the programs that install them (`coreos-install`, later the updater).
//!
//! Entities:
//!  * [`layout`]: where a release lives under a base URL (file names, `current/version.txt`).
//!  * [`keys`]: Ed25519 keys in PEM (PKCS#8 / SPKI, as `openssl genpkey -algorithm ed25519`
//!    writes them) and the public half of the TEST key, so every program can recognise it.
//!  * [`trust`]: which key this build trusts, chosen at build time ([`TRUST`]: a TEST build with
//!    the feature `test-keys`, a production build with `KEEL_TRUSTED_KEY`, or neither), and
//!    [`check_trust`], the one rule for trusting a key.
//!  * [`sign`]: the signed [`Statement`] of what a release image is (version, channel, file name,
//!    size, SHA-256), its `.sig` file ([`SignedStatement`]), and [`StreamHash`], one streaming
//!    pass over the compressed image checked against the statement at the end.
//!  * [`tuf`]: which TUF root the updater trusts, chosen at build time like the release key
//!    (`--features test-keys` or `KEEL_TUF_ROOT`), and [`tuf::check_root`].
//!  * [`manifest`]: a channel's `manifest.json` in its TUF update repository: the releases, each
//!    a slot payload, a kernel and an initramfs named by version.

pub mod keys;
pub mod layout;
pub mod manifest;
pub mod sign;
pub mod trust;
pub mod tuf;

pub use keys::{PublicKey, SecretKey};
pub use sign::{CheckError, SignedStatement, Statement, StreamHash, Wanted};
pub use trust::{check_trust, trust_mode, TrustError, TrustMode, TRUST};
