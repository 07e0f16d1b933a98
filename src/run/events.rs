//! `run --events FILE|-`: a live stream of what a run sees, as JSON Lines, one line per event,
//! flushed as it is written, for dashboards, `jq` pipelines and soak runs where waiting for the
//! report is too late.
//!
//! The engine knows nothing of this: the run wiring (`run`) and the live judge (`live`) send
//! typed `Event`s here, and only this module knows how they are written. Every line is a JSON
//! object with `event` (the type) and `t_s` (seconds since the run started); its other fields
//! are the event's, below. Secrets are redacted from every line as from every report.

use crate::observe::digest::Bucket;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One thing that happened. Serialized with `"event": "<snake_case name>"`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins (before the target is started or waited for).
    RunStarted {
        sesscheck_version: &'static str,
        scenario: String,
        url: String,
        users: usize,
        tabs: usize,
        duration_s: Option<f64>,
        /// Whether sesscheck starts the target itself (`[target] spawn`).
        spawned: bool,
    },
    /// The target answered ready: first at the start (`restart`: null), then after each restart.
    TargetReady {
        restart: Option<usize>,
        /// Seconds from the restart's start until ready (null at the start).
        downtime_s: Option<f64>,
    },
    /// Every user's first login was attempted (or the load ended first).
    LoginSummary { attempts: u64, ok: u64, failed: u64 },
    /// A restart begins (index from 0, method as in the report's `restarts`).
    RestartStarted { restart: usize, method: String },
    /// A finding kind seen for the first time, with its example (the report's finding shape).
    Finding {
        kind: crate::judge::finding::FindingKind,
        severity: crate::judge::finding::Severity,
        count: u64,
        first_at_s: f64,
        message: String,
        example: serde_json::Value,
    },
    /// One timeline bucket that has closed (1 s wide; wider past 300 s, as in the report), the
    /// run's totals so far, and each finding kind's running count.
    Tick {
        bucket: Bucket,
        requests: u64,
        errors: u64,
        logins: u64,
        findings: BTreeMap<String, u64>,
    },
    /// The run is over: its verdict ("pass", "fail", "interrupted" or "error"), exit code, the
    /// final findings' counts, and the reports written.
    RunFinished {
        verdict: String,
        exit_code: u8,
        duration_s: f64,
        findings: BTreeMap<String, u64>,
        reports: Vec<PathBuf>,
        /// Why the run ended without a verdict (exit 3): the same message as on stderr.
        error: Option<String>,
    },
}

/// A line as written: the time, then the event's own fields.
#[derive(Serialize)]
struct Line<'a> {
    t_s: f64,
    #[serde(flatten)]
    event: &'a Event,
}

enum Msg {
    Line(String),
    Close,
}

/// Where events go; cheap to clone. `Events::off()` drops everything (no `--events`).
#[derive(Clone)]
pub struct Events {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    clock: Instant,
    /// Built once: every event line is redacted like every other output.
    redactor: crate::util::redact::Redactor,
    tx: Mutex<mpsc::Sender<Msg>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Events {
    pub fn off() -> Events {
        Events { inner: None }
    }

    /// True when events go to stdout (`--events -`): everything else printed moves to stderr.
    pub fn is_stdout(path: Option<&Path>) -> bool {
        path.is_some_and(|p| p.as_os_str() == "-")
    }

    /// Open `path` (`-`: stdout) and start the writer thread. The file is created or truncated.
    pub fn open(path: &Path, clock: Instant, secrets: Vec<String>) -> std::io::Result<Events> {
        let mut out: Box<dyn Write + Send> = if Events::is_stdout(Some(path)) {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::File::create(path)?)
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        // A thread of its own: a slow reader on a pipe must not stall the async runtime.
        let writer = std::thread::spawn(move || {
            for msg in rx {
                let Msg::Line(line) = msg else { break };
                // A reader that went away (a closed pipe) must not end the run: stop writing.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
        });
        Ok(Events {
            inner: Some(Arc::new(Inner {
                clock,
                redactor: crate::util::redact::Redactor::new(&secrets),
                tx: Mutex::new(tx),
                writer: Mutex::new(Some(writer)),
            })),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Write one event (in order, never blocking the caller).
    pub fn emit(&self, event: Event) {
        let Some(inner) = &self.inner else { return };
        let line = Line {
            t_s: round_ms(inner.clock.elapsed().as_secs_f64()),
            event: &event,
        };
        let Ok(json) = serde_json::to_string(&line) else {
            return;
        };
        let line = inner.redactor.redact(&json);
        let _ = lock(&inner.tx).send(Msg::Line(line));
    }

    /// Write what is queued and wait until it is out (call after the last event).
    pub fn close(&self) {
        let Some(inner) = &self.inner else { return };
        let _ = lock(&inner.tx).send(Msg::Close);
        if let Some(writer) = lock(&inner.writer).take() {
            let _ = writer.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Each finding kind's count.
pub fn counts(findings: &[crate::judge::finding::Finding]) -> BTreeMap<String, u64> {
    findings
        .iter()
        .map(|f| (f.kind.to_string(), f.count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_tagged_timed_and_redacted() {
        let dir = std::env::temp_dir().join(format!("sesscheck-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let events = Events::open(&path, Instant::now(), vec!["hunter2".into()]).unwrap();
        events.emit(Event::RestartStarted {
            restart: 0,
            method: "supervisor".into(),
        });
        events.emit(Event::RunFinished {
            verdict: "fail".into(),
            exit_code: 1,
            duration_s: 1.0,
            findings: BTreeMap::new(),
            reports: vec![],
            error: Some("login with hunter2 failed".into()),
        });
        events.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "restart_started");
        assert_eq!(lines[0]["restart"], 0);
        assert!(lines[0]["t_s"].is_f64());
        assert_eq!(lines[1]["event"], "run_finished");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("[REDACTED]"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn off_writes_nothing_and_close_is_harmless() {
        let e = Events::off();
        assert!(!e.enabled());
        e.emit(Event::LoginSummary {
            attempts: 1,
            ok: 1,
            failed: 0,
        });
        e.close();
    }
}
