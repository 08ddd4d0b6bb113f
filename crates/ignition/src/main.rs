//! `ignition`: validate an Ignition config, or apply it into a directory tree.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Validate and apply Ignition configs (spec 2.0–2.4 and 3.0–3.5).
#[derive(Debug, Parser)]
#[command(name = "ignition", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a config: warnings go to stderr; exit status 1 with every error if invalid.
    Validate {
        /// Config file ("-" for standard input).
        file: PathBuf,
    },
    /// Validate a config, fetch what it references, and apply it into a directory tree.
    Apply {
        /// Directory that plays the root of the machine being provisioned.
        #[arg(long)]
        root: PathBuf,
        /// Config file ("-" for standard input).
        file: PathBuf,
    },
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

/// Prints every finding on its own line (`error: $.path: reason`).
fn print_report(report: &ignition::Report) {
    for e in &report.entries {
        eprintln!("{e}");
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
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
                    Ok(ExitCode::FAILURE)
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
                    return Ok(ExitCode::FAILURE);
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
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
