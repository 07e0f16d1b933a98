//! Issue 20, the shell side: `SESSCHECK_*` environment overrides (flag > environment > file),
//! shell completions and the man page.
mod common;
use common::{connections_to, free_port, sesscheck, sesscheck_watched, TempDir};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A short healthy run of the demo target; the file says 4 users, 30 s, port 1 (never used
/// when an override is in force: a run on it would fail to spawn).
const SCENARIO: &str = r#"
name = "envtest"
[target]
url = "http://127.0.0.1:1"
spawn = { builtin = { workers = 2, store = "shared" } }
ready = { path = "/health", timeout = "20s" }
[login]
fields = { username = "user{user}", password = "demo" }
success = { redirect_to = "/dashboard" }
[probe]
path = "/debug/session"
[load]
users = 4
duration = "30s"
requests = ["/dashboard"]
"#;

fn logins(out: &common::Outcome) -> u64 {
    out.report
        .as_ref()
        .unwrap_or_else(|| panic!("{}", out.explain()))["logins"]["attempts"]
        .as_u64()
        .unwrap()
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let dir = TempDir::new("env");
    let scenario = dir.scenario(SCENARIO);
    let scenario = scenario.to_string_lossy().into_owned();
    let env_reports = dir.path().join("env-reports");
    let env_url = format!("http://127.0.0.1:{}", free_port());
    let env: Vec<(&str, &str)> = vec![
        ("SESSCHECK_SCENARIO", &scenario),
        ("SESSCHECK_URL", &env_url),
        ("SESSCHECK_USERS", "3"),
        ("SESSCHECK_DURATION", "1s"),
        ("SESSCHECK_REPORT_DIR", env_reports.to_str().unwrap()),
        ("SESSCHECK_QUIET", "true"),
    ];

    // Everything from the environment, even the scenario path: `run` with no argument.
    let out = sesscheck(&["run"], &env, &env_reports, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.explain());
    assert_eq!(logins(&out), 3, "SESSCHECK_USERS beats the file's 4");
    assert_eq!(
        out.report.as_ref().unwrap()["target"]["url"],
        format!("{env_url}/")
    );
    let duration = out.report.as_ref().unwrap()["duration_s"].as_f64().unwrap();
    assert!(
        duration < 20.0,
        "SESSCHECK_DURATION beats the file's 30s: {duration}"
    );
    assert_eq!(out.stdout.trim(), "envtest: pass", "SESSCHECK_QUIET");

    // Flags beat the environment.
    let flag_reports = dir.path().join("flag-reports");
    let flag_url = format!("http://127.0.0.1:{}", free_port());
    let out = sesscheck(
        &[
            "run",
            &scenario,
            "--users",
            "2",
            "--url",
            &flag_url,
            "--report-dir",
            flag_reports.to_str().unwrap(),
        ],
        &env,
        &flag_reports,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    assert_eq!(logins(&out), 2, "--users beats SESSCHECK_USERS");
    assert_eq!(
        out.report.as_ref().unwrap()["target"]["url"],
        format!("{flag_url}/")
    );
    let jsons = |d: &Path| {
        std::fs::read_dir(d)
            .map(|e| {
                e.flatten()
                    .filter(|f| f.path().extension().is_some_and(|x| x == "json"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(
        jsons(&flag_reports),
        1,
        "--report-dir beats SESSCHECK_REPORT_DIR"
    );
    assert_eq!(jsons(&env_reports), 1, "only the first run wrote there");

    // A bad value in the environment is a usage error naming the flag, like a bad flag.
    let out = sesscheck(
        &["run", &scenario],
        &[("SESSCHECK_USERS", "many")],
        Path::new("/nonexistent"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("--users"), "{}", out.stderr);
}

#[test]
fn file_values_hold_without_overrides() {
    let dir = TempDir::new("envfile");
    let port = free_port();
    let text = SCENARIO
        .replace("127.0.0.1:1", &format!("127.0.0.1:{port}"))
        .replace("duration = \"30s\"", "duration = \"1s\"");
    let scenario = dir.scenario(&text);
    let reports = dir.reports();
    let out = sesscheck(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        &reports,
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    assert_eq!(logins(&out), 4, "the file's users");
}

#[test]
fn help_names_the_environment_variables() {
    let out = sesscheck(
        &["run", "--help"],
        &[],
        Path::new("/nonexistent"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 0);
    for var in [
        "SESSCHECK_URL",
        "SESSCHECK_REPORT_DIR",
        "SESSCHECK_USERS",
        "SESSCHECK_DURATION",
        "SESSCHECK_SHARD",
        "SESSCHECK_EVENTS",
        "SESSCHECK_QUIET",
        "SESSCHECK_VERBOSE",
    ] {
        assert!(
            out.stdout.contains(var),
            "{var} missing from --help:\n{}",
            out.stdout
        );
    }
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    let dir = TempDir::new("bashcomp");
    let out = sesscheck(
        &["completions", "bash"],
        &[],
        Path::new("/nonexistent"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let script = dir.path().join("sesscheck.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success(), "bash -n refused the completion script");

    // Drive the completion function as bash does on <TAB>: `sesscheck r`.
    let probe = format!(
        r#"source '{}'
COMP_WORDS=(sesscheck r); COMP_CWORD=1; COMP_LINE='sesscheck r'; COMP_POINT=${{#COMP_LINE}}
_sesscheck sesscheck r sesscheck
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display()
    );
    let done = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    let words: Vec<String> = String::from_utf8_lossy(&done.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut got = words.clone();
    got.sort();
    assert_eq!(
        got,
        ["report", "run"],
        "stderr: {}",
        String::from_utf8_lossy(&done.stderr)
    );

    for shell in ["zsh", "fish"] {
        let out = sesscheck(
            &["completions", shell],
            &[],
            Path::new("/nonexistent"),
            Duration::from_secs(20),
        );
        assert_eq!(out.code, 0);
        assert!(out.stdout.contains("validate"), "{shell}: {}", out.stdout);
    }
}

#[test]
fn man_page_renders() {
    let out = sesscheck(
        &["man"],
        &[],
        Path::new("/nonexistent"),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(".TH sesscheck"),
        "not roff: {}",
        &out.stdout[..200.min(out.stdout.len())]
    );
    for sub in ["run", "validate", "report", "compare", "merge", "target"] {
        assert!(out.stdout.contains(sub), "man page lacks {sub}");
    }
    let have_man = Command::new("sh")
        .args(["-c", "command -v man"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_man {
        eprintln!("man is not installed: the roff was checked, not its rendering");
        return;
    }
    let dir = TempDir::new("man");
    let page = dir.path().join("sesscheck.1");
    std::fs::write(&page, &out.stdout).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("Find session bugs"), "{text}");
    assert!(text.contains("completions"), "{text}");
}

/// One thread and several both drive a healthy run to a pass, chosen by `SESSCHECK_THREADS` /
/// `--threads` (default: one per core).
#[test]
fn one_thread_and_several_both_pass() {
    let dir = TempDir::new("threads");
    let scenario = dir.scenario(SCENARIO);
    let scenario = scenario.to_string_lossy().into_owned();
    for threads in ["1", "3"] {
        let reports = dir.path().join(format!("r{threads}"));
        let url = format!("http://127.0.0.1:{}", free_port());
        let out = sesscheck(
            &[
                "run",
                &scenario,
                "--url",
                &url,
                "--duration",
                "1s",
                "--quiet",
            ],
            &[
                ("SESSCHECK_THREADS", threads),
                ("SESSCHECK_REPORT_DIR", reports.to_str().unwrap()),
            ],
            &reports,
            Duration::from_secs(60),
        );
        assert_eq!(out.code, 0, "threads {threads}: {}", out.explain());
        assert!(logins(&out) >= 4, "threads {threads}: {}", out.explain());
    }
    let out = sesscheck(
        &["run", &scenario, "--threads", "0"],
        &[],
        dir.path(),
        Duration::from_secs(20),
    );
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("--threads"), "{}", out.stderr);
}

/// The names of the threads of process `pid` (Linux /proc).
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

/// `--threads 3`: the users are dealt out over three threads, each with its own runtime and
/// connections (the run's own thread and two named `sesscheck/N`, seen in /proc while
/// the load runs), and the run still passes with every user logged in.
#[test]
fn several_threads_each_run_their_own_users() {
    let dir = TempDir::new("lanes");
    let mut seen: Vec<String> = Vec::new();
    let (out, _port) = run_watched(
        &dir,
        SCENARIO,
        &["--duration", "4s", "--users", "6", "--threads", "3"],
        |pid, _port| {
            for name in thread_names(pid) {
                if name.starts_with("sesscheck/") && !seen.contains(&name) {
                    seen.push(name);
                }
            }
        },
    );
    seen.sort();
    assert_eq!(seen, ["sesscheck/1", "sesscheck/2"]);
    assert_eq!(out.code, 0, "{}", out.explain());
    let report = out.report.as_ref().expect("a JSON report");
    assert_eq!(report["logins"]["ok"], 6, "{}", report["logins"]);
}

/// `sesscheck run` of `text` (written in `dir`) against the built-in target on a free port,
/// quiet, with `extra` options; `watch(pid, port)` looks at the running process (see
/// `sesscheck_watched`). Returns the outcome and the port.
fn run_watched(
    dir: &TempDir,
    text: &str,
    extra: &[&str],
    mut watch: impl FnMut(u32, u16),
) -> (common::Outcome, u16) {
    let scenario = dir.scenario(text);
    let scenario = scenario.to_string_lossy().into_owned();
    let reports = dir.path().join("reports");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec!["run", &scenario, "--url", &url, "--quiet"];
    args.extend_from_slice(extra);
    let envs = [("SESSCHECK_REPORT_DIR", reports.to_str().unwrap())];
    let out = sesscheck_watched(&args, &envs, &reports, Duration::from_secs(60), |pid| {
        watch(pid, port)
    });
    (out, port)
}

/// `[load] max_connections` holds across threads: with 2 threads and a cap of 2, sesscheck never
/// has more than 2 connections to the target open (each thread keeps its own, so the cap is
/// split between them, not shared by two pools that could each fill up to it).
#[test]
fn max_connections_holds_across_threads() {
    let dir = TempDir::new("lanes-cap");
    let text = SCENARIO.replace(
        "requests = [\"/dashboard\"]",
        "requests = [\"/dashboard\"]\nconnection = \"keep-alive\"\nmax_connections = 2",
    );
    let mut most = 0;
    let (out, port) = run_watched(
        &dir,
        &text,
        &["--duration", "3s", "--users", "8", "--threads", "2"],
        |pid, port| most = most.max(connections_to(pid, port)),
    );
    assert_eq!(out.code, 0, "{}", out.explain());
    // Some were seen (the count works), and never more than the cap.
    assert!(most >= 1, "no connection to :{port} seen");
    assert!(
        most <= 2,
        "{most} connections open at once, max_connections = 2"
    );
}
