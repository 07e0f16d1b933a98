//! Issue 5: session rules (several sessions per account, fixation, revocation, lifetime and
//! renewal, cookie attributes, config), each against the built-in target with its fault
//! switched on alone, and all of them off (scenarios/smoke.toml passes).
mod common;
use common::*;

const SHORT: &[&str] = &["--duration", "4s", "--users", "3"];
const HEALTHY_ARGS: &str = "args = [\"--session-lifetime\", \"3600\", \"--sliding\"]";

/// smoke.toml with the target's flags replaced.
fn smoke_with_target_args(args: &str) -> (Outcome, TempDir) {
    run_edited(
        "scenarios/smoke.toml",
        &[(HEALTHY_ARGS, &format!("args = [{args}]"))],
        SHORT,
        &[],
    )
}

#[test]
fn smoke_passes_with_every_rule_checked() {
    let (out, _d) = run_scenario("scenarios/smoke.toml", SHORT, &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    let names: Vec<&str> = r["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for kind in [
        "session_conflict",
        "session_fixation",
        "logout_not_revoked",
        "session_lifetime",
        "cookie_attributes",
        "config",
    ] {
        assert!(names.contains(&format!("no_{kind}").as_str()), "{names:?}");
    }
    assert_eq!(r["lifetime"]["cookie_lifetime_s"].as_f64(), Some(3600.0));
    assert_eq!(r["lifetime"]["renewed"], true);
}

#[test]
fn fixation_is_found_when_the_session_id_survives_login() {
    let (out, _d) =
        smoke_with_target_args("\"--session-lifetime\", \"3600\", \"--sliding\", \"--no-rotate\"");
    assert_exit_and_kinds(&out, 1, &["session_fixation"]);
}

#[test]
fn unrevoked_logout_is_found_by_replaying_the_old_cookie() {
    let (out, _d) =
        smoke_with_target_args("\"--session-lifetime\", \"3600\", \"--sliding\", \"--no-revoke\"");
    assert_exit_and_kinds(&out, 1, &["logout_not_revoked"]);
}

#[test]
fn cookie_attributes_name_what_is_missing() {
    let (out, _d) = smoke_with_target_args(
        "\"--session-lifetime\", \"3600\", \"--sliding\", \"--insecure-cookies\"",
    );
    assert_exit_and_kinds(&out, 1, &["cookie_attributes"]);
    let msg = out.finding("cookie_attributes").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("HttpOnly") && msg.contains("SameSite"),
        "{msg}"
    );
}

#[test]
fn default_secret_is_a_config_finding() {
    let (out, _d) = smoke_with_target_args(
        "\"--session-lifetime\", \"3600\", \"--sliding\", \"--default-secret\"",
    );
    assert_exit_and_kinds(&out, 1, &["config"]);
}

#[test]
fn short_fixed_lifetime_is_found_and_measured() {
    let (out, _d) = smoke_with_target_args("\"--session-lifetime\", \"60\"");
    assert_exit_and_kinds(&out, 1, &["session_lifetime"]);
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["lifetime"]["cookie_lifetime_s"].as_f64(), Some(60.0));
    assert_eq!(r["lifetime"]["renewed"], false);
    let msg = out.finding("session_lifetime").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("shorter") && msg.contains("did not renew"),
        "{msg}"
    );
}

#[test]
fn single_session_app_is_a_session_conflict() {
    // Without --sliding: a sliding session is re-saved at the end of each request, and a request
    // in flight while the other device logs in resurrects the session that login deleted.
    let (out, _d) =
        smoke_with_target_args("\"--session-lifetime\", \"3600\", \"--single-session\"");
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out.finding("session_conflict").expect("session_conflict");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("ANOTHER session of the same account logged in"),
        "{f}"
    );
}

#[test]
fn logout_scope_user_fails_when_other_sessions_survive() {
    let (out, _d) = run_edited(
        "scenarios/smoke.toml",
        &[("logout_scope = \"session\"", "logout_scope = \"user\"")],
        SHORT,
        &[],
    );
    assert_exit_and_kinds(&out, 1, &["session_conflict"]);
    let msg = out.finding("session_conflict").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("still logged in"), "{msg}");
}

/// smoke.toml without its probe: the replay of the pre-logout cookie (and the other device's
/// scope check) is judged from the first page, as every page is without a probe. Before, it
/// went to the probe's empty path and judged nothing, so Label Studio's signed-cookie
/// sessions, alive after the logout, passed `no_logout_not_revoked`.
#[test]
fn without_a_probe_an_unrevoked_logout_is_found_from_the_pages() {
    let no_probe = |target_args: &str| {
        run_edited(
            "scenarios/smoke.toml",
            &[
                (HEALTHY_ARGS, &format!("args = [{target_args}]")),
                ("[probe]\npath = \"/debug/session\"\n", ""),
                ("remaining = \"/expires_in\"", ""),
                ("min_distinct_pids = 2\nauth_persistence = 1.0\n", ""),
            ],
            SHORT,
            &[],
        )
    };
    let (out, _d) = no_probe("\"--session-lifetime\", \"3600\", \"--sliding\"");
    assert_eq!(out.code, 0, "{}", out.explain());
    let (out, _d) = no_probe("\"--session-lifetime\", \"3600\", \"--sliding\", \"--no-revoke\"");
    assert_exit_and_kinds(&out, 1, &["logout_not_revoked"]);
}
