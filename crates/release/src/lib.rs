//! Keel's signed release images, shared by the program that publishes them (`image-build`) and
//! the programs that install them (`coreos-install`, later the updater).
//!
//! Entities:
//!  * [`layout`]: where a release lives under a base URL (file names, `current/version.txt`).
//!  * [`keys`]: Ed25519 keys in PEM (PKCS#8 / SPKI, as `openssl genpkey -algorithm ed25519`
//!    writes them), the compiled-in trusted key, and the TEST key that must never pass silently.
//!  * [`sign`]: [`StreamHash`], one streaming pass over the compressed image: its SHA-256 (the
//!    `.sha256` file) and its Ed25519ph signature (the `.sig` file) when publishing; the same pass
//!    while an installer streams the image, and [`StreamHash::check`] says yes or no at the end.
//!
//! The signature is Ed25519ph (RFC 8032 pre-hashed Ed25519: SHA-512 over the whole compressed
//! file, context [`sign::CONTEXT`]), so neither side ever holds the image in memory.

pub mod keys;
pub mod layout;
pub mod sign;

pub use keys::{PublicKey, SecretKey};
pub use sign::{CheckError, Signature, StreamHash};
