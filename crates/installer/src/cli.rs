//! The command line, as Container Linux's `coreos-install`, and the validated [`Plan`] it
//! becomes. Kernel arguments (`kargs`) fill the same [`InstallArgs`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, ensure, Result};
use clap::Parser;
use release::layout;

use crate::live::Running;

/// Install Keel to a disk: fetch the signed release image for VERSION and CHANNEL from BASEURL
/// (or take a local file), check that its signature names that release, verify the image against
/// it while streaming it onto DEVICE, write the partition table last, and put the Ignition
/// config on the OEM partition.
#[derive(Parser, Debug, Clone, PartialEq, Eq, Default)]
#[command(
    name = "coreos-install",
    version,
    about,
    help_expected = true,
    disable_version_flag = true
)]
pub struct InstallArgs {
    /// Target disk (a block device such as /dev/vda; a regular file is written like a disk).
    #[arg(short = 'd', value_name = "DEVICE")]
    pub device: Option<PathBuf>,
    /// Ignition config to put on the OEM partition as config.ign (must be a valid config; it is
    /// checked as `ignition validate` does before anything is written).
    #[arg(short = 'i', value_name = "IGNITION")]
    pub ignition: Option<PathBuf>,
    /// Fetch the Ignition config from URL instead (http or https).
    #[arg(
        short = 'I',
        long = "ignition-url",
        value_name = "URL",
        conflicts_with = "ignition"
    )]
    pub ignition_url: Option<String>,
    /// Release server: images at BASEURL/VERSION/keel_production_image.bin.gz (default: the
    /// channel's own base URL).
    #[arg(short = 'b', value_name = "BASEURL")]
    pub base_url: Option<String>,
    /// Version to install, or `current` (default: the running system's VERSION_ID, else
    /// `current`). `stable`, `beta`, `alpha` or `edge` mean that channel's current version.
    #[arg(short = 'V', value_name = "VERSION")]
    pub os_version: Option<String>,
    /// Release channel (default stable); alone it implies -V current.
    #[arg(short = 'C', value_name = "CHANNEL")]
    pub channel: Option<String>,
    /// Install this local image (gzip or raw) instead of downloading; its signature IMAGE.sig
    /// must sit beside it (or give --insecure).
    #[arg(short = 'f', value_name = "IMAGE", conflicts_with_all = ["base_url", "image_url"])]
    pub image_file: Option<PathBuf>,
    /// Download the image from this URL (signature at URL.sig, digest at URL.sha256).
    #[arg(
        short = 'u',
        long = "image-url",
        value_name = "URL",
        conflicts_with = "base_url"
    )]
    pub image_url: Option<String>,
    /// Trust this Ed25519 public key (PEM) instead of the compiled-in one (required when the
    /// installer was built without one). Keel's public TEST key is refused unless this is a
    /// test build.
    #[arg(short = 'k', value_name = "KEYFILE")]
    pub key_file: Option<PathBuf>,
    /// Install even if the image has no valid signature (none, unreadable, malformed, not by the
    /// trusted key, or not for the release asked for); prints a warning. Development only.
    #[arg(long)]
    pub insecure: bool,
    /// Dry run: check the device and the release, print what would happen, write nothing.
    #[arg(short = 'y')]
    pub dry_run: bool,
    /// Retries of each download after a network error or a 5xx answer: a number or `infinite`.
    #[arg(long, value_name = "N", default_value = "5")]
    pub fetch_retries: Retries,
    /// Take the settings from `coreos.inst.*` kernel arguments in FILE (/proc/cmdline) instead:
    /// the unattended install of a live boot.
    #[arg(long = "kernel-args", value_name = "FILE", exclusive = true)]
    pub kernel_args: Option<PathBuf>,
    /// Print the installer's own version.
    #[arg(long = "version", action = clap::ArgAction::Version)]
    pub print_version: Option<bool>,
}

/// How often a failed download is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retries {
    /// At most this many retries.
    Count(u32),
    /// Until it works.
    Infinite,
}

impl Default for Retries {
    fn default() -> Self {
        Retries::Count(5)
    }
}

impl FromStr for Retries {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "infinite" => Ok(Retries::Infinite),
            n => n
                .parse()
                .map(Retries::Count)
                .map_err(|_| format!("{s:?} is neither a number nor `infinite`")),
        }
    }
}

impl fmt::Display for Retries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Retries::Count(n) => write!(f, "{n}"),
            Retries::Infinite => f.write_str("infinite"),
        }
    }
}

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A release server: `base`/`version`/keel_production_image.bin.gz; `version` may be
    /// `current`, resolved through `base`/current/version.txt.
    Release {
        /// Base URL without a trailing slash.
        base: String,
        /// A version or `current`.
        version: String,
        /// The channel the base URL belongs to (for messages).
        channel: String,
    },
    /// An image URL given whole.
    Url(String),
    /// A local file.
    File(PathBuf),
}

/// Where the Ignition config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnitionSource {
    /// A local file.
    File(PathBuf),
    /// An http(s) URL.
    Url(String),
}

/// The validated settings of one install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The target.
    pub device: PathBuf,
    /// The image.
    pub source: Source,
    /// Version named by `-V` (for the success line with `-f`/`-u`).
    pub version_label: Option<String>,
    /// The config for the OEM partition.
    pub ignition: Option<IgnitionSource>,
    /// `-k`.
    pub key_file: Option<PathBuf>,
    /// `--insecure`: an image without a valid signature is installed (with a warning), not
    /// refused.
    pub insecure: bool,
    /// The channel the image must be signed for: the release's channel (given or the default)
    /// when installing from a release server, else only a channel given with -C.
    pub channel: Option<String>,
    /// `-y`.
    pub dry_run: bool,
    /// Download retries.
    pub retries: Retries,
}

/// Turn arguments into a plan. `running` is the running system: its VERSION_ID (the default
/// `-V`, as CL took it from /etc/os-release) and, on a live boot, where its own release comes
/// from (see [`crate::live`]).
pub fn plan(args: &InstallArgs, running: &Running) -> Result<Plan> {
    let running_version = running.version.as_deref();
    let Some(device) = args.device.clone() else {
        bail!("no target device: give -d DEVICE (for example -d /dev/vda)");
    };
    let ignition = match (&args.ignition, &args.ignition_url) {
        (Some(p), _) => Some(IgnitionSource::File(p.clone())),
        (None, Some(u)) => {
            ensure!(
                u.starts_with("http://") || u.starts_with("https://"),
                "Ignition URL {u:?}: only http:// and https:// are supported"
            );
            Some(IgnitionSource::Url(u.clone()))
        }
        (None, None) => None,
    };
    let (mut channel, mut version) = (args.channel.clone(), args.os_version.clone());
    // CL compatibility: a channel name as the version means that channel's current release.
    if let Some(v) = &version {
        if layout::CHANNELS.contains(&v.as_str()) {
            ensure!(
                channel.is_none() || channel.as_deref() == Some(v),
                "-V {v} names a channel, but -C says {}",
                channel.as_deref().unwrap_or_default()
            );
            channel = Some(v.clone());
            version = Some(layout::CURRENT.to_string());
        }
    }
    if channel.is_some() && version.is_none() {
        version = Some(layout::CURRENT.to_string());
    }
    let explicit_channel = channel.clone();
    let channel = channel.unwrap_or_else(|| layout::DEFAULT_CHANNEL.to_string());
    ensure!(
        layout::valid_version(&channel),
        "channel {channel:?} is not a plain name"
    );
    if let Some(v) = &version {
        ensure!(
            layout::valid_version(v),
            "version {v:?} is not a plain version (digits, letters, . - _ +)"
        );
    }
    let source = if let Some(file) = &args.image_file {
        Source::File(file.clone())
    } else if let Some(url) = &args.image_url {
        ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "image URL {url:?}: only http:// and https:// are supported"
        );
        Source::Url(url.clone())
    } else if let Some(image) = carried_source(args, running)? {
        Source::File(image)
    } else {
        let base = match (&args.base_url, running) {
            (Some(b), _) => b.clone(),
            (None, Running { live: false, .. }) => layout::channel_base_url(&channel),
            (
                None,
                Running {
                    release_url: Some(u),
                    ..
                },
            ) => u.clone(),
            (None, Running { live: true, .. }) => bail!("{NO_LIVE_SOURCE}"),
        };
        ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "base URL {base:?}: only http:// and https:// are supported"
        );
        let version = version
            .clone()
            .or_else(|| {
                running_version
                    .filter(|v| layout::valid_version(v))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| layout::CURRENT.to_string());
        Source::Release {
            base: base.trim_end_matches('/').to_string(),
            version,
            channel: channel.clone(),
        }
    };
    let channel = match source {
        Source::Release { .. } => Some(channel),
        Source::Url(_) | Source::File(_) => explicit_channel,
    };
    Ok(Plan {
        device,
        source,
        version_label: version.filter(|v| v != layout::CURRENT),
        ignition,
        key_file: args.key_file.clone(),
        insecure: args.insecure,
        channel,
        dry_run: args.dry_run,
        retries: args.fetch_retries,
    })
}

/// Why a live system with no source given cannot install.
const NO_LIVE_SOURCE: &str = "this live system knows no release server and carries no release \
image: give -b BASEURL (or -u URL, or -f IMAGE), boot it with keel.release_url=BASEURL on the \
kernel command line, or boot it with image-build's install.ipxe, which carries the release image";

/// The release image a live system carries, when the command line names no source, no other
/// version or channel, and the kernel command line names no release server.
fn carried_source(args: &InstallArgs, running: &Running) -> Result<Option<PathBuf>> {
    let Some(image) = &running.carried_image else {
        return Ok(None);
    };
    if args.base_url.is_some() || running.release_url.is_some() {
        return Ok(None);
    }
    ensure!(
        args.os_version.is_none() && args.channel.is_none(),
        "this live system carries only its own release ({}) and knows no release server: \
         give -b BASEURL to install another version or channel",
        running.version.as_deref().unwrap_or("version unknown")
    );
    Ok(Some(image.clone()))
}

/// `VERSION_ID` from os-release text.
pub fn os_release_version(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("VERSION_ID="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .find(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &str) -> Result<InstallArgs, clap::Error> {
        InstallArgs::try_parse_from(
            std::iter::once("coreos-install").chain(argv.split_whitespace()),
        )
    }

    fn release(base: &str, version: &str, channel: &str) -> Source {
        Source::Release {
            base: base.into(),
            version: version.into(),
            channel: channel.into(),
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        InstallArgs::command().debug_assert();
    }

    #[test]
    fn command_lines_become_plans() {
        let stable = layout::channel_base_url("stable");
        let beta = layout::channel_base_url("beta");
        struct Case {
            argv: &'static str,
            running: Option<&'static str>,
            source: Source,
            label: Option<&'static str>,
        }
        let cases = [
            Case {
                argv: "-d /dev/vda",
                running: None,
                source: release(&stable, "current", "stable"),
                label: None,
            },
            Case {
                argv: "-d /dev/vda",
                running: Some("0.3.0"),
                source: release(&stable, "0.3.0", "stable"),
                label: None,
            },
            Case {
                argv: "-d /dev/vda -V 1.2.3 -b http://h:8/x/",
                running: Some("0.3.0"),
                source: release("http://h:8/x", "1.2.3", "stable"),
                label: Some("1.2.3"),
            },
            Case {
                argv: "-d /dev/vda -C beta",
                running: Some("0.3.0"),
                source: release(&beta, "current", "beta"),
                label: None,
            },
            Case {
                argv: "-d /dev/vda -V beta",
                running: None,
                source: release(&beta, "current", "beta"),
                label: None,
            },
            Case {
                argv: "-d /dev/vda -C beta -V 2.0",
                running: None,
                source: release(&beta, "2.0", "beta"),
                label: Some("2.0"),
            },
            Case {
                argv: "-d /dev/vda -f /tmp/x.bin.gz",
                running: None,
                source: Source::File("/tmp/x.bin.gz".into()),
                label: None,
            },
            Case {
                argv: "-d /dev/vda -f /tmp/x.bin.gz -V 9",
                running: None,
                source: Source::File("/tmp/x.bin.gz".into()),
                label: Some("9"),
            },
            Case {
                argv: "-d /dev/vda -u http://h/i.gz",
                running: None,
                source: Source::Url("http://h/i.gz".into()),
                label: None,
            },
        ];
        for c in cases {
            let args = parse(c.argv).unwrap_or_else(|e| panic!("{}: {e}", c.argv));
            let plan = plan(&args, &Running::installed(c.running))
                .unwrap_or_else(|e| panic!("{}: {e}", c.argv));
            assert_eq!(plan.source, c.source, "{}", c.argv);
            assert_eq!(plan.version_label.as_deref(), c.label, "{}", c.argv);
            assert_eq!(plan.device, PathBuf::from("/dev/vda"));
        }
    }

    #[test]
    fn options_map_onto_the_plan() {
        let args =
            parse("-d /dev/sda -i /tmp/c.ign -k /k.pem -y --fetch-retries infinite").unwrap();
        let p = plan(&args, &Running::default()).unwrap();
        assert_eq!(p.ignition, Some(IgnitionSource::File("/tmp/c.ign".into())));
        assert_eq!(p.key_file, Some(PathBuf::from("/k.pem")));
        assert!(!p.insecure);
        assert!(
            plan(&parse("-d x --insecure").unwrap(), &Running::default())
                .unwrap()
                .insecure
        );
        assert!(p.dry_run);
        assert_eq!(p.retries, Retries::Infinite);
        let p = plan(
            &parse("-d /dev/sda -I https://h/c.ign").unwrap(),
            &Running::default(),
        )
        .unwrap();
        assert_eq!(
            p.ignition,
            Some(IgnitionSource::Url("https://h/c.ign".into()))
        );
    }

    #[test]
    fn bad_command_lines_are_refused_with_a_reason() {
        let cases = [
            ("", "no target device"),
            ("-d /dev/vda -V ../../etc", "not a plain version"),
            ("-d /dev/vda -b ftp://h", "only http:// and https://"),
            ("-d /dev/vda -I file:///c.ign", "only http:// and https://"),
            ("-d /dev/vda -V beta -C stable", "names a channel"),
        ];
        for (argv, want) in cases {
            let err = plan(&parse(argv).unwrap(), &Running::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{argv:?}: {err}");
        }
        for argv in [
            "-d /dev/vda -f x -b http://h",
            "-d /dev/vda -i a -I http://h/c",
            "-d x --fetch-retries lots",
            "-d x --kernel-args /proc/cmdline",
        ] {
            assert!(parse(argv).is_err(), "{argv:?} parsed");
        }
    }

    #[test]
    fn the_channel_to_check_is_the_release_channel_or_an_explicit_one() {
        for (argv, want) in [
            ("-d x", Some("stable")),
            ("-d x -b http://h -V 1", Some("stable")),
            ("-d x -C beta", Some("beta")),
            ("-d x -V edge", Some("edge")),
            ("-d x -f /i.gz", None),
            ("-d x -f /i.gz -C alpha", Some("alpha")),
            ("-d x -u http://h/i.gz", None),
        ] {
            let p = plan(&parse(argv).unwrap(), &Running::default()).unwrap();
            assert_eq!(p.channel.as_deref(), want, "{argv}");
        }
    }

    #[test]
    fn os_release_gives_the_running_version() {
        assert_eq!(
            os_release_version("NAME=Keel\nVERSION_ID=0.1.0\n").as_deref(),
            Some("0.1.0")
        );
        assert_eq!(os_release_version("VERSION_ID=\"2\"").as_deref(), Some("2"));
        assert_eq!(os_release_version("NAME=x"), None);
    }
}
