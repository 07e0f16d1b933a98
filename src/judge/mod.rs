//! Judging: observations and the digest in, findings out. The detectors (`detect`), the
//! configuration and cookie audits (`audit`), and the browser findings (`browser`). May import
//! `observe`, `scenario`, `browser` and `util`; never `load`, `report` or `run`.

pub mod audit;
pub mod browser;
pub mod detect;
pub mod expectations;
pub mod finding;
pub mod logins;
