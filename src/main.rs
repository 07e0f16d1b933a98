//! sesscheck: a diagnostic and load-testing harness for web-application sessions.
//!
//! The binary is a thin shell: `cli` parses arguments, and each subcommand hands over to the
//! module that owns the concept. Data flows scenario → supervisor → engine (observations) →
//! detect (findings) → report.

mod audit;
mod cli;
mod client;
mod detect;
mod digest;
mod engine;
mod guard;
mod jsonseek;
mod observe;
mod openloop;
mod pool;
mod progress;
mod redact;
mod report;
mod run;
mod scenario;
mod supervisor;
mod target;
mod transport;
mod worker;

#[cfg(test)]
mod proptests;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
