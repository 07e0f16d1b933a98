//! Issue 10: browser tabs sharing one session, and Django-style SessionInterrupted found by
//! correlation (HTTP 400, generic body, no Set-Cookie), against the built-in target.
mod common;
use common::*;

const SHORT: &[&str] = &["--duration", "5s", "--users", "6"];

#[test]
fn tabs_with_logout_and_relogin_are_healthy() {
    let (out, _d) = run_scenario("scenarios/tabs.toml", SHORT, &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    assert!(
        r["logins"]["logouts"].as_u64().unwrap() >= 6,
        "deliberate logouts happened: {}",
        r["logins"]
    );
    assert!(out.finding_kinds().is_empty(), "{:?}", out.finding_kinds());
    assert_eq!(r["server_log"]["matches"].as_u64().unwrap(), 0);
}

#[test]
fn production_style_race_is_found_by_correlation_not_text() {
    let (out, _d) = run_scenario("scenarios/tabs-race.toml", SHORT, &[]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("session_interrupted")
        .expect("session_interrupted");
    assert!(f["count"].as_u64().unwrap() > 0);
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("{400:"), "only 400s: {msg}");
    assert!(
        msg.contains("0 named it in the response"),
        "found without the name in the body: {msg}"
    );
    assert!(msg.contains("per deliberate logout"), "{msg}");
    // The example shows both requests' timings: the interrupted one and the logout.
    assert!(f["example"]["logout"]["started_at_s"].is_number(), "{f}");
    assert!(f["example"]["request"]["started_at_s"].is_number(), "{f}");
    // Server-side evidence: the target's own log names it.
    let r = out.report.as_ref().unwrap();
    assert!(
        r["server_log"]["matches"].as_u64().unwrap() > 0,
        "{}",
        r["server_log"]
    );
    assert!(r["server_log"]["example"]
        .as_str()
        .unwrap()
        .contains("SessionInterrupted"));
    // A 400 explained by a concurrent logout is not also an http_error.
    assert!(
        !out.finding_kinds().contains(&"http_error".to_string()),
        "{:?}",
        out.finding_kinds()
    );
}

#[test]
fn replaced_session_cookie_is_a_logout_naming_the_request() {
    let (out, _d) = run_scenario("scenarios/tabs-race.toml", SHORT, &[]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("logout")
        .expect("logout from the replaced cookie");
    let msg = f["message"].as_str().unwrap();
    assert!(
        msg.contains("session cookie `session` was replaced by the response to GET /"),
        "{msg}"
    );
    assert!(f["example"]["replaced_by"]["path"].is_string(), "{f}");
}

#[test]
fn verbose_race_names_it_in_the_body() {
    let (out, _d) = run_edited(
        "scenarios/tabs-race.toml",
        &[("\"--race\"", "\"--race-verbose\"")],
        SHORT,
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("session_interrupted")
        .expect("session_interrupted");
    let msg = f["message"].as_str().unwrap();
    assert!(!msg.contains("; 0 named it"), "the body names it: {msg}");
}

#[test]
fn race_target_without_logouts_has_no_interruptions() {
    let (out, _d) = run_edited(
        "scenarios/tabs-race.toml",
        &[("logout_every = \"1s\"", "# no logout")],
        SHORT,
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(out.finding_kinds().is_empty(), "{:?}", out.finding_kinds());
}

#[test]
fn a_400_that_no_logout_explains_stays_an_http_error() {
    // /status/400 always fails, even while logouts of the same jar are in flight.
    let (out, _d) = run_edited(
        "scenarios/tabs.toml",
        &[(
            "requests = [\"/dashboard\", \"/\"]",
            "requests = [\"/dashboard\", \"/status/400\"]",
        )],
        SHORT,
        &[],
    );
    assert_exit_and_kinds(&out, 1, &["http_error"]);
}

#[test]
fn server_log_file_named_in_the_scenario_is_followed() {
    // The target writes its log to a file (not to the stdout/stderr sesscheck captures).
    let (out, _d) = run_edited(
        "scenarios/tabs-race.toml",
        &[("spawn = { builtin = { workers = 4, store = \"shared\", args = [\"--latency-ms\", \"50\", \"--race\"] } }", "spawn = { command = \"exec \\\"$SESSCHECK_BIN\\\" target --port $PORT --workers 4 --race --latency-ms 50 --state-dir state 2>> target.log\" }\nlog = \"target.log\"")],
        SHORT,
        &[("SESSCHECK_BIN", BIN)],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    assert!(
        r["server_log"]["matches"].as_u64().unwrap() > 0,
        "{}",
        r["server_log"]
    );
    assert!(
        r["server_log"]["by_phase"]["load"].as_u64().unwrap() > 0,
        "{}",
        r["server_log"]
    );
}
