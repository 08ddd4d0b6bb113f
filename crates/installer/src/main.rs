//! `coreos-install`: install Keel to a disk. See the `installer` library.

use std::process::ExitCode;

use clap::Parser;
use installer::cli::InstallArgs;

fn main() -> ExitCode {
    let args = InstallArgs::parse();
    match installer::install::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("coreos-install: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
