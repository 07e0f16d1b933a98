//! A finding: one kind of problem the judge found, how often, since when, and an example.
//! This is the judge's output and part of the report contract.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// What a finding is about. Serialised to the stable identifiers of the report contract
/// (`logout`, `restart_logout`, ...); CI scripts and `sesscheck merge`/`compare` key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A logged-in user answered as anonymous, nothing the user did explains it.
    Logout,
    /// Users logged out by a restart.
    RestartLogout,
    /// Fewer workers answered than `min_distinct_pids` asks for.
    WorkerCoverage,
    /// Django's SessionInterrupted (a 400 or the server log's pattern), or its like.
    SessionInterrupted,
    /// A page that never finished loading after a restart (loops, hangs, polling).
    InfiniteLoading,
    /// A login that did not succeed.
    LoginFailed,
    /// HTTP errors (5xx, transport failures).
    HttpError,
    /// Audits, each an expectation when its section is in the scenario.
    SessionConflict,
    SessionFixation,
    LogoutNotRevoked,
    SessionLifetime,
    CookieAttributes,
    Config,
    /// A page that answered every logged-in user 403 while their other pages worked: the
    /// accounts may not see it (an admin page). A warning; its answers are no logouts.
    PageRefused,
}

impl FindingKind {
    pub const ALL: [FindingKind; 14] = [
        FindingKind::Logout,
        FindingKind::RestartLogout,
        FindingKind::WorkerCoverage,
        FindingKind::SessionInterrupted,
        FindingKind::InfiniteLoading,
        FindingKind::LoginFailed,
        FindingKind::HttpError,
        FindingKind::SessionConflict,
        FindingKind::SessionFixation,
        FindingKind::LogoutNotRevoked,
        FindingKind::SessionLifetime,
        FindingKind::CookieAttributes,
        FindingKind::Config,
        FindingKind::PageRefused,
    ];

    /// Whether some expectation judges this kind: all but `page_refused`, which is advice
    /// about the scenario's pages (always a warning), not a fault of the app.
    pub fn can_fail(self) -> bool {
        self != FindingKind::PageRefused
    }

    /// The stable identifier, as in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Logout => "logout",
            FindingKind::RestartLogout => "restart_logout",
            FindingKind::WorkerCoverage => "worker_coverage",
            FindingKind::SessionInterrupted => "session_interrupted",
            FindingKind::InfiniteLoading => "infinite_loading",
            FindingKind::LoginFailed => "login_failed",
            FindingKind::HttpError => "http_error",
            FindingKind::SessionConflict => "session_conflict",
            FindingKind::SessionFixation => "session_fixation",
            FindingKind::LogoutNotRevoked => "logout_not_revoked",
            FindingKind::SessionLifetime => "session_lifetime",
            FindingKind::CookieAttributes => "cookie_attributes",
            FindingKind::Config => "config",
            FindingKind::PageRefused => "page_refused",
        }
    }
}

impl std::str::FromStr for FindingKind {
    type Err = String;

    fn from_str(s: &str) -> Result<FindingKind, String> {
        FindingKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("{s:?} is no finding kind"))
    }
}

/// A kind equals its identifier, so code and tests can say `f.kind == "logout"`.
impl PartialEq<&str> for FindingKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of problem, with how often it happened and an example.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub count: u64,
    pub first_at_s: f64,
    pub message: String,
    pub example: serde_json::Value,
}

/// The summed count of one kind's findings.
pub fn count_of(findings: &[Finding], kind: FindingKind) -> u64 {
    findings
        .iter()
        .filter(|f| f.kind == kind)
        .map(|f| f.count)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_to_their_stable_identifiers() {
        for kind in FindingKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(serde_json::from_value::<FindingKind>(json).unwrap(), kind);
        }
        let unknown = serde_json::from_value::<FindingKind>("mystery".into()).unwrap_err();
        assert!(unknown.to_string().contains("mystery"), "{unknown}");
    }
}
