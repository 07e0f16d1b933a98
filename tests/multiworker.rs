//! Issue 2: logins across workers, against the built-in target's real worker processes.
mod common;
use common::*;
use std::time::Duration;

#[test]
fn shared_store_passes_with_several_pids_and_every_probe_authenticated() {
    let (out, _dir) = run_scenario(
        "scenarios/multiworker.toml",
        &["--duration", "3s", "--users", "8"],
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().expect("a JSON report");
    assert_eq!(r["verdict"], "pass");
    assert!(
        r["workers"]["distinct_pids"].as_u64().unwrap() >= 2,
        "{}",
        r["workers"]
    );
    let probes = r["auth"]["probes"].as_u64().unwrap();
    assert!(probes > 20, "too few probes: {probes}");
    assert_eq!(r["auth"]["authenticated"].as_u64().unwrap(), probes);
    assert!(out.finding_kinds().is_empty(), "{:?}", out.finding_kinds());
    // Every field of the report contract is there.
    for key in [
        "sesscheck_version",
        "scenario",
        "verdict",
        "started_at",
        "duration_s",
        "requests",
        "workers",
        "auth",
        "restarts",
        "phases",
        "latency_ms",
        "findings",
    ] {
        assert!(r.get(key).is_some(), "report lacks {key}");
    }
    assert!(r["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
}

#[test]
fn memory_store_fails_with_logouts() {
    let (out, _dir) = run_scenario(
        "scenarios/multiworker-broken.toml",
        &["--duration", "3s", "--users", "8"],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(
        out.finding_kinds().contains(&"logout".to_string()),
        "{:?}",
        out.finding_kinds()
    );
    let f = out.finding("logout").unwrap();
    assert!(f["count"].as_u64().unwrap() > 0);
    assert_eq!(f["severity"], "error");
}

/// A login path with a query (Django admin's `/admin/login/?next=/admin/`, which a scenario
/// needs so that the login redirects to the admin) still names the login page: a page that
/// redirects to `/login` is anonymous. Without a probe that is the only sign of a logout; it
/// went unseen (a per-worker store passed) while the query was compared too.
#[test]
fn login_path_with_a_query_still_recognises_the_login_page() {
    let (out, _d) = run_edited(
        "scenarios/multiworker-broken.toml",
        &[
            ("path = \"/login\"", "path = \"/login?next=/dashboard\""),
            // No probe: only the pages can show the logouts.
            ("[probe]\n", ""),
            ("path = \"/debug/session\"\n", ""),
            ("pid = \"/worker/pid\"", ""),
            ("authenticated = \"/authenticated\"", ""),
            ("min_distinct_pids = 2", ""),
            ("auth_persistence = 1.0", ""),
        ],
        &["--duration", "3s", "--users", "8"],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("logout")
        .unwrap_or_else(|| panic!("{}", out.explain()));
    assert!(f["count"].as_u64().unwrap() > 0, "{f}");
}

#[test]
fn secret_per_worker_fails_with_logouts() {
    let (out, _d) = run_edited(
        "scenarios/multiworker.toml",
        &[("store = \"shared\"", "store = \"secret-per-worker\"")],
        &["--duration", "3s", "--users", "8"],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    assert!(
        out.finding_kinds().contains(&"logout".to_string()),
        "{:?}",
        out.finding_kinds()
    );
    // The one verdict line names what failed.
    assert!(out.stdout.contains(": fail (logout"), "{}", out.stdout);
}

/// A per-worker key on a sliding signed-cookie session (as Flask-AppBuilder's): every
/// authenticated answer re-signs the cookie with a new value. The logout is the workers' key,
/// not one of those renewals: the message names the workers, not a replaced cookie.
#[test]
fn a_sliding_cookie_with_a_per_worker_key_blames_the_workers_not_a_renewal() {
    let (out, _d) = run_edited(
        "scenarios/multiworker.toml",
        &[(
            "store = \"shared\" }",
            "store = \"secret-per-worker\", args = [\"--session-lifetime\", \"600\", \"--sliding\"] }",
        )],
        &["--duration", "3s", "--users", "8"],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("logout")
        .unwrap_or_else(|| panic!("{}", out.explain()));
    let m = f["message"].as_str().unwrap();
    assert!(!m.contains("was replaced by the response"), "{m}");
    assert!(m.contains("SECRET_KEY"), "{m}");
}

#[test]
fn unreachable_target_exits_3_naming_the_url() {
    let dir = TempDir::new("unreach");
    let port = free_port();
    let text = format!(
        "name = \"u\"\n[target]\nurl = \"http://127.0.0.1:{port}\"\nready = {{ path = \"/health\", timeout = \"1s\" }}\n[load]\nduration = \"1s\"\n"
    );
    let path = write_scenario(&dir, "u.toml", &text);
    let rd = dir.path().join("r");
    let out = sesscheck(
        &["run", &path, "--report-dir", &rd.to_string_lossy()],
        &[],
        &rd,
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 3, "{}", out.explain());
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.to_lowercase().contains("refused"),
        "{}",
        out.stderr
    );
}

#[test]
fn malformed_scenario_exits_2_naming_file_line_and_field() {
    let dir = TempDir::new("bad");
    let text = scenario_with("scenarios/multiworker.toml", "users = 20", "userz = 20");
    let path = write_scenario(&dir, "bad.toml", &text);
    let line = text.lines().position(|l| l.starts_with("userz")).unwrap() + 1;
    for cmd in ["validate", "run"] {
        let out = sesscheck(&[cmd, &path], &[], dir.path(), Duration::from_secs(20));
        assert_eq!(out.code, 2, "{}", out.explain());
        assert!(
            out.stderr.contains(&format!("bad.toml:{line}")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("userz") && out.stderr.contains("did you mean `users`"),
            "{}",
            out.stderr
        );
    }
    // A wrong type, too.
    let text = scenario_with(
        "scenarios/multiworker.toml",
        "users = 20",
        "users = \"many\"",
    );
    let path = write_scenario(&dir, "bad2.toml", &text);
    let out = validate(&path, &[]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains(&format!("bad2.toml:{line}")),
        "{}",
        out.stderr
    );
}

#[test]
fn shipped_scenarios_are_valid() {
    let mut n = 0;
    for dir in ["scenarios", "scenarios/real"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml") {
                // now-lms.toml takes its password from the environment, with no default.
                let out = validate(&p.to_string_lossy(), &[("NOW_LMS_PASSWORD", "x")]);
                assert_eq!(out.code, 0, "{}: {}", p.display(), out.explain());
                n += 1;
            }
        }
    }
    assert!(n >= 2, "found only {n} scenarios");
}

/// No password and no session cookie value in anything sesscheck prints or writes.
#[test]
fn reports_never_contain_the_password_or_a_session_cookie() {
    let password = "Pw-7f3a9c-unique";
    let dir = TempDir::new("secret");
    let state = dir.path().join("state");
    let port = free_port();
    // Start the target ourselves with a known state dir, so we can read the session ids after.
    let mut target = std::process::Command::new(BIN)
        .args([
            "target",
            "--port",
            &port.to_string(),
            "--workers",
            "2",
            "--password",
            password,
            "--state-dir",
            &state.to_string_lossy(),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let text = format!(
        "name = \"secret\"\n[target]\nurl = \"http://127.0.0.1:{port}\"\nready = {{ path = \"/health\" }}\n\
         [login]\nfields = {{ username = \"user{{user}}\", password = \"${{SC_TEST_PW}}\" }}\nsuccess = {{ redirect_to = \"/dashboard\" }}\n\
         [load]\nusers = 3\nduration = \"2s\"\n"
    );
    let path = write_scenario(&dir, "secret.toml", &text);
    let rd = dir.path().join("reports");
    let out = sesscheck(
        &["run", &path, "--report-dir", &rd.to_string_lossy()],
        &[("SC_TEST_PW", password)],
        &rd,
        Duration::from_secs(60),
    );
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &target.id().to_string()])
        .status();
    let _ = target.wait();
    assert_eq!(out.code, 0, "{}", out.explain());
    let sessions: Vec<String> = std::fs::read_dir(state.join("sessions"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.path()
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        sessions.len() >= 3,
        "expected the users' sessions in the store, found {sessions:?}"
    );
    assert!(!out.files.is_empty());
    for (p, content) in out
        .files
        .iter()
        .map(|(p, c)| (p.display().to_string(), c))
        .chain([
            ("stdout".into(), &out.stdout),
            ("stderr".into(), &out.stderr),
        ])
    {
        assert!(!content.contains(password), "{p} contains the password");
        for s in &sessions {
            assert!(
                !content.contains(s.as_str()),
                "{p} contains a session cookie value"
            );
        }
    }
}

/// A threshold that the run misses fails it (exit 1) with a line naming it and the overshoot.
#[test]
fn missed_thresholds_fail_the_run_and_say_by_how_much() {
    let (out, _d) = run_edited_shown(
        "scenarios/multiworker.toml",
        &[
            (
                "max_p99_ms = 1000",
                "max_p99_ms = 0.001\nmin_distinct_pids = 64",
            ),
            (
                "min_distinct_pids = 2     # the requests really reached several workers\n",
                "",
            ),
        ],
        &["--duration", "2s", "--users", "4"],
    );
    assert_eq!(out.code, 1, "{}", out.explain());
    let p99 = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED max_p99_ms"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(p99.contains("over the limit of 0.001 ms by"), "{p99}");
    let pids = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED min_distinct_pids"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(pids.contains("short of the 64 expected"), "{pids}");
    // The same limits are test cases in the JUnit file.
    let junit = out
        .files
        .iter()
        .find(|(p, _)| p.to_string_lossy().ends_with(".junit.xml"))
        .expect("junit file");
    assert!(
        junit.1.contains("max_p99_ms") && junit.1.contains("<failure"),
        "{}",
        junit.1
    );
}

/// A run whose requests queue for `[load] max_connections` (6 users, one connection, 20 ms per
/// request) and one without the cap: both miss a tiny `max_p99_ms`. Only the capped run reports
/// the queue (`connection wait` in the summary, `connection_wait_ms` in the JSON) and says, in
/// the failed check, that most of its p99 was that queue rather than the app.
#[test]
fn time_queued_for_max_connections_is_reported_apart_from_the_apps() {
    let run = |cap: &str| {
        let keep_alive = format!("connection = \"keep-alive\"\n{cap}");
        run_edited_shown(
            "scenarios/multiworker.toml",
            &[
                ("max_p99_ms = 1000", "max_p99_ms = 0.001"),
                (
                    "spawn = { builtin = { workers = 4, store = \"shared\" } }",
                    "spawn = { builtin = { workers = 2, store = \"shared\", args = [\"--latency-ms\", \"20\"] } }",
                ),
                ("connection = \"new\"", &keep_alive),
            ],
            &["--duration", "2s", "--users", "6"],
        )
    };
    let p99_line = |out: &Outcome| {
        out.stdout
            .lines()
            .find(|l| l.starts_with("FAILED max_p99_ms"))
            .unwrap_or_else(|| panic!("{}", out.explain()))
            .to_string()
    };

    let (capped, _d1) = run("max_connections = 1");
    assert_eq!(capped.code, 1, "{}", capped.explain());
    let r = capped.report.as_ref().expect("a JSON report");
    let wait = &r["connection_wait_ms"];
    let (wait_p99, p99) = (
        wait["p99"].as_f64(),
        r["latency_ms"]["p99"].as_f64().unwrap(),
    );
    let wait_p99 = wait_p99.unwrap_or_else(|| panic!("no connection_wait_ms: {r}"));
    // Five others ahead of a request, 20 ms each: most of its time is the queue.
    assert!(
        wait_p99 >= 40.0 && wait_p99 <= p99,
        "wait p99 {wait_p99} ms, p99 {p99} ms"
    );
    assert!(
        r["histograms"]["connection_wait"].is_string(),
        "{}",
        r["histograms"]
    );
    assert!(
        capped.stdout.contains("connection wait"),
        "{}",
        capped.stdout
    );
    let line = p99_line(&capped);
    assert!(
        line.contains("waiting for one of the [load] max_connections connections"),
        "{line}"
    );

    let (free, _d2) = run("");
    assert_eq!(free.code, 1, "{}", free.explain());
    let r = free.report.as_ref().expect("a JSON report");
    assert!(
        r.get("connection_wait_ms").is_none(),
        "{}",
        r["connection_wait_ms"]
    );
    assert!(!free.stdout.contains("connection wait"), "{}", free.stdout);
    let line = p99_line(&free);
    assert!(
        line.contains("over the limit") && !line.contains("max_connections"),
        "{line}"
    );
}

#[test]
fn unwritable_report_dir_is_a_usage_error() {
    let dir = TempDir::new("rdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "a file where the report dir should be").unwrap();
    let rd = blocker.join("reports");
    let url = format!("http://127.0.0.1:{}", free_port());
    let args = [
        "run",
        "scenarios/multiworker.toml",
        "--url",
        &url,
        "--duration",
        "1s",
        "--users",
        "2",
    ];
    let rd_text = rd.to_string_lossy();
    let args = [&args[..], &["--report-dir", &rd_text, "--quiet"]].concat();
    let out = sesscheck(&args, &[], &rd, Duration::from_secs(60));
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("--report-dir"), "{}", out.stderr);
}

/// Login pacing and per-user loopback source addresses (apps rate-limit logins per client IP).
#[test]
fn paced_logins_from_several_loopback_addresses_work() {
    let dir = TempDir::new("pacing");
    let text = scenario_with(
        "scenarios/multiworker.toml",
        "csrf = { page = \"/login\", field = \"csrf_token\" }",
        "csrf = { page = \"/login\", field = \"csrf_token\" }\nlogin_rate = 10\nsource_addresses = [\"127.0.0.2\", \"127.0.0.3\"]",
    );
    let path = write_scenario(&dir, "pacing.toml", &text);
    let (out, _d) = run_scenario(&path, &["--duration", "2s", "--users", "6"], &[]);
    assert_eq!(out.code, 0, "{}", out.explain());
    assert_eq!(out.report.as_ref().unwrap()["logins"]["ok"], 6);

    // Only loopback addresses may be used as sources: traffic never leaves the machine.
    let bad = text.replace("127.0.0.3", "10.0.0.1");
    let path = write_scenario(&dir, "bad.toml", &bad);
    let out = validate(&path, &[]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains("not a loopback address"),
        "{}",
        out.stderr
    );
}

/// A slow password hash times many users eats the load: the run says the load measured
/// mostly logins (and says nothing when logins are quick).
#[test]
fn a_load_eaten_by_logins_is_called_out() {
    let run = |login_ms: &str, password: &str| {
        let spawn = format!(
            "spawn = {{ builtin = {{ workers = 2, store = \"shared\", args = [\"--login-latency-ms\", \"{login_ms}\"] }} }}"
        );
        let password = format!("password = \"{password}\"");
        run_edited_shown(
            "scenarios/multiworker.toml",
            &[
                (
                    "spawn = { builtin = { workers = 4, store = \"shared\" } }",
                    &spawn,
                ),
                ("password = \"${DEMO_PASSWORD:-demo}\"", &password),
            ],
            &["--duration", "1s", "--users", "5"],
        )
    };
    let (slow, _d1) = run("700", "demo");
    assert!(
        slow.stderr.contains("the load measured mostly logins"),
        "{}",
        slow.explain()
    );
    // Slow logins that all fail are a wrong password, said as that: "give duration more
    // time" would send the user the wrong way.
    let (rejected, _d3) = run("700", "wrong");
    // No login worked: nothing measured (exit 4).
    assert_eq!(rejected.code, 4, "{}", rejected.explain());
    assert!(
        rejected
            .finding_kinds()
            .contains(&"login_failed".to_string()),
        "{}",
        rejected.explain()
    );
    assert!(
        !rejected.stderr.contains("measured mostly logins"),
        "{}",
        rejected.explain()
    );
    let (quick, _d2) = run("0", "demo");
    assert_eq!(quick.code, 0, "{}", quick.explain());
    assert!(
        !quick.stderr.contains("measured mostly logins"),
        "{}",
        quick.explain()
    );
}
