//! sesscheck: a diagnostic and load-testing harness for web-application sessions.
//!
//! The binary is a thin shell: `cli` parses arguments, and each subcommand hands over to the
//! module that owns the concept. Data flows scenario → supervisor → engine (observations) →
//! detect (findings) → report.

mod accounts;
mod audit;
mod browser;
mod cli;
mod client;
mod detect;
mod detect_browser;
mod digest;
mod engine;
mod events;
mod guard;
mod init;
mod jsonseek;
mod live;
mod login_check;
mod observe;
mod openloop;
mod pool;
mod progress;
mod redact;
mod report;
mod run;
mod run_browser;
mod scenario;
mod seen_cookies;
mod shell;
mod supervisor;
mod target;
mod transport;
mod worker;
mod write;

#[cfg(test)]
mod proptests;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
