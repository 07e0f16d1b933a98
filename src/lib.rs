//! sesscheck: a diagnostic and load-testing harness for web-application sessions.
//!
//! Data flows one way, and so do the imports: a module may import the ones listed above it,
//! never one below it (`tests/layers.rs` holds the code to this order).
//!
//! ```text
//! demo                     the built-in demo target (imports nothing of the checker)
//! util, process, browser   leaves: JSON pointers, redaction, statistics; the process guard and
//!                          the target supervisor; the Chromium driver
//! scenario                 the scenario file: schema, ${VAR} interpolation, validation
//! observe                  what the load saw: observations, worker identity, the digest
//! http                     transport, connection pool, the per-user client and cookie jar
//! load                     virtual users: closed and open loop, shards, logins, progress
//! judge                    detectors and audits: observations -> findings
//! report                   the JSON report contract, its renderers, merge and compare
//! run                      `sesscheck run`: wiring, readiness, restarts, exit codes
//! cli                      argument parsing and the other subcommands
//! ```

pub mod demo;

pub mod util;

pub mod process;

pub mod browser;

pub mod scenario;

pub mod observe;

pub mod http;

pub mod load;

pub mod judge;

pub mod report;

pub mod run;

pub mod cli;
