//! Write requests in the load (`[load] requests` tables) against the demo target's
//! `POST /notes`, which with `--notes-csrf` needs Django's AJAX CSRF header.
mod common;
use common::{free_port, run_quiet, Outcome, TempDir};
use std::time::Duration;

fn run(write: &str) -> Outcome {
    let dir = TempDir::new("writes");
    let text = format!(
        r#"
name = "writes"
[target]
url = "http://127.0.0.1:{}"
spawn = {{ builtin = {{ workers = 2, store = "shared", args = ["--notes-csrf"] }} }}
ready = {{ path = "/health", timeout = "20s" }}
[login]
fields = {{ username = "user{{user}}", password = "demo" }}
success = {{ redirect_to = "/dashboard" }}
csrf = {{ page = "/login", field = "csrf_token" }}
[probe]
path = "/debug/session"
[load]
users = 3
duration = "1500ms"
requests = ["/dashboard", {write}]
think_time = "10ms"
"#,
        free_port()
    );
    run_quiet(&dir, &text, Duration::from_secs(60))
}

#[test]
fn a_form_post_with_ajax_csrf_passes() {
    let out = run(
        r#"{ path = "/notes", form = { text = "note of user {user}" }, expect_status = 201, csrf = { cookie = "csrftoken", header = "X-CSRFToken" } }"#,
    );
    common::assert_exit_and_kinds(&out, 0, &[]);
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["requests"]["errors"], 0, "{}", out.explain());
    assert!(
        r["requests"]["total"].as_u64().unwrap() > 20,
        "{}",
        out.explain()
    );
}

#[test]
fn a_json_post_works_too() {
    let out = run(
        r#"{ method = "POST", path = "/notes", json = { text = "{user}", tags = ["a"] }, expect_status = 201, csrf = {} }"#,
    );
    common::assert_exit_and_kinds(&out, 0, &[]);
}

#[test]
fn a_write_without_the_csrf_header_is_found() {
    // The same write without `csrf`: every POST gets Django's 403, the session looks lost.
    let out = run(r#"{ path = "/notes", form = { text = "x" }, expect_status = 201 }"#);
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(!out.finding_kinds().is_empty(), "{}", out.explain());
}

#[test]
fn an_answer_other_than_expect_status_is_an_error() {
    // /notes answers 201; a scenario that promises 200 must see every write as failed.
    let out = run(r#"{ path = "/notes", form = { text = "x" }, expect_status = 200, csrf = {} }"#);
    assert_eq!(out.code, 1, "{}", out.explain());
    let e = out
        .finding("http_error")
        .unwrap_or_else(|| panic!("{}", out.explain()));
    assert!(e.to_string().contains("expect_status 200"), "{e}");
}

#[test]
fn a_broken_write_entry_names_its_field() {
    let out = run(r#"{ method = "GET", path = "/notes" }"#);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("load.requests"), "{}", out.stderr);
}
