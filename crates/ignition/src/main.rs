//! `ignition`: validate an Ignition config, apply it into a directory tree, or run the first
//! boot from the initramfs.
//!
//! Exit status, the same for every command: 0 on success, [`FAILED`] (1) when the config is
//! invalid or could not be applied (or first boot failed), 2 for a usage error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Every failure: an invalid config, one that could not be fetched or applied, a failed
/// first boot. (Usage errors exit 2, as clap does.)
const FAILED: u8 = 1;

/// Validate and apply Ignition configs (spec 2.0–2.4 and 3.0–3.5).
#[derive(Debug, Parser)]
#[command(
    name = "ignition",
    version,
    about,
    after_help = "Exit status: 0 on success; 1 when the config is invalid or could not be \
                  applied (validate, apply and firstboot alike); 2 for a usage error."
)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a config: warnings go to stderr; every error too, and exit status 1, if invalid.
    Validate {
        /// Config file ("-" for standard input).
        file: PathBuf,
    },
    /// Validate a config, fetch what it references, and apply it into a directory tree; exit
    /// status 1 when it is invalid or cannot be applied.
    Apply {
        /// Directory that plays the root of the machine being provisioned.
        #[arg(long)]
        root: PathBuf,
        /// Config file ("-" for standard input).
        file: PathBuf,
    },
    /// First boot (run by the initramfs): if this is a first boot, find the config (kernel
    /// command line URL, then config.ign on the OEM partition), validate it in full, set up
    /// disks and filesystems, apply it into the root and remove the first-boot marker.
    Firstboot(FirstbootArgs),
}

#[derive(Debug, clap::Args)]
struct FirstbootArgs {
    /// The kernel command line.
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// The root being provisioned.
    #[arg(long, default_value = "/sysroot")]
    root: PathBuf,
    /// The mounted OEM partition (config.ign, oem:// URLs).
    #[arg(long)]
    oem_dir: Option<PathBuf>,
    /// The first-boot marker on the ESP; removed after success.
    #[arg(long)]
    marker: Option<PathBuf>,
    /// Only say what would happen: `skip`, `run local` or `run network` (an http(s) config
    /// URL, so the caller brings the network up first).
    #[arg(long)]
    probe: bool,
    /// Attempts per http(s) fetch (backoff up to 5 s between them).
    #[arg(long, default_value_t = 24)]
    fetch_attempts: u32,
}

fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// An error with its causes, each said once: `{:#}` would join every cause's text to its
/// parent's, and the library's errors already end with their cause's text.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Prints every finding on its own line (`error: $.path: reason`).
fn print_report(report: &ignition::Report) {
    for e in &report.entries {
        eprintln!("{e}");
    }
}

fn firstboot(args: FirstbootArgs) -> Result<ExitCode> {
    use ignition::firstboot::{self, Decision, Paths};
    let paths = Paths {
        cmdline: args.cmdline,
        root: args.root,
        oem_dir: args.oem_dir,
        marker: args.marker,
    };
    if args.probe {
        let answer = match firstboot::decide(&paths) {
            Ok(Decision::AlreadyDone) => "skip",
            Ok(Decision::Run { source, .. }) if source.needs_network() => "run network",
            Ok(Decision::Run { .. }) => "run local",
            Err(e) => {
                eprintln!("ignition: error: {e}");
                return Ok(ExitCode::from(FAILED));
            }
        };
        println!("{answer}");
        return Ok(ExitCode::SUCCESS);
    }
    let fetcher = ignition::StdFetcher {
        max_attempts: Some(args.fetch_attempts.max(1)),
        oem_dir: paths.oem_dir.clone(),
        ..Default::default()
    };
    let disks = ignition::storage::SystemDisks::default();
    let tools = ignition::storage::Tools::default();
    if let Ok(Decision::Run { source, .. }) = firstboot::decide(&paths) {
        println!("ignition: first boot: config from {source}");
    }
    match firstboot::run(&paths, &fetcher, &disks, &tools) {
        Ok(summary) => {
            if summary.source.is_none() {
                println!("ignition: not a first boot; nothing to do");
                return Ok(ExitCode::SUCCESS);
            }
            for w in &summary.warnings {
                println!("ignition: {w}");
            }
            for line in &summary.storage {
                println!("ignition: {line}");
            }
            for s in &summary.outcome.skipped {
                println!(
                    "ignition: warning: {}: skipped {}: {}",
                    s.at, s.what, s.reason
                );
            }
            for w in &summary.outcome.warnings {
                println!("ignition: warning: {w}");
            }
            for a in &summary.outcome.actions {
                println!("ignition: {a}");
            }
            match &summary.marker_removed {
                Some(m) => println!(
                    "ignition: first boot done; removed the marker {}",
                    m.display()
                ),
                None => println!("ignition: first boot done"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("ignition: {line}");
            }
            eprintln!("ignition: first boot failed: {e}; the marker is kept, so the next boot tries again (resuming what this one finished)");
            Ok(ExitCode::from(FAILED))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Firstboot(args) => firstboot(args),
        Command::Validate { file } => {
            let bytes = read_input(&file)?;
            match ignition::parse(&bytes) {
                Ok(cfg) => {
                    for w in &cfg.warnings {
                        eprintln!("{w}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(report) => {
                    print_report(&report);
                    Ok(ExitCode::from(FAILED))
                }
            }
        }
        Command::Apply { root, file } => {
            let bytes = read_input(&file)?;
            let fetcher = ignition::StdFetcher::default();
            let cfg = match ignition::load(&bytes, &fetcher) {
                Ok(cfg) => cfg,
                Err(report) => {
                    print_report(&report);
                    eprintln!("nothing was applied");
                    return Ok(ExitCode::from(FAILED));
                }
            };
            for w in &cfg.warnings {
                eprintln!("{w}");
            }
            let outcome = ignition::apply(&cfg, &root, &fetcher)
                .with_context(|| format!("applying {} into {}", file.display(), root.display()))?;
            for s in &outcome.skipped {
                eprintln!("warning: {}: skipped {}: {}", s.at, s.what, s.reason);
            }
            for w in &outcome.warnings {
                eprintln!("warning: {w}");
            }
            for a in &outcome.actions {
                println!("{a}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "error",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            ExitCode::from(FAILED)
        }
    }
}
