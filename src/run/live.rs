//! The live judge behind `--events`: once a second it copies what the recorder holds, runs the
//! same detectors the report uses over it, and sends `tick`, `login_summary` and first-seen
//! `finding` events (see `events`). Only runs with `--events` pay for it: a copy of the kept
//! observations (they are few in a healthy run) and one detection pass per second.
//!
//! Live findings are what the detectors make of the run so far; the report's findings, judged
//! once the load has ended, are the verdict. Two kinds are only judged then, because early in a
//! run they would be wrong: `worker_coverage` (not every worker has answered yet) and
//! `session_lifetime` (the lifetime is measured over the whole run).

use crate::judge::audit::{AuditConfig, ConfigAnswer};
use crate::judge::detect::{self, DetectConfig, Evidence};
use crate::judge::finding::{Finding, FindingKind};
use crate::observe::digest::Recorder;
use crate::observe::Observation;
use crate::process::supervisor::SharedLog;
use crate::run::events::{Event, Events};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Finding kinds only the end of the run can judge.
const JUDGED_AT_END: [FindingKind; 2] = [FindingKind::WorkerCoverage, FindingKind::SessionLifetime];

/// What the detectors need besides the observations, and what has been said so far.
pub struct Live {
    pub events: Events,
    pub cfg: DetectConfig,
    pub audit: AuditConfig,
    pub config: Option<ConfigAnswer>,
    pub log: SharedLog,
    /// First logins this process makes (users of this shard × sessions per user).
    pub first_logins: u64,
    state: Mutex<Said>,
}

#[derive(Default)]
struct Said {
    kinds: BTreeSet<FindingKind>,
    login_summary: bool,
    /// The start (s) of the last timeline bucket sent as a tick.
    last_tick: Option<f64>,
}

impl Live {
    pub fn new(
        events: Events,
        cfg: DetectConfig,
        audit: AuditConfig,
        config: Option<ConfigAnswer>,
        log: SharedLog,
        first_logins: u64,
    ) -> Live {
        Live {
            events,
            cfg,
            audit,
            config,
            log,
            first_logins,
            state: Mutex::default(),
        }
    }

    fn said(&self) -> std::sync::MutexGuard<'_, Said> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A `finding` event for each kind not announced before (also used with the final findings).
    pub fn announce(&self, findings: &[Finding]) {
        let mut said = self.said();
        for f in findings {
            if said.kinds.insert(f.kind) {
                self.events.emit(Event::Finding {
                    kind: f.kind,
                    severity: f.severity,
                    count: f.count,
                    first_at_s: f.first_at_s,
                    message: f.message.clone(),
                    example: f.example.clone(),
                });
            }
        }
    }

    /// `login_summary` once the first logins are done (or, with `force`, at the end).
    fn login_summary(&self, attempts: u64, ok: u64, force: bool) {
        let mut said = self.said();
        if said.login_summary || !(force || attempts >= self.first_logins) {
            return;
        }
        said.login_summary = true;
        self.events.emit(Event::LoginSummary {
            attempts,
            ok,
            failed: attempts.saturating_sub(ok),
        });
    }

    /// The end of the load: the login summary if the first logins never all happened.
    pub fn finish(&self, recorder: &Recorder) {
        let (digest, _, _) = recorder.snapshot_since(usize::MAX);
        self.login_summary(digest.logins, digest.logins_ok, true);
    }
}

/// Judge once a second until aborted (the caller aborts it when the load ends).
pub async fn watch(live: Arc<Live>, recorder: Arc<Recorder>, clock: Instant) {
    let mut kept: Vec<Observation> = Vec::new();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.tick().await;
    loop {
        every.tick().await;
        let (digest, new, restarts) = recorder.snapshot_since(kept.len());
        kept.extend(new);
        live.login_summary(digest.logins, digest.logins_ok, false);
        // Detection may take a while over many kept observations: off the async workers.
        let judge = live.clone();
        let judged = tokio::task::spawn_blocking(move || {
            let mut cfg = judge.cfg.clone();
            cfg.run_end_us = digest.last_end_us;
            let server_log_matches = judge.log.lock().map(|l| l.match_count).unwrap_or_default();
            let findings: Vec<Finding> = detect::detect_all(&Evidence {
                obs: &kept,
                digest: &digest,
                restarts: &restarts,
                cfg: &cfg,
                server_log_matches,
                audit: &judge.audit,
                config: judge.config.as_ref(),
            })
            .into_iter()
            .filter(|f| !JUDGED_AT_END.contains(&f.kind))
            .collect();
            (kept, digest, findings)
        })
        .await;
        let Ok((back, digest, findings)) = judged else {
            return;
        };
        kept = back;
        live.announce(&findings);
        tick(&live, &digest, &findings, clock.elapsed().as_secs_f64());
    }
}

/// A `tick` for the newest timeline bucket that has closed, if not sent yet.
fn tick(live: &Live, digest: &crate::observe::digest::Digest, findings: &[Finding], now_s: f64) {
    let buckets = digest.timeline.buckets(now_s);
    // The last bucket is still filling; the one before it has closed.
    let Some(bucket) = buckets.len().checked_sub(2).and_then(|i| buckets.get(i)) else {
        return;
    };
    {
        let mut said = live.said();
        if said.last_tick.is_some_and(|t| t >= bucket.t_s) {
            return;
        }
        said.last_tick = Some(bucket.t_s);
    }
    live.events.emit(Event::Tick {
        bucket: bucket.clone(),
        requests: digest.traffic,
        errors: digest.errors,
        logins: digest.logins,
        findings: crate::run::events::counts(findings),
    });
}
