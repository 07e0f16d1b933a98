//! sesscheck: a diagnostic and load-testing harness for web-application sessions.
//!
//! The binary is a thin shell: `cli` parses arguments, and each subcommand hands
//! over to the module that owns the concept (scenario, engine, report, target).

mod cli;
mod target;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
