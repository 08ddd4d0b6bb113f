//! Pure checks and decoders for resources: URL schemes per spec version, `data:` URLs
//! (RFC 2397, decoded as strictly as Ignition's decoder) and verification hashes. Both
//! `validate` (no I/O) and `fetch` use these; decompression streams in `fetch`.

use base64::Engine;
use sha2::Digest;

use crate::parse::version::Version;
use crate::report::Kind;

/// URL schemes a spec version allows in `source`.
pub fn allowed_schemes(v: Version) -> &'static [&'static str] {
    match (v.major, v.minor) {
        (2, 0) => &["http", "https", "data", "oem"],
        (2, _) => &["http", "https", "data", "oem", "tftp", "s3"],
        (3, 0 | 1) => &["http", "https", "tftp", "s3", "data"],
        (3, 2 | 3) => &["http", "https", "tftp", "s3", "data", "gs"],
        _ => &["http", "https", "tftp", "s3", "data", "gs", "arn"],
    }
}

/// The scheme of `url`, lower-cased, if it has one.
pub fn scheme(url: &str) -> Option<String> {
    let (s, _) = url.split_once(':')?;
    let mut chars = s.chars();
    let first = chars.next()?;
    if first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        Some(s.to_ascii_lowercase())
    } else {
        None
    }
}

/// Checks a non-empty `source` URL for `version`. Returns the kind and reason of the problem.
pub fn check_url(url: &str, version: Version) -> Result<(), (Kind, String)> {
    let Some(scheme) = scheme(url) else {
        return Err((
            Kind::UnsupportedScheme,
            format!("invalid url scheme: {url:?} has no scheme (relative URLs are not allowed)"),
        ));
    };
    if !allowed_schemes(version).contains(&scheme.as_str()) {
        return Err((
            Kind::UnsupportedScheme,
            format!(
                "invalid url scheme {scheme:?} for spec {version} (allowed: {})",
                allowed_schemes(version).join(", ")
            ),
        ));
    }
    match scheme.as_str() {
        "data" => decode_data_url(url)
            .map(|_| ())
            .map_err(|e| (Kind::InvalidUrl, format!("invalid data URL: {e}"))),
        "arn" | "oem" => Ok(()),
        _ => {
            let parsed = url::Url::parse(url)
                .map_err(|e| (Kind::InvalidUrl, format!("unable to parse url: {e}")))?;
            if scheme == "s3" {
                if let Some((_, v)) = parsed.query_pairs().find(|(k, _)| k == "versionId") {
                    if v.is_empty() {
                        return Err((Kind::InvalidUrl, "invalid S3 object VersionId".into()));
                    }
                }
            }
            Ok(())
        }
    }
}

/// RFC 2396 URL characters as the data URL lexer accepts them: printable ASCII except
/// space and the delimiters/unwise characters `" # < > [ \\ ] ^ ` { | }`.
fn is_url_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"\"#<>[\\]^`{|}".contains(&b)
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

fn percent_decode(data: &str) -> Result<Vec<u8>, String> {
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !is_url_char(b) {
            return Err(format!(
                "invalid data character {:?} at byte {i} (percent-encode it)",
                data[i..].chars().next().unwrap_or('?')
            ));
        }
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("rfc2396: incomplete percent escape at byte {i}"))?;
            let s = std::str::from_utf8(hex).map_err(|_| "rfc2396: bad escape".to_string())?;
            let v = u8::from_str_radix(s, 16)
                .map_err(|_| format!("rfc2396: invalid percent escape %{s} at byte {i}"))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// Checks the `[<mediatype>][;param=value]*[;base64]` header; returns true for base64.
fn data_url_header(header: &str) -> Result<bool, String> {
    if header.is_empty() {
        return Ok(false);
    }
    let mut parts = header.split(';');
    let media = parts.next().unwrap_or("");
    if !media.is_empty() {
        let (ty, sub) = media
            .split_once('/')
            .ok_or_else(|| format!("invalid media type {media:?}"))?;
        let known = [
            "text",
            "image",
            "audio",
            "video",
            "application",
            "message",
            "multipart",
        ];
        let ty_ok = known.iter().any(|k| ty.starts_with(k))
            || ty.len() > 2 && ty.as_bytes()[..2].eq_ignore_ascii_case(b"x-");
        if !is_token(ty) || !is_token(sub) || !ty_ok {
            return Err(format!("invalid media type {media:?}"));
        }
    }
    let params: Vec<&str> = parts.collect();
    for (i, p) in params.iter().enumerate() {
        match p.split_once('=') {
            Some((attr, value)) => {
                let quoted = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
                if !is_token(attr) || !(quoted || is_token(value)) {
                    return Err(format!("invalid parameter {p:?}"));
                }
            }
            None if i + 1 == params.len() => {
                if *p != "base64" {
                    return Err(format!("expected base64, got {p}"));
                }
                return Ok(true);
            }
            None => return Err(format!("invalid parameter {p:?}")),
        }
    }
    Ok(false)
}

/// Decodes a `data:[<mediatype>][;base64],<data>` URL (RFC 2397) as strictly as Ignition's
/// decoder: the media type must be well formed (its value is ignored); without `;base64` the
/// data must be URL characters (no raw spaces, quotes, `#`, brackets, braces or non-ASCII)
/// and is percent-decoded; with `;base64` it must be the standard, padded alphabet.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| "missing data prefix".to_string())?;
    let (header, data) = rest
        .split_once(',')
        .ok_or_else(|| "missing comma before data".to_string())?;
    if data_url_header(header)? {
        if let Some(i) = data.bytes().position(|b| !is_base64_char(b)) {
            return Err(format!("invalid data character at byte {i} of base64 data"));
        }
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| match e {
                base64::DecodeError::InvalidByte(n, _)
                | base64::DecodeError::InvalidLastSymbol(n, _) => {
                    format!("illegal base64 data at input byte {n}")
                }
                _ => format!("illegal base64 data at input byte {}", data.len()),
            })
    } else {
        percent_decode(data)
    }
}

/// A verification hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFn {
    /// SHA-256 (3.1+).
    Sha256,
    /// SHA-512.
    Sha512,
}

/// A parsed `verification.hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash {
    /// Function.
    pub function: HashFn,
    /// Expected digest.
    pub digest: Vec<u8>,
}

/// Parses `<fn>-<hex>`; sha256 only from spec 3.1.
pub fn parse_hash(spec: &str, version: Version) -> Result<Hash, (Kind, String)> {
    let Some((func, sum)) = spec.split_once('-') else {
        return Err((
            Kind::MalformedHash,
            format!("malformed hash specifier {spec:?}: expected <function>-<hex digest>"),
        ));
    };
    let (function, len) = match func {
        "sha512" => (HashFn::Sha512, 128),
        "sha256" if version.major >= 3 && version >= Version::new(3, 1) => (HashFn::Sha256, 64),
        other => {
            let allowed = if version >= Version::new(3, 1) {
                "sha512, sha256"
            } else {
                "sha512"
            };
            return Err((
                Kind::UnknownHashFunction,
                format!(
                    "unrecognized hash function {other:?} for spec {version} (allowed: {allowed})"
                ),
            ));
        }
    };
    if sum.len() != len {
        return Err((
            Kind::HashSize,
            format!(
                "incorrect size for hash sum: {} hex digits, {func} needs {len}",
                sum.len()
            ),
        ));
    }
    let digest = hex::decode(sum).map_err(|_| {
        (
            Kind::MalformedHash,
            "malformed hash specifier: digest is not hexadecimal".to_string(),
        )
    })?;
    Ok(Hash { function, digest })
}

impl Hash {
    /// Checks `data` against the digest; the error names both digests.
    pub fn verify(&self, data: &[u8]) -> Result<(), String> {
        let got = match self.function {
            HashFn::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashFn::Sha512 => sha2::Sha512::digest(data).to_vec(),
        };
        self.check(&got)
    }

    /// Checks a digest computed elsewhere (while streaming); the error names both digests.
    pub fn check(&self, got: &[u8]) -> Result<(), String> {
        if got == self.digest {
            Ok(())
        } else {
            Err(format!(
                "hash mismatch: expected {}, got {}",
                hex::encode(&self.digest),
                hex::encode(got)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls() {
        let ok: &[(&str, &[u8])] = &[
            ("data:,node1", b"node1"),
            ("data:,", b""),
            ("data:;base64,ZXhhbXBsZSBmaWxlCg==", b"example file\n"),
            ("data:text/plain;charset=utf-8;base64,aGk=", b"hi"),
            ("data:,%5BMatch%5D%0AName%3Deth0", b"[Match]\nName=eth0"),
            ("data:text/plain,a%20b", b"a b"),
            ("data:application/json;charset=\"utf-8\",%7B%7D", b"{}"),
            ("data:,'(ok)'!~*", b"'(ok)'!~*"),
        ];
        for (url, want) in ok {
            assert_eq!(decode_data_url(url).as_deref(), Ok(*want), "{url}");
        }
        let bad = [
            "data:,hello world",
            "data:,a#b",
            "data:,{x}",
            "data:,%zz",
            "data:,%4",
            "data:;base64,ZXhh bXBs",
            "data:;base64,ZXhhbXBsZSBmaWxlCg",
            "data:;base64,Z!==",
            "data:nocomma",
            "data:,héllo",
            "DATA:,x",
            "data:foo/bar,x",
            "data:;charset,x",
            "data:;base64,ZX%3D",
            "data:text/plain;base64;charset=x,aGk=",
        ];
        for url in bad {
            assert!(decode_data_url(url).is_err(), "{url} should be rejected");
        }
        assert!(decode_data_url("data:;base64,ZXh!")
            .unwrap_err()
            .starts_with("invalid data character"));
        assert!(decode_data_url("data:;base64,ZXh=ZXh=")
            .unwrap_err()
            .starts_with("illegal base64 data at input byte"));
    }

    /// Found by fuzzing (fuzz/, target data_url): a media type with a multi-byte character in
    /// its first two bytes panicked (a `str` sliced inside a character); it is refused.
    #[test]
    fn non_ascii_media_type_is_refused_not_a_panic() {
        for url in [
            "data:t\u{50f}ext/plain,x",
            "data:\u{83c8}:text/64,bGQ=",
            "data:l\u{549}f/plain;=\"@a,aGV",
            "data:X-\u{e9}/y,x",
        ] {
            let err = decode_data_url(url).unwrap_err();
            assert!(err.starts_with("invalid media type"), "{url}: {err}");
            assert!(check_url(url, Version::new(3, 5)).is_err(), "{url}");
        }
        // In a config: an error in the report.
        let cfg = r#"{"ignition": {"version": "3.0.0"}, "storage": {"files": [
            {"path": "/x", "contents": {"source": "data:t\u050fext/plain,x"}}]}}"#;
        let report = crate::parse(cfg.as_bytes()).unwrap_err();
        assert!(
            report.to_string().contains("invalid media type"),
            "{report}"
        );
        // `x-` types still pass, in any case.
        assert_eq!(
            decode_data_url("data:X-custom/thing,ok").as_deref(),
            Ok(&b"ok"[..])
        );
    }

    #[test]
    fn schemes_per_version() {
        let v = Version::new;
        let table = [
            ("https://example.com/x", v(2, 0), None),
            ("tftp://host/x", v(2, 0), Some(Kind::UnsupportedScheme)),
            ("tftp://host/x", v(2, 1), None),
            ("oem:///coreos-install.json", v(2, 2), None),
            (
                "oem:///coreos-install.json",
                v(3, 0),
                Some(Kind::UnsupportedScheme),
            ),
            ("gs://bucket/x", v(3, 1), Some(Kind::UnsupportedScheme)),
            ("gs://bucket/x", v(3, 2), None),
            (
                "arn:aws:s3:::bucket/x",
                v(3, 3),
                Some(Kind::UnsupportedScheme),
            ),
            ("arn:aws:s3:::bucket/x", v(3, 4), None),
            ("ftp://host/x", v(3, 4), Some(Kind::UnsupportedScheme)),
            ("/etc/hosts", v(3, 4), Some(Kind::UnsupportedScheme)),
            ("s3://b/k?versionId=", v(3, 0), Some(Kind::InvalidUrl)),
            ("s3://b/k?versionId=7", v(3, 0), None),
            ("http://[::1", v(3, 0), Some(Kind::InvalidUrl)),
            ("data:,a b", v(3, 0), Some(Kind::InvalidUrl)),
        ];
        for (url, ver, want) in table {
            assert_eq!(check_url(url, ver).err().map(|e| e.0), want, "{url} {ver}");
        }
    }

    #[test]
    fn hashes() {
        let v31 = Version::new(3, 1);
        let v30 = Version::new(3, 0);
        let sha512 = format!("sha512-{}", "a".repeat(128));
        let sha256 = format!("sha256-{}", "b".repeat(64));
        assert!(parse_hash(&sha512, Version::new(2, 2)).is_ok());
        assert!(parse_hash(&sha256, v31).is_ok());
        assert_eq!(
            parse_hash(&sha256, v30).unwrap_err().0,
            Kind::UnknownHashFunction
        );
        assert_eq!(
            parse_hash("sha512", v31).unwrap_err().0,
            Kind::MalformedHash
        );
        assert_eq!(
            parse_hash("md5-abc", v31).unwrap_err().0,
            Kind::UnknownHashFunction
        );
        assert_eq!(parse_hash("sha512-abc", v31).unwrap_err().0, Kind::HashSize);
        let nothex = format!("sha256-{}", "z".repeat(64));
        assert_eq!(parse_hash(&nothex, v31).unwrap_err().0, Kind::MalformedHash);
        let h = parse_hash(
            "sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            v31,
        )
        .unwrap();
        assert!(h.verify(b"hello").is_ok());
        assert!(h.verify(b"hello!").is_err());
    }
}
