//! Release signatures: a signed statement of what an image is, and one streaming pass that checks
//! the bytes against it.
//!
//! A release image's `.sig` file (`keel-signature-v2`) holds a [`Statement`] (version, channel,
//! file name, size and SHA-256 of the compressed image) and an Ed25519 signature over its
//! canonical encoding ([`Statement::canonical`]: the domain-separation prefix [`DOMAIN`], then
//! each field as a length-prefixed name and value, in a fixed order):
//!
//! ```text
//! keel-signature-v2
//! version=0.1.0
//! channel=stable
//! name=keel_production_image.bin.gz
//! size=123456789
//! sha256=<64 hex digits>
//! key=<key id>
//! signature=<base64 of 64 bytes>
//! ```
//!
//! An installer verifies the statement with the trusted key before it writes anything
//! ([`SignedStatement::verify`]), checks that it names what was asked for
//! ([`Statement::check_wanted`]: the version, the channel, a Keel disk image), and then checks the
//! bytes against its size and digest while they stream ([`StreamHash::check`]). So a mirror can
//! neither alter the bytes nor serve another correctly signed release under the asked-for name.
//! `key=` is only a hint for messages. The `.sha256` file beside the image is a `sha256sum` line
//! for people; it is not signed.
//!
//! The older `keel-signature-v1` (Ed25519ph over the bytes alone) is refused with a message.

use base64::Engine as _;
use ed25519_dalek::Signature as EdSignature;
use ed25519_dalek::Signer as _;
use sha2::{Digest, Sha256};

use crate::keys::{PublicKey, SecretKey};
use crate::layout;
use crate::trust::TrustMode;

/// Prefix of every signed message: a signature made for anything else never verifies as a
/// release statement.
pub const DOMAIN: &[u8] = b"keel-release-statement-v2\0";
/// First line of a `.sig` file.
pub const SIG_MAGIC: &str = "keel-signature-v2";
const OLD_MAGIC: &str = "keel-signature-v1";

/// Checking a release failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    /// The digest file is not a sha256sum line.
    #[error("malformed digest file: {0}")]
    BadDigestFile(String),
    /// The signature file does not parse.
    #[error("malformed signature file: {0}")]
    BadSignatureFile(String),
    /// A statement to sign has a field that cannot be signed.
    #[error("cannot sign {field}={value:?}: {why}")]
    BadField {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The image's size differs from the signed one.
    #[error("size mismatch: {}", size_detail(*.expected, *.actual, *.longer))]
    SizeMismatch {
        /// Signed.
        expected: u64,
        /// Received (so far, when `longer`).
        actual: u64,
        /// Whether the stream was cut off because it went past the signed size.
        longer: bool,
    },
    /// The image's SHA-256 differs from the signed (or digest file's) one.
    #[error("SHA-256 mismatch: the image hashes to {actual}, {source_name} says {expected}")]
    DigestMismatch {
        /// Expected.
        expected: String,
        /// Computed.
        actual: String,
        /// "the signature" or "the digest file".
        source_name: &'static str,
    },
    /// The signature does not verify.
    #[error("signature verification failed: {}", bad_signature_detail(.trusted, .signed_by))]
    BadSignature {
        /// The trusted key's id.
        trusted: String,
        /// The key id in the signature file.
        signed_by: String,
    },
    /// The signature verifies with the public TEST key, which this build does not trust.
    #[error("the image is signed with Keel's public TEST key; {}", test_key_detail(*.mode, .trusted))]
    SignedWithTestKey {
        /// The key that is trusted instead.
        trusted: String,
        /// This build's trust mode.
        mode: TrustMode,
    },
    /// The signed version is not the one asked for.
    #[error("the signature is for version {signed}, not {wanted} (the mirror serves a different release under this name)")]
    VersionMismatch {
        /// Signed.
        signed: String,
        /// Asked for.
        wanted: String,
    },
    /// The signed channel is not the one asked for.
    #[error("the signature is for the {signed} channel, not {wanted} (the mirror serves another channel's release under this name; give -C {signed} if that is what you want)")]
    ChannelMismatch {
        /// Signed.
        signed: String,
        /// Asked for.
        wanted: String,
    },
    /// The signed file name is not the one expected.
    #[error(
        "the signature is for a file named {signed}, not {wanted} (it signs a different artifact)"
    )]
    NameMismatch {
        /// Signed.
        signed: String,
        /// Expected.
        wanted: String,
    },
}

fn size_detail(expected: u64, actual: u64, longer: bool) -> String {
    if longer {
        format!("the image goes on past the {expected} bytes its signature covers")
    } else {
        format!("the image is {actual} bytes, the signature says {expected}")
    }
}

fn bad_signature_detail(trusted: &str, signed_by: &str) -> String {
    if trusted == signed_by {
        format!("the signature by key {trusted} does not match its statement (tampered or damaged)")
    } else {
        format!("the image is not signed by the trusted key {trusted} (its signature names key {signed_by})")
    }
}

fn test_key_detail(mode: TrustMode, trusted: &str) -> String {
    match mode {
        TrustMode::Production => format!(
            "this production installer refuses it (anyone can sign with that key; it trusts only key {trusted})"
        ),
        TrustMode::Unconfigured => format!(
            "this installer refuses it (anyone can sign with that key; only a test build trusts it); it was told to trust key {trusted}"
        ),
        TrustMode::Test => format!("this installer was told to trust key {trusted} instead"),
    }
}

/// What a release signature says an image is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The release's version (`BASE/<version>/`).
    pub version: String,
    /// The channel it is published in.
    pub channel: String,
    /// The image's file name ([`layout::IMAGE_NAME`]).
    pub name: String,
    /// Size of the compressed image in bytes.
    pub size: u64,
    /// SHA-256 of the compressed image.
    pub sha256: [u8; 32],
}

/// What an installer asks for; `None` where it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The version asked for (or resolved from `current/version.txt`).
    pub version: Option<&'a str>,
    /// The channel asked for.
    pub channel: Option<&'a str>,
    /// The file name the artifact must have been signed as.
    pub name: &'a str,
}

fn field_ok(s: &str) -> bool {
    layout::valid_version(s)
}

impl Statement {
    /// The statement for the bytes hashed by `hash`.
    pub fn of(hash: &StreamHash, version: &str, channel: &str, name: &str) -> Self {
        Statement {
            version: version.to_string(),
            channel: channel.to_string(),
            name: name.to_string(),
            size: hash.len(),
            sha256: hash.sha256(),
        }
    }

    fn check_fields(&self) -> Result<(), CheckError> {
        for (field, value) in [
            ("version", &self.version),
            ("channel", &self.channel),
            ("name", &self.name),
        ] {
            if !field_ok(value) {
                return Err(CheckError::BadField {
                    field,
                    value: value.clone(),
                    why: "only letters, digits and . - _ + are allowed",
                });
            }
        }
        Ok(())
    }

    fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("version", self.version.clone()),
            ("channel", self.channel.clone()),
            ("name", self.name.clone()),
            ("size", self.size.to_string()),
            ("sha256", hex::encode(self.sha256)),
        ]
    }

    /// The bytes that are signed: [`DOMAIN`], then for each field in order its name and value,
    /// each preceded by its length as a 4-byte big-endian number.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        for (name, value) in self.fields() {
            for part in [name.as_bytes(), value.as_bytes()] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }

    /// Sign the statement.
    pub fn sign(self, key: &SecretKey) -> Result<SignedStatement, CheckError> {
        self.check_fields()?;
        let signature = key.0.sign(&self.canonical()).to_bytes();
        Ok(SignedStatement {
            statement: self,
            key_id: key.public().id(),
            signature,
        })
    }

    /// Whether the statement is about what was asked for.
    pub fn check_wanted(&self, want: &Wanted<'_>) -> Result<(), CheckError> {
        if self.name != want.name {
            return Err(CheckError::NameMismatch {
                signed: self.name.clone(),
                wanted: want.name.to_string(),
            });
        }
        if let Some(v) = want.version.filter(|v| *v != self.version) {
            return Err(CheckError::VersionMismatch {
                signed: self.version.clone(),
                wanted: v.to_string(),
            });
        }
        if let Some(c) = want.channel.filter(|c| *c != self.channel) {
            return Err(CheckError::ChannelMismatch {
                signed: self.channel.clone(),
                wanted: c.to_string(),
            });
        }
        Ok(())
    }
}

/// A [`Statement`] with its signature: the `.sig` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedStatement {
    /// What is signed (not yet verified when parsed).
    pub statement: Statement,
    /// [`PublicKey::id`] of the signer, as claimed by the file.
    pub key_id: String,
    signature: [u8; 64],
}

impl SignedStatement {
    /// The `.sig` file's text.
    pub fn to_text(&self) -> String {
        let mut out = format!("{SIG_MAGIC}\n");
        for (name, value) in self.statement.fields() {
            out.push_str(&format!("{name}={value}\n"));
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(self.signature);
        out.push_str(&format!("key={}\nsignature={b64}\n", self.key_id));
        out
    }

    /// Parse a `.sig` file (nothing is verified yet; see [`Self::verify`]).
    pub fn parse(text: &str) -> Result<Self, CheckError> {
        let bad = |why: String| CheckError::BadSignatureFile(why);
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = lines.next().unwrap_or_default();
        if first.split_whitespace().next() == Some(OLD_MAGIC) {
            return Err(bad(format!(
                "it is a {OLD_MAGIC} signature (over the image bytes alone, not naming the \
                 release), which is no longer accepted: publish the release again with an \
                 image-build that writes {SIG_MAGIC}"
            )));
        }
        if first != SIG_MAGIC {
            return Err(bad(format!("its first line is {first:?}, not {SIG_MAGIC}")));
        }
        const NAMES: [&str; 7] = [
            "version",
            "channel",
            "name",
            "size",
            "sha256",
            "key",
            "signature",
        ];
        let mut values: [Option<&str>; 7] = [None; 7];
        for line in lines {
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| bad(format!("line {line:?} is not NAME=VALUE")))?;
            let i = NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| bad(format!("unknown field {name:?}")))?;
            if values[i].replace(value).is_some() {
                return Err(bad(format!("field {name} given twice")));
            }
        }
        let get = |i: usize| values[i].ok_or_else(|| bad(format!("no {}= line", NAMES[i])));
        let size = get(3)?;
        let size = size
            .parse::<u64>()
            .map_err(|_| bad(format!("size={size:?} is not a number of bytes")))?;
        let sha256 = get(4)?;
        let sha256: [u8; 32] = hex::decode(sha256)
            .ok()
            .and_then(|raw| raw.try_into().ok())
            .ok_or_else(|| bad(format!("sha256={sha256:?} is not 64 hex digits")))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(get(6)?)
            .map_err(|_| bad("signature= is not base64".into()))?;
        let signature: [u8; 64] = raw
            .try_into()
            .map_err(|_| bad("signature= is not 64 bytes".into()))?;
        let statement = Statement {
            version: get(0)?.to_string(),
            channel: get(1)?.to_string(),
            name: get(2)?.to_string(),
            size,
            sha256,
        };
        statement
            .check_fields()
            .map_err(|e| bad(e.to_string().replacen("cannot sign", "bad field", 1)))?;
        Ok(SignedStatement {
            statement,
            key_id: get(5)?.to_string(),
            signature,
        })
    }

    /// The statement, if the signature over it verifies with `trusted`. A build in `mode` that
    /// does not trust the TEST key says so when the signature is the TEST key's.
    pub fn verify(&self, trusted: &PublicKey, mode: TrustMode) -> Result<&Statement, CheckError> {
        let msg = self.statement.canonical();
        let sig = EdSignature::from_bytes(&self.signature);
        if trusted.0.verify_strict(&msg, &sig).is_ok() {
            return Ok(&self.statement);
        }
        let test = PublicKey::test();
        if *trusted != test && test.0.verify_strict(&msg, &sig).is_ok() {
            return Err(CheckError::SignedWithTestKey {
                trusted: trusted.id(),
                mode,
            });
        }
        Err(CheckError::BadSignature {
            trusted: trusted.id(),
            signed_by: self.key_id.clone(),
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

/// SHA-256 and length of one pass over the compressed image.
#[derive(Clone, Default)]
pub struct StreamHash {
    sha256: Sha256,
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

    /// Check what was hashed against a verified statement: its size, then its digest.
    pub fn check(&self, statement: &Statement) -> Result<(), CheckError> {
        if self.len != statement.size {
            return Err(CheckError::SizeMismatch {
                expected: statement.size,
                actual: self.len,
                longer: false,
            });
        }
        self.check_digest(&statement.sha256, "the signature")
    }

    /// Check what was hashed against a digest that `source_name` gave (for an image installed
    /// `--insecure`, the unsigned `.sha256` file).
    pub fn check_digest(
        &self,
        expected: &[u8; 32],
        source_name: &'static str,
    ) -> Result<(), CheckError> {
        let actual = self.sha256();
        if &actual != expected {
            return Err(CheckError::DigestMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(actual),
                source_name,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::tests::test_secret;

    fn hash(chunks: &[&[u8]]) -> StreamHash {
        let mut h = StreamHash::new();
        for c in chunks {
            h.update(c);
        }
        h
    }

    fn other_secret() -> SecretKey {
        SecretKey(ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]))
    }

    fn signed(key: &SecretKey, bytes: &[u8]) -> SignedStatement {
        Statement::of(&hash(&[bytes]), "1.2.3", "stable", layout::IMAGE_NAME)
            .sign(key)
            .unwrap()
    }

    const WANTED: Wanted<'static> = Wanted {
        version: Some("1.2.3"),
        channel: Some("stable"),
        name: layout::IMAGE_NAME,
    };

    #[test]
    fn a_signed_statement_round_trips_verifies_and_covers_the_bytes() {
        let key = other_secret();
        let sig = signed(&key, b"hello world");
        let text = sig.to_text();
        assert!(text.starts_with("keel-signature-v2\nversion=1.2.3\nchannel=stable\nname=keel_production_image.bin.gz\nsize=11\nsha256="), "{text}");
        let parsed = SignedStatement::parse(&text).unwrap();
        assert_eq!(parsed, sig);
        let st = parsed.verify(&key.public(), TrustMode::Production).unwrap();
        st.check_wanted(&WANTED).unwrap();
        // Chunking does not matter.
        hash(&[b"hel", b"lo world"]).check(st).unwrap();
        let line = digest_line(&st.sha256, "x.gz");
        assert_eq!(parse_digest_line(&line).unwrap(), st.sha256);
        assert!(line.ends_with("  x.gz\n"));
    }

    #[test]
    fn every_signed_field_is_covered_by_the_signature() {
        let key = other_secret();
        let sig = signed(&key, b"image");
        let text = sig.to_text();
        for (from, to) in [
            ("version=1.2.3", "version=1.2.4"),
            ("channel=stable", "channel=beta"),
            ("name=keel_production_image.bin.gz", "name=keel_pxe.gz"),
            ("size=5", "size=6"),
        ] {
            let forged = SignedStatement::parse(&text.replace(from, to)).unwrap();
            let err = forged
                .verify(&key.public(), TrustMode::Production)
                .unwrap_err();
            assert!(
                err.to_string().contains("does not match its statement"),
                "{from}: {err}"
            );
        }
        let mut forged = sig.clone();
        forged.statement.sha256[0] ^= 1;
        assert!(forged.verify(&key.public(), TrustMode::Production).is_err());
        // The domain prefix: the same key signing the bare fields is no release signature.
        let mut bare = sig.clone();
        bare.signature = key
            .0
            .sign(&sig.statement.canonical()[DOMAIN.len()..])
            .to_bytes();
        assert!(bare.verify(&key.public(), TrustMode::Production).is_err());
    }

    #[test]
    fn the_statement_must_name_what_was_asked_for() {
        let st = signed(&other_secret(), b"x").statement;
        let cases = [
            (
                Wanted { version: Some("9.0.0"), ..WANTED },
                "the signature is for version 1.2.3, not 9.0.0 (the mirror serves a different release under this name)",
            ),
            (
                Wanted { channel: Some("beta"), ..WANTED },
                "the signature is for the stable channel, not beta",
            ),
            (
                Wanted { name: "other.gz", ..WANTED },
                "the signature is for a file named keel_production_image.bin.gz, not other.gz",
            ),
        ];
        for (want, msg) in cases {
            let err = st.check_wanted(&want).unwrap_err().to_string();
            assert!(err.starts_with(msg), "{err}");
        }
        st.check_wanted(&Wanted {
            version: None,
            channel: None,
            ..WANTED
        })
        .unwrap();
    }

    #[test]
    fn size_and_digest_are_checked_against_the_statement() {
        let st = signed(&other_secret(), b"image").statement;
        let err = hash(&[b"imagE"]).check(&st).unwrap_err();
        assert!(err.to_string().starts_with("SHA-256 mismatch"), "{err}");
        assert!(err.to_string().contains("the signature says"), "{err}");
        let err = hash(&[b"image!"]).check(&st).unwrap_err();
        assert_eq!(
            err,
            CheckError::SizeMismatch {
                expected: 5,
                actual: 6,
                longer: false
            }
        );
        let err = hash(&[b"imag"])
            .check_digest(&st.sha256, "the digest file")
            .unwrap_err();
        assert!(err.to_string().contains("the digest file says"), "{err}");
    }

    #[test]
    fn wrong_key_and_the_test_key_are_told_apart() {
        let trusted = other_secret().public();
        let third = SecretKey(ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]));
        let err = signed(&third, b"x")
            .verify(&trusted, TrustMode::Production)
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!(
                "not signed by the trusted key {} (its signature names key {})",
                trusted.id(),
                third.public().id()
            )),
            "{err}"
        );
        let by_test = signed(&test_secret(), b"x");
        let err = by_test.verify(&trusted, TrustMode::Production).unwrap_err();
        assert!(matches!(err, CheckError::SignedWithTestKey { .. }));
        assert!(
            err.to_string().starts_with(
                "the image is signed with Keel's public TEST key; this production installer refuses it"
            ),
            "{err}"
        );
        let err = by_test
            .verify(&trusted, TrustMode::Unconfigured)
            .unwrap_err();
        assert!(
            err.to_string().contains("this installer refuses it"),
            "{err}"
        );
        // Only when the TEST key itself is the trusted one (a test build) does it verify.
        by_test.verify(&PublicKey::test(), TrustMode::Test).unwrap();
    }

    #[test]
    fn malformed_and_old_signature_files_are_refused_with_a_reason() {
        let good = signed(&other_secret(), b"x").to_text();
        let cases = [
            ("", "first line"),
            (
                "keel-signature-v1 ed25519ph key=a sig=AAAA\n",
                "no longer accepted",
            ),
            ("keel-signature-v3\n", "not keel-signature-v2"),
            (
                &good.replace("size=1", "size=one"),
                "size=\"one\" is not a number",
            ),
            (
                &good.replace("version=1.2.3", "version=../x"),
                "bad field version",
            ),
            (&good.replace("channel=stable\n", ""), "no channel= line"),
            (&format!("{good}channel=beta\n"), "channel given twice"),
            (&format!("{good}extra=1\n"), "unknown field \"extra\""),
            (&format!("{good}garbage\n"), "is not NAME=VALUE"),
        ];
        for (text, want) in cases {
            let err = SignedStatement::parse(text).unwrap_err();
            assert!(
                matches!(&err, CheckError::BadSignatureFile(m) if m.contains(want)),
                "{text:?}: {err}"
            );
        }
        for bad in ["", "zz  f", "abcd  f"] {
            assert!(
                matches!(parse_digest_line(bad), Err(CheckError::BadDigestFile(_))),
                "{bad:?}"
            );
        }
        let err = Statement::of(&hash(&[b"x"]), "1 2", "stable", "n")
            .sign(&other_secret())
            .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot sign version=\"1 2\""),
            "{err}"
        );
    }
}
