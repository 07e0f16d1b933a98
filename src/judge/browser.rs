//! `infinite_loading` as a user sees it: the browser checks' pages that did not settle.
//!
//! Pure, like the other detectors: one finding per page path, so a page that never settles is
//! reported once however many users and checks saw it. A page that settled before the restart
//! and not after it is the restart's doing; one that never settled at all is said so.

use crate::browser::{Check, PageVisit, When};
use crate::judge::finding::{Finding, FindingKind, Severity};
use serde_json::json;
use std::collections::BTreeMap;

pub fn findings(checks: &[Check]) -> Vec<Finding> {
    // Page path → (when, visit, check's at_s, vu), skipping pages cut short by Ctrl-C.
    let mut by_path: BTreeMap<&str, Vec<(When, &PageVisit, f64, usize)>> = BTreeMap::new();
    for c in checks {
        for v in c.pages.iter().filter(|v| !v.interrupted) {
            by_path
                .entry(v.path.as_str())
                .or_default()
                .push((c.when, v, c.at_s, c.vu));
        }
    }
    let mut out = Vec::new();
    for (path, visits) in by_path {
        let stuck: Vec<_> = visits.iter().filter(|(_, v, _, _)| !v.settled).collect();
        let Some(&&(when, first, at_s, vu)) = stuck.first() else {
            continue;
        };
        let settled_before = visits
            .iter()
            .any(|(w, v, _, _)| *w == When::BeforeRestart && v.settled);
        let stuck_after = stuck
            .iter()
            .filter(|(w, _, _, _)| *w == When::AfterRestart)
            .count();
        let (what, shown) = if settled_before && stuck_after > 0 {
            let after = stuck
                .iter()
                .find(|(w, _, _, _)| *w == When::AfterRestart)
                .map(|x| x.1)
                .unwrap_or(first);
            ("after the restart".to_string(), after)
        } else if stuck.len() == visits.len() {
            (
                "in any check (before the restart either)".to_string(),
                first,
            )
        } else {
            (format!("({})", when.label().replace('_', " ")), first)
        };
        let timeout_s = (shown.elapsed_ms / 1000.0).round();
        // "2 of 2 page loads": of those in the phase the message is about.
        let phase = if what == "after the restart" {
            Some(When::AfterRestart)
        } else if stuck.len() == visits.len() {
            None
        } else {
            Some(when)
        };
        let in_phase = |w: &When| phase.is_none_or(|p| p == *w);
        let message = format!(
            "{path} did not settle in {timeout_s} s {what} ({} of {} page loads): {}",
            stuck.iter().filter(|x| in_phase(&x.0)).count(),
            visits.iter().filter(|x| in_phase(&x.0)).count(),
            doing(shown)
        );
        out.push(Finding {
            kind: FindingKind::InfiniteLoading,
            severity: Severity::Error,
            count: stuck.len() as u64,
            first_at_s: at_s,
            message,
            example: json!({
                "source": "browser",
                "page": path,
                "vu": vu,
                "when": when.label(),
                "final_url": shown.final_url,
                "requests": shown.requests.iter().take(5).map(group_text).collect::<Vec<_>>(),
                "navigations": shown.navigations.len(),
                "console_errors": shown.console_errors.iter().take(3).map(|(t, n)| format!("{t} ×{n}")).collect::<Vec<_>>(),
            }),
        });
    }
    out
}

/// "GET /api/session 401 ×57" (a failed request shows "failed").
pub fn group_text(g: &crate::browser::RequestGroup) -> String {
    let status = g.status.map(|s| s.to_string()).unwrap_or("failed".into());
    format!("{} {} {status} ×{}", g.method, g.path, g.count)
}

/// What the page kept doing: its busiest request, navigations, what is still loading, the
/// spinner still shown.
fn doing(v: &PageVisit) -> String {
    let mut parts = Vec::new();
    // One request is what any page makes; a repeated one is what a stuck page keeps doing.
    if let Some(g) = v.busiest().filter(|g| g.count > 1 || v.in_flight > 0) {
        let status = match g.status {
            Some(s) => format!("answered {s}"),
            None => "failed".into(),
        };
        parts.push(format!("{} {} {status} ×{}", g.method, g.path, g.count));
    }
    if v.navigations.len() > 2 {
        parts.push(format!("navigated {} times", v.navigations.len()));
    }
    if v.in_flight > 0 {
        parts.push(format!(
            "{} request(s) still waiting for an answer",
            v.in_flight
        ));
    }
    if !v.load_event {
        parts.push("the load event never fired".into());
    }
    parts.extend(v.selectors_unmet.iter().cloned());
    if parts.is_empty() {
        parts.push("it never went quiet for 500 ms".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::browser::RequestGroup;

    fn visit(path: &str, settled: bool) -> PageVisit {
        PageVisit {
            path: path.into(),
            settled,
            elapsed_ms: if settled { 700.0 } else { 10_000.0 },
            load_event: true,
            final_url: format!("http://127.0.0.1:1{path}"),
            requests: if settled {
                vec![]
            } else {
                vec![RequestGroup {
                    method: "GET".into(),
                    path: "/api/session".into(),
                    status: Some(401),
                    count: 57,
                }]
            },
            in_flight: 0,
            navigations: vec![path.into()],
            console_errors: vec![],
            busy_shown: !settled,
            ready_found: settled,
            screenshot_png: None,
            interrupted: false,
            selectors_unmet: if settled {
                vec![]
            } else {
                vec!["spinner `.loading` still shown".into()]
            },
        }
    }

    fn check(when: When, vu: usize, pages: Vec<PageVisit>) -> Check {
        Check {
            when,
            vu,
            at_s: 1.0,
            cookies: 1,
            pages,
            error: None,
        }
    }

    #[test]
    fn stuck_after_the_restart_names_what_the_page_kept_doing() {
        let checks = vec![
            check(When::BeforeRestart, 0, vec![visit("/app", true)]),
            check(When::BeforeRestart, 1, vec![visit("/app", true)]),
            check(When::AfterRestart, 0, vec![visit("/app", false)]),
            check(When::AfterRestart, 1, vec![visit("/app", false)]),
        ];
        let f = findings(&checks);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].count, 2);
        assert!(
            f[0].message.contains("after the restart"),
            "{}",
            f[0].message
        );
        assert!(f[0].message.contains("GET /api/session answered 401 ×57"));
        assert!(f[0].message.contains("spinner `.loading` still shown"));
        assert_eq!(f[0].example["source"], "browser");
    }

    #[test]
    fn settled_everywhere_is_no_finding() {
        let checks = vec![
            check(When::BeforeRestart, 0, vec![visit("/app", true)]),
            check(When::AfterRestart, 0, vec![visit("/app", true)]),
        ];
        assert!(findings(&checks).is_empty());
    }

    #[test]
    fn a_page_that_never_settles_is_one_finding() {
        let checks = vec![
            check(When::BeforeRestart, 0, vec![visit("/x", false)]),
            check(When::BeforeRestart, 1, vec![visit("/x", false)]),
            check(When::AfterRestart, 0, vec![visit("/x", false)]),
            check(When::AfterRestart, 1, vec![visit("/x", false)]),
        ];
        let f = findings(&checks);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].count, 4);
        assert!(
            f[0].message.contains("before the restart either"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn pages_cut_by_ctrl_c_are_not_judged() {
        let mut v = visit("/app", false);
        v.interrupted = true;
        assert!(findings(&[check(When::AfterRestart, 0, vec![v])]).is_empty());
    }
}
