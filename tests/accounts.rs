//! `[login] accounts = "users.csv"` against the demo target, which accepts only the accounts
//! given with `--account USER:PASSWORD`: users take the accounts in turn, a `${VAR}` password
//! cell reads the environment, passwords never reach any output, and a broken file is exit 2.
mod common;
use common::{free_port, sesscheck, Outcome, TempDir};
use std::time::Duration;

fn scenario(port: u16) -> String {
    format!(
        r#"
name = "accounts"
[target]
url = "http://127.0.0.1:{port}"
spawn = {{ builtin = {{ workers = 2, store = "shared", args = ["--account", "alice:alice-pw-7", "--account", "bob:bob-secret-9"] }} }}
ready = {{ path = "/health", timeout = "20s" }}
[login]
accounts = "users.csv"
success = {{ redirect_to = "/dashboard" }}
[probe]
path = "/debug/session"
[load]
users = 4
duration = "1s"
requests = ["/dashboard"]
"#
    )
}

fn run(csv: &str, envs: &[(&str, &str)]) -> (Outcome, TempDir) {
    let dir = TempDir::new("accounts");
    std::fs::write(dir.path().join("users.csv"), csv).unwrap();
    let path = dir.scenario(&scenario(free_port()));
    let reports = dir.reports();
    let events = dir.path().join("events.jsonl");
    let out = sesscheck(
        &[
            "run",
            path.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
        ],
        envs,
        &reports,
        Duration::from_secs(60),
    );
    (out, dir)
}

/// Nothing the run printed or wrote holds any of `secrets`.
fn assert_nowhere(out: &Outcome, dir: &TempDir, secrets: &[&str]) {
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap_or_default();
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "{s} printed"
        );
        assert!(!events.contains(s), "{s} in the event stream");
        for (path, text) in &out.files {
            assert!(!text.contains(s), "{s} in {}", path.display());
        }
    }
}

#[test]
fn users_take_the_accounts_in_turn_with_passwords_from_the_file_and_environment() {
    let (out, dir) = run(
        "username,password\nalice,alice-pw-7\nbob,${SESSCHECK_TEST_BOB_PW}\n",
        &[("SESSCHECK_TEST_BOB_PW", "bob-secret-9")],
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    let logins = &out.report.as_ref().unwrap()["logins"];
    assert_eq!(
        (logins["attempts"].as_u64(), logins["ok"].as_u64()),
        (Some(4), Some(4)),
        "{logins}"
    );
    assert_nowhere(&out, &dir, &["alice-pw-7", "bob-secret-9"]);
}

#[test]
fn an_account_with_a_wrong_password_fails_only_its_own_users() {
    // Users 1 and 3 take alice, 2 and 4 take mallory, whose password the target refuses.
    let (out, dir) = run(
        "username,password\nalice,alice-pw-7\nmallory,mallory-wrong-pw\n",
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    let logins = &out.report.as_ref().unwrap()["logins"];
    assert_eq!(logins["ok"].as_u64(), Some(2), "{logins}");
    assert_eq!(logins["failed"].as_u64(), Some(2), "{logins}");
    assert!(
        out.finding_kinds().contains(&"login_failed".to_string()),
        "{}",
        out.explain()
    );
    assert_nowhere(&out, &dir, &["alice-pw-7", "mallory-wrong-pw"]);
}

#[test]
fn a_broken_accounts_file_names_its_line() {
    let (out, _dir) = run("username,password\nalice,alice-pw-7\nbob\n", &[]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("users.csv:3"), "{}", out.stderr);
    assert!(out.stderr.contains("login.accounts"), "{}", out.stderr);
    let (out, _dir) = run("username,password\nbob,${SESSCHECK_TEST_UNSET_PW_X}\n", &[]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains("SESSCHECK_TEST_UNSET_PW_X"),
        "{}",
        out.stderr
    );
}
