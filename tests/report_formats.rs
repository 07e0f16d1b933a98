//! The report formats and `compare`, through the binary, on reports saved from real runs:
//! `report-broken.json` (memory sessions + a restart: fails with findings) and
//! `report-pass.json` (shared sessions: passes).

use quick_xml::events::Event;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BROKEN: &str = "tests/fixtures/report-broken.json";
const PASS: &str = "tests/fixtures/report-pass.json";

fn sesscheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sesscheck"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running sesscheck")
}

/// Render `report` in `format`, insisting on exit 0.
fn render(report: &str, format: &str) -> String {
    let out = sesscheck(&["report", report, "--format", format]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "report --format {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .expect("reading the fixture");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// A scratch file unique to this test process and name.
fn scratch(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sesscheck-report-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// (test case name, failed?) for every test case, parsing the whole document as XML.
fn junit_cases(xml: &str) -> Vec<(String, bool)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut cases: Vec<(String, bool)> = Vec::new();
    loop {
        match reader
            .read_event()
            .expect("JUnit output is well-formed XML")
        {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"testcase" => {
                let name = e
                    .try_get_attribute("name")
                    .unwrap()
                    .expect("test case has a name")
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned();
                cases.push((name, false));
            }
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"failure" => {
                cases.last_mut().expect("failure inside a test case").1 = true;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    cases
}

fn failed_expectations(report: &Value) -> Vec<String> {
    report["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn finding_kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn fixtures_are_one_failing_and_one_passing_run() {
    let broken = fixture(BROKEN);
    assert_eq!(broken["verdict"], "fail");
    assert!(!finding_kinds(&broken).is_empty());
    assert!(!broken["restarts"].as_array().unwrap().is_empty());
    assert_eq!(fixture(PASS)["verdict"], "pass");
}

#[test]
fn junit_has_one_failing_case_per_failed_expectation() {
    let report = fixture(BROKEN);
    let cases = junit_cases(&render(BROKEN, "junit"));
    let failed: Vec<&String> = cases
        .iter()
        .filter(|(name, failed)| *failed && !name.starts_with("finding: "))
        .map(|(name, _)| name)
        .collect();
    let expected = failed_expectations(&report);
    assert_eq!(failed, expected.iter().collect::<Vec<_>>());
    let expectation_cases = cases.iter().filter(|(n, _)| !n.starts_with("finding: "));
    assert_eq!(
        expectation_cases.count(),
        report["expectations"].as_array().unwrap().len()
    );
    for kind in finding_kinds(&report) {
        let name = format!("finding: {kind}");
        assert!(cases.iter().any(|(n, _)| *n == name), "{name} missing");
    }
}

#[test]
fn junit_of_a_passing_run_has_no_failure() {
    let cases = junit_cases(&render(PASS, "junit"));
    assert!(!cases.is_empty());
    assert!(cases.iter().all(|(_, failed)| !failed), "{cases:?}");
}

#[test]
fn markdown_has_the_verdict_and_every_finding_kind() {
    let report = fixture(BROKEN);
    let md = render(BROKEN, "md");
    assert!(md.contains("**Verdict: FAIL**"), "{md}");
    for kind in finding_kinds(&report) {
        assert!(md.contains(&format!("`{kind}`")), "{kind} missing:\n{md}");
    }
    for name in failed_expectations(&report) {
        assert!(md.contains(&format!("| FAIL | {name} |")), "{name}:\n{md}");
    }
    assert!(render(PASS, "md").contains("**Verdict: PASS**"));
}

#[test]
fn html_is_self_contained_with_a_path_per_series() {
    let report = fixture(BROKEN);
    let html = render(BROKEN, "html");
    let target = report["target"]["url"].as_str().unwrap();
    let rest = html.replace(target, "");
    assert!(
        !rest.contains("http://") && !rest.contains("https://"),
        "external reference in the HTML"
    );
    assert_eq!(html.matches("<svg").count(), 3);
    // One path per worker PID (plus one for requests no worker claimed, if any), and two lines
    // in each of the auth and latency charts.
    let timeline = report["timeline"].as_array().unwrap();
    let mut pids: Vec<&str> = timeline
        .iter()
        .flat_map(|b| b["pids"].as_object().unwrap().keys().map(String::as_str))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let unclaimed = timeline.iter().any(|b| {
        let claimed: u64 = b["pids"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        b["requests"].as_u64().unwrap() > claimed
    });
    assert_eq!(
        html.matches("class=\"series\"").count(),
        pids.len() + unclaimed as usize + 4
    );
    let restarts = report["restarts"].as_array().unwrap().len();
    assert_eq!(html.matches("class=\"restart\"").count(), 3 * restarts);
}

#[test]
fn html_escapes_markup_in_a_finding_message() {
    let mut report = fixture(BROKEN);
    report["findings"][0]["message"] = "<script>alert('pwned')</script>".into();
    let path = scratch("injected.json", &report.to_string());
    let html = render(path.to_str().unwrap(), "html");
    assert!(!html.contains("<script"), "unescaped script tag");
    assert!(html.contains("&lt;script&gt;alert("));
}

#[test]
fn every_format_renders_both_fixtures() {
    for report in [BROKEN, PASS] {
        for format in ["table", "md", "junit", "html", "json"] {
            assert!(!render(report, format).is_empty(), "{report} {format}");
        }
    }
}

#[test]
fn compare_exit_codes() {
    let pass_to_fail = sesscheck(&["compare", PASS, BROKEN]);
    assert_eq!(pass_to_fail.status.code(), Some(1));
    let table = String::from_utf8_lossy(&pass_to_fail.stdout);
    assert!(table.contains("finding: logout") && table.contains("B is worse than A"));

    assert_eq!(sesscheck(&["compare", BROKEN, PASS]).status.code(), Some(0));
    assert_eq!(sesscheck(&["compare", PASS, PASS]).status.code(), Some(0));

    let not_a_report = scratch("not-a-report.json", "{\"hello\": 1}");
    let out = sesscheck(&["compare", PASS, not_a_report.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a sesscheck JSON report"));
    assert_eq!(
        sesscheck(&["compare", "Cargo.toml", PASS]).status.code(),
        Some(2)
    );
}

#[test]
fn report_of_a_non_report_exits_2() {
    let out = sesscheck(&["report", "Cargo.toml", "--format", "junit"]);
    assert_eq!(out.status.code(), Some(2));
}
