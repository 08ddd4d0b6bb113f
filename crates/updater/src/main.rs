//! `updater`: Keel's A/B slot tool.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use slots::booted::{self, Booted};
use slots::store::EspStore;
use slots::Slot;
use updater::commands::{self, UpdatePaths};
use updater::esp::Kernel;
use updater::{config, state};

/// Keel's A/B updater: slot status, marking the running slot good, arming a slot trial.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Where the EFI system partition is mounted. `mark-good` and `set-next` write only to the
    /// mount point of a FAT filesystem holding Keel's layout (keel/grub.cfg, keel/A, keel/B).
    #[arg(long, default_value = "/boot", global = true)]
    esp: PathBuf,
    /// Kernel command line to read the booted slot from.
    #[arg(long, default_value = "/proc/cmdline", global = true)]
    cmdline: PathBuf,
    /// The update daemon's state file, which `status` reports.
    #[arg(long, default_value = state::DEFAULT_PATH, global = true)]
    state_file: PathBuf,
    /// update.conf files, lowest precedence first (repeat the flag for several).
    #[arg(long, default_values = config::PATHS, global = true)]
    update_conf: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print each slot's version, priority, tries left and good/failed flags, then the
    /// channel, the running and newest version, the update state and the last check.
    Status,
    /// Mark the booted slot good (run once the boot is healthy); records a rollback if GRUB
    /// fell back from a slot on trial.
    MarkGood,
    /// Boot SLOT next, on trial: GRUB falls back to the good slot if it is not marked good
    /// within TRIES attempts.
    SetNext {
        /// A or B.
        slot: Slot,
        /// Attempts before GRUB falls back (1 to 3).
        #[arg(long, default_value_t = 3)]
        tries: u8,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let store = EspStore::new(&cli.esp);
    let cmdline = std::fs::read_to_string(&cli.cmdline)
        .with_context(|| format!("reading {}", cli.cmdline.display()))?;
    let booted: Booted = booted::from_cmdline(&cmdline);
    match cli.command {
        Command::Status => {
            let paths = UpdatePaths {
                configs: cli.update_conf,
                state: cli.state_file,
            };
            print!("{}", commands::status(&store, booted, &paths))
        }
        Command::MarkGood => println!("{}", commands::mark_good(&store, &Kernel, booted)?),
        Command::SetNext { slot, tries } => {
            println!(
                "{}",
                commands::set_next(&store, &Kernel, booted, slot, tries)?
            )
        }
    }
    Ok(())
}
