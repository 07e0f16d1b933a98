//! What changed between two runs (`sesscheck compare A.json B.json`), and whether B is worse:
//! the gate for "did this change make sessions worse than on main?".

use super::Report;
use crate::judge::finding::{count_of, Finding, FindingKind, Severity};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, Color, ContentArrangement, Table};

/// How much p99 latency may grow before B counts as worse: run-to-run noise stays below it.
pub const P99_TOLERANCE: f64 = 0.20;

/// The rule, as `compare --help` states it.
pub const WORSE_RULE: &str = "\
B is worse than A (exit 1) when any of these holds:
  - B has an error finding whose kind was not an error in A (a new error finding kind)
  - a finding kind occurs more often in B than in A (a finding count went up)
  - p99 latency in B is more than 20% above A's (only judged when A's p99 is above 0)
  - A passed and B failed
Otherwise exit 0. Exit 2 when a file is not a sesscheck JSON report.";

/// One line of the comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub what: String,
    pub a: String,
    pub b: String,
    pub delta: String,
    /// This line is one of the reasons B is worse.
    pub worse: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub rows: Vec<Row>,
    pub worse: bool,
}

/// Compare run A (the baseline) with run B.
pub fn compare(a: &Report, b: &Report) -> Comparison {
    let mut rows = vec![Row {
        what: "verdict".into(),
        a: a.verdict.clone(),
        b: b.verdict.clone(),
        delta: if a.verdict == b.verdict {
            "=".into()
        } else {
            format!("{} → {}", a.verdict, b.verdict)
        },
        worse: a.verdict == "pass" && b.verdict != "pass",
    }];
    rows.extend(finding_rows(&a.findings, &b.findings));
    rows.push(latency_row(
        "p50 ms",
        a.latency_ms.p50,
        b.latency_ms.p50,
        false,
    ));
    let p99_worse =
        a.latency_ms.p99 > 0.0 && b.latency_ms.p99 > a.latency_ms.p99 * (1.0 + P99_TOLERANCE);
    rows.push(latency_row(
        "p99 ms",
        a.latency_ms.p99,
        b.latency_ms.p99,
        p99_worse,
    ));
    rows.push(count_row(
        "distinct worker PIDs",
        a.workers.distinct_pids as u64,
        b.workers.distinct_pids as u64,
    ));
    rows.push(count_row("errors", a.requests.errors, b.requests.errors));
    rows.push(count_row(
        "anonymous probes",
        a.auth.unauthenticated,
        b.auth.unauthenticated,
    ));
    rows.push(Row {
        what: "requests/s".into(),
        a: format!("{:.1}", a.requests.per_second),
        b: format!("{:.1}", b.requests.per_second),
        delta: signed(b.requests.per_second - a.requests.per_second, 1),
        worse: false,
    });
    let worse = rows.iter().any(|r| r.worse);
    Comparison { rows, worse }
}

fn is_error(findings: &[Finding], kind: FindingKind) -> bool {
    findings
        .iter()
        .any(|f| f.kind == kind && f.severity == Severity::Error)
}

/// One row per finding kind seen in either run; a kind absent from a run counts 0 there.
fn finding_rows(a: &[Finding], b: &[Finding]) -> Vec<Row> {
    // In the order of their names, as the report lists them to a reader.
    let mut kinds: Vec<FindingKind> = a.iter().chain(b).map(|f| f.kind).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    kinds
        .into_iter()
        .map(|kind| {
            let (na, nb) = (count_of(a, kind), count_of(b, kind));
            let new_error = is_error(b, kind) && !is_error(a, kind);
            let mut delta = signed(nb as f64 - na as f64, 0);
            if new_error {
                delta.push_str(" (new error)");
            }
            Row {
                what: format!("finding: {kind}"),
                a: na.to_string(),
                b: nb.to_string(),
                delta,
                worse: nb > na || new_error,
            }
        })
        .collect()
}

fn latency_row(what: &str, a: f64, b: f64, worse: bool) -> Row {
    let pct = if a > 0.0 {
        format!(" ({:+.0}%)", (b - a) / a * 100.0)
    } else {
        String::new()
    };
    Row {
        what: what.into(),
        a: a.to_string(),
        b: b.to_string(),
        delta: format!("{}{pct}", signed(b - a, 3)),
        worse,
    }
}

fn count_row(what: &str, a: u64, b: u64) -> Row {
    Row {
        what: what.into(),
        a: a.to_string(),
        b: b.to_string(),
        delta: signed(b as f64 - a as f64, 0),
        worse: false,
    }
}

/// "+3", "-1.5", "0": the sign says which way it went.
fn signed(x: f64, decimals: usize) -> String {
    if x == 0.0 {
        "0".into()
    } else {
        format!("{x:+.decimals$}")
    }
}

/// The comparison as a terminal table, followed by the conclusion.
pub fn render(c: &Comparison, a_name: &str, b_name: &str) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(vec![
            "",
            &format!("A: {a_name}"),
            &format!("B: {b_name}"),
            "change",
        ]);
    for r in &c.rows {
        let delta = if r.worse {
            Cell::new(format!("{} (worse)", r.delta)).fg(Color::Red)
        } else {
            Cell::new(&r.delta)
        };
        t.add_row(vec![
            Cell::new(&r.what),
            Cell::new(&r.a),
            Cell::new(&r.b),
            delta,
        ]);
    }
    let conclusion = if c.worse {
        "B is worse than A"
    } else {
        "B is not worse than A"
    };
    format!("{t}\n{conclusion}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample_report;

    fn passing() -> Report {
        let mut r = sample_report();
        r.verdict = "pass".into();
        r.findings.clear();
        r.latency_ms.p99 = 10.0;
        r
    }

    #[test]
    fn identical_runs_are_not_worse() {
        let r = sample_report();
        let c = compare(&r, &r);
        assert!(!c.worse, "{c:?}");
        assert!(c.rows.iter().any(|r| r.what == "finding: logout"));
    }

    #[test]
    fn new_error_finding_is_worse_and_its_removal_is_not() {
        let (a, b) = (passing(), sample_report());
        let c = compare(&a, &b);
        assert!(c.worse);
        let row = c.rows.iter().find(|r| r.what == "finding: logout").unwrap();
        assert_eq!((row.a.as_str(), row.b.as_str()), ("0", "3"));
        assert!(row.worse && row.delta.contains("new error"), "{row:?}");
        assert!(!compare(&b, &a).worse);
    }

    #[test]
    fn finding_count_up_is_worse() {
        let a = sample_report();
        let mut b = sample_report();
        b.findings[1].count += 1; // a warning, but more of it
        assert!(compare(&a, &b).worse);
    }

    #[test]
    fn p99_tolerance_is_twenty_percent() {
        let a = passing();
        let mut b = passing();
        b.latency_ms.p99 = 11.9;
        assert!(!compare(&a, &b).worse);
        b.latency_ms.p99 = 12.1;
        let c = compare(&a, &b);
        assert!(c.worse);
        let row = c.rows.iter().find(|r| r.what == "p99 ms").unwrap();
        assert!(row.worse && row.delta.contains("+21%"), "{row:?}");
    }

    #[test]
    fn rendering_names_both_runs_and_the_conclusion() {
        let text = render(&compare(&passing(), &sample_report()), "a.json", "b.json");
        assert!(
            text.contains("A: a.json") && text.contains("B is worse than A"),
            "{text}"
        );
    }
}
