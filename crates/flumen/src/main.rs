//! The `flumen` binary: parse the command line and hand over to `flumen::cli`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    flumen::cli::run(flumen::cli::Cli::parse())
}
