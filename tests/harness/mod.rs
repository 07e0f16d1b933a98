//! Shared helpers for the hostile-target and interruption tests: temp dirs, free ports, a tiny
//! raw-TCP HTTP server whose behaviour each test writes, and running the real binary under a
//! test-side timeout.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// Temp dirs and free ports are the same as every other test file's.
#[path = "../common/mod.rs"]
mod common;
// Not every test binary uses every helper (as with dead_code above).
#[allow(unused_imports)]
pub use common::{free_port, TempDir};

/// How long a test server lives at most; its accept loop ends then.
pub const SERVER_LIFETIME: Duration = Duration::from_secs(60);

/// Start a loopback HTTP server: every connection runs `handler(path, head, stream)` in its
/// own thread after the request head was read. The accept loop is bounded in time and count.
pub fn serve<F>(handler: F) -> u16
where
    F: Fn(&str, &str, &mut TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let handler = std::sync::Arc::new(handler);
    std::thread::spawn(move || {
        let end = Instant::now() + SERVER_LIFETIME;
        let mut accepted = 0u32;
        while Instant::now() < end && accepted < 20_000 {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    accepted += 1;
                    let h = handler.clone();
                    std::thread::spawn(move || {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        if let Some(head) = read_head(&mut stream) {
                            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                            h(&path, &head, &mut stream);
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

/// Read a request head (up to 1 MB: hostile cookies come back big).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while buf.len() < (1 << 20) {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
    }
    None
}

/// A complete response with a body.
pub fn respond(stream: &mut TcpStream, status: &str, headers: &[&str], body: &[u8]) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

pub const PROBE_OK: &[u8] = br#"{"worker":{"pid":4242},"authenticated":true}"#;

/// What a finished run left behind.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Highest VmHWM (peak RSS, kB) seen while polling /proc/<pid>/status.
    pub peak_rss_kb: u64,
    pub timed_out: bool,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sesscheck")
}

pub fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting sesscheck")
}

/// Start `sesscheck run <scenario> --report-dir <dir>/reports --quiet` and return at once.
pub fn spawn_run(dir: &TempDir, scenario: &Path) -> Child {
    let reports = dir.reports();
    spawn(&[
        "run",
        scenario.to_str().unwrap(),
        "--report-dir",
        reports.to_str().unwrap(),
        "--quiet",
    ])
}

/// `sesscheck run <scenario> --report-dir <dir>/reports --quiet`, killed after `limit`.
pub fn run_scenario(dir: &TempDir, scenario: &str, limit: Duration) -> Outcome {
    let s = dir.scenario(scenario);
    wait(spawn_run(dir, &s), limit)
}

/// Wait for the child, polling its peak RSS; kill it once `limit` has passed.
pub fn wait(mut child: Child, limit: Duration) -> Outcome {
    let start = Instant::now();
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let (out, err) = (drain(Box::new(out)), drain(Box::new(err)));
    let mut peak = 0;
    let mut timed_out = false;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            // SIGTERM first, so that sesscheck still stops what it spawned; then SIGKILL.
            timed_out = true;
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(5) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = Outcome {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: start.elapsed(),
        peak_rss_kb: peak,
        timed_out,
    };
    // Shown with --nocapture or when the test fails.
    eprintln!(
        "sesscheck exit {:?} after {:?}, peak RSS {} kB\nstdout: {}\nstderr: {}",
        o.code, o.elapsed, o.peak_rss_kb, o.stdout, o.stderr
    );
    o
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The one JSON report in `dir`.
pub fn report(dir: &TempDir) -> serde_json::Value {
    let reports = dir.reports();
    let entries: Vec<PathBuf> = std::fs::read_dir(&reports)
        .unwrap_or_else(|e| panic!("no report dir {}: {e}", reports.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    serde_json::from_str(&std::fs::read_to_string(&entries[0]).unwrap()).unwrap()
}

pub fn finding_kinds(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["kind"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line holds `--port <port>` (a spawned target left behind).
pub fn processes_with_port(port: u16) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let needle = format!("--port\0{port}\0");
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).into_owned();
            if cmd.contains(&needle) {
                out.push((pid, cmd.replace('\0', " ")));
            }
        }
    }
    out
}

/// Processes whose command line contains `needle`.
pub fn command_lines_containing(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push((pid, cmd));
            }
        }
    }
    out
}

/// On drop (also when a test fails), SIGKILL what this test started and may have left
/// behind: processes whose command line contains one of the needles (unique per test).
pub struct Reaper(pub Vec<String>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for needle in &self.0 {
            for (pid, _) in command_lines_containing(needle) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
