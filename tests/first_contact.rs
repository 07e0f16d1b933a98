//! Issue 15: the mistakes a newcomer makes first (a typo in the password, a wrong path, no
//! debug endpoint) get the right diagnosis, against the built-in target's real processes.
mod common;
use common::*;
use std::time::Duration;

/// The exit code of a run in which no login worked: nothing measured, not a session bug (1).
const NOTHING_MEASURED: i32 = 4;

/// A scenario against the built-in target; `login` and `probe` are TOML sections (or "").
fn scenario(target_args: &str, login: &str, probe: &str, expect: &str) -> String {
    format!(
        r#"name = "first-contact"
[target]
url = "http://127.0.0.1:8765"
spawn = {{ builtin = {{ workers = 2, store = "shared", args = [{target_args}] }} }}
ready = {{ path = "/health", timeout = "20s" }}
{login}
{probe}
[load]
users = 3
duration = "2s"
requests = ["/dashboard"]
think_time = "20ms"
{expect}
"#
    )
}

const PROBE: &str = "[probe]\npath = \"/debug/session\"\n";

fn login(password: &str, success: &str) -> String {
    format!("[login]\npath = \"/login\"\nfields = {{ username = \"user{{user}}\", password = \"{password}\" }}\n{success}\n")
}

/// Run a scenario text (not quiet, so the summary is in stdout).
fn run_text(text: &str) -> (Outcome, TempDir) {
    let dir = TempDir::new("first");
    let path = write_scenario(&dir, "s.toml", text);
    let url = format!("http://127.0.0.1:{}", free_port());
    let rd = dir.reports();
    let rds = rd.to_string_lossy().into_owned();
    let out = sesscheck(
        &["run", &path, "--url", &url, "--report-dir", &rds],
        &[],
        &rd,
        Duration::from_secs(60),
    );
    (out, dir)
}

fn expectation(out: &Outcome, name: &str) -> serde_json::Value {
    out.report.as_ref().unwrap()["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no expectation {name}: {}", out.explain()))
}

/// Item 1 + 4: Django-style, a wrong password re-renders the form with 200, which a loose
/// `success = { status = 200 }` accepts. With a probe, the probe after the login must say
/// authenticated (the documented default): `login_failed`, not `logout`; and the checks that
/// nothing could measure say so instead of adding findings.
#[test]
fn wrong_password_with_probe_is_login_failed_and_nothing_else() {
    let expect = "[expect]\nmin_distinct_pids = 2\nauth_persistence = 1.0\n";
    let (out, _d) = run_text(&scenario(
        "\"--login-error-page\"",
        &login("typo", "success = { status = 200 }"),
        PROBE,
        expect,
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let f = out.finding("login_failed").unwrap();
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("HTTP 200") && m.contains("said anonymous"),
        "{m}"
    );
    assert!(!m.contains("typo"), "the password leaked: {m}");
    for name in ["min_distinct_pids", "auth_persistence", "max_logouts"] {
        let c = expectation(&out, name);
        assert!(
            c["message"].as_str().unwrap().contains("not measured"),
            "{c}"
        );
    }
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["logins"]["ok"], 0, "{}", r["logins"]);
    // The summary's request figures add up: the refused logins answered 200, neither ok nor
    // errors.
    assert!(out.stdout.contains("3 neither (refused"), "{}", out.stdout);
}

/// A wrong password in a scenario with a restart: the users stop early, before the restart's
/// time. That is the failed login (exit 4), not a restart planned too late (it was exit 3:
/// "trigger the restart earlier", found on Wagtail).
#[test]
fn wrong_password_with_a_restart_is_login_failed_not_a_missed_restart() {
    let text = scenario("", &login("typo", ""), PROBE, "")
        .replace("duration = \"2s\"", "duration = \"5s\"")
        + "[restart]\nat = \"3s\"\nmethod = \"supervisor\"\n";
    let (out, _d) = run_text(&text);
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    assert!(!out.stderr.contains("restart earlier"), "{}", out.stderr);
}

/// Item 1, no probe: the answer that shows the login form again is the failed login.
#[test]
fn wrong_password_without_probe_is_login_failed() {
    let (out, _d) = run_text(&scenario(
        "\"--login-error-page\"",
        &login("typo", ""),
        "",
        "",
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    // The run says why it ended early, and the exit code's meaning; its last line is the
    // verdict, as with --quiet.
    assert!(
        out.stdout.contains("nothing measured: no login worked"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .trim_end()
            .ends_with("first-contact: fail (nothing measured: no login worked)"),
        "{}",
        out.stdout
    );
    // No page was sent: the summary does not show a latency of 0 ms.
    assert!(
        out.stdout
            .contains("not measured: no page or probe was sent"),
        "{}",
        out.stdout
    );
    let m = out.finding("login_failed").unwrap()["message"].to_string();
    assert!(
        m.contains("login form again") && m.contains("Log in"),
        "{m}"
    );
}

/// The fault absent: the right password passes in both modes, and the no-probe summary says
/// the worker spread was not checked (item 3) and sends nothing to /debug/session.
#[test]
fn right_password_passes_with_and_without_probe() {
    let (out, _d) = run_text(&scenario(
        "\"--login-error-page\"",
        &login("demo", ""),
        PROBE,
        "",
    ));
    assert_exit_and_kinds(&out, 0, &[]);
    assert!(
        out.report.as_ref().unwrap()["auth"]["probes"]
            .as_u64()
            .unwrap()
            > 0
    );
    let (out, _d) = run_text(&scenario(
        "\"--login-error-page\"",
        &login("demo", ""),
        "",
        "",
    ));
    assert_exit_and_kinds(&out, 0, &[]);
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["auth"]["probes"], 0, "{}", out.explain());
    assert!(r["requests"]["total"].as_u64().unwrap() > 10);
    assert!(
        out.stdout.contains("worker spread not checked: no probe"),
        "{}",
        out.stdout
    );
}

/// Item 2: `redirect_to = "/"` used to match "/login?error=1" by prefix.
#[test]
fn redirect_to_matches_the_exact_path() {
    let success = "success = { redirect_to = \"/\" }";
    let (out, _d) = run_text(&scenario("", &login("typo", success), PROBE, ""));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let m = out.finding("login_failed").unwrap()["message"].to_string();
    assert!(m.contains("/login?error=1"), "{m}");
    // The right password lands on /dashboard: exactly what redirect_to names.
    let success = "success = { redirect_to = \"/dashboard\" }";
    let (out, _d) = run_text(&scenario("", &login("demo", success), PROBE, ""));
    assert_exit_and_kinds(&out, 0, &[]);
}

/// Item 2: a `redirect_to` that is the login page is refused at validation.
#[test]
fn redirect_to_the_login_page_is_refused() {
    let dir = TempDir::new("redir");
    for bad in ["/login", "/login?next=/"] {
        let success = format!("success = {{ redirect_to = \"{bad}\" }}");
        let path = write_scenario(
            &dir,
            "s.toml",
            &scenario("", &login("demo", &success), PROBE, ""),
        );
        let out = validate(&path, &[]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("login.success.redirect_to") && out.stderr.contains("s.toml:"),
            "{}",
            out.stderr
        );
    }
}

/// Item 3: a configured probe that is not the JSON debug endpoint stops the run before the
/// load, naming the path and what it got.
#[test]
fn probe_that_is_not_a_debug_endpoint_stops_before_the_load() {
    for (path, got) in [
        ("/no-such-page", "HTTP 404"),
        ("/dashboard", "a redirect to /login"),
        ("/login", "did not answer JSON"),
    ] {
        let probe = format!("[probe]\npath = \"{path}\"\n");
        let (out, _d) = run_text(&scenario("", &login("demo", ""), &probe, ""));
        assert_eq!(out.code, 3, "{path}: {}", out.explain());
        assert!(
            out.stderr.contains(path) && out.stderr.contains(got),
            "{path}: {}",
            out.stderr
        );
    }
}

/// A restart scenario whose target takes a second to boot (`sleep 1`), so that the run's own
/// clock and the load's clock differ by at least that.
fn slow_boot_restart(workers: u32, min_workers: &str) -> String {
    format!(
        r#"name = "slow-boot-restart"
[target]
url = "http://127.0.0.1:8765"
spawn = {{ command = "sleep 1 && exec {BIN} target --port $PORT --workers {workers} --store shared --state-dir state" }}
ready = {{ path = "/health", timeout = "6s"{min_workers} }}
stop_timeout = "3s"
{login}
{PROBE}
[load]
users = 4
duration = "5s"
requests = ["/dashboard"]
think_time = "10ms"
[restart]
at = "2s"
recovery_timeout = "3s"
"#,
        login = login("demo", "")
    )
}

/// Items 6, 7, 8: with a restart, every request before it is `before_restart` (no `load`
/// phase); `at_s` is on the load's clock, as `at` is; downtime is until the target answered
/// again, and the wait for every worker is reported apart.
#[test]
fn restart_phases_and_times_are_on_the_load_clock() {
    let (out, dir) = run_text(&slow_boot_restart(2, ", min_workers = 2"));
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(!phases.contains(&"load"), "{phases:?}");
    assert!(
        phases.contains(&"before_restart") && phases.contains(&"after_restart"),
        "{phases:?}"
    );
    let restart = &r["restarts"][0];
    let at = restart["at_s"].as_f64().unwrap();
    // `at = "2s"` after the load began; the 1-s boot before the load is not in it.
    assert!((2.0..2.9).contains(&at), "at_s {at}: {}", out.explain());
    let down = restart["downtime_s"].as_f64().unwrap();
    let all = restart["all_workers_s"].as_f64().expect("all_workers_s");
    assert!(down <= all, "{restart}");
    assert!(
        out.stdout
            .contains("s into the load by supervisor: answered again after"),
        "{}",
        out.stdout
    );
    drop(dir);
}

/// Item 8: an unmet `ready.min_workers` at the start says what it waits for while it waits and
/// ends the run with exit 3, instead of running against fewer workers without a word.
#[test]
fn unmet_min_workers_at_start_is_exit_3_with_what_was_seen() {
    let (out, _dir) = run_text(&slow_boot_restart(1, ", min_workers = 3"));
    assert_eq!(out.code, 3, "{}", out.explain());
    assert!(
        out.stderr
            .contains("waiting for 3 workers (ready.min_workers), seen 1 (pid "),
        "{}",
        out.stderr
    );
    // The progress line while waiting (every 3 s), and the final message.
    assert!(
        out.stderr.matches("waiting for 3 workers").count() >= 2,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("ready.timeout"), "{}", out.stderr);
}

/// Item 12: each shipped scenario's header comment names that file (four restart-* files and
/// restart-hup.toml described restart.toml).
#[test]
fn shipped_scenarios_name_themselves_in_their_header() {
    for dir in ["scenarios", "scenarios/real"] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let first = text.lines().next().unwrap_or("");
            assert!(
                first.starts_with(&format!("# {name}:")),
                "{}: {first}",
                p.display()
            );
        }
    }
}

/// Item 11: the quick start on a machine where the scenario's port is taken: the built-in
/// target moves to a free port and says which; with `--url` the port stays what was asked.
#[test]
fn a_taken_port_moves_the_spawned_target_to_a_free_one() {
    // The squatter takes a port the kernel picks and holds it: checking a port free and then
    // binding it leaves a window in which another process can take it (it did, once, in CI).
    let squatter = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let taken = squatter.local_addr().unwrap().port();
    let dir = TempDir::new("taken");
    let text = scenario("", &login("demo", ""), PROBE, "")
        .replace("127.0.0.1:8765", &format!("127.0.0.1:{taken}"));
    let path = write_scenario(&dir, "s.toml", &text);
    let rd = dir.reports();
    let rds = rd.to_string_lossy().into_owned();
    let out = sesscheck(
        &["run", &path, "--report-dir", &rds],
        &[],
        &rd,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(
        out.stderr.contains(&format!("port {taken} is taken")),
        "{}",
        out.stderr
    );
    let url = out.report.as_ref().unwrap()["target"]["url"].to_string();
    assert!(!url.contains(&taken.to_string()), "{url}");
    let url = format!("http://127.0.0.1:{taken}");
    let out = sesscheck(
        &["run", &path, "--url", &url, "--report-dir", &rds],
        &[],
        &rd,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 3, "{}", out.explain());
    assert!(out.stderr.contains("already listening"), "{}", out.stderr);
}

/// A `[restart]` that the load ends before is no pass (exit 3, the report still written and
/// saying why): the run checked nothing about restarts. Found when a cold Chromium start
/// delayed a browser scenario's restart past its load and the run passed with `restarts: []`.
/// The restart that does run is `restart_phases_and_times_are_on_the_load_clock` (exit 0).
#[test]
fn a_planned_restart_that_never_ran_is_no_pass() {
    let never = "[restart]\nafter_requests = 100000000\n";
    let (out, _d) = run_text(&scenario("", &login("demo", ""), PROBE, never));
    assert_eq!(out.code, 3, "{}", out.explain());
    let r = out.report.as_ref().expect("the report is written");
    assert_eq!(r["verdict"], "fail", "{}", out.explain());
    assert_eq!(r["restarts"].as_array().unwrap().len(), 0);
    let why = r["aborted"].as_str().unwrap();
    assert!(
        why.contains("plans 1 restart(s) (restart.after_requests = 100000000; the load sent ")
            && why.contains("but 0 ran"),
        "{why}"
    );
    assert!(out.stderr.contains("no pass"), "{}", out.stderr);

    // One of three ran: the two the load never reached still make it no pass.
    let partly = "[restart]\nat = \"500ms\"\ncount = 3\ninterval = \"20s\"\n";
    let (out, _d) = run_text(&scenario("", &login("demo", ""), PROBE, partly));
    assert_eq!(out.code, 3, "{}", out.explain());
    let r = out.report.as_ref().expect("the report is written");
    assert_eq!(
        r["restarts"].as_array().unwrap().len(),
        1,
        "{}",
        out.explain()
    );
    let why = r["aborted"].as_str().unwrap();
    assert!(
        why.contains("plans 3 restart(s)") && why.contains("but 1 ran"),
        "{why}"
    );
}

/// A restart that ran but ended after the load checked nothing either: no pass (exit 3), the
/// reason in the report. Found on Calibre-Web: a restart command of 9.6 s in a 10 s load
/// passed `max_restart_logouts` with no request after the restart.
#[test]
fn a_restart_the_load_ended_during_is_no_pass() {
    let slow = "[restart]\nat = \"500ms\"\nmethod = { command = \"sleep 3\", timeout = \"10s\" }\n";
    let (out, _d) = run_text(&scenario("", &login("demo", ""), PROBE, slow));
    assert_eq!(out.code, 3, "{}", out.explain());
    let r = out.report.as_ref().expect("the report is written");
    assert_eq!(r["verdict"], "fail", "{}", out.explain());
    assert_eq!(
        r["restarts"].as_array().unwrap().len(),
        1,
        "{}",
        out.explain()
    );
    assert!(
        out.stdout
            .contains("first-contact: fail (no pass: restart 1 began at 0."),
        "{}",
        out.stdout
    );
    let why = r["aborted"].as_str().unwrap();
    assert!(
        why.contains("restart 1 began at 0.")
            && why.contains("no page or probe started after that before the load ended after 2."),
        "{why}"
    );
}

/// A restart time at or after the end of the load is a scenario error before anything runs.
#[test]
fn a_restart_after_the_end_of_the_load_is_a_scenario_error() {
    let late = "[restart]\nat = \"5s\"\n";
    let (out, _d) = run_text(&scenario("", &login("demo", ""), PROBE, late));
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains("restart.at") && out.stderr.contains("load.duration = 2s"),
        "{}",
        out.stderr
    );
    assert!(out.report.is_none());
}

/// A new user's app whose tables were never created (found on Flask-AppBuilder with an empty
/// database): the login page and the login answer 500. That is the app's setup, said as such:
/// not "the password?", not a session bug, and the checks only a logged-in user can feed say
/// "not measured" (typed `measured: false`), not PASS.
#[test]
fn a_database_without_tables_is_a_setup_mistake_not_a_password_or_session_bug() {
    let expect = "[expect]\nmin_distinct_pids = 2\nauth_persistence = 1.0\n";
    let (out, _d) = run_text(&scenario(
        "\"--no-tables\"",
        &login("demo", ""),
        PROBE,
        expect,
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let m = out.finding("login_failed").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        m.contains("HTTP 500") && m.contains("the app failed") && !m.contains("the password?"),
        "{m}"
    );
    for name in ["min_distinct_pids", "auth_persistence", "max_error_rate"] {
        let c = expectation(&out, name);
        assert_eq!(c["measured"], false, "{c}");
        assert_eq!(c["passed"], true, "{c}");
    }
    assert_eq!(
        expectation(&out, "max_login_failures")["measured"],
        serde_json::Value::Null
    );
    assert!(out.stdout.contains("NOT MEASURED"), "{}", out.stdout);

    // The same app with a CSRF login page: the page's 500 is named, not "the token".
    let csrf = "csrf = { page = \"/login\", field = \"csrf_token\" }";
    let (out, _d) = run_text(&scenario(
        "\"--no-tables\"",
        &login("demo", csrf),
        PROBE,
        "",
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let f = out.finding("login_failed").unwrap();
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("no CSRF token `csrf_token` on /login: it answered HTTP 500")
            && m.contains("migrations"),
        "{m}"
    );
    assert_eq!(f["example"]["failure"]["kind"], "csrf_unreadable", "{f}");
}

/// A CSRF page or field typo says which of the two to fix; the right ones log in (exit 0).
#[test]
fn csrf_page_and_field_typos_name_the_field_to_fix() {
    let csrf =
        |page: &str, field: &str| format!("csrf = {{ page = \"{page}\", field = \"{field}\" }}");
    let args = "\"--require-csrf\"";
    let (out, _d) = run_text(&scenario(
        args,
        &login("demo", &csrf("/logn", "csrf_token")),
        PROBE,
        "",
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let m = out.finding("login_failed").unwrap()["message"].to_string();
    assert!(
        m.contains("HTTP 404") && m.contains("check [login] csrf.page"),
        "{m}"
    );

    let (out, _d) = run_text(&scenario(
        args,
        &login("demo", &csrf("/login", "csrf")),
        PROBE,
        "",
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let m = out.finding("login_failed").unwrap()["message"].to_string();
    assert!(
        m.contains("HTTP 200") && m.contains("check [login] csrf.field"),
        "{m}"
    );
    assert!(!m.contains("the password?"), "{m}");
    // Each user asked the login page twice (a reload) and never sent its login: 6 requests,
    // none of them an error (before, the 3 unsent logins were counted as 3 errors).
    let q = &out.report.as_ref().unwrap()["requests"];
    assert_eq!(
        (q["total"].as_u64(), q["errors"].as_u64()),
        (Some(6), Some(0)),
        "{q}"
    );

    let (out, _d) = run_text(&scenario(
        args,
        &login("demo", &csrf("/login", "csrf_token")),
        PROBE,
        "",
    ));
    assert_exit_and_kinds(&out, 0, &[]);
}

/// Found on pgAdmin, whose login page is rendered by JavaScript and keeps its CSRF token in a
/// script's JSON: a hidden-input field cannot read it (the message now points at
/// csrf.pattern), a pattern can, and a pattern without a group is refused at the line.
#[test]
fn a_csrf_token_in_a_script_is_read_with_a_pattern() {
    let args = "\"--require-csrf\", \"--csrf-in-script\"";
    let (out, _d) = run_text(&scenario(
        args,
        &login(
            "demo",
            "csrf = { page = \"/login\", field = \"csrf_token\" }",
        ),
        PROBE,
        "",
    ));
    assert_exit_and_kinds(&out, NOTHING_MEASURED, &["login_failed"]);
    let m = out.finding("login_failed").unwrap()["message"].to_string();
    assert!(m.contains("csrf.pattern"), "{m}");

    let pattern =
        r#"csrf = { page = "/login", field = "csrf_token", pattern = '"csrfToken":\s*"([^"]+)"' }"#;
    let (out, _d) = run_text(&scenario(args, &login("demo", pattern), PROBE, ""));
    assert_exit_and_kinds(&out, 0, &[]);

    let no_group = r#"csrf = { page = "/login", pattern = '"csrfToken": "[^"]+"' }"#;
    let (out, _d) = run_text(&scenario(args, &login("demo", no_group), PROBE, ""));
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains("s.toml") && out.stderr.contains("needs a group around the token"),
        "{}",
        out.stderr
    );
}

/// A per-worker secret with a CSRF login: the token one worker signed fails on the other, so
/// some logins fail while others work. The hint names the per-worker secret, beside the
/// password (found on Flask-AppBuilder, whose per-worker SECRET_KEY failed 5 logins this way).
#[test]
fn logins_failing_on_some_workers_point_at_a_per_worker_secret() {
    let csrf = "csrf = { page = \"/login\", field = \"csrf_token\" }";
    let text = scenario("\"--require-csrf\"", &login("demo", csrf), PROBE, "")
        .replace("store = \"shared\"", "store = \"secret-per-worker\"")
        .replace("users = 3", "users = 8");
    let (out, _d) = run_text(&text);
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out.finding("login_failed").expect("some logins fail");
    let m = f["message"].as_str().unwrap();
    assert!(m.contains("differs per worker"), "{m}");
    assert!(
        out.report.as_ref().unwrap()["logins"]["ok"]
            .as_u64()
            .unwrap()
            > 0
    );
}

/// A first login the app refuses while other users' logins work (here a login rate limit: 429
/// for the logins over 5 a second) is tried again a second later, as a person would: all 10
/// users get in, and the message names the limit and what to do about it.
#[test]
fn a_first_login_refused_while_others_work_is_tried_again() {
    let text = scenario("\"--login-limit\", \"5\"", &login("demo", ""), PROBE, "")
        .replace("users = 3", "users = 10")
        .replace("duration = \"2s\"", "duration = \"4s\"")
        .replace("workers = 2", "workers = 1");
    let (out, _d) = run_text(&text);
    let logins = &out.report.as_ref().expect("a report")["logins"];
    assert!(logins["failed"].as_u64().unwrap() >= 5, "{logins}");
    assert_eq!(logins["ok"], 10, "{logins}\n{}", out.explain());
    assert_exit_and_kinds(&out, 1, &["login_failed"]);
    let m = out.finding("login_failed").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(m.contains("HTTP 429") && m.contains("login_rate"), "{m}");
}

/// The built-in target's login form posting to /authenticate/login (as pgAdmin's /login page
/// does), while visitors without a login are sent to /login; `store`, `password` as given.
fn login_action_scenario(store: &str, password: &str) -> String {
    format!(
        r#"name = "login-action"
[target]
url = "http://127.0.0.1:8765"
spawn = {{ builtin = {{ workers = 2, store = "{store}", args = ["--login-action", "/authenticate/login"] }} }}
ready = {{ path = "/health", timeout = "20s" }}
[login]
path = "/authenticate/login"
fields = {{ username = "user{{user}}", password = "{password}" }}
success = {{ redirect_to = "/dashboard" }}
[load]
users = 3
duration = "2s"
requests = ["/dashboard"]
think_time = "20ms"
connection = "new"
"#
    )
}

/// Found on pgAdmin behind two replicas: with the login posting elsewhere than the login page,
/// a redirect to /login was not taken for a logout, and a store that lost every session passed
/// (2,255 pages, all of them redirects to /login, "anonymous 0"). Now the pages are asked once
/// without a login first, /login is learned and said; the fault fails, a shared store passes.
#[test]
fn the_page_visitors_without_a_login_are_sent_to_is_learned_when_the_login_posts_elsewhere() {
    let (out, _d) = run_text(&login_action_scenario("memory", "demo"));
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(
        out.finding_kinds().contains(&"logout".to_string()),
        "{}",
        out.explain()
    );
    assert!(
        out.stderr
            .contains("send visitors without a login to /login"),
        "{}",
        out.stderr
    );

    let (out, _d) = run_text(&login_action_scenario("shared", "demo"));
    assert_eq!(out.code, 0, "{}", out.explain());
    assert_eq!(
        out.report.as_ref().unwrap()["auth"]["unauthenticated"],
        0,
        "{}",
        out.explain()
    );
}

/// A wrong password on such an app comes back to the login page: said as a refused login, not
/// as advice about `next` (which sent the pgAdmin trial the wrong way first).
#[test]
fn a_wrong_password_sent_back_to_the_login_page_is_called_refused() {
    let (out, _d) = run_text(&login_action_scenario("shared", "wrong"));
    assert_eq!(out.code, NOTHING_MEASURED, "{}", out.explain());
    let login = out.finding("login_failed").expect("a login_failed finding");
    let message = login["message"].as_str().unwrap();
    assert!(
        message.contains("that is the login page again") && !message.contains("next"),
        "{message}"
    );
}

/// Five users, one account (no `{user}` in the fields), the built-in target knowing only it.
fn one_account_scenario(password: &str) -> String {
    format!(
        r#"name = "one-account"
[target]
url = "http://127.0.0.1:8765"
spawn = {{ builtin = {{ workers = 2, store = "shared", args = ["--account", "admin:s3cret"] }} }}
ready = {{ path = "/health", timeout = "20s" }}
[login]
path = "/login"
fields = {{ username = "admin", password = "{password}" }}
success = {{ redirect_to = "/dashboard" }}
[load]
users = 5
duration = "2s"
requests = ["/dashboard"]
think_time = "20ms"
"#
    )
}

/// Found on pgAdmin, which locks an account after 3 failed logins: five users sharing the
/// account with a wrong password failed together and locked it, and the next run, with the
/// right password, failed too. Now the first two users log in and the others wait for them:
/// two failed logins, not five, and it is said; with the right password all five log in.
#[test]
fn users_sharing_one_account_try_a_wrong_password_twice_not_once_each() {
    let (out, _d) = run_text(&one_account_scenario("wrong"));
    assert_eq!(out.code, NOTHING_MEASURED, "{}", out.explain());
    let logins = &out.report.as_ref().unwrap()["logins"];
    assert_eq!(logins["attempts"], 2, "{logins}");
    assert!(
        out.stderr.contains("3 other users did not try theirs"),
        "{}",
        out.stderr
    );

    let (out, _d) = run_text(&one_account_scenario("s3cret"));
    assert_eq!(out.code, 0, "{}", out.explain());
    assert_eq!(out.report.as_ref().unwrap()["logins"]["ok"], 5);
}

/// A page that answers every logged-in user 403 (an admin page in a non-admin's [load]
/// requests; here the built-in target's `/status/403`) is the account's limit, not a lost
/// session: a warning `page_refused`, no `logout` (found on Calibre-Web, where the run blamed
/// the replicas' SECRET_KEY, exit 1). With sessions really lost per worker, the other page's
/// logouts still fail the run.
#[test]
fn a_page_that_refuses_every_logged_in_user_is_no_logout() {
    let pages = "requests = [\"/dashboard\", \"/status/403\"]";
    let text =
        scenario("", &login("demo", ""), "", "").replace("requests = [\"/dashboard\"]", pages);
    let (out, _d) = run_text(&text);
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(out.finding("logout").is_none(), "{}", out.explain());
    let f = out.finding("page_refused").expect("a page_refused warning");
    assert_eq!(f["severity"], "warning", "{f}");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("/status/403 (") && m.contains("HTTP 403 every time"),
        "{m}"
    );

    let faulty = text.replace("store = \"shared\"", "store = \"memory\"");
    let (out, _d) = run_text(&faulty);
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(out.finding("logout").is_some(), "{}", out.explain());
}

/// A login page that sends a logged-in user on to the app (as Flask apps and Django's
/// `redirect_authenticated_user` do) answers a re-login of a user whose session is alive with
/// a redirect: that is the user still logged in, not a login that failed on a CSRF field.
/// Found on Calibre-Web: an admin page answered 403, the user logged in again, and the run
/// failed with "no CSRF token ... check [login] csrf.field" on a healthy setup. With sessions
/// kept per worker the same scenario still fails, on `logout`.
#[test]
fn a_login_page_that_sends_a_logged_in_user_on_is_no_failed_login() {
    let csrf = "csrf = { page = \"/login\", field = \"csrf_token\" }";
    let args = "\"--require-csrf\", \"--login-redirects-logged-in\"";
    let text = scenario(args, &login("demo", csrf), "", "").replace(
        "requests = [\"/dashboard\"]",
        "requests = [\"/dashboard\", \"/status/403\"]",
    );
    let (out, _d) = run_text(&text);
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(out.finding("login_failed").is_none(), "{}", out.explain());
    assert!(out.finding("page_refused").is_some(), "{}", out.explain());

    let (out, _d) = run_text(&text.replace("store = \"shared\"", "store = \"memory\""));
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(out.finding("logout").is_some(), "{}", out.explain());
}

/// "answered again after 1.0 s" is how long the restart took, which is downtime only if
/// requests failed meanwhile: the summary says which (found on Calibre-Web, where nginx kept
/// serving from the other replica during a 9.6 s restart command).
#[test]
fn the_restart_line_says_whether_requests_failed_while_it_ran() {
    let rolling =
        "[restart]\nat = \"500ms\"\nmethod = { command = \"sleep 1\", timeout = \"10s\" }\n";
    let text = scenario("", &login("demo", ""), PROBE, rolling)
        .replace("duration = \"2s\"", "duration = \"3s\"");
    let (out, _d) = run_text(&text);
    assert_eq!(out.code, 0, "{}", out.explain());
    let md = markdown(&out);
    assert!(
        md.contains("that is how long the restart took: the ")
            && md.contains("pages and probes sent meanwhile were all answered"),
        "{md}"
    );

    // The built-in target stopped and started again: what came in meanwhile failed.
    let down = "[restart]\nat = \"500ms\"\nmethod = \"supervisor\"\n";
    let text = scenario("", &login("demo", ""), PROBE, down)
        .replace("duration = \"2s\"", "duration = \"4s\"");
    let (out, _d) = run_text(&text);
    let md = markdown(&out);
    assert!(
        md.contains("pages and probes sent meanwhile failed") && !md.contains("were all answered"),
        "{md}"
    );
    // When its users had a logged-in answer again, which can be well after the ready check
    // (a HUP's old workers answer it at once): never before the target was back.
    assert!(
        md.contains("its users served logged in again within"),
        "{md}"
    );
    let restart = &out.report.as_ref().unwrap()["restarts"][0];
    let (back, down) = (
        restart["users_back_s"].as_f64(),
        restart["downtime_s"].as_f64(),
    );
    assert!(
        matches!((back, down), (Some(b), Some(d)) if b >= d),
        "{restart}"
    );
}

/// The Markdown report of a run: its key figures unwrapped, as the table shows them.
fn markdown(out: &Outcome) -> String {
    out.files
        .iter()
        .find(|(p, _)| p.extension().is_some_and(|x| x == "md"))
        .map(|(_, text)| text.clone())
        .unwrap_or_else(|| panic!("no Markdown report: {}", out.explain()))
}

/// `auth_persistence` is a share of probe answers: with a header-only `[probe]` (no probe
/// path) it could only be "0 of 0", which failed the run (Label Studio trial). It is a
/// scenario error, naming the file, line and field.
#[test]
fn auth_persistence_without_a_probe_is_a_scenario_error() {
    let probe = "[probe]\nworker_header = \"X-Served-By\"\n";
    let expect = "[expect]\nauth_persistence = 1.0\n";
    let (out, _d) = run_text(&scenario("", &login("demo", ""), probe, expect));
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains("s.toml:")
            && out.stderr.contains("expect.auth_persistence")
            && out.stderr.contains("asks no probe"),
        "{}",
        out.stderr
    );
}

/// A `[logout] path` the app does not have (404) logs nobody out: a run whose every
/// deliberate logout was refused is no pass (exit 3) and says which path and method to check
/// (Label Studio trial: `/user/logout/` counted as 16 deliberate logouts). The right path
/// passes.
#[test]
fn logouts_that_all_answer_404_are_no_pass() {
    let logouts = |path: &str| {
        format!("logout_every = \"300ms\"\nrelogin = true\n[logout]\npath = \"{path}\"\n")
    };
    // A login page that sends logged-in users on: the users, never logged out, log in again
    // and find themselves still logged in, which is no failed login either.
    let csrf = "csrf = { page = \"/login\", field = \"csrf_token\" }";
    let args = "\"--require-csrf\", \"--login-redirects-logged-in\"";
    let (out, _d) = run_text(&scenario(
        args,
        &login("demo", csrf),
        PROBE,
        &logouts("/nope"),
    ));
    assert_eq!(out.code, 3, "{}", out.explain());
    assert!(out.finding("login_failed").is_none(), "{}", out.explain());
    let why = out.report.as_ref().unwrap()["aborted"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        why.contains("deliberate logouts (") && why.contains("/nope) answered HTTP 404"),
        "{why}"
    );
    let (out, _d) = run_text(&scenario(
        "",
        &login("demo", ""),
        PROBE,
        &logouts("/logout"),
    ));
    assert_eq!(out.code, 0, "{}", out.explain());
}
