//! One streaming pass over the compressed image: its SHA-256 and its Ed25519ph signature.
//!
//! The `.sha256` file is a `sha256sum` line; the `.sig` file is one line
//! `keel-signature-v1 ed25519ph key=<key id> sig=<base64 of 64 bytes>`. The key id is only a hint
//! for error messages; what counts is that the signature verifies against the trusted key.

use ed25519_dalek::Signature as EdSignature;
use sha2::{Digest, Sha256, Sha512};

use base64::Engine as _;

use crate::keys::{PublicKey, SecretKey};

/// The Ed25519ph context: a signature made for anything else never verifies as a release image.
pub const CONTEXT: &[u8] = b"keel-release-image-v1";
const SIG_MAGIC: &str = "keel-signature-v1";
const SIG_ALG: &str = "ed25519ph";

/// Checking a release failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    /// The digest file is not a sha256sum line.
    #[error("malformed digest file: {0}")]
    BadDigestFile(String),
    /// The signature file does not parse.
    #[error("malformed signature file: {0}")]
    BadSignatureFile(String),
    /// The image's SHA-256 differs from the digest file.
    #[error("SHA-256 mismatch: the image hashes to {actual}, the digest file says {expected}")]
    DigestMismatch {
        /// From the digest file.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The signature does not verify.
    #[error("signature verification failed: {}", bad_signature_detail(.trusted, .signed_by))]
    BadSignature {
        /// The trusted key's id.
        trusted: String,
        /// The key id in the signature file.
        signed_by: String,
    },
}

fn bad_signature_detail(trusted: &str, signed_by: &str) -> String {
    if trusted == signed_by {
        format!("the signature by key {trusted} does not match these bytes (tampered or damaged)")
    } else {
        format!("the image is not signed by the trusted key {trusted} (its signature names key {signed_by})")
    }
}

/// A detached signature with the id of the key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// [`PublicKey::id`] of the signer, as claimed by the file.
    pub key_id: String,
    bytes: [u8; 64],
}

impl Signature {
    /// The `.sig` file's text.
    pub fn to_text(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.bytes);
        format!("{SIG_MAGIC} {SIG_ALG} key={} sig={b64}\n", self.key_id)
    }

    /// Parse a `.sig` file.
    pub fn parse(text: &str) -> Result<Self, CheckError> {
        let bad = |why: &str| CheckError::BadSignatureFile(why.to_string());
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [magic, alg, key, sig] = fields[..] else {
            return Err(bad(
                "expected `keel-signature-v1 ed25519ph key=ID sig=BASE64`",
            ));
        };
        if magic != SIG_MAGIC {
            return Err(bad(&format!("starts with {magic:?}, not {SIG_MAGIC}")));
        }
        if alg != SIG_ALG {
            return Err(bad(&format!("algorithm {alg:?} is not {SIG_ALG}")));
        }
        let key_id = key.strip_prefix("key=").ok_or_else(|| bad("no key="))?;
        let sig = sig.strip_prefix("sig=").ok_or_else(|| bad("no sig="))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .map_err(|_| bad("sig= is not base64"))?;
        let bytes: [u8; 64] = raw.try_into().map_err(|_| bad("sig= is not 64 bytes"))?;
        Ok(Signature {
            key_id: key_id.to_string(),
            bytes,
        })
    }
}

/// The `.sha256` file's text: `HEX  NAME`.
pub fn digest_line(digest: &[u8; 32], name: &str) -> String {
    format!("{}  {name}\n", hex::encode(digest))
}

/// The digest in a `.sha256` file (the first field of the first line).
pub fn parse_digest_line(text: &str) -> Result<[u8; 32], CheckError> {
    let first = text.split_whitespace().next().unwrap_or_default();
    let raw = hex::decode(first)
        .map_err(|_| CheckError::BadDigestFile(format!("{first:?} is not hex")))?;
    raw.try_into().map_err(|_| {
        CheckError::BadDigestFile(format!("{first:?} is not a SHA-256 digest (64 hex digits)"))
    })
}

/// The hashes of one pass over the compressed image.
#[derive(Clone, Default)]
pub struct StreamHash {
    sha256: Sha256,
    sha512: Sha512,
    len: u64,
}

impl std::fmt::Debug for StreamHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamHash({} bytes)", self.len)
    }
}

impl StreamHash {
    /// Nothing hashed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.sha512.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of everything so far.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256.clone().finalize().into()
    }

    /// Sign what was hashed.
    pub fn sign(&self, key: &SecretKey) -> Signature {
        let bytes = key
            .0
            .sign_prehashed(self.sha512.clone(), Some(CONTEXT))
            .expect("the context is shorter than 256 bytes")
            .to_bytes();
        Signature {
            key_id: key.public().id(),
            bytes,
        }
    }

    /// Check what was hashed against the expected digest and/or the signature. Either may be
    /// absent (a local file without them); what is present must match.
    pub fn check(
        &self,
        digest: Option<&[u8; 32]>,
        signature: Option<(&Signature, &PublicKey)>,
    ) -> Result<(), CheckError> {
        if let Some(expected) = digest {
            let actual = self.sha256();
            if &actual != expected {
                return Err(CheckError::DigestMismatch {
                    expected: hex::encode(expected),
                    actual: hex::encode(actual),
                });
            }
        }
        if let Some((sig, key)) = signature {
            let ed = EdSignature::from_bytes(&sig.bytes);
            key.0
                .verify_prehashed(self.sha512.clone(), Some(CONTEXT), &ed)
                .map_err(|_| CheckError::BadSignature {
                    trusted: key.id(),
                    signed_by: sig.key_id.clone(),
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(chunks: &[&[u8]]) -> StreamHash {
        let mut h = StreamHash::new();
        for c in chunks {
            h.update(c);
        }
        h
    }

    #[test]
    fn signature_over_chunks_verifies_and_round_trips_through_text() {
        let key = SecretKey::test();
        let sig = hash(&[b"hello ", b"world"]).sign(&key);
        let parsed = Signature::parse(&sig.to_text()).unwrap();
        assert_eq!(parsed, sig);
        // Chunking does not matter.
        let digest = hash(&[b"hello world"]).sha256();
        hash(&[b"hel", b"lo world"])
            .check(Some(&digest), Some((&parsed, &key.public())))
            .unwrap();
        let line = digest_line(&digest, "x.gz");
        assert_eq!(parse_digest_line(&line).unwrap(), digest);
        assert!(line.ends_with("  x.gz\n"));
    }

    #[test]
    fn tampered_data_wrong_key_and_bad_files_fail() {
        let key = SecretKey::test();
        let good = hash(&[b"image"]);
        let sig = good.sign(&key);
        let tampered = hash(&[b"imagE"]);
        let err = tampered
            .check(None, Some((&sig, &key.public())))
            .unwrap_err();
        assert!(matches!(err, CheckError::BadSignature { .. }), "{err}");
        let err = tampered.check(Some(&good.sha256()), None).unwrap_err();
        assert!(err.to_string().starts_with("SHA-256 mismatch"), "{err}");

        let other = SecretKey(ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]));
        let err = good.check(None, Some((&sig, &other.public()))).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("its signature names key {}", key.public().id())),
            "{err}"
        );
        let err = tampered
            .check(None, Some((&sig, &key.public())))
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match these bytes"),
            "{err}"
        );

        for bad in [
            "",
            "keel-signature-v1 ed25519 key=a sig=AAAA",
            "x ed25519ph key=a sig=AAAA",
            "keel-signature-v1 ed25519ph key=a sig=AAAA",
        ] {
            assert!(
                matches!(Signature::parse(bad), Err(CheckError::BadSignatureFile(_))),
                "{bad:?}"
            );
        }
        for bad in ["", "zz  f", "abcd  f"] {
            assert!(
                matches!(parse_digest_line(bad), Err(CheckError::BadDigestFile(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_plain_ed25519_signature_of_the_same_bytes_is_not_a_release_signature() {
        use ed25519_dalek::Signer as _;
        let key = SecretKey::test();
        let plain = key.0.sign(b"image").to_bytes();
        let sig = Signature {
            key_id: key.public().id(),
            bytes: plain,
        };
        assert!(hash(&[b"image"])
            .check(None, Some((&sig, &key.public())))
            .is_err());
    }
}
