//! Ed25519 keys in PEM, and the public half of the TEST key.
//!
//! Keys are the files `openssl genpkey -algorithm ed25519` (secret, PKCS#8) and
//! `openssl pkey -pubout` (public, SPKI) write. The repository's TEST pair (`keys/`) signs
//! development images; its secret half is public too, so [`SecretKey::is_test`] and
//! [`PublicKey::is_test`] let every program recognise it, refuse it outside a TEST build (see
//! [`crate::trust`]) and say loudly when it is in play. The library only knows the public half:
//! the secret one is a file (`keys/test-key.pem`) that tests and `./keel build` pass by path.

use std::fmt;
use std::path::Path;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use sha2::{Digest, Sha256};

/// The TEST public key (its secret half is `keys/test-key.pem`; see keys/README.md).
pub const TEST_PUBLIC_PEM: &str = include_str!("../keys/test-key.pub.pem");

/// A key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading the file failed.
    #[error("reading key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not an Ed25519 key in PEM.
    #[error("{what} is not an Ed25519 {kind} key in PEM (make one with `openssl genpkey -algorithm ed25519`)")]
    Parse {
        /// Where it came from.
        what: String,
        /// secret or public.
        kind: &'static str,
    },
}

fn read(path: &Path) -> Result<String, KeyError> {
    std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// A signing key.
pub struct SecretKey(pub(crate) ed25519_dalek::SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(id {})", self.public().id())
    }
}

impl SecretKey {
    /// Parse a PKCS#8 PEM secret key; `what` names its origin in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map(SecretKey)
            .map_err(|_| KeyError::Parse {
                what: what.to_string(),
                kind: "secret",
            })
    }

    /// Read a PKCS#8 PEM secret key file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?, &path.display().to_string())
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Whether this is the TEST key.
    pub fn is_test(&self) -> bool {
        self.public().is_test()
    }
}

/// A verifying key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) ed25519_dalek::VerifyingKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(id {})", self.id())
    }
}

impl PublicKey {
    /// Parse an SPKI PEM public key; `what` names its origin in errors.
    pub fn from_pem(pem: &str, what: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
            .map(PublicKey)
            .map_err(|_| KeyError::Parse {
                what: what.to_string(),
                kind: "public",
            })
    }

    /// Read an SPKI PEM public key file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        Self::from_pem(&read(path)?, &path.display().to_string())
    }

    /// The TEST public key.
    pub fn test() -> Self {
        Self::from_pem(TEST_PUBLIC_PEM, "the repository's TEST key")
            .expect("keys/test-key.pub.pem is checked by build.rs")
    }

    /// A key from its 32 raw bytes, if they are a valid Ed25519 point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Self> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .ok()
            .map(PublicKey)
    }

    /// Whether this is the TEST key.
    pub fn is_test(&self) -> bool {
        *self == Self::test()
    }

    /// A short name for the key: the first 8 bytes of SHA-256 over the raw key, in hex.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The TEST secret key, read from the repository (it is not in the library).
    pub(crate) fn test_secret() -> SecretKey {
        SecretKey::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/test-key.pem")).unwrap()
    }

    #[test]
    fn test_pair_matches_and_is_recognised() {
        let secret = test_secret();
        assert_eq!(secret.public(), PublicKey::test());
        assert!(secret.is_test());
        assert!(PublicKey::test().is_test());
        assert_eq!(PublicKey::test().id().len(), 16);
        let raw = PublicKey::test().0.to_bytes();
        assert_eq!(PublicKey::from_bytes(&raw), Some(PublicKey::test()));
    }

    #[test]
    fn other_keys_are_not_the_test_key_and_garbage_is_refused() {
        let other = SecretKey(ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]));
        assert!(!other.is_test());
        let err = PublicKey::from_pem("not a key", "x.pem").unwrap_err();
        assert!(
            err.to_string()
                .contains("x.pem is not an Ed25519 public key"),
            "{err}"
        );
        let err = SecretKey::from_pem(TEST_PUBLIC_PEM, "pub.pem").unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
        let err = SecretKey::read(Path::new("/nonexistent/key.pem")).unwrap_err();
        assert!(
            err.to_string().contains("reading key /nonexistent/key.pem"),
            "{err}"
        );
    }
}
