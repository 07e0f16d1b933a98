//! Shared helpers for integration tests: free loopback ports, running the real binary with a
//! hard time limit, and reading the JSON report it wrote.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sesscheck");

/// Test targets' ports come from below the kernel's ephemeral range (32768-60999 by default).
/// A port from that range (what binding port 0 gives) can be handed to some client as the
/// source port of an outgoing connection while a restarting target has it unbound, and then
/// the target cannot bind it again.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port nobody listens on right now, never the same twice in one test binary (tests
/// run in parallel and bind only later).
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, RandomState};
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    // RandomState is seeded at random per process: a random walk over the range.
    let seed = RandomState::new();
    let span = (TEST_PORTS.end - TEST_PORTS.start) as u64;
    for attempt in 0u64..2_000 {
        let port = TEST_PORTS.start + (seed.hash_one(attempt) % span) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free loopback port in {TEST_PORTS:?}");
}

/// A fresh, empty directory for one test, removed on drop. The process id and a counter make
/// the name unique across test binaries and threads.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "sesscheck-test-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Write `text` as this directory's `scenario.toml`.
    pub fn scenario(&self, text: &str) -> PathBuf {
        let p = self.0.join("scenario.toml");
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Where runs in this directory write their reports.
    pub fn reports(&self) -> PathBuf {
        self.0.join("reports")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished `sesscheck` invocation left behind.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The JSON report, if one was written.
    pub report: Option<Value>,
    /// Every file the run wrote into the report dir, as text.
    pub files: Vec<(PathBuf, String)>,
}

impl Outcome {
    pub fn finding_kinds(&self) -> Vec<String> {
        self.report
            .as_ref()
            .and_then(|r| r["findings"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|f| f["kind"].as_str().unwrap_or("").to_string())
            .collect()
    }
    pub fn finding(&self, kind: &str) -> Option<Value> {
        self.report.as_ref()?["findings"]
            .as_array()?
            .iter()
            .find(|f| f["kind"] == kind)
            .cloned()
    }
    pub fn explain(&self) -> String {
        let (failed, findings) = match &self.report {
            Some(r) => (
                r["expectations"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|c| c["passed"] == false)
                            .map(|c| c["message"].to_string())
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default(),
                r["findings"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|f| format!("{}: {} | {}", f["kind"], f["message"], f["example"]))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default(),
            ),
            None => (String::new(), "(no report)".into()),
        };
        // When a run with restarts fails, when they happened is half the story.
        let timing = match &self.report {
            Some(r) => format!("restarts: {}\nphases: {}", r["restarts"], r["phases"]),
            None => String::new(),
        };
        format!(
            "exit {}\n--- failed expectations\n{failed}\n--- findings\n{findings}\n--- timing\n{timing}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.stdout,
            self.stderr
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// Run the binary with `args`, killing it after `limit`; collects the report dir's files.
pub fn sesscheck(
    args: &[&str],
    envs: &[(&str, &str)],
    report_dir: &Path,
    limit: Duration,
) -> Outcome {
    sesscheck_watched(args, envs, report_dir, limit, |_| {})
}

/// `sesscheck run` of `text`, written as `dir`'s scenario, with `--quiet` and the reports in
/// `dir`'s report directory: the run most tests make.
pub fn run_quiet(dir: &TempDir, text: &str, limit: Duration) -> Outcome {
    let path = dir.scenario(text);
    let reports = dir.reports();
    sesscheck(
        &[
            "run",
            path.to_str().unwrap(),
            "--report-dir",
            reports.to_str().unwrap(),
            "--quiet",
        ],
        &[],
        &reports,
        limit,
    )
}

/// `sesscheck`, calling `watch` with the process's PID every 50 ms while it runs (to look at
/// it in /proc: its threads, its connections).
pub fn sesscheck_watched(
    args: &[&str],
    envs: &[(&str, &str)],
    report_dir: &Path,
    limit: Duration,
    watch: impl FnMut(u32),
) -> Outcome {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    watched(cmd, args, envs, report_dir, limit, watch)
}

/// `sesscheck`, run under `ulimit {ulimit}` (e.g. "-Sn 128": a soft limit on open files).
pub fn sesscheck_under_ulimit(
    ulimit: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    report_dir: &Path,
    limit: Duration,
) -> Outcome {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit {ulimit} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args);
    watched(cmd, args, envs, report_dir, limit, |_| {})
}

fn watched(
    mut cmd: Command,
    args: &[&str],
    envs: &[(&str, &str)],
    report_dir: &Path,
    limit: Duration,
    mut watch: impl FnMut(u32),
) -> Outcome {
    let mut child = cmd
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning sesscheck");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sesscheck {args:?} did not finish within {limit:?}");
        }
        watch(child.id());
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    let mut files = Vec::new();
    let mut report = None;
    if let Ok(entries) = std::fs::read_dir(report_dir) {
        for e in entries.flatten() {
            let p = e.path();
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned();
            if p.extension().is_some_and(|x| x == "json") {
                report = serde_json::from_str(&text).ok();
            }
            files.push((p, text));
        }
    }
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
        report,
        files,
    }
}

/// `sesscheck run SCENARIO` against a free port, short and quiet, reports in a temp dir.
pub fn run_scenario(scenario: &str, extra: &[&str], envs: &[(&str, &str)]) -> (Outcome, TempDir) {
    run_scenario_as(scenario, extra, envs, Output::Quiet)
}

/// Whether a test run prints its summary tables (`Shown`) or only the verdict (`Quiet`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Quiet,
    Shown,
}

fn run_scenario_as(
    scenario: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
    output: Output,
) -> (Outcome, TempDir) {
    let dir = TempDir::new("run");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let report_dir = dir.path().join("reports");
    let rd = report_dir.to_string_lossy().into_owned();
    let mut args = vec!["run", scenario, "--url", &url, "--report-dir", &rd];
    if output == Output::Quiet {
        args.push("--quiet");
    }
    args.extend_from_slice(extra);
    let out = sesscheck(&args, envs, &report_dir, Duration::from_secs(90));
    (out, dir)
}

/// Write a scenario file into `dir` and return its path.
pub fn write_scenario(dir: &TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// The repository's scenario file, with a key's value replaced (a simple, visible edit).
pub fn scenario_with(path: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{path} has no {from:?}");
    text.replace(from, to)
}

/// Run a shipped scenario with some text replaced (each `from` must be there), short and quiet.
pub fn run_edited(
    scenario: &str,
    edits: &[(&str, &str)],
    extra: &[&str],
    envs: &[(&str, &str)],
) -> (Outcome, TempDir) {
    run_edited_as(scenario, edits, extra, envs, Output::Quiet)
}

/// `run_edited`, for tests that read the summary on stdout.
pub fn run_edited_shown(
    scenario: &str,
    edits: &[(&str, &str)],
    extra: &[&str],
) -> (Outcome, TempDir) {
    run_edited_as(scenario, edits, extra, &[], Output::Shown)
}

fn run_edited_as(
    scenario: &str,
    edits: &[(&str, &str)],
    extra: &[&str],
    envs: &[(&str, &str)],
    output: Output,
) -> (Outcome, TempDir) {
    let dir = TempDir::new("edited");
    let mut text = std::fs::read_to_string(scenario).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{scenario} has no {from:?}");
        text = text.replace(from, to);
    }
    let name = Path::new(scenario)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let path = write_scenario(&dir, &name, &text);
    let (out, _run_dir) = run_scenario_as(&path, extra, envs, output);
    (out, dir)
}

/// The run exited with `code` and found exactly these kinds (in any order).
pub fn assert_exit_and_kinds(out: &Outcome, code: i32, kinds: &[&str]) {
    assert_eq!(out.code, code, "{}", out.explain());
    let mut got = out.finding_kinds();
    got.sort();
    let mut want: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{}", out.explain());
}

/// `sesscheck validate PATH` (with these environment variables).
pub fn validate(path: &str, envs: &[(&str, &str)]) -> Outcome {
    sesscheck(
        &["validate", path],
        envs,
        Path::new("."),
        Duration::from_secs(20),
    )
}

/// The built-in target's login (CSRF form, password "demo") and its debug probe, as scenario
/// TOML sections: what most scenarios against the demo start from.
pub const LOGIN: &str = r#"
[login]
path = "/login"
fields = { username = "user{user}", password = "demo" }
success = { redirect_to = "/dashboard" }
csrf = { page = "/login", field = "csrf_token" }

[probe]
path = "/debug/session"
pid = "/worker/pid"
authenticated = "/authenticated"
"#;

/// Socket inodes of process `pid` (Linux /proc).
pub fn socket_inodes(pid: u32) -> Vec<String> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(String::from)
        })
        .collect()
}

/// How many of `pid`'s TCP connections to 127.0.0.1:`port` are established.
pub fn connections_to(pid: u32, port: u16) -> usize {
    let own = socket_inodes(pid);
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 9
                && f[2].ends_with(&format!(":{port:04X}"))
                && f[3] == "01"
                && own.iter().any(|i| i == f[9])
        })
        .count()
}
