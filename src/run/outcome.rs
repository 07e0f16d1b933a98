//! How a run ends: the exit codes (a contract with CI scripts) and the error that carries one.

/// The exit codes, a contract with CI scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: every expectation held.
    Pass = 0,
    /// 1: the run completed and found problems.
    Fail = 1,
    /// 2: bad usage or an invalid scenario.
    Invalid = 2,
    /// 3: the target could not be reached, started or restarted.
    Unreachable = 3,
    /// 4: the run completed but measured no session: every login failed (a wrong password,
    /// path or field; or an app that fails every login). Not 1, so that CI can tell a setup
    /// that tests nothing from an app with a session bug.
    NotMeasured = 4,
    /// 130: stopped by Ctrl-C / SIGTERM (the report is still written).
    Interrupted = 130,
}

/// An error that ends the run with a given exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    pub outcome: Outcome,
    pub message: String,
}

/// An error that ends the run with exit 3 (the target could not be reached or started).
pub(super) fn unreachable(message: String) -> anyhow::Error {
    RunError {
        outcome: Outcome::Unreachable,
        message,
    }
    .into()
}
