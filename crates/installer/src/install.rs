//! The install, top to bottom:
//!
//!  1. settings: arguments (or kernel arguments) → [`Plan`]; the trusted key; the Ignition
//!     config read and checked to be JSON — all before the disk is opened;
//!  2. the disk: a whole disk (or a file), 512-byte sectors, not mounted, not swap, not held,
//!     and the kernel willing to reread its table;
//!  3. the release: `current` resolved through version.txt, digest and signature fetched;
//!  4. the write ([`stream::write_image`]): both ends zeroed, the image streamed, verified, the
//!     first MiB written last;
//!  5. the partition table reread, `config.ign` put on the OEM partition;
//!  6. `Success! Keel VERSION is installed on DEVICE`.
//!
//! Any failure after step 4 began leaves the disk with no partition table at either end, and
//! the error says what failed.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use release::layout::{self, SHA256_SUFFIX, SIG_SUFFIX};
use release::sign::parse_digest_line;
use release::{PublicKey, Signature};

use crate::busy::Host;
use crate::cli::{self, IgnitionSource, InstallArgs, Plan, Source};
use crate::device::Device;
use crate::http::Http;
use crate::progress::Progress;
use crate::stream::{self, Expect};
use crate::{kargs, oem};

/// The machine around the installer: where /proc, /sys and os-release are.
#[derive(Debug, Clone)]
pub struct Env {
    /// /proc and /sys.
    pub host: Host,
    /// The running system's os-release (for the default version).
    pub os_release: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            host: Host::default(),
            os_release: "/etc/os-release".into(),
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

fn trusted_key(plan: &Plan) -> Result<PublicKey> {
    let key = match &plan.key_file {
        Some(p) => PublicKey::read(p)?,
        None => PublicKey::compiled_in(),
    };
    if key.is_test() {
        eprintln!(
            "coreos-install: WARNING: trusting Keel's public TEST signing key (id {}): anyone can sign \
             an image that passes. Production installers are built with KEEL_TRUSTED_KEY or run with -k KEYFILE.",
            key.id()
        );
    }
    Ok(key)
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
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("the Ignition config {what} is not JSON"))?;
    ensure!(
        value.is_object(),
        "the Ignition config {what} is not a JSON object"
    );
    Ok(bytes)
}

/// Where the image comes from, resolved: a URL or a file, and what to call it.
struct Resolved {
    label: String,
    location: Location,
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
                label: version,
            }
        }
        Source::Url(u) => Resolved {
            label: plan
                .version_label
                .clone()
                .unwrap_or_else(|| format!("(from {u})")),
            location: Location::Url(u.clone()),
        },
        Source::File(p) => Resolved {
            label: plan
                .version_label
                .clone()
                .unwrap_or_else(|| format!("(from {})", p.display())),
            location: Location::File(p.clone()),
        },
    })
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The digest and signature the image must match.
fn expectations(loc: &Location, key: PublicKey, http: &Http) -> Result<Expect> {
    match loc {
        Location::Url(url) => {
            let sig_url = format!("{url}{SIG_SUFFIX}");
            let sum_url = format!("{url}{SHA256_SUFFIX}");
            let sig = http
                .get_text(&sig_url)
                .with_context(|| format!("image signature unavailable: {sig_url}"))?;
            let sum = http
                .get_text(&sum_url)
                .with_context(|| format!("image digest unavailable: {sum_url}"))?;
            let sig = Signature::parse(&sig).with_context(|| sig_url.clone())?;
            let digest = parse_digest_line(&sum).with_context(|| sum_url.clone())?;
            Ok(Expect {
                digest: Some(digest),
                signature: Some((sig, key)),
            })
        }
        Location::File(path) => {
            let sig_path = sidecar(path, SIG_SUFFIX);
            let sum_path = sidecar(path, SHA256_SUFFIX);
            let signature = match fs::read_to_string(&sig_path) {
                Ok(text) => Some((
                    Signature::parse(&text).with_context(|| sig_path.display().to_string())?,
                    key,
                )),
                Err(_) => None,
            };
            let digest = match fs::read_to_string(&sum_path) {
                Ok(text) => {
                    Some(parse_digest_line(&text).with_context(|| sum_path.display().to_string())?)
                }
                Err(_) => None,
            };
            match (&signature, &digest) {
                (None, None) => eprintln!(
                    "coreos-install: WARNING: no {} or {} beside {}: installing it UNVERIFIED",
                    sig_path.display(),
                    sum_path.display(),
                    path.display()
                ),
                (None, Some(_)) => eprintln!(
                    "coreos-install: WARNING: no signature {} beside {}: only its SHA-256 will be checked",
                    sig_path.display(),
                    path.display()
                ),
                (Some(_), _) => eprintln!("coreos-install: {} will be verified with {}", path.display(), sig_path.display()),
            }
            Ok(Expect { digest, signature })
        }
    }
}

fn human(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Install as `args` say; see the module doc.
pub fn install(args: &InstallArgs, env: &Env) -> Result<Outcome> {
    let running = fs::read_to_string(&env.os_release)
        .ok()
        .and_then(|t| cli::os_release_version(&t));
    let plan = cli::plan(args, running.as_deref())?;
    let key = trusted_key(&plan)?;
    let http = Http::new(plan.retries)?;
    let ignition = plan
        .ignition
        .as_ref()
        .map(|src| load_ignition(src, &http))
        .transpose()?;

    let mut dev = Device::open(&plan.device)?;
    dev.check_exclusive(&env.host)?;

    let resolved = resolve(&plan, &http)?;
    let expect = expectations(&resolved.location, key, &http)?;
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
            let resp = http
                .get(u)
                .with_context(|| format!("image unavailable: {u}"))?;
            let len = resp.content_length();
            (Box::new(resp), len)
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
        "coreos-install: wrote {} bytes ({} bytes downloaded, digest and signature {})",
        written.image,
        written.received,
        match (&expect.digest, &expect.signature) {
            (_, Some(_)) => "verified",
            (Some(_), None) => "partly verified: digest only",
            (None, None) => "NOT checked",
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
