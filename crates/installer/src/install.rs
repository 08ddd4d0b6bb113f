//! The install, top to bottom:
//!
//!  1. settings: arguments (or kernel arguments) → [`Plan`]; the trusted key ([`trusted_key`]:
//!     `-k KEYFILE` or the one this build was compiled with, never the public TEST key outside
//!     a test build); the Ignition config read and validated in full — all before the disk is
//!     opened;
//!  2. the disk: a whole disk (or a file), 512-byte sectors, not mounted, not swap, not held,
//!     and the kernel willing to reread its table;
//!  3. the release: `current` resolved through version.txt; the signature fetched and checked
//!     ([`verify_signature`]): made by the trusted key, for the version and channel asked for,
//!     for a Keel disk image. An image without a valid signature is refused here, before the
//!     disk is written, unless `--insecure` was given;
//!  4. the write ([`stream::write_image`]): both ends zeroed, the image streamed and checked
//!     against the signed size and SHA-256, the first MiB written last;
//!  5. the partition table reread, `config.ign` put on the OEM partition;
//!  6. `Success! Keel VERSION is installed on DEVICE`.
//!
//! Any failure after step 4 began leaves the disk with no partition table at either end, and
//! the error says what failed.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use release::layout::{self, IMAGE_NAME, SHA256_SUFFIX, SIG_SUFFIX};
use release::sign::parse_digest_line;
use release::{check_trust, PublicKey, SignedStatement, Statement, TrustMode, Wanted, TRUST};

use crate::busy::Host;
use crate::cli::{self, IgnitionSource, InstallArgs, Plan, Source};
use crate::device::Device;
use crate::http::Http;
use crate::live::Running;
use crate::progress::Progress;
use crate::resume::Resuming;
use crate::stream::{self, Expect};
use crate::{kargs, oem};

/// The machine around the installer: where /proc, /sys and os-release are.
#[derive(Debug, Clone)]
pub struct Env {
    /// /proc and /sys.
    pub host: Host,
    /// The running system's os-release (for the default version).
    pub os_release: PathBuf,
    /// The running system's kernel command line (a live boot, its release server).
    pub cmdline: PathBuf,
    /// Where a live system keeps the release image it carries.
    pub carried_dir: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            host: Host::default(),
            os_release: "/etc/os-release".into(),
            cmdline: "/proc/cmdline".into(),
            carried_dir: crate::live::CARRIED_DIR.into(),
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `-y`: checked, nothing written.
    DryRun,
    /// Installed this version (or `(from FILE)`).
    Installed(String),
}

/// The `coreos-install` program: command line or kernel arguments.
pub fn main(args: InstallArgs) -> Result<()> {
    let args = match &args.kernel_args {
        Some(file) => {
            let text =
                fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            match kargs::from_cmdline(&text)? {
                Some(u) => {
                    eprintln!(
                        "coreos-install: unattended install from the kernel arguments in {}",
                        file.display()
                    );
                    u.args
                }
                None => bail!(
                    "{} has no coreos.inst.install_dev= argument: nothing to install",
                    file.display()
                ),
            }
        }
        None => args,
    };
    install(&args, &Env::default()).map(|_| ())
}

/// Why a build without a compiled-in key cannot install without `-k`, and how to get one.
const NO_KEY: &str = "this coreos-install trusts no key: it was built with neither \
KEEL_TRUSTED_KEY nor the feature test-keys. Give the public half of the release signing key with \
-k KEYFILE, or use an installer built for your releases: `KEEL_TRUSTED_KEY=/abs/path/key.pub.pem \
cargo build --release -p installer` (a production build; `KEEL_TRUSTED_KEY=... \
KEEL_SIGNING_KEY=... ./keel build` builds it with a matching image), or, for development only, \
`cargo build --release -p installer --features test-keys` (what `./keel build` does)";

/// The key this install trusts: `-k KEYFILE`, else the one this build was compiled with (see
/// [`release::trust`]); either way [`check_trust`] must allow it. `None` only with `--insecure`
/// in a build without a key.
pub fn trusted_key(plan: &Plan, mode: TrustMode) -> Result<Option<PublicKey>> {
    let (key, origin) = match &plan.key_file {
        Some(p) => (Some(PublicKey::read(p)?), format!("-k {}", p.display())),
        None => (mode.compiled_key(), "the compiled-in key".to_string()),
    };
    let Some(key) = key else {
        if plan.insecure {
            eprintln!(
                "coreos-install: WARNING: this {} has no key and no -k was given: nothing can be \
                 verified, and --insecure installs the image anyway",
                mode.build_name()
            );
            return Ok(None);
        }
        bail!("{NO_KEY}");
    };
    check_trust(mode, &key).with_context(|| format!("refusing to trust {origin}"))?;
    if plan.key_file.is_some() {
        eprintln!(
            "coreos-install: trusting the key {} from {origin}",
            key.id()
        );
    }
    Ok(Some(key))
}

fn load_ignition(src: &IgnitionSource, http: &Http) -> Result<Vec<u8>> {
    let (bytes, what) = match src {
        IgnitionSource::File(p) => (
            fs::read(p).with_context(|| format!("reading the Ignition config {}", p.display()))?,
            p.display().to_string(),
        ),
        IgnitionSource::Url(u) => (
            http.get_text(u)
                .with_context(|| format!("fetching the Ignition config {u}"))?
                .into_bytes(),
            u.clone(),
        ),
    };
    check_ignition(&bytes, &what)?;
    Ok(bytes)
}

/// Validate a config in full, as `ignition validate` does, so that a config the first boot would
/// refuse never reaches a disk. Warnings are printed; errors (each with its JSON path) refuse.
fn check_ignition(bytes: &[u8], what: &str) -> Result<()> {
    match ignition::parse(bytes) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("coreos-install: the Ignition config {what}: {w}");
            }
            Ok(())
        }
        Err(report) => {
            let lines: Vec<String> = report.entries.iter().map(|e| format!("  {e}")).collect();
            bail!(
                "the Ignition config {what} is invalid ({} error(s)); nothing was written:\n{}",
                report.errors().count(),
                lines.join("\n")
            )
        }
    }
}

/// Where the image comes from, resolved: a URL or a file, what to call it, and which version
/// its signature must name.
struct Resolved {
    label: String,
    location: Location,
    version: Option<String>,
}

enum Location {
    Url(String),
    File(PathBuf),
}

fn resolve(plan: &Plan, http: &Http) -> Result<Resolved> {
    Ok(match &plan.source {
        Source::Release {
            base,
            version,
            channel,
        } => {
            let version = if version == layout::CURRENT {
                let url = layout::version_txt_url(base, layout::CURRENT);
                let text = http
                    .get_text(&url)
                    .with_context(|| format!("version.txt unavailable: {url}"))?;
                let v = layout::parse_version_txt(&text)
                    .with_context(|| format!("{url} names no {}", layout::VERSION_KEY))?;
                ensure!(
                    layout::valid_version(&v),
                    "{url} names version {v:?}, which is not a plain version"
                );
                eprintln!("coreos-install: the current {channel} version at {base} is {v}");
                v
            } else {
                version.clone()
            };
            Resolved {
                location: Location::Url(layout::image_url(base, &version)),
                label: version.clone(),
                version: Some(version),
            }
        }
        Source::Url(u) => Resolved {
            label: plan
                .version_label
                .clone()
                .unwrap_or_else(|| format!("(from {u})")),
            location: Location::Url(u.clone()),
            version: plan.version_label.clone(),
        },
        Source::File(p) => Resolved {
            label: plan
                .version_label
                .clone()
                .unwrap_or_else(|| format!("(from {})", p.display())),
            location: Location::File(p.clone()),
            version: plan.version_label.clone(),
        },
    })
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// A file beside the image (`IMAGE.sig`, `IMAGE.sha256`), as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sidecar {
    /// Its text.
    Found(String),
    /// Truly not there: no such file and no symlink of that name (ENOENT), or HTTP 404.
    Absent,
    /// There but unreadable, with the reason: a directory, a dangling symlink, no permission, a
    /// server error. Never taken for "absent".
    Unreadable(String),
}

/// Read a sidecar file beside a local image.
pub fn read_local(path: &Path) -> Sidecar {
    let err = match fs::read_to_string(path) {
        Ok(text) => return Sidecar::Found(text),
        Err(e) => e,
    };
    if err.kind() == io::ErrorKind::NotFound {
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Sidecar::Absent,
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(path)
                    .map(|t| format!(" (to {})", t.display()))
                    .unwrap_or_default();
                return Sidecar::Unreadable(format!(
                    "{} is a dangling symlink{target}",
                    path.display()
                ));
            }
            _ => {}
        }
    }
    Sidecar::Unreadable(format!("reading {}: {err}", path.display()))
}

/// Fetch a sidecar file beside an image URL; only 404 means absent.
fn fetch_remote(url: &str, http: &Http) -> Sidecar {
    match http.get_text_if_present(url) {
        Ok(Some(text)) => Sidecar::Found(text),
        Ok(None) => Sidecar::Absent,
        Err(e) => Sidecar::Unreadable(format!("{e:#}")),
    }
}

/// What the image was checked against before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A signature by the trusted key over this statement, which names what was asked for.
    Signed(Statement),
    /// `--insecure`: no valid signature, for this reason.
    Insecure(String),
}

/// Decide whether the signature `sig` (found at `sig_at`) lets the image be installed: it must
/// parse, verify with `key` in a build of trust `mode`, and name what was asked for (`want`).
/// Anything else is an error, or with `insecure` a [`Verified::Insecure`] with the reason.
pub fn verify_signature(
    sig: Sidecar,
    sig_at: &str,
    key: Option<&PublicKey>,
    mode: TrustMode,
    want: &Wanted<'_>,
    insecure: bool,
) -> Result<Verified> {
    let checked = || -> Result<Statement> {
        let text = match sig {
            Sidecar::Found(text) => text,
            Sidecar::Absent => bail!(
                "the image is unsigned: there is no {sig_at} (--insecure installs an unsigned image)"
            ),
            Sidecar::Unreadable(why) => bail!(
                "its signature {sig_at} exists but cannot be read: {why} (only a signature that \
                 does not exist at all makes an image \"unsigned\")"
            ),
        };
        let signed = SignedStatement::parse(&text)
            .with_context(|| format!("reading the signature {sig_at}"))?;
        let Some(key) = key else {
            bail!("there is no trusted key to check {sig_at} with");
        };
        let statement = signed
            .verify(key, mode)
            .with_context(|| format!("checking the signature {sig_at}"))?;
        statement
            .check_wanted(want)
            .with_context(|| format!("checking what {sig_at} signs"))?;
        Ok(statement.clone())
    };
    match checked() {
        Ok(statement) => Ok(Verified::Signed(statement)),
        Err(e) if insecure => Ok(Verified::Insecure(format!("{e:#}"))),
        Err(e) => Err(e.context("refusing to install an image without a valid signature")),
    }
}

/// Fetch or read the signature, decide ([`verify_signature`]), and say what the stream must be.
fn expectations(
    resolved: &Resolved,
    key: Option<&PublicKey>,
    plan: &Plan,
    http: &Http,
) -> Result<(Verified, Expect)> {
    let (sig, sig_at) = match &resolved.location {
        Location::Url(url) => {
            let url = format!("{url}{SIG_SUFFIX}");
            (fetch_remote(&url, http), url)
        }
        Location::File(path) => {
            let at = sidecar(path, SIG_SUFFIX);
            (read_local(&at), at.display().to_string())
        }
    };
    let sig_at = match (&resolved.location, &sig) {
        (Location::Url(_), Sidecar::Absent) => format!("{sig_at} (404 Not Found)"),
        _ => sig_at,
    };
    let want = Wanted {
        version: resolved.version.as_deref(),
        channel: plan.channel.as_deref(),
        name: IMAGE_NAME,
    };
    let verified = verify_signature(sig, &sig_at, key, TRUST, &want, plan.insecure)?;
    let expect = match &verified {
        Verified::Signed(st) => {
            eprintln!(
                "coreos-install: {sig_at} is a valid signature by key {}: Keel {} ({} channel), \
                 {} bytes, SHA-256 {}",
                key.map(PublicKey::id).unwrap_or_default(),
                st.version,
                st.channel,
                st.size,
                hex::encode(st.sha256)
            );
            Expect {
                statement: Some(st.clone()),
                digest: None,
            }
        }
        Verified::Insecure(why) => {
            eprintln!(
                "coreos-install: WARNING: --insecure: installing an image WITHOUT A VALID \
                 SIGNATURE; nothing proves where it comes from or what is in it. The reason: {why}"
            );
            // The unsigned digest file still catches damage in transit.
            let (sum, sum_at) = match &resolved.location {
                Location::Url(url) => {
                    let at = format!("{url}{SHA256_SUFFIX}");
                    (fetch_remote(&at, http), at)
                }
                Location::File(path) => {
                    let at = sidecar(path, SHA256_SUFFIX);
                    (read_local(&at), at.display().to_string())
                }
            };
            let digest = match sum {
                Sidecar::Found(text) => match parse_digest_line(&text) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        eprintln!("coreos-install: WARNING: ignoring {sum_at}: {e}");
                        None
                    }
                },
                Sidecar::Absent => None,
                Sidecar::Unreadable(why) => {
                    eprintln!("coreos-install: WARNING: ignoring {sum_at}: {why}");
                    None
                }
            };
            match digest {
                Some(_) => eprintln!(
                    "coreos-install: WARNING: only the unsigned SHA-256 in {sum_at} will be checked"
                ),
                None => eprintln!(
                    "coreos-install: WARNING: the image will NOT be checked at all (no usable {sum_at})"
                ),
            }
            Expect {
                statement: None,
                digest,
            }
        }
    };
    Ok((verified, expect))
}

fn human(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Install as `args` say; see the module doc.
pub fn install(args: &InstallArgs, env: &Env) -> Result<Outcome> {
    let running = fs::read_to_string(&env.os_release)
        .ok()
        .and_then(|t| cli::os_release_version(&t));
    if TRUST == TrustMode::Test {
        eprintln!("coreos-install: WARNING: {TRUST}");
    }
    let cmdline = fs::read_to_string(&env.cmdline).unwrap_or_default();
    let running = Running::read(running, &cmdline, &env.carried_dir);
    let plan = cli::plan(args, &running)?;
    if let (Source::File(p), Some(carried)) = (&plan.source, &running.carried_image) {
        if p == carried {
            eprintln!(
                "coreos-install: no release server given: installing the release this live system carries ({})",
                p.display()
            );
        }
    }
    let key = trusted_key(&plan, TRUST)?;
    let http = Http::new(plan.retries)?;
    let ignition = plan
        .ignition
        .as_ref()
        .map(|src| load_ignition(src, &http))
        .transpose()?;

    let mut dev = Device::open(&plan.device)?;
    dev.check_exclusive(&env.host)?;

    let mut resolved = resolve(&plan, &http)?;
    let (verified, expect) = expectations(&resolved, key.as_ref(), &plan, &http)?;
    if let (Verified::Signed(st), None) = (&verified, &resolved.version) {
        // `-f`/`-u` without -V: the signed version is the one to name.
        resolved.label = format!("{} {}", st.version, resolved.label);
    }
    let from = match &resolved.location {
        Location::Url(u) => u.clone(),
        Location::File(p) => p.display().to_string(),
    };
    let device = plan.device.display().to_string();
    if plan.dry_run {
        println!(
            "Dry run: would install Keel {} from {from} onto {device} ({}){}; nothing was written",
            resolved.label,
            human(dev.size()),
            if ignition.is_some() {
                " with an Ignition config"
            } else {
                ""
            }
        );
        return Ok(Outcome::DryRun);
    }

    eprintln!(
        "coreos-install: installing Keel {} from {from} onto {device} ({})",
        resolved.label,
        human(dev.size())
    );
    let (reader, total): (Box<dyn Read>, Option<u64>) = match &resolved.location {
        Location::Url(u) => {
            // A cut or stalled download resumes where it stopped (see `resume`).
            let signed_size = expect.statement.as_ref().map(|st| st.size);
            let download = Resuming::open(&http, u, signed_size)?;
            let len = download.size();
            (Box::new(download), len)
        }
        Location::File(p) => {
            let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len)
        }
    };
    let mut progress = Progress::new(total);
    let written = stream::write_image(reader, &mut dev, &expect, &mut progress).with_context(|| {
        format!("installing {from} onto {device} failed; its partition tables were wiped so it cannot boot a half-written image")
    })?;
    eprintln!(
        "coreos-install: wrote {} bytes ({} bytes downloaded, {})",
        written.image,
        written.received,
        match (&verified, &expect.digest) {
            (Verified::Signed(_), _) => "signature, size and SHA-256 verified",
            (Verified::Insecure(_), Some(_)) =>
                "UNSIGNED (--insecure): only the unsigned SHA-256 checked",
            (Verified::Insecure(_), None) => "UNSIGNED (--insecure): NOT checked at all",
        }
    );

    let finish = || -> Result<()> {
        dev.reread_partitions()?;
        if let Some(cfg) = &ignition {
            oem::write_config(dev.path(), dev.file(), cfg)
                .context("putting config.ign on the OEM partition")?;
            eprintln!(
                "coreos-install: wrote the Ignition config to the OEM partition as {}",
                oem::CONFIG_NAME
            );
        }
        Ok(())
    };
    if let Err(err) = finish() {
        let wiped = dev.wipe(&[written.image]);
        let note = match wiped {
            Ok(()) => "its partition tables were wiped so it cannot boot".to_string(),
            Err(e) => format!("wiping its partition tables failed too: {e:#}"),
        };
        return Err(err.context(format!(
            "installing onto {device} failed after the image was written; {note}"
        )));
    }
    println!("Success! Keel {} is installed on {device}", resolved.label);
    Ok(Outcome::Installed(resolved.label))
}

#[cfg(test)]
mod tests {
    use super::*;
    use release::{SecretKey, StreamHash};

    fn key_file(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }

    /// Keel's public TEST key, read from the repository (it is not in any library).
    fn test_secret() -> SecretKey {
        SecretKey::read(&key_file("../release/keys/test-key.pem")).unwrap()
    }

    /// A key that stands for a real release key (tests/fixtures/README.md).
    fn release_secret() -> SecretKey {
        SecretKey::read(&key_file("tests/fixtures/release-key.pem")).unwrap()
    }

    fn sig_text(key: &SecretKey, version: &str, channel: &str) -> String {
        let mut h = StreamHash::new();
        h.update(b"image bytes");
        Statement::of(&h, version, channel, IMAGE_NAME)
            .sign(key)
            .unwrap()
            .to_text()
    }

    const WANT: Wanted<'static> = Wanted {
        version: Some("1.0.0"),
        channel: Some("stable"),
        name: IMAGE_NAME,
    };

    fn decide(sig: Sidecar, key: &PublicKey, mode: TrustMode, insecure: bool) -> Result<Verified> {
        verify_signature(sig, "IMG.sig", Some(key), mode, &WANT, insecure)
    }

    #[test]
    fn only_a_valid_signature_for_what_was_asked_installs_without_insecure() {
        let release = release_secret();
        let good = Sidecar::Found(sig_text(&release, "1.0.0", "stable"));
        let all_modes = [
            TrustMode::Test,
            TrustMode::Production,
            TrustMode::Unconfigured,
        ];
        for mode in all_modes {
            let Verified::Signed(st) =
                decide(good.clone(), &release.public(), mode, false).unwrap()
            else {
                panic!("{mode:?}: a good signature is Signed");
            };
            assert_eq!((st.version.as_str(), st.size), ("1.0.0", 11));
        }
        let cases = [
            (Sidecar::Absent, "the image is unsigned: there is no IMG.sig"),
            (
                Sidecar::Unreadable("IMG.sig is a dangling symlink".into()),
                "exists but cannot be read: IMG.sig is a dangling symlink",
            ),
            (
                Sidecar::Found("keel-signature-v1 ed25519ph key=a sig=AAAA".into()),
                "no longer accepted",
            ),
            (
                Sidecar::Found(sig_text(&release, "0.1.0", "stable")),
                "the signature is for version 0.1.0, not 1.0.0 (the mirror serves a different release under this name)",
            ),
            (
                Sidecar::Found(sig_text(&release, "1.0.0", "edge")),
                "the signature is for the edge channel, not stable",
            ),
            (
                Sidecar::Found(sig_text(&test_secret(), "1.0.0", "stable")),
                "signed with Keel's public TEST key; this production installer refuses it",
            ),
        ];
        for (sig, want) in cases {
            let err =
                decide(sig.clone(), &release.public(), TrustMode::Production, false).unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.starts_with("refusing to install an image without a valid signature: ")
                    && msg.contains(want),
                "{sig:?}: {msg}"
            );
            // --insecure installs it anyway, and keeps the reason for the warning.
            match decide(sig.clone(), &release.public(), TrustMode::Production, true).unwrap() {
                Verified::Insecure(why) => assert!(why.contains(want), "{why}"),
                other => panic!("{sig:?} with --insecure: {other:?}"),
            }
        }
        // No key at all (a build without one, --insecure, no -k): nothing verifies.
        let v = verify_signature(good, "IMG.sig", None, TrustMode::Unconfigured, &WANT, true);
        assert!(matches!(v.unwrap(), Verified::Insecure(why) if why.contains("no trusted key")));
    }

    #[test]
    fn an_image_signed_with_the_test_key_installs_only_in_a_test_build() {
        let sig = Sidecar::Found(sig_text(&test_secret(), "1.0.0", "stable"));
        // A test build trusts the TEST key itself.
        decide(sig.clone(), &PublicKey::test(), TrustMode::Test, false).unwrap();
        // Every other build trusts another key, and names the TEST key when it sees it.
        let release = release_secret().public();
        for mode in [TrustMode::Production, TrustMode::Unconfigured] {
            let msg = format!(
                "{:#}",
                decide(sig.clone(), &release, mode, false).unwrap_err()
            );
            assert!(
                msg.contains("signed with Keel's public TEST key"),
                "{mode:?}: {msg}"
            );
        }
        // This very build: a test build installs it, any other refuses it (see the trust mode).
        let trusted = TRUST.compiled_key().unwrap_or(release);
        assert_eq!(
            decide(sig, &trusted, TRUST, false).is_ok(),
            TRUST == TrustMode::Test,
            "{TRUST}"
        );
    }

    fn plan_with(key_file: Option<PathBuf>, insecure: bool) -> Plan {
        let mut args = InstallArgs {
            device: Some("/dev/null".into()),
            key_file,
            insecure,
            ..InstallArgs::default()
        };
        args.image_file = Some("/i.gz".into());
        cli::plan(&args, &crate::live::Running::default()).unwrap()
    }

    #[test]
    fn the_trusted_key_comes_from_k_or_the_build_and_is_never_the_test_key_outside_a_test_build() {
        let test_pub = key_file("../release/keys/test-key.pub.pem");
        let release_pub = key_file("tests/fixtures/release-key.pub.pem");
        for mode in [
            TrustMode::Test,
            TrustMode::Production,
            TrustMode::Unconfigured,
        ] {
            let got = trusted_key(&plan_with(Some(release_pub.clone()), false), mode).unwrap();
            assert_eq!(got, Some(release_secret().public()), "{mode:?}");
            let test = trusted_key(&plan_with(Some(test_pub.clone()), false), mode);
            match mode {
                TrustMode::Test => assert_eq!(test.unwrap(), Some(PublicKey::test())),
                _ => {
                    let msg = format!("{:#}", test.unwrap_err());
                    assert!(
                        msg.starts_with(&format!("refusing to trust -k {}", test_pub.display()))
                            && msg.contains("Keel's public TEST key"),
                        "{mode:?}: {msg}"
                    );
                }
            }
        }
        assert_eq!(
            trusted_key(&plan_with(None, false), TrustMode::Test).unwrap(),
            Some(PublicKey::test())
        );
        let msg = trusted_key(&plan_with(None, false), TrustMode::Unconfigured)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("trusts no key") && msg.contains("-k KEYFILE"),
            "{msg}"
        );
        assert_eq!(
            trusted_key(&plan_with(None, true), TrustMode::Unconfigured).unwrap(),
            None
        );
    }

    #[test]
    fn only_a_truly_missing_sidecar_is_absent() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("a.sig");
        fs::write(&file, "text").unwrap();
        assert_eq!(read_local(&file), Sidecar::Found("text".into()));
        assert_eq!(read_local(&d.path().join("none.sig")), Sidecar::Absent);
        let dir = d.path().join("dir.sig");
        fs::create_dir(&dir).unwrap();
        let dangling = d.path().join("dangling.sig");
        std::os::unix::fs::symlink(d.path().join("gone"), &dangling).unwrap();
        let loop_ = d.path().join("loop.sig");
        std::os::unix::fs::symlink(&loop_, &loop_).unwrap();
        for (path, want) in [
            (dir, "Is a directory"),
            (dangling, "is a dangling symlink (to "),
            (loop_, "reading "),
        ] {
            match read_local(&path) {
                Sidecar::Unreadable(why) => assert!(why.contains(want), "{why}"),
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn an_invalid_ignition_config_is_refused_with_its_json_paths() {
        check_ignition(br#"{"ignition":{"version":"3.3.0"}}"#, "ok.ign").unwrap();
        let bad = br#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"relative/x","contents":{"source":"data:,x"}}]}}"#;
        let msg = check_ignition(bad, "bad.ign").unwrap_err().to_string();
        assert!(
            msg.starts_with("the Ignition config bad.ign is invalid (1 error(s)); nothing was written:\n  error: $.storage.files[0].path"),
            "{msg}"
        );
        for (bad, want) in [
            (&b"{not json"[..], "invalid JSON"),
            (br#"{"ignition":{"version":"9.9.9"}}"#, "$.ignition.version"),
            (b"[]", "error: $"),
        ] {
            let msg = check_ignition(bad, "x.ign").unwrap_err().to_string();
            assert!(msg.contains(want), "{msg}");
        }
    }
}
