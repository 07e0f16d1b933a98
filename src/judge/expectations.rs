//! The expectations: one table saying, for every check a report can hold, what it measures
//! (a finding kind's count or a figure), its operator, and its limit (the scenario's
//! `[expect]` value or a default). Grading a run (`report::build`) and recomputing a check over
//! merged shards (`report::merge`) both go through `grade`, so they can never disagree, and
//! every check carries its limit and the counts behind it as numbers: nothing downstream reads
//! a message.

use crate::judge::finding::{Finding, FindingKind};
use crate::scenario::Expect;
use crate::util::stats::round3;
use serde::{Deserialize, Serialize};

/// The operator of a check: its figure must be at most / at least the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "<=")]
    AtMost,
    #[serde(rename = ">=")]
    AtLeast,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::AtMost => "<=",
            Op::AtLeast => ">=",
        }
    }

    pub fn holds(self, actual: f64, limit: f64) -> bool {
        match self {
            Op::AtMost => actual <= limit,
            Op::AtLeast => actual >= limit,
        }
    }
}

/// What a check measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    /// The summed count of one kind's findings.
    Findings(FindingKind),
    /// `http_error` findings per request.
    ErrorRate,
    /// The run's p99 latency (ms).
    P99Ms,
    /// The longest restart downtime (s); a restart never ready counts as infinite.
    DowntimeS,
    /// Distinct worker identities that answered.
    DistinctWorkers,
    /// The share of probes of logged-in users (outside restarts and their own logouts) that
    /// were authenticated.
    AuthPersistence,
}

/// When a check is in the report, and its limit then.
#[derive(Debug, Clone, Copy)]
pub enum When {
    /// Always; `[expect]` may set the limit, else this one.
    Always(f64),
    /// Only when `[expect]` sets the limit.
    Configured,
    /// When the scenario turned the audit of this finding kind on; the limit is 0.
    AuditOn,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Expectation {
    /// The check's name in the report (and the `[expect]` key, except for audits).
    pub name: &'static str,
    pub figure: Figure,
    pub op: Op,
    pub when: When,
    /// What the figure is, for the message ("unexplained logouts").
    pub what: &'static str,
    /// " ms", " s" or "".
    pub unit: &'static str,
    /// The scenario's limit, if it sets one.
    configured: fn(&Expect) -> Option<f64>,
}

const fn finding_count(
    name: &'static str,
    kind: FindingKind,
    what: &'static str,
    configured: fn(&Expect) -> Option<f64>,
) -> Expectation {
    Expectation {
        name,
        figure: Figure::Findings(kind),
        op: Op::AtMost,
        when: When::Always(0.0),
        what,
        unit: "",
        configured,
    }
}

const fn audit(name: &'static str, kind: FindingKind) -> Expectation {
    Expectation {
        name,
        figure: Figure::Findings(kind),
        op: Op::AtMost,
        when: When::AuditOn,
        what: "",
        unit: "",
        configured: |_| None,
    }
}

/// Every check, in the order a report lists them.
pub const EXPECTATIONS: [Expectation; 16] = [
    finding_count(
        "max_logouts",
        FindingKind::Logout,
        "unexplained logouts",
        |e| e.max_logouts.map(|n| n as f64),
    ),
    finding_count(
        "max_restart_logouts",
        FindingKind::RestartLogout,
        "users logged out by a restart",
        |e| e.max_restart_logouts.map(|n| n as f64),
    ),
    finding_count(
        "max_session_interrupted",
        FindingKind::SessionInterrupted,
        "interrupted requests",
        |e| e.max_session_interrupted.map(|n| n as f64),
    ),
    finding_count(
        "max_infinite_loading",
        FindingKind::InfiniteLoading,
        "infinite loads",
        |e| e.max_infinite_loading.map(|n| n as f64),
    ),
    finding_count(
        "max_login_failures",
        FindingKind::LoginFailed,
        "failed logins",
        |e| e.max_login_failures.map(|n| n as f64),
    ),
    Expectation {
        name: "max_error_rate",
        figure: Figure::ErrorRate,
        op: Op::AtMost,
        when: When::Always(0.0),
        what: "error rate",
        unit: "",
        configured: |e| e.max_error_rate,
    },
    Expectation {
        name: "max_p99_ms",
        figure: Figure::P99Ms,
        op: Op::AtMost,
        when: When::Configured,
        what: "p99 latency",
        unit: " ms",
        configured: |e| e.max_p99_ms,
    },
    Expectation {
        name: "max_downtime_s",
        figure: Figure::DowntimeS,
        op: Op::AtMost,
        when: When::Configured,
        what: "longest restart downtime",
        unit: " s",
        configured: |e| e.max_downtime_s,
    },
    Expectation {
        name: "min_distinct_pids",
        figure: Figure::DistinctWorkers,
        op: Op::AtLeast,
        when: When::Configured,
        what: "distinct worker PIDs",
        unit: "",
        configured: |e| e.min_distinct_pids.map(|n| n as f64),
    },
    Expectation {
        name: "auth_persistence",
        figure: Figure::AuthPersistence,
        op: Op::AtLeast,
        when: When::Configured,
        what: "probes of logged-in users",
        unit: "",
        configured: |e| e.auth_persistence,
    },
    audit("no_session_conflict", FindingKind::SessionConflict),
    audit("no_session_fixation", FindingKind::SessionFixation),
    audit("no_logout_not_revoked", FindingKind::LogoutNotRevoked),
    audit("no_session_lifetime", FindingKind::SessionLifetime),
    audit("no_cookie_attributes", FindingKind::CookieAttributes),
    audit("no_config", FindingKind::Config),
];

impl Expectation {
    /// The row of a check's name.
    pub fn named(name: &str) -> Option<&'static Expectation> {
        EXPECTATIONS.iter().find(|e| e.name == name)
    }

    /// The finding kind whose findings this check judges: they are errors when it fails and
    /// warnings while they stay within its limit. Latency, downtime and persistence judge none.
    pub fn judged_kind(&self) -> Option<FindingKind> {
        match self.figure {
            Figure::Findings(kind) => Some(kind),
            Figure::ErrorRate => Some(FindingKind::HttpError),
            Figure::DistinctWorkers => Some(FindingKind::WorkerCoverage),
            Figure::P99Ms | Figure::DowntimeS | Figure::AuthPersistence => None,
        }
    }

    /// The limit this run checks against, or None when the check is not in this run.
    pub fn limit(&self, expect: &Expect, audits: &[FindingKind]) -> Option<f64> {
        match self.when {
            When::Always(default) => Some((self.configured)(expect).unwrap_or(default)),
            When::Configured => (self.configured)(expect),
            When::AuditOn => self
                .judged_kind()
                .filter(|kind| audits.contains(kind))
                .map(|_| 0.0),
        }
    }
}

/// A fraction's parts, kept beside it so merged shards add them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counts {
    pub numerator: u64,
    pub denominator: u64,
}

/// One expectation of a run: its figure against its limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// Human form of the limit ("<= 0", ">= 2", "<= 500 ms").
    pub limit: String,
    pub actual: f64,
    pub passed: bool,
    pub message: String,
    /// The operator and the limit as a number (absent in reports of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_value: Option<f64>,
    /// The parts of a fraction (`max_error_rate`, `auth_persistence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    /// False when nothing could measure the figure (every login failed): such a check passes,
    /// so a login mistake is not also reported as a session bug, and every renderer shows it
    /// as "not measured", never as a PASS. Written only when false (added in 0.2).
    #[serde(default = "measured_default", skip_serializing_if = "is_measured")]
    pub measured: bool,
}

fn measured_default() -> bool {
    true
}

fn is_measured(measured: &bool) -> bool {
    *measured
}

/// The figures of a run (or of merged shards) that checks compare with their limits.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    /// Summed counts per finding kind.
    pub findings: Vec<(FindingKind, u64)>,
    /// Requests the error rate is a share of.
    pub traffic: u64,
    pub p99_ms: f64,
    /// The p99 of the wait for a `[load] max_connections` slot, part of `p99_ms`'s latency;
    /// None when no request waited.
    pub p99_wait_ms: Option<f64>,
    /// Each restart's downtime in seconds (None: never ready).
    pub downtimes_s: Vec<Option<f64>>,
    pub distinct_workers: usize,
    /// Probes of logged-in users judged for persistence, and those authenticated.
    pub persistence: Counts,
    /// No user ever logged in and logins failed: worker and persistence figures were not
    /// measured at all (the verdict fails on `login_failed`).
    pub nothing_measured: bool,
    /// What the summary counts but no finding does, so the checks can say why their figure is
    /// lower than the summary's.
    pub not_counted: NotCounted,
}

/// Errors and failed logins the summary shows that the findings leave out on purpose.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NotCounted {
    /// Pages' and probes' errors while the target restarted (or recovered from it), or that
    /// another finding explains (a SessionInterrupted 400).
    pub errors: u64,
    /// Logins refused or reset while the target restarted.
    pub login_failures: u64,
}

impl NotCounted {
    /// From the summary's totals and the findings' counts.
    pub fn of(traffic_errors: u64, logins_failed: u64, findings: &[Finding]) -> NotCounted {
        let counted = |kind| crate::judge::finding::count_of(findings, kind);
        NotCounted {
            errors: traffic_errors.saturating_sub(counted(FindingKind::HttpError)),
            login_failures: logins_failed.saturating_sub(counted(FindingKind::LoginFailed)),
        }
    }
}

impl Figures {
    pub fn count(&self, kind: FindingKind) -> u64 {
        self.findings
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn counts_of(findings: &[Finding]) -> Vec<(FindingKind, u64)> {
        findings.iter().map(|f| (f.kind, f.count)).collect()
    }

    /// The one rule for `nothing_measured`, for a run and for merged shards alike: no login
    /// worked, no probe was judged, and logins failed.
    pub fn nothing_measured(findings: &[Finding], logins_ok: u64, persistence: Counts) -> bool {
        logins_ok == 0
            && persistence.denominator == 0
            && crate::judge::finding::count_of(findings, FindingKind::LoginFailed) > 0
    }
}

/// Every check of a run, in the table's order.
pub fn grade_all(expect: &Expect, audits: &[FindingKind], figures: &Figures) -> Vec<Check> {
    EXPECTATIONS
        .iter()
        .filter_map(|e| Some(grade(e, e.limit(expect, audits)?, figures)))
        .collect()
}

/// One check: the figure, whether it holds against `limit`, and the message.
pub fn grade(e: &Expectation, limit: f64, figures: &Figures) -> Check {
    let (what, unit) = (e.what, e.unit);
    let mut counts = None;
    let actual = match e.figure {
        Figure::Findings(kind) => figures.count(kind) as f64,
        Figure::ErrorRate => {
            let errors = figures.count(FindingKind::HttpError);
            counts = Some(Counts {
                numerator: errors,
                denominator: figures.traffic,
            });
            round3(errors as f64 / figures.traffic.max(1) as f64)
        }
        Figure::P99Ms => figures.p99_ms,
        Figure::DowntimeS => figures
            .downtimes_s
            .iter()
            .map(|d| d.unwrap_or(f64::INFINITY))
            .fold(0.0, f64::max),
        Figure::DistinctWorkers => figures.distinct_workers as f64,
        Figure::AuthPersistence => {
            let p = figures.persistence;
            counts = Some(p);
            if p.denominator == 0 {
                0.0
            } else {
                round3(p.numerator as f64 / p.denominator as f64)
            }
        }
    };
    let limit_text = format!("{} {limit}{unit}", e.op.as_str());
    let check = |actual: f64, passed: bool, message: String| Check {
        name: e.name.to_string(),
        limit: limit_text.clone(),
        actual,
        passed,
        message,
        op: Some(e.op),
        limit_value: Some(limit),
        counts,
        measured: true,
    };
    // Figures only a logged-in user's pages and probes make: with every login failed, a
    // count of 0 logouts says nothing (a run whose logins all fail must not show them PASS).
    // Failed logins are what was measured; restarts' downtime and the debug config's audit do
    // not need a login.
    let unmeasured = figures.nothing_measured
        && !matches!(
            e.figure,
            Figure::DowntimeS | Figure::Findings(FindingKind::LoginFailed | FindingKind::Config)
        );
    // A share of no probe answers at all (every probe failed, or none was sent) is not 0.
    let no_probes = e.figure == Figure::AuthPersistence && figures.persistence.denominator == 0;
    if no_probes && !unmeasured {
        return Check {
            measured: false,
            ..check(
                0.0,
                true,
                format!("{what}: not measured (no probe of a logged-in user was answered)"),
            )
        };
    }
    if unmeasured {
        return Check {
            measured: false,
            ..check(
                0.0,
                true,
                format!("{what}: not measured (no page or probe of a logged-in user: every login failed, see login_failed)"),
            )
        };
    }
    let passed = e.op.holds(actual, limit);
    let message = match (e.when, e.figure) {
        (When::AuditOn, Figure::Findings(kind)) if passed => format!("no {kind} finding"),
        (When::AuditOn, Figure::Findings(kind)) => format!("{kind}: {actual} (expected none)"),
        (_, Figure::DistinctWorkers) if passed => {
            format!("distinct workers: {actual} (at least {limit})")
        }
        (_, Figure::DistinctWorkers) => format!(
            "distinct workers: {actual}, {} short of the {limit} expected",
            limit - actual
        ),
        (_, Figure::AuthPersistence) => {
            let p = figures.persistence;
            format!(
                "{} of {} probes of logged-in users were authenticated ({actual}, expected at least {limit})",
                p.numerator, p.denominator
            )
        }
        _ if passed => format!("{what}: {actual}{unit} (limit {limit}{unit})"),
        _ => {
            let mut m = format!(
                "{what}: {actual}{unit}, over the limit of {limit}{unit} by {}{unit}",
                round3(actual - limit)
            );
            if e.figure == Figure::P99Ms {
                m.push_str(&queued_note(actual, figures.p99_wait_ms));
            }
            m
        }
    };
    let message = match e.figure {
        Figure::ErrorRate if figures.not_counted.errors > 0 => format!(
            "{message}; {} more errors are not counted: during a restart (or the recovery after it), or explained by another finding",
            figures.not_counted.errors
        ),
        Figure::Findings(FindingKind::LoginFailed) if figures.not_counted.login_failures > 0 => {
            format!(
                "{message}; {} more failed while the target restarted (not counted)",
                figures.not_counted.login_failures
            )
        }
        _ => message,
    };
    check(actual, passed, message)
}

/// For a p99 over its limit: when at least half of it was spent queued for one of sesscheck's
/// own `[load] max_connections` connections, say so. The requests were not yet sent, so that
/// part is the cap's (users waiting for connections), and the app's own time is the rest.
fn queued_note(p99_ms: f64, p99_wait_ms: Option<f64>) -> String {
    match p99_wait_ms {
        Some(wait) if wait > 0.0 && wait >= p99_ms / 2.0 => format!(
            "; of it, up to {wait} ms (p99) was waiting for one of the [load] max_connections \
             connections, before the request was sent: raise max_connections (or lower users, \
             or [load] rate) to measure the app's own latency"
        ),
        _ => String::new(),
    }
}

/// Whether a failed check judges `kind`: findings of that kind are then errors, else warnings.
pub fn fails_kind(checks: &[Check], kind: FindingKind) -> bool {
    checks.iter().any(|c| {
        !c.passed && Expectation::named(&c.name).is_some_and(|e| e.judged_kind() == Some(kind))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found on Wagtail: the summary said 16 errors and 1 failed login, the checks 0 and 0,
    /// with nothing saying why (a restart's errors and refused logins are forgiven).
    #[test]
    fn checks_say_what_the_summary_counts_and_they_do_not() {
        let figures = Figures {
            findings: Vec::new(),
            traffic: 270,
            p99_ms: 1.0,
            p99_wait_ms: None,
            downtimes_s: Vec::new(),
            distinct_workers: 2,
            persistence: Counts::default(),
            nothing_measured: false,
            not_counted: NotCounted::of(16, 1, &[]),
        };
        let rate = grade(Expectation::named("max_error_rate").unwrap(), 0.0, &figures);
        assert!(rate.passed, "{rate:?}");
        assert!(
            rate.message.contains("16 more errors are not counted"),
            "{}",
            rate.message
        );
        let logins = grade(
            Expectation::named("max_login_failures").unwrap(),
            0.0,
            &figures,
        );
        assert!(
            logins
                .message
                .contains("1 more failed while the target restarted"),
            "{}",
            logins.message
        );
    }

    /// `auth_persistence` over no probe answers is not measured, not "0 of 0 ... (0)": that
    /// failed the run on nothing (Label Studio trial). Over some answers it is graded.
    #[test]
    fn auth_persistence_over_no_probes_is_not_measured() {
        let e = Expectation::named("auth_persistence").unwrap();
        let figures = |numerator, denominator| Figures {
            findings: Vec::new(),
            traffic: 100,
            p99_ms: 1.0,
            p99_wait_ms: None,
            downtimes_s: Vec::new(),
            distinct_workers: 1,
            persistence: Counts {
                numerator,
                denominator,
            },
            nothing_measured: false,
            not_counted: NotCounted::default(),
        };
        let none = grade(e, 1.0, &figures(0, 0));
        assert!(!none.measured && none.passed, "{none:?}");
        assert!(none.message.contains("not measured"), "{}", none.message);
        let some = grade(e, 1.0, &figures(9, 10));
        assert!(some.measured && !some.passed, "{some:?}");
    }

    /// A missed p99 names sesscheck's own connection queue only when it is at least half of
    /// the p99; a p99 the app spent alone gets no such note.
    #[test]
    fn a_missed_p99_says_when_it_was_mostly_the_connection_queue() {
        let e = Expectation::named("max_p99_ms").unwrap();
        let figures = |p99_ms: f64, p99_wait_ms: Option<f64>| Figures {
            findings: Vec::new(),
            traffic: 100,
            p99_ms,
            p99_wait_ms,
            downtimes_s: Vec::new(),
            distinct_workers: 1,
            persistence: Counts::default(),
            nothing_measured: false,
            not_counted: NotCounted::default(),
        };
        let queued = grade(e, 50.0, &figures(140.0, Some(118.0)));
        assert!(!queued.passed);
        assert!(
            queued.message.contains("up to 118 ms (p99) was waiting"),
            "{}",
            queued.message
        );
        for (p99, wait) in [(140.0, None), (140.0, Some(0.0)), (140.0, Some(60.0))] {
            let own = grade(e, 50.0, &figures(p99, wait));
            assert!(!own.passed);
            assert!(
                !own.message.contains("max_connections"),
                "{wait:?}: {}",
                own.message
            );
        }
        // Within its limit, nothing to explain.
        let ok = grade(e, 500.0, &figures(140.0, Some(118.0)));
        assert!(
            ok.passed && !ok.message.contains("max_connections"),
            "{}",
            ok.message
        );
    }

    #[test]
    fn every_finding_kind_that_can_fail_a_run_has_one_check() {
        for kind in FindingKind::ALL {
            let judging: Vec<&str> = EXPECTATIONS
                .iter()
                .filter(|e| e.judged_kind() == Some(kind))
                .map(|e| e.name)
                .collect();
            let checks = usize::from(kind.can_fail());
            assert_eq!(judging.len(), checks, "{kind}: {judging:?}");
        }
        let mut names: Vec<&str> = EXPECTATIONS.iter().map(|e| e.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EXPECTATIONS.len());
    }

    #[test]
    fn limits_come_from_the_scenario_or_the_default() {
        let mut expect = Expect::default();
        let logouts = Expectation::named("max_logouts").unwrap();
        assert_eq!(logouts.limit(&expect, &[]), Some(0.0));
        expect.max_logouts = Some(3);
        assert_eq!(logouts.limit(&expect, &[]), Some(3.0));
        let p99 = Expectation::named("max_p99_ms").unwrap();
        assert_eq!(p99.limit(&expect, &[]), None);
        let fixation = Expectation::named("no_session_fixation").unwrap();
        assert_eq!(fixation.limit(&expect, &[]), None);
        assert_eq!(
            fixation.limit(&expect, &[FindingKind::SessionFixation]),
            Some(0.0)
        );
    }

    #[test]
    fn a_check_carries_its_numbers() {
        let e = Expectation::named("auth_persistence").unwrap();
        let figures = Figures {
            persistence: Counts {
                numerator: 12,
                denominator: 40,
            },
            ..Default::default()
        };
        let c = grade(e, 0.99, &figures);
        assert!(!c.passed);
        assert_eq!(
            (c.actual, c.op, c.limit_value),
            (0.3, Some(Op::AtLeast), Some(0.99))
        );
        assert_eq!(c.counts, Some(figures.persistence));
        assert_eq!(c.limit, ">= 0.99");
        assert!(c.message.starts_with("12 of 40 probes"), "{}", c.message);
    }
}
