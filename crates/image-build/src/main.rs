//! `image-build`: build Keel's disk image and PXE artifacts.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use image_build::build::{build, Options};
use image_build::rootfs::RootfsSpec;
use slots::layout::Sizes;

/// Build Keel's bootable GPT disk image (build/disk.img) and PXE artifacts (build/pxe/) from
/// Debian bookworm packages and Keel's own binaries.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Output directory.
    #[arg(long, default_value = "build")]
    out: PathBuf,
    /// Directory holding the release builds of agent and updater.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Cache for the Debian rootfs tarball (default: OUT/cache).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Version recorded in os-release and the slot.
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    release_version: String,
    /// Debian mirror.
    #[arg(long, default_value = "http://deb.debian.org/debian")]
    mirror: String,
    /// Size of each USR slot in MiB.
    #[arg(long, default_value_t = 1024)]
    usr_mib: u64,
    /// Ed25519 secret key (PEM, `openssl genpkey -algorithm ed25519`) that signs the release
    /// image in OUT/release/ (required). Keel's public TEST key
    /// (crates/release/keys/test-key.pem) is accepted only by a test build (`--features
    /// test-keys`); a production build accepts only the key it trusts (KEEL_TRUSTED_KEY).
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
    /// Channel the release is signed for; `coreos-install -C CHANNEL` (default stable) refuses
    /// an image signed for another one.
    #[arg(long, default_value = release::layout::DEFAULT_CHANNEL)]
    channel: String,
    /// Release server (base URL, as `coreos-install -b`) that the example iPXE scripts name with
    /// keel.release_url=, so `coreos-install -d DEV -i cfg.json` on the live system installs
    /// from it.
    #[arg(long, value_name = "URL")]
    release_url: Option<String>,
    /// TUF key directory (root.json and the targets, snapshot and timestamp keys; see
    /// crates/release/keys/tuf/README.md) that signs the channel's update repository, published
    /// to OUT/update/CHANNEL/ (earlier releases there are kept). Without it none is published.
    /// Keel's public TEST keys (crates/release/keys/tuf) are accepted only by a test build.
    #[arg(long, value_name = "DIR")]
    tuf_keys: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match release::TRUST {
        release::TrustMode::Test => tracing::warn!("{}", release::TRUST),
        _ => tracing::info!("{}", release::TRUST),
    }
    let opts = Options {
        cache: cli.cache.clone().unwrap_or_else(|| cli.out.join("cache")),
        out: cli.out,
        bin_dir: cli.bin_dir,
        version: cli.release_version,
        rootfs: RootfsSpec {
            mirror: cli.mirror,
            ..RootfsSpec::default()
        },
        sizes: Sizes {
            usr_mib: cli.usr_mib,
            ..Sizes::default()
        },
        signing_key: cli.signing_key,
        channel: cli.channel,
        release_url: cli.release_url,
        tuf_keys: cli.tuf_keys,
    };
    let report = build(&opts)?;
    println!("{report}");
    println!(
        "built {0}/disk.img, {0}/pxe/ and {0}/release/{1}/ (serve {0}/release for coreos-install -b)",
        opts.out.display(),
        opts.version
    );
    Ok(())
}
