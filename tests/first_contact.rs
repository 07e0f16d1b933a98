//! Issue 15: the mistakes a newcomer makes first (a typo in the password, a wrong path, no
//! debug endpoint) get the right diagnosis, against the built-in target's real processes.
mod common;
use common::*;
use std::time::Duration;

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
    assert_exit_and_kinds(&out, 1, &["login_failed"]);
    let f = out.finding("login_failed").unwrap();
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("HTTP 200") && m.contains("said anonymous"),
        "{m}"
    );
    assert!(!m.contains("typo"), "the password leaked: {m}");
    for name in ["min_distinct_pids", "auth_persistence"] {
        let c = expectation(&out, name);
        assert!(
            c["message"].as_str().unwrap().contains("not measured"),
            "{c}"
        );
    }
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["logins"]["ok"], 0, "{}", r["logins"]);
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
    assert_exit_and_kinds(&out, 1, &["login_failed"]);
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
    assert_exit_and_kinds(&out, 1, &["login_failed"]);
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
