//! Where a release lives on a server, as Container Linux laid it out:
//!
//! ```text
//! BASEURL/current/version.txt                          KEEL_VERSION=<VERSION>
//! BASEURL/<VERSION>/version.txt                        the same, for that version
//! BASEURL/<VERSION>/keel_production_image.bin.gz       gzip of disk.img
//! BASEURL/<VERSION>/keel_production_image.bin.gz.sha256  `sha256sum` line
//! BASEURL/<VERSION>/keel_production_image.bin.gz.sig   detached signature (see `sign`)
//! ```
//!
//! A channel is a base URL of its own (CL: `https://CHANNEL.release.core-os.net/amd64-usr`):
//! `coreos-install -C beta` picks the default base URL of the beta channel, `-b` replaces it,
//! and `image-build --out build` publishes one channel's tree under `build/release/`.

/// The compressed disk image's file name.
pub const IMAGE_NAME: &str = "keel_production_image.bin.gz";
/// Suffix of the digest file beside the image.
pub const SHA256_SUFFIX: &str = ".sha256";
/// Suffix of the signature file beside the image.
pub const SIG_SUFFIX: &str = ".sig";
/// The version a base URL's `current/version.txt` points at.
pub const CURRENT: &str = "current";
/// The key in version.txt.
pub const VERSION_KEY: &str = "KEEL_VERSION";
/// Default channel.
pub const DEFAULT_CHANNEL: &str = "stable";
/// The kernel argument that names a live boot's release server (`keel.release_url=BASEURL`):
/// image-build's iPXE scripts write it, `coreos-install` with no `-b` installs from it.
pub const RELEASE_URL_KARG: &str = "keel.release_url";
/// The channels an installer knows by name.
pub const CHANNELS: &[&str] = &["stable", "beta", "alpha", "edge"];

/// The default base URL of a channel, used when no `-b` is given.
pub fn channel_base_url(channel: &str) -> String {
    format!("https://{channel}.release.keel.invalid/amd64-usr")
}

fn join(base: &str, rest: &str) -> String {
    format!("{}/{rest}", base.trim_end_matches('/'))
}

/// `BASE/VERSION/keel_production_image.bin.gz`.
pub fn image_url(base: &str, version: &str) -> String {
    join(base, &format!("{version}/{IMAGE_NAME}"))
}

/// `BASE/current/version.txt` (or any version's).
pub fn version_txt_url(base: &str, version: &str) -> String {
    join(base, &format!("{version}/version.txt"))
}

/// The text of a version.txt.
pub fn version_txt(version: &str) -> String {
    format!("{VERSION_KEY}={version}\n")
}

/// The version named by a version.txt (`KEEL_VERSION=`), if any.
pub fn parse_version_txt(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(VERSION_KEY)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .find(|v| !v.is_empty())
}

/// Whether `version` is safe as one path segment of a URL or a directory name.
pub fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version != "."
        && version != ".."
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_base_version_and_file() {
        assert_eq!(
            image_url("http://10.0.2.2:8080/", "1.2.3"),
            "http://10.0.2.2:8080/1.2.3/keel_production_image.bin.gz"
        );
        assert_eq!(
            version_txt_url("http://h/stable", "current"),
            "http://h/stable/current/version.txt"
        );
        assert_eq!(
            channel_base_url("beta"),
            "https://beta.release.keel.invalid/amd64-usr"
        );
    }

    #[test]
    fn version_txt_round_trips_and_tolerates_other_keys() {
        assert_eq!(
            parse_version_txt(&version_txt("0.1.0")).as_deref(),
            Some("0.1.0")
        );
        let cases = [
            ("KEEL_BUILD=x\nKEEL_VERSION=2.0.1\n", Some("2.0.1")),
            ("KEEL_VERSION=\"3\"", Some("3")),
            ("KEEL_VERSION=\n", None),
            ("COREOS_VERSION=1\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_version_txt(text).as_deref(), want, "{text:?}");
        }
    }

    #[test]
    fn versions_are_single_path_segments() {
        for ok in ["0.1.0", "2135.4.0", "1.0.0-rc1+b2", "current"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in ["", ".", "..", "1/2", "a b", "v?x"] {
            assert!(!valid_version(bad), "{bad}");
        }
    }
}
