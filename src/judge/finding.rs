//! A finding: one kind of problem the judge found, how often, since when, and an example.
//! This is the judge's output and part of the report contract.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One kind of problem, with how often it happened and an example.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier: logout, restart_logout, worker_coverage, session_interrupted, ...
    pub kind: String,
    pub severity: Severity,
    pub count: u64,
    pub first_at_s: f64,
    pub message: String,
    pub example: serde_json::Value,
}
