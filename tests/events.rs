//! `run --events FILE|-`: the live JSON Lines stream. A reader sees the restart and the logout
//! while the run is still going, and every event type has the documented fields.
mod common;
use common::{free_port, TempDir, BIN};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Two workers with sessions in their own memory (logouts across workers) and a restart at 2 s
/// (every session lost): `logout` and `restart_logout` within a few seconds.
const BROKEN: &str = r#"
name = "events-broken"
[target]
url = "http://127.0.0.1:PORT"
spawn = { builtin = { workers = 2, store = "memory" } }
ready = { path = "/health", timeout = "20s" }
[login]
fields = { username = "user{user}", password = "demo" }
success = { redirect_to = "/dashboard" }
[probe]
path = "/debug/session"
[load]
users = 6
duration = "6s"
requests = ["/dashboard"]
think_time = "20ms"
[restart]
at = "2s"
method = "supervisor"
"#;

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// Every event has `event` and `t_s`; each type its own fields with their types.
fn check_schema(v: &Value) -> String {
    let kind = v["event"]
        .as_str()
        .unwrap_or_else(|| panic!("no event in {v}"));
    assert!(num(v, "t_s") >= 0.0);
    match kind {
        "run_started" => {
            assert!(v["scenario"].is_string() && v["url"].is_string(), "{v}");
            assert!(v["users"].is_u64() && v["tabs"].is_u64(), "{v}");
            assert!(
                v["duration_s"].is_number() || v["duration_s"].is_null(),
                "{v}"
            );
            assert!(
                v["spawned"].is_boolean() && v["sesscheck_version"].is_string(),
                "{v}"
            );
        }
        "target_ready" => {
            assert!(v["restart"].is_null() || v["restart"].is_u64(), "{v}");
            assert_eq!(v["restart"].is_null(), v["downtime_s"].is_null(), "{v}");
        }
        "login_summary" => {
            let (a, ok, failed) = (num(v, "attempts"), num(v, "ok"), num(v, "failed"));
            assert_eq!(a, ok + failed, "{v}");
        }
        "restart_started" => assert!(v["restart"].is_u64() && v["method"].is_string(), "{v}"),
        "finding" => {
            assert!(v["kind"].is_string() && v["message"].is_string(), "{v}");
            assert!(
                ["error", "warning"].contains(&v["severity"].as_str().unwrap()),
                "{v}"
            );
            assert!(num(v, "count") >= 1.0 && num(v, "first_at_s") >= 0.0, "{v}");
            assert!(v.get("example").is_some(), "{v}");
        }
        "tick" => {
            let b = &v["bucket"];
            for key in [
                "t_s",
                "requests",
                "errors",
                "authenticated",
                "anonymous",
                "p50_ms",
                "p99_ms",
            ] {
                num(b, key);
            }
            assert!(b["pids"].is_object(), "{v}");
            for key in ["requests", "errors", "logins"] {
                num(v, key);
            }
            assert!(v["findings"].is_object(), "{v}");
        }
        "run_finished" => {
            assert!(
                ["pass", "fail", "interrupted", "error"].contains(&v["verdict"].as_str().unwrap()),
                "{v}"
            );
            num(v, "exit_code");
            num(v, "duration_s");
            assert!(v["findings"].is_object() && v["reports"].is_array(), "{v}");
        }
        other => panic!("undocumented event type {other}: {v}"),
    }
    kind.to_string()
}

#[test]
fn a_reader_sees_the_restart_and_the_logout_before_the_run_ends() {
    let dir = TempDir::new("events");
    let scenario = dir.scenario(&BROKEN.replace("PORT", &free_port().to_string()));
    let reports = dir.reports();
    let child = Command::new(BIN)
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--events",
            "-",
            "--report-dir",
        ])
        .arg(&reports)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child: Arc<Mutex<Child>> = Arc::new(Mutex::new(child));
    let stdout = child.lock().unwrap().stdout.take().unwrap();
    let mut stderr = child.lock().unwrap().stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let watcher = child.clone();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let (mut restart, mut logout) = (false, false);
        let mut seen_live = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            restart |= v["event"] == "restart_started";
            logout |= v["event"] == "finding" && v["kind"] == "logout";
            if restart && logout && seen_live.is_none() {
                // Both seen: is the run still going?
                seen_live = Some(watcher.lock().unwrap().try_wait().unwrap().is_none());
            }
            lines.push(v);
        }
        (lines, seen_live)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.lock().unwrap().try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.lock().unwrap().kill();
            panic!("the run did not end within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (lines, seen_live) = reader.join().unwrap();
    let stderr = err.join().unwrap();
    let kinds: Vec<String> = lines.iter().map(check_schema).collect();
    assert_eq!(status.code(), Some(1), "{kinds:?}\n{stderr}");
    assert_eq!(
        seen_live,
        Some(true),
        "restart_started and a logout finding must arrive while the run goes on: {kinds:?}"
    );
    // The table moved to stderr; the stream starts and ends as documented.
    assert!(stderr.contains("report: "), "{stderr}");
    assert_eq!(kinds.first().map(String::as_str), Some("run_started"));
    assert_eq!(kinds.last().map(String::as_str), Some("run_finished"));
    let types: BTreeSet<&str> = kinds.iter().map(String::as_str).collect();
    for t in [
        "target_ready",
        "login_summary",
        "restart_started",
        "finding",
        "tick",
    ] {
        assert!(types.contains(t), "no {t} in {kinds:?}");
    }
    let end = lines.last().unwrap();
    assert_eq!(end["verdict"], "fail");
    assert!(
        end["findings"]["restart_logout"].as_u64().unwrap_or(0) > 0,
        "{end}"
    );
    let paths: Vec<&str> = end["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with(".json") && std::path::Path::new(p).exists()),
        "{end}"
    );
    // A tick's running count of a kind follows its first `finding` line.
    let first_logout = kinds.iter().position(|k| k == "finding").unwrap();
    let counted = lines.iter().position(|v| {
        v["event"] == "tick" && v["findings"].as_object().is_some_and(|f| !f.is_empty())
    });
    assert!(counted.is_some_and(|i| i > first_logout), "{kinds:?}");
}

#[test]
fn events_to_a_file_keep_the_table_on_stdout_and_a_healthy_run_passes() {
    let dir = TempDir::new("events-file");
    let text = BROKEN
        .replace("PORT", &free_port().to_string())
        .replace("store = \"memory\"", "store = \"shared\"")
        .replace("duration = \"6s\"", "duration = \"2s\"")
        .replace("[restart]\nat = \"2s\"\nmethod = \"supervisor\"\n", "");
    let scenario = dir.scenario(&text);
    let events = dir.path().join("events.jsonl");
    let reports = dir.reports();
    let out = common::sesscheck(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &[],
        &reports,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    assert!(out.stdout.contains("report: "), "{}", out.stdout);
    let lines: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<String> = lines.iter().map(check_schema).collect();
    assert!(!kinds.contains(&"finding".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"restart_started".to_string()), "{kinds:?}");
    assert_eq!(lines.last().unwrap()["verdict"], "pass");
    assert_eq!(lines.last().unwrap()["exit_code"], 0);
}

#[test]
fn an_unreachable_target_still_ends_the_stream() {
    let dir = TempDir::new("events-unreachable");
    let text = format!(
        "name = \"gone\"\n[target]\nurl = \"http://127.0.0.1:{}\"\nready = {{ path = \"/health\", timeout = \"1s\" }}\n[probe]\npath = \"/debug/session\"\n[load]\nusers = 1\nduration = \"1s\"\nrequests = [\"/\"]\n",
        free_port()
    );
    let scenario = dir.scenario(&text);
    let events = dir.path().join("events.jsonl");
    let out = common::sesscheck(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        &dir.reports(),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 3, "{}", out.explain());
    let text = std::fs::read_to_string(&events).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    check_schema(&last);
    assert_eq!(last["verdict"], "error");
    assert_eq!(last["exit_code"], 3);
    assert!(
        last["error"].as_str().unwrap().contains("not ready"),
        "{last}"
    );
}
