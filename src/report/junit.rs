//! JUnit XML for CI test reporters (GitLab, Jenkins, GitHub): one test case per expectation and
//! one per finding, so a failed gate shows up as a named failing test with its message.

use super::{Check, Report};
use crate::judge::finding::{Finding, Severity};
use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The whole report as a JUnit XML document.
pub fn render(r: &Report) -> Result<String> {
    let mut suite = TestSuite::new(format!("sesscheck {}", r.scenario));
    suite.set_time(Duration::from_secs_f64(r.duration_s.max(0.0)));
    suite.add_property(("target", r.target.url.as_str()));
    suite.add_property(("verdict", r.verdict.as_str()));
    let classname = format!("sesscheck.{}", r.scenario);
    for c in &r.expectations {
        suite.add_test_case(expectation_case(c, &classname));
    }
    for f in &r.findings {
        suite.add_test_case(finding_case(f, &classname));
    }
    if let Some(b) = &r.browser {
        for case in browser_cases(b, &classname) {
            suite.add_test_case(case);
        }
    }
    // An aborted run has no expectation that says so: make it a failing case of its own, or
    // the CI page would show all green for a run that never finished.
    if let Some(reason) = &r.aborted {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(reason.as_str()).set_type("aborted");
        suite.add_test_case(named_case("run completed", status, &classname));
    } else if r.interrupted {
        // Likewise a run stopped by Ctrl-C or SIGTERM: its verdict is fail, and a CI page that
        // counts failing cases must not show it green (found on a trial: failures="0").
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status
            .set_message("interrupted (Ctrl-C / SIGTERM) before the load ended: partial results")
            .set_type("interrupted");
        suite.add_test_case(named_case("run completed", status, &classname));
    }
    let mut report = quick_junit::Report::new("sesscheck");
    report.add_test_suite(suite);
    report.to_string().context("serialising the JUnit report")
}

fn named_case(name: &str, status: TestCaseStatus, classname: &str) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(classname);
    case
}

fn expectation_case(c: &Check, classname: &str) -> TestCase {
    let status = if !c.measured {
        // Nothing could measure it: skipped, so CI shows it neither green nor red.
        let mut s = TestCaseStatus::skipped();
        s.set_message(c.message.as_str());
        s
    } else if c.passed {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(c.message.as_str())
            .set_type("expectation")
            .set_description(format!("limit {}, actual {}", c.limit, c.actual));
        s
    };
    let mut case = named_case(&c.name, status, classname);
    case.set_system_out(c.message.as_str());
    case
}

fn finding_case(f: &Finding, classname: &str) -> TestCase {
    let example = serde_json::to_string_pretty(&f.example).unwrap_or_default();
    let status = if f.severity == Severity::Error {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(f.message.as_str())
            .set_type("finding")
            .set_description(format!(
                "{} × {}, first at {:.2} s\nexample:\n{example}",
                f.count, f.kind, f.first_at_s
            ));
        s
    } else {
        TestCaseStatus::success()
    };
    let mut case = named_case(&format!("finding: {}", f.kind), status, classname);
    // Warnings pass, but their message still belongs in the CI log.
    case.set_system_out(format!("{} (count {})", f.message, f.count));
    case
}

/// One case per browser page and phase ("browser: /app after_restart"), failing when a
/// user's page did not settle; one error case per check that could not run.
fn browser_cases(b: &super::browser::BrowserSection, classname: &str) -> Vec<TestCase> {
    let mut groups: Vec<(String, Vec<String>, usize)> = Vec::new();
    let mut cases = Vec::new();
    for c in &b.checks {
        if let Some(e) = &c.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(e.as_str()).set_type("browser");
            cases.push(named_case(
                &format!("browser check {} user {}", c.when, c.vu),
                status,
                classname,
            ));
        }
        for p in c.pages.iter().filter(|p| !p.interrupted) {
            let name = format!("browser: {} {}", p.path, c.when);
            let i = match groups.iter().position(|g| g.0 == name) {
                Some(i) => i,
                None => {
                    groups.push((name, Vec::new(), 0));
                    groups.len() - 1
                }
            };
            groups[i].2 += 1;
            if !p.settled {
                let busiest = p.requests.first().map(|g| g.text()).unwrap_or_default();
                groups[i].1.push(format!(
                    "user {}: not settled after {:.1} s at {} {busiest}",
                    c.vu,
                    p.elapsed_ms / 1000.0,
                    p.final_url
                ));
            }
        }
    }
    for (name, stuck, total) in groups {
        let status = if stuck.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(format!(
                "{} of {total} page loads did not settle",
                stuck.len()
            ))
            .set_type("browser")
            .set_description(stuck.join("\n"));
            s
        };
        cases.push(named_case(&name, status, classname));
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample_report;

    #[test]
    fn failed_expectations_and_error_findings_become_failures() {
        let xml = render(&sample_report()).unwrap();
        assert!(
            xml.contains("<testsuite name=\"sesscheck sample\""),
            "{xml}"
        );
        assert!(xml.contains("<testcase name=\"max_logouts\""), "{xml}");
        assert!(xml.contains("<testcase name=\"finding: logout\""), "{xml}");
        // One failed expectation + one error finding; the warning finding passes.
        assert_eq!(xml.matches("<failure").count(), 2, "{xml}");
        assert!(xml.contains("failures=\"2\""), "{xml}");
    }

    #[test]
    fn markup_in_messages_is_escaped() {
        let mut r = sample_report();
        r.findings[0].message = "<script>alert(1)</script> & \"q\"".into();
        let xml = render(&r).unwrap();
        assert!(!xml.contains("<script>"), "{xml}");
    }
}
