//! Issue 3: restarts mid-run, against the built-in target's real processes. Each fault is
//! proven present (exit 1, the right finding) and absent (the healthy restart passes).
mod common;
use common::*;

const SHORT: &[&str] = &["--duration", "8s", "--users", "8"];

#[test]
fn shared_store_survives_a_supervisor_restart() {
    let (out, _d) = run_scenario("scenarios/restart.toml", SHORT, &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    let restarts = r["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 1, "{}", r["restarts"]);
    assert_eq!(restarts[0]["method"], "supervisor");
    assert!(restarts[0]["downtime_s"].as_f64().unwrap() > 0.0);
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        phases.contains(&"before_restart") && phases.contains(&"after_restart"),
        "{phases:?}"
    );
    assert!(out.finding_kinds().is_empty(), "{:?}", out.finding_kinds());
    // The probes after the restart were answered by new worker processes, still authenticated.
    assert!(
        r["workers"]["distinct_pids"].as_u64().unwrap() > 4,
        "{}",
        r["workers"]
    );
}

#[test]
fn memory_store_loses_every_session_on_restart() {
    let (out, _d) = run_scenario("scenarios/restart-broken.toml", SHORT, &[]);
    assert_exit_and_kinds(&out, 1, &["restart_logout"]);
    let f = out.finding("restart_logout").unwrap();
    assert_eq!(
        f["count"].as_u64().unwrap(),
        8,
        "every user was logged out: {f}"
    );
    assert!(f["first_at_s"].as_f64().unwrap() >= 4.0);
}

#[test]
fn wipe_on_restart_is_a_restart_logout() {
    let (out, _d) = run_scenario("scenarios/restart-wipe.toml", SHORT, &[]);
    assert_exit_and_kinds(&out, 1, &["restart_logout"]);
}

#[test]
fn redirect_loop_after_restart_is_infinite_loading() {
    let (out, _d) = run_scenario("scenarios/restart-redirect-loop.toml", SHORT, &[]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out.finding("infinite_loading").expect("infinite_loading");
    assert!(
        f["message"].as_str().unwrap().contains("redirect loop"),
        "{f}"
    );
    assert!(f["count"].as_u64().unwrap() > 0);
}

#[test]
fn hang_after_restart_is_infinite_loading() {
    let (out, _d) = run_scenario("scenarios/restart-hang.toml", SHORT, &[]);
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out.finding("infinite_loading").expect("infinite_loading");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("no answer within loading_timeout"),
        "{f}"
    );
    assert!(
        !out.finding_kinds().contains(&"restart_logout".to_string()),
        "hanging is not a logout"
    );
}

#[test]
fn hup_reload_through_a_pidfile_keeps_shared_sessions_and_loses_memory_ones() {
    let dir = TempDir::new("hup");
    let pidfile = dir.path().join("target.pid").to_string_lossy().into_owned();
    let own_pidfile = (
        "${TMPDIR:-/tmp}/sesscheck-restart-hup.pid",
        pidfile.as_str(),
    );
    let (out, _d) = run_edited("scenarios/restart-hup.toml", &[own_pidfile], SHORT, &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["restarts"][0]["method"], "signal HUP");

    let memory_store = [
        own_pidfile,
        ("store = \"shared\"", "store = \"memory\""),
        ("workers = 4", "workers = 1"),
        ("min_distinct_pids = 2", "min_distinct_pids = 1"),
    ];
    let (out, _d) = run_edited("scenarios/restart-hup.toml", &memory_store, SHORT, &[]);
    assert_exit_and_kinds(&out, 1, &["restart_logout"]);
}

#[test]
fn repeated_restarts_are_each_measured() {
    let edits = [
        ("count = 1 ", "count = 2 \ninterval = \"1s\""),
        ("at = \"4s\"", "at = \"2s\""),
    ];
    let (out, _d) = run_edited("scenarios/restart.toml", &edits, SHORT, &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let restarts = out.report.as_ref().unwrap()["restarts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    assert!(restarts.iter().all(|r| r["downtime_s"].as_f64().is_some()));
}

/// A login in flight when the target is told to stop is still answered (the old process
/// finishes its requests), then the new process starts with an emptied store: the user is
/// logged out by that restart (`restart_logout`), not by a fault between workers (`logout`).
#[test]
fn login_answered_during_a_restart_then_wiped_is_a_restart_logout() {
    let edits = [
        (
            "spawn = { builtin = { workers = 4, store = \"wipe-on-restart\" } }",
            // Logins take longer than the gap between the two restarts, so the re-logins
            // after the first are in flight when the second begins.
            "spawn = { builtin = { workers = 2, store = \"wipe-on-restart\", args = [\"--login-latency-ms\", \"2000\"] } }",
        ),
        ("at = \"4s\"", "at = \"2s\""),
        ("count = 1 ", "count = 2 \ninterval = \"1s\""),
        ("recovery_timeout = \"3s\"", "recovery_timeout = \"6s\""),
    ];
    let (out, _d) = run_edited("scenarios/restart-wipe.toml", &edits, SHORT, &[]);
    assert_exit_and_kinds(&out, 1, &["restart_logout"]);
    let r = out.report.as_ref().unwrap();
    let restarts = r["restarts"].as_array().unwrap();
    assert_eq!(restarts.len(), 2, "{restarts:?}");
    // The second restart waited for the logins in flight: its downtime includes them.
    assert!(
        restarts[1]["downtime_s"].as_f64().unwrap() > 0.3,
        "{restarts:?}"
    );
    assert_eq!(out.finding("restart_logout").unwrap()["count"], 8);
}

/// A user whose login fails mid-run (the restarted app answers logins 503 for a second, its
/// database not ready yet) tries again, as a person sent back to the login page would: once
/// logins work again, every user is logged in again. Before, such a user stayed anonymous for
/// the rest of the run.
#[test]
fn a_failed_relogin_is_tried_again() {
    let edits = [(
        "spawn = { builtin = { workers = 4, store = \"wipe-on-restart\" } }",
        "spawn = { builtin = { workers = 2, store = \"wipe-on-restart\", args = [\"--login-unavailable-after-restart-ms\", \"1000\"] } }",
    )];
    let (out, _d) = run_edited("scenarios/restart-wipe.toml", &edits, SHORT, &[]);
    let r = out.report.as_ref().expect("a report");
    let logins = &r["logins"];
    // The fault was there: re-logins were refused while the app warmed up...
    assert!(logins["failed"].as_u64().unwrap() >= 1, "{}", out.explain());
    // ...and all 8 users logged in again after it (8 at the start, 8 after the restart).
    assert!(
        logins["ok"].as_u64().unwrap() >= 16,
        "{logins}\n{}",
        out.explain()
    );
    // So the users are back within recovery_timeout: no `infinite_loading` (which the users
    // that gave up used to add), only the restart's logouts and the refused logins.
    assert_exit_and_kinds(&out, 1, &["login_failed", "restart_logout"]);
}
