//! `sesscheck run`: wires scenario → supervisor → engine → detectors → report, and maps the
//! outcome to the exit code that CI gates on.
//!
//! The folder also owns readiness, restarts with their phases, the once-a-second live judge
//! (`live`) and the `--events` stream (`events`). May import every stage below it; only `cli`
//! imports it.

pub mod events;
pub mod live;

use crate::http::client::{Http, OneOff};
use crate::judge::audit::{AuditConfig, ConfigAnswer, CookieRules, LifetimeExpect};
use crate::judge::detect::{self, DetectConfig, Evidence};
use crate::judge::finding::FindingKind;
use crate::load::engine::{self, Ctx, Progress};
use crate::observe::digest::{DigestConfig, Recorded, Recorder};
use crate::process::supervisor::{self, SharedLog, SpawnSpec, Supervisor};
use crate::report;
use crate::run::events::{Event, Events};
use crate::run::live::Live;
use crate::scenario::{RestartMethod, Scenario, Spawn};
use anyhow::{anyhow, Context, Result};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use url::Url;

/// Each readiness poll gets this long; the scenario's `ready.timeout` bounds them all.
const READY_POLL_TIMEOUT: Duration = Duration::from_secs(2);
/// The config endpoint's answer is read up to this size (then it is not JSON: an error).
const CONFIG_MAX_BYTES: usize = 1 << 20;

/// The exit codes, a contract with CI scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: every expectation held.
    Pass = 0,
    /// 1: the run completed and found problems.
    Fail = 1,
    /// 2: bad usage or an invalid scenario.
    Invalid = 2,
    /// 3: the target could not be reached, started or restarted.
    Unreachable = 3,
    /// 130: stopped by Ctrl-C / SIGTERM (the report is still written).
    Interrupted = 130,
}

/// An error that ends the run with a given exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    pub outcome: Outcome,
    pub message: String,
}

fn unreachable(message: String) -> anyhow::Error {
    RunError {
        outcome: Outcome::Unreachable,
        message,
    }
    .into()
}

/// Command-line overrides of the scenario.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--shard I/N` (1-based).
    pub shard: Option<(usize, usize)>,
    pub url: Option<String>,
    pub users: Option<usize>,
    pub duration: Option<Duration>,
    pub report_dir: PathBuf,
    pub quiet: bool,
    pub verbose: bool,
    /// `--events FILE|-`: the live JSON Lines event stream (`-`: stdout).
    pub events: Option<PathBuf>,
}

pub fn apply(mut s: Scenario, o: &Overrides) -> Scenario {
    if let Some(u) = &o.url {
        s.target.url = u.clone();
        s.move_url_credentials();
    }
    if let Some(n) = o.users {
        s.load.users = n;
    }
    if let Some(d) = o.duration {
        s.load.duration = Some(crate::scenario::Dur(d));
    }
    s
}

/// The supervisor, shared by the run and the restart task.
type SharedSupervisor = Arc<tokio::sync::Mutex<Option<Supervisor>>>;

pub async fn run(scenario: Scenario, o: Overrides) -> Result<Outcome> {
    if let Some((i, n)) = o.shard {
        if crate::load::schedule::shard_users(scenario.load.users, o.shard).is_empty() {
            return Err(RunError {
                outcome: Outcome::Invalid,
                message: format!(
                    "--shard {i}/{n} has no users: shard {i} runs users {i}, {}, ... and [load] users = {}; use at most {} shards",
                    i + n,
                    scenario.load.users,
                    scenario.load.users
                ),
            }
            .into());
        }
    }
    let clock = Instant::now();
    let events = match &o.events {
        None => Events::off(),
        Some(path) => Events::open(path, clock, scenario.secrets()).map_err(|e| RunError {
            outcome: Outcome::Invalid,
            message: format!("--events {}: {e}", path.display()),
        })?,
    };
    events.emit(Event::RunStarted {
        sesscheck_version: env!("CARGO_PKG_VERSION"),
        scenario: scenario.name.clone(),
        url: scenario.target.url.clone(),
        users: scenario.load.users,
        tabs: scenario.load.tabs,
        duration_s: scenario.load.duration.map(|d| d.0.as_secs_f64()),
        spawned: scenario.target.spawn.is_some(),
    });
    let result = run_and_report(scenario, o, clock, events.clone()).await;
    // A run that ends without a report (exit 2 or 3) still says so on the stream.
    if let Err(e) = &result {
        let outcome = e
            .downcast_ref::<RunError>()
            .map(|r| r.outcome)
            .unwrap_or(Outcome::Unreachable);
        events.emit(Event::RunFinished {
            verdict: "error".into(),
            exit_code: outcome as u8,
            duration_s: (clock.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            findings: Default::default(),
            reports: Vec::new(),
            error: Some(format!("{e:#}")),
        });
    }
    events.close();
    result
}

async fn run_and_report(
    mut scenario: Scenario,
    o: Overrides,
    clock: Instant,
    events: Events,
) -> Result<Outcome> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    if o.url.is_none() {
        move_off_a_taken_port(&mut scenario).await;
    }
    let base = Url::parse(&scenario.target.url).map_err(|e| RunError {
        outcome: Outcome::Invalid,
        message: format!("--url: {e}"),
    })?;
    report::check_writable(&o.report_dir).map_err(|e| RunError {
        outcome: Outcome::Invalid,
        message: format!("{e:#} (check --report-dir)"),
    })?;
    if scenario.target.insecure_tls {
        eprintln!("warning: insecure_tls = true: TLS certificates of {base} are NOT verified");
    }
    let http = Http::new(&scenario, &base).map_err(|e| RunError {
        outcome: Outcome::Invalid,
        message: format!("{e:#}"),
    })?;
    let pattern = scenario.lowered.interrupted.text.clone();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Cancelled by Ctrl-C / SIGTERM only; cancelling it also cancels `stop`, not the reverse.
    let interrupt = CancellationToken::new();
    let stop = interrupt.child_token();
    watch_signals(interrupt.clone(), interrupted.clone());

    if let Some(path) = &scenario.target.log {
        supervisor::check_log_file(&resolve(&scenario, path)).map_err(|e| RunError {
            outcome: Outcome::Invalid,
            message: format!("{e:#}"),
        })?;
    }
    let log: SharedLog = Default::default();
    let scratch = scratch_dir();
    let supervisor: SharedSupervisor = Arc::new(tokio::sync::Mutex::new(None));
    let mut spawned = None;
    if let Some(spec) = spawn_spec(&scenario, &base, &scratch)? {
        spawned = Some(spec.label.clone());
        let mut sup = Supervisor::new(spec, pattern.clone(), clock, log.clone());
        sup.echo = o.verbose;
        ensure_port_free(&base).await?;
        sup.start().map_err(|e| unreachable(format!("{e:#}")))?;
        *supervisor.lock().await = Some(sup);
    }
    if let Some(path) = &scenario.target.log {
        supervisor::follow_file(
            resolve(&scenario, path),
            pattern.clone(),
            clock,
            log.clone(),
            stop.clone(),
        );
    }
    let ready = match wait_ready(&scenario, &base, &supervisor, &stop).await {
        // The probe first: a path that is no debug endpoint would never show a worker PID.
        Ok(deadline) => match check_probe(&scenario, &base).await {
            Ok(()) => wait_workers(&scenario, &base, deadline, WorkersWait::Required).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let mut config_answer = None;
    let mut load_clock = clock;
    let browser_checks: Arc<Mutex<Vec<crate::browser::Check>>> = Default::default();
    let mut live_judge: Option<Arc<Live>> = None;
    let result = match ready {
        Ok(()) => {
            {
                if let Some(c) = &scenario.config {
                    config_answer = Some(read_config(&scenario, &base, c).await);
                }
                if !o.quiet {
                    eprintln!(
                        "sesscheck: {} against {base} ({})",
                        users_and_tabs(scenario.load.users, scenario.load.tabs),
                        spawned
                            .as_deref()
                            .unwrap_or("target not spawned by sesscheck")
                    );
                }
                events.emit(Event::TargetReady {
                    restart: None,
                    downtime_s: None,
                });
                let live = events.enabled().then(|| {
                    let cfg = DetectConfig {
                        interrupted_statuses: scenario.detect.interrupted_statuses.clone(),
                        interrupted_window_us: scenario.detect.interrupted_window.0.as_micros()
                            as u64,
                        recovery_timeout_us: DigestConfig::of(&scenario).recovery_timeout_us,
                        min_distinct_pids: scenario.expect.min_distinct_pids,
                        run_end_us: 0,
                    };
                    let first_logins =
                        crate::load::schedule::shard_users(scenario.load.users, o.shard).len()
                            * scenario.sessions.per_user;
                    Arc::new(Live::new(
                        events.clone(),
                        cfg,
                        audit_config(&scenario, &base),
                        config_answer.clone(),
                        log.clone(),
                        first_logins as u64,
                    ))
                });
                live_judge = live.clone();
                // Times in the report are from the start of the load, as `[restart] at` is.
                load_clock = Instant::now();
                let ctl = RunControl {
                    clock: load_clock,
                    stop: stop.clone(),
                    interrupt: interrupt.clone(),
                    browser_checks: browser_checks.clone(),
                    events: events.clone(),
                    live,
                };
                drive(scenario.clone(), http, supervisor.clone(), &base, &o, ctl).await
            }
        }
        Err(e) => Err(e),
    };
    // Stop what we started, whatever happened.
    stop.cancel();
    if let Some(mut sup) = supervisor.lock().await.take() {
        let _ = sup.stop().await;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (recorded, aborted, generator) = match result {
        Ok(v) => v,
        // Interrupted before the load began: still write an (empty) report.
        Err(_) if interrupted.load(Ordering::SeqCst) => {
            (Recorded::empty(DigestConfig::of(&scenario)), None, None)
        }
        Err(e) => return Err(e),
    };
    let Recorded {
        digest,
        kept,
        not_kept,
        restarts,
        all_workers_us,
    } = recorded;
    // Server output was timed from the start of sesscheck: move it to the load's clock.
    let boot_us = load_clock.duration_since(clock).as_micros() as u64;
    let duration_s = clock.elapsed().as_secs_f64();
    let (matches, match_count) = {
        let l = log.lock().unwrap_or_else(|e| e.into_inner());
        (
            l.matches
                .iter()
                .map(|(t, line)| (t.saturating_sub(boot_us), report::scrub_log_line(line)))
                .collect::<Vec<_>>(),
            l.match_count,
        )
    };
    let DigestConfig {
        interrupted_statuses,
        recovery_timeout_us,
        ..
    } = DigestConfig::of(&scenario);
    let cfg = DetectConfig {
        interrupted_statuses,
        interrupted_window_us: scenario.detect.interrupted_window.0.as_micros() as u64,
        recovery_timeout_us,
        min_distinct_pids: scenario.expect.min_distinct_pids,
        run_end_us: digest.last_end_us,
    };
    let judgement = detect::judge_all(&Evidence {
        obs: &kept,
        digest: &digest,
        restarts: &restarts,
        cfg: &cfg,
        server_log_matches: match_count,
        audit: &audit_config(&scenario, &base),
        config: config_answer.as_ref(),
    });
    let browser_checks =
        std::mem::take(&mut *browser_checks.lock().unwrap_or_else(|e| e.into_inner()));
    let mut findings = judgement.findings;
    findings.extend(crate::judge::browser::findings(&browser_checks));
    if let Some(live) = &live_judge {
        // Kinds only the end can judge, and those of the last second, are announced now.
        live.announce(&findings);
    }
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    // A run that sent no page and no probe measured nothing; unless a finding says why (every
    // login failed), it must not pass.
    let aborted = aborted.or_else(|| {
        (digest.traffic == 0 && findings.is_empty() && !was_interrupted).then(|| {
            format!(
                "no load request was sent in {:.1} s: nothing was measured, so this is no pass (check [load] and max_duration)",
                duration_s
            )
        })
    });
    let rep = report::build(report::Inputs {
        scenario: &scenario.name,
        url: base.as_str(),
        spawned,
        started_at,
        duration_s,
        digest: &digest,
        restarts: &restarts,
        findings,
        expect: &scenario.expect,
        interrupted: was_interrupted,
        aborted: aborted.clone(),
        server_log: &matches,
        server_log_count: match_count,
        lifetime: judgement.lifetime,
        audits: enabled_audits(&scenario),
    });
    let mut rep = rep;
    report::add_all_workers(&mut rep, &restarts, &all_workers_us);
    rep.generator = generator;
    rep.not_kept = not_kept;
    rep.browser = report::browser::section(&browser_checks);
    rep.shard = o.shard.map(|(i, n)| format!("{i}/{n}"));
    let secrets = scenario.secrets();
    let redactor = crate::util::redact::Redactor::new(&secrets);
    // A report that cannot be written does not hide the verdict: the summary is printed and
    // the exit code is the run's, with the error beside it.
    let (written, write_error) = match report::write_all(&rep, &o.report_dir, &secrets) {
        Ok(w) => (w, None),
        Err(e) => (Vec::new(), Some(format!("{e:#} (check --report-dir)"))),
    };
    // With the event stream on stdout (`--events -`), what is printed for people goes to stderr.
    let mut out: Box<dyn std::io::Write> = if Events::is_stdout(o.events.as_deref()) {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    // Printing is best effort: a closed stdout must not lose the exit code.
    if o.quiet {
        let verdict = if rep.interrupted {
            "interrupted"
        } else {
            rep.verdict.as_str()
        };
        let _ = writeln!(out, "{}: {verdict}", rep.scenario);
    } else {
        let _ = write!(out, "{}", redactor.redact(&report::table::render(&rep)));
        if !scenario.probe.is_configured() {
            let _ = writeln!(out, "worker spread not checked: no probe (no [probe] section; a page that redirects to the login page or answers 401/403 counts as anonymous)");
        }
        for p in &written {
            let _ = writeln!(out, "report: {}", p.display());
        }
        for c in rep.expectations.iter().filter(|c| !c.passed) {
            let _ = writeln!(out, "FAILED {}: {}", c.name, redactor.redact(&c.message));
        }
    }
    let _ = out.flush();
    if let Some(e) = &write_error {
        eprintln!("error: the report was not written: {}", redactor.redact(e));
    }
    let outcome = if was_interrupted {
        Outcome::Interrupted
    } else if let Some(a) = &aborted {
        eprintln!("error: {}", redactor.redact(a));
        Outcome::Unreachable
    } else if rep.verdict == "pass" {
        Outcome::Pass
    } else {
        Outcome::Fail
    };
    events.emit(Event::RunFinished {
        verdict: match outcome {
            Outcome::Interrupted => "interrupted".into(),
            Outcome::Unreachable => "error".into(),
            _ => rep.verdict.clone(),
        },
        exit_code: outcome as u8,
        duration_s: (duration_s * 1000.0).round() / 1000.0,
        findings: crate::run::events::counts(&rep.findings),
        reports: written.clone(),
        error: aborted.clone(),
    });
    Ok(outcome)
}

/// "1 user × 1 tab", "20 users × 4 tabs".
pub fn users_and_tabs(users: usize, tabs: usize) -> String {
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    format!("{} × {}", plural(users, "user"), plural(tabs, "tab"))
}

type Driven = (Recorded, Option<String>, Option<report::Generator>);

/// The load itself, with the restart task and the progress line beside it.
async fn drive(
    scenario: Scenario,
    http: Http,
    supervisor: SharedSupervisor,
    base: &Url,
    o: &Overrides,
    ctl: RunControl,
) -> Result<Driven> {
    let RunControl { clock, stop, .. } = ctl.clone();
    let progress = Arc::new(Progress::default());
    let aborted: Arc<Mutex<Option<String>>> = Default::default();
    let mut ctx = Ctx::new(
        scenario.clone(),
        http,
        clock,
        stop.clone(),
        progress.clone(),
    );
    ctx.shard = o.shard;
    let ctx = Arc::new(ctx);
    let mut browser_run = crate::load::browser_users::start(
        &scenario,
        base,
        ctx.clone(),
        stop.clone(),
        ctl.interrupt.clone(),
    );
    let browser_hooks = browser_run.as_mut().and_then(|b| b.hooks.take());
    let restart_task = scenario.restart.clone().map(|plan| {
        let restarter = Restarter {
            sc: scenario.clone(),
            plan,
            base: base.clone(),
            sup: supervisor.clone(),
            recorder: ctx.recorder.clone(),
            progress: progress.clone(),
            ctl: ctl.clone(),
            browser: browser_hooks,
        };
        let aborted = aborted.clone();
        tokio::spawn(async move {
            if let Err(e) = restarter.run().await {
                *aborted.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{e:#}"));
                restarter.ctl.stop.cancel();
            }
        })
    });
    let progress_task = (!o.quiet).then(|| tokio::spawn(crate::load::progress::show(ctx.clone())));
    let live_task = ctl
        .live
        .clone()
        .map(|live| tokio::spawn(crate::run::live::watch(live, ctx.recorder.clone(), clock)));
    crate::load::run(ctx.clone()).await;
    stop.cancel();
    if let Some(t) = live_task {
        t.abort();
        let _ = t.await;
    }
    if let Some(live) = &ctl.live {
        live.finish(&ctx.recorder);
    }
    if let Some(t) = restart_task {
        let _ = t.await;
    }
    // The browser checks end by themselves (each page within settle_timeout), or at Ctrl-C.
    if let Some(b) = browser_run {
        let checks = b.task.await.unwrap_or_default();
        *ctl.browser_checks.lock().unwrap_or_else(|e| e.into_inner()) = checks;
    }
    if let Some(t) = progress_task {
        t.abort();
        // Wait for it to go: a live bar clears itself when dropped, before the summary prints.
        let _ = t.await;
    }
    let aborted = aborted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let generator = ctx
        .generator
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    Ok((ctx.recorder.take(), aborted, generator))
}

/// When the run started, and the two ways it is told to stop: `stop` ends the load (its end,
/// or a failed restart), `interrupt` is Ctrl-C/SIGTERM.
#[derive(Clone)]
struct RunControl {
    clock: Instant,
    stop: CancellationToken,
    interrupt: CancellationToken,
    /// `[browser]`: the checks' results, handed from the load to the report.
    browser_checks: Arc<Mutex<Vec<crate::browser::Check>>>,
    /// `--events`: restarts are announced there; `live` judges the run as it goes.
    events: Events,
    live: Option<Arc<Live>>,
}

/// The restart task: the scenario's `[restart]` plan and the run's shared handles.
struct Restarter {
    sc: Scenario,
    plan: crate::scenario::Restart,
    base: Url,
    sup: SharedSupervisor,
    /// Restart windows are recorded with the observations (see `Digest::add`).
    recorder: Arc<Recorder>,
    progress: Arc<Progress>,
    ctl: RunControl,
    /// `[browser]`: checks before the first restart and after each one.
    browser: Option<crate::load::browser_users::RestartHooks>,
}

impl Restarter {
    /// Restart the target when the scenario says, `count` times, recording each window.
    async fn run(&self) -> Result<()> {
        let Restarter {
            sc,
            plan: r,
            base,
            sup,
            recorder,
            progress,
            ctl,
            browser,
        } = self;
        let RunControl {
            stop,
            interrupt,
            events,
            ..
        } = ctl;
        // Wait for the trigger: a time after the load started (now), or a number of requests.
        if let Some(at) = r.at {
            tokio::select! {
                _ = tokio::time::sleep(at.0) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        } else if let Some(n) = r.after_requests {
            while progress.requests.load(Ordering::Relaxed) < n {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
            }
        }
        if let Some(b) = browser {
            b.before_restart(interrupt).await;
        }
        for i in 0..r.count {
            if stop.is_cancelled() {
                return Ok(());
            }
            let index = recorder.restart_began(r.method.label());
            let began = Instant::now();
            events.emit(Event::RestartStarted {
                restart: index,
                method: r.method.label(),
            });
            match &r.method {
                RestartMethod::Named(_) => {
                    let mut guard = sup.lock().await;
                    let s = guard.as_mut().ok_or_else(|| {
                        anyhow!(
                        "restart.method = \"supervisor\" but sesscheck did not spawn the target"
                    )
                    })?;
                    s.stop().await?;
                    s.start().context("starting the target again")?;
                }
                RestartMethod::Command { command, timeout } => {
                    // Ctrl-C must not wait out the command's timeout; dropping the wait kills it.
                    let dir = scenario_dir(sc);
                    tokio::select! {
                        r = supervisor::run_command(command, timeout.0, dir.as_ref()) => r?,
                        _ = interrupt.cancelled() => return Ok(()),
                    }
                }
                RestartMethod::Signal { signal, pidfile } => {
                    supervisor::signal_pidfile(signal, &resolve(sc, pidfile).to_string_lossy())?;
                }
            }
            // Watch only Ctrl-C here: a load that ends during the restart still lets it finish.
            // The restart is over when the target answers again; waiting for every worker is
            // reported apart ("all workers after ...").
            let deadline = match wait_ready(sc, base, sup, interrupt).await {
                Ok(deadline) => deadline,
                Err(_) if interrupt.is_cancelled() => return Ok(()),
                Err(e) => return Err(e.context("after the restart")),
            };
            recorder.restart_ready(index);
            if let Some(b) = browser {
                b.after_restart();
            }
            events.emit(Event::TargetReady {
                restart: Some(index),
                downtime_s: Some((began.elapsed().as_secs_f64() * 1000.0).round() / 1000.0),
            });
            let waited = tokio::select! {
                w = wait_workers(sc, base, deadline, WorkersWait::AfterRestart) => w,
                _ = interrupt.cancelled() => return Ok(()),
            };
            if waited.is_ok() && sc.ready_workers() > 1 {
                recorder.restart_all_workers(index);
            }
            if i + 1 < r.count {
                tokio::select! {
                    _ = tokio::time::sleep(r.interval.0) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
            }
        }
        Ok(())
    }
}

/// The session-rule audits the scenario turned on, as plain values for the detectors.
fn audit_config(sc: &Scenario, base: &Url) -> AuditConfig {
    AuditConfig {
        sessions_per_user: sc.sessions.per_user,
        logout_scope: sc.sessions.logout_scope,
        fixation: sc.checks.fixation,
        revocation: sc.checks.revocation,
        lifetime: sc.lifetime.as_ref().map(|l| LifetimeExpect {
            min_s: l.min.map(|d| d.0.as_secs_f64()),
            sliding: l.sliding,
        }),
        cookies: sc.cookies.as_ref().map(|c| CookieRules {
            http_only: c.http_only,
            // Secure is only expected of https targets unless the scenario says so.
            secure: c.secure.unwrap_or(base.scheme() == "https"),
            same_site: c.same_site.clone(),
            max_size: c.max_size,
            names: c.names.clone(),
        }),
    }
}

/// Finding kinds of the audits that are on: each becomes a pass/fail expectation.
fn enabled_audits(sc: &Scenario) -> Vec<FindingKind> {
    let mut v = Vec::new();
    if sc.sessions.per_user > 1 {
        v.push(FindingKind::SessionConflict);
    }
    if sc.checks.fixation {
        v.push(FindingKind::SessionFixation);
    }
    if sc.checks.revocation {
        v.push(FindingKind::LogoutNotRevoked);
    }
    if sc.lifetime.is_some() {
        v.push(FindingKind::SessionLifetime);
    }
    if sc.cookies.is_some() {
        v.push(FindingKind::CookieAttributes);
    }
    if sc.config.is_some() {
        v.push(FindingKind::Config);
    }
    v
}

/// Read the debug config endpoint once: a default secret key flag and a list of warnings.
async fn read_config(sc: &Scenario, base: &Url, c: &crate::scenario::ConfigProbe) -> ConfigAnswer {
    let fetch = async {
        let url = base.join(&c.path).map_err(|e| e.to_string())?;
        let client =
            OneOff::for_target(sc.load.loading_timeout.0, sc).map_err(|e| format!("{e:#}"))?;
        let answer = client
            .get(&url, CONFIG_MAX_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        if !(200..300).contains(&answer.status) {
            return Err(format!("{} answered HTTP {}", c.path, answer.status));
        }
        let v: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("{} is not JSON ({e})", c.path))?;
        Ok(v)
    };
    match fetch.await {
        Ok(v) => ConfigAnswer {
            default_secret: v.pointer(&c.default_secret).and_then(|x| x.as_bool()),
            warnings: v
                .pointer(&c.warnings)
                .and_then(|x| x.as_array())
                .map(|a| {
                    a.iter()
                        .map(|w| {
                            w.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| w.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default(),
            error: None,
        },
        Err(e) => ConfigAnswer {
            error: Some(e),
            ..Default::default()
        },
    }
}

/// Poll the ready path until it answers below 500. Fails fast if the spawned target died.
/// Returns the deadline of the whole wait (`ready.timeout`), for `wait_workers`.
async fn wait_ready(
    sc: &Scenario,
    base: &Url,
    sup: &SharedSupervisor,
    stop: &CancellationToken,
) -> Result<Instant> {
    let url = base
        .join(&sc.target.ready.path)
        .context("target.ready.path")?;
    let client = OneOff::for_target(READY_POLL_TIMEOUT, sc)?;
    let deadline = Instant::now() + sc.target.ready.timeout.0;
    let mut last;
    loop {
        if stop.is_cancelled() {
            return Err(anyhow!("stopped while waiting for the target"));
        }
        if let Some(sup) = sup.lock().await.as_mut() {
            if let Some(how) = sup.exited() {
                return Err(unreachable(format!(
                    "{how} before it was ready at {url}; its last output:\n{}",
                    sup.tail()
                )));
            }
        }
        match client.get(&url, 0).await {
            Ok(r) if r.status < 500 => return Ok(deadline),
            Ok(r) => last = format!("HTTP {}", r.status),
            Err(e) => {
                last = e.to_string();
                // Waiting does not fix a certificate: say so now, not after ready.timeout.
                if base.scheme() == "https" && last.contains("certificate") {
                    return Err(unreachable(format!(
                        "the TLS certificate of {url} was refused ({last}); for a self-signed test certificate set `insecure_tls = true` under [target]"
                    )));
                }
            }
        }
        if Instant::now() >= deadline {
            let tail = match sup.lock().await.as_ref() {
                Some(s) => format!("; its last output:\n{}", s.tail()),
                None => String::new(),
            };
            return Err(unreachable(format!(
                "target not ready at {url} after {} ({last}){tail}",
                humantime::format_duration(sc.target.ready.timeout.0)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why `wait_workers` waits: before the load a missing worker ends the run (exit 3); after a
/// restart it is only reported (no "all workers" time).
#[derive(Clone, Copy, PartialEq, Eq)]
enum WorkersWait {
    Required,
    AfterRestart,
}

/// How often the wait for workers says what it has seen so far.
const WORKERS_PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// Poll the probe (or, with only `[probe] worker_header`, the ready path) over new
/// connections until `ready_workers()` distinct workers answered, so the load does not start
/// while only the first worker is up. Says every few seconds what it has seen; at the deadline
/// it is exit 3 before the load, and an `Err` (reported) after a restart.
async fn wait_workers(
    sc: &Scenario,
    base: &Url,
    deadline: Instant,
    why: WorkersWait,
) -> Result<()> {
    let want = sc.ready_workers();
    if want <= 1 {
        return Ok(());
    }
    let client = OneOff::for_target(READY_POLL_TIMEOUT, sc)?;
    let path = if sc.probe.path.is_empty() {
        &sc.target.ready.path
    } else {
        &sc.probe.path
    };
    let url = base.join(path).context("probe.path")?;
    let spec = crate::observe::worker::WorkerSpec::of(&sc.probe);
    let reader = engine::ProbeReader::new(spec.clone(), "", None);
    let started = Instant::now();
    let mut next_word = started + WORKERS_PROGRESS_EVERY;
    let mut workers = std::collections::BTreeSet::new();
    let seen = |workers: &std::collections::BTreeSet<crate::observe::worker::WorkerId>| {
        format!(
            "waiting for {want} workers (ready.min_workers), seen {} ({}{}) after {:.0} s",
            workers.len(),
            // Plain PIDs are said to be PIDs; other identities speak for themselves.
            if workers
                .iter()
                .all(|w| w.to_string().bytes().all(|b| b.is_ascii_digit()))
                && !workers.is_empty()
            {
                "pid "
            } else {
                ""
            },
            workers
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64()
        )
    };
    while workers.len() < want {
        if Instant::now() >= deadline {
            let message = format!(
                "{}; ready.timeout ({}) is over: start more workers or lower [target] ready.min_workers",
                seen(&workers),
                humantime::format_duration(sc.target.ready.timeout.0)
            );
            return match why {
                WorkersWait::Required => Err(unreachable(message)),
                WorkersWait::AfterRestart => {
                    eprintln!("sesscheck: after the restart: {message}");
                    Err(anyhow!(message))
                }
            };
        }
        if let Ok(r) = client.get(&url, sc.load.max_body_bytes).await {
            let served_by = spec
                .header
                .as_ref()
                .and_then(|h| r.headers.get(h.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(crate::observe::worker::WorkerId::intern);
            let worker = if sc.probe.path.is_empty() {
                served_by
            } else {
                reader.read(&r.body, served_by).ok().and_then(|a| a.worker)
            };
            workers.extend(worker);
        }
        if Instant::now() >= next_word && workers.len() < want {
            eprintln!("sesscheck: {}", seen(&workers));
            next_word += WORKERS_PROGRESS_EVERY;
        }
        if workers.len() < want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Ask the probe once, anonymously, before the load: a path that is not the JSON debug endpoint
/// (a 404, a redirect, an HTML page) would otherwise be half the load and count as nothing.
async fn check_probe(sc: &Scenario, base: &Url) -> Result<()> {
    if !sc.probe.is_configured() {
        return Ok(());
    }
    let path = &sc.probe.path;
    let url = base.join(path).context("probe.path")?;
    let client = OneOff::for_target(READY_POLL_TIMEOUT, sc)?;
    let fix = "set [probe] path to the app's JSON debug endpoint (see README \"Point it at your app\"), or remove [probe] to run without one";
    let answer = client
        .get(&url, sc.load.max_body_bytes)
        .await
        .map_err(|e| unreachable(format!("the probe {url} did not answer ({e})")))?;
    let got = match (answer.status, &answer.location) {
        (200..=299, _) => {
            let spec = crate::observe::worker::WorkerSpec::of(&sc.probe);
            let served_by = spec
                .header
                .as_ref()
                .and_then(|h| answer.headers.get(h.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(crate::observe::worker::WorkerId::intern);
            let reader = engine::ProbeReader::new(spec, &sc.probe.authenticated, None);
            match reader.read(&answer.body, served_by) {
                Ok(_) => return Ok(()),
                Err(why) => why,
            }
        }
        // An API that answers anonymous visitors 401/403 is read as anonymous by the load too.
        (401 | 403, _) => return Ok(()),
        (s @ 300..=399, Some(loc)) => format!("HTTP {s}, a redirect to {loc}"),
        (s, _) => format!("HTTP {s}"),
    };
    Err(unreachable(format!(
        "the probe {path} is not a JSON debug endpoint: asked before the load (without a login), it answered {got}; {fix}"
    )))
}

/// The quick start must work where the scenario's port is taken: a target sesscheck spawns
/// itself (the built-in one, or a command that listens on `$PORT`) moves to a free port, and
/// says so. A target not spawned, or a port given with `--url`, stays where it is.
async fn move_off_a_taken_port(sc: &mut Scenario) {
    let relocatable = match &sc.target.spawn {
        Some(Spawn::Builtin(_)) => true,
        Some(Spawn::Command(c)) => c.command.contains("$PORT") || c.command.contains("${PORT}"),
        None => false,
    };
    let Ok(mut url) = Url::parse(&sc.target.url) else {
        return;
    };
    if !relocatable || ensure_port_free(&url).await.is_ok() {
        return;
    }
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let free = std::net::TcpListener::bind((host.trim_matches(|c| c == '[' || c == ']'), 0))
        .and_then(|l| l.local_addr());
    let (Ok(free), Some(taken)) = (free, url.port_or_known_default()) else {
        return;
    };
    if url.set_port(Some(free.port())).is_ok() {
        eprintln!(
            "sesscheck: port {taken} is taken; the target sesscheck spawns runs on port {} instead ({url})",
            free.port()
        );
        sc.target.url = url.as_str().trim_end_matches('/').to_string();
    }
}

/// Refuse to spawn onto a port something else already serves: we would test that instead.
async fn ensure_port_free(base: &Url) -> Result<()> {
    let host = base
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = base.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
        return Err(unreachable(format!(
            "something is already listening on {host}:{port}; sesscheck would test it instead of the target it spawns. Stop it, or pick another port with --url"
        )));
    }
    Ok(())
}

fn scenario_dir(sc: &Scenario) -> Option<PathBuf> {
    sc.source.parent().map(|p| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    })
}

/// Paths in a scenario are relative to the scenario file's folder.
fn resolve(sc: &Scenario, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        return p;
    }
    scenario_dir(sc).map(|d| d.join(&p)).unwrap_or(p)
}

/// A private folder for this run (the built-in target's shared store), removed at the end.
fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("sesscheck-run-{}-{nanos}", std::process::id()))
}

fn spawn_spec(sc: &Scenario, base: &Url, scratch: &std::path::Path) -> Result<Option<SpawnSpec>> {
    let port = base.port_or_known_default().unwrap_or(80).to_string();
    let stop_timeout = sc.target.stop_timeout.0;
    Ok(match &sc.target.spawn {
        None => None,
        Some(Spawn::Builtin(b)) => {
            let exe = std::env::current_exe()
                .context("finding the sesscheck executable to start the built-in target")?;
            let mut args = crate::scenario::builtin_args(b, base)?;
            args.push("--state-dir".into());
            args.push(scratch.join("target").to_string_lossy().into_owned());
            Some(SpawnSpec {
                program: exe.to_string_lossy().into_owned(),
                label: format!("built-in target ({} workers, store={})", b.workers, b.store),
                args,
                cwd: None,
                env: Default::default(),
                stop_timeout,
                scratch: Some(scratch.to_path_buf()),
            })
        }
        Some(Spawn::Command(c)) => {
            let mut env = c.env.clone();
            env.entry("PORT".into()).or_insert(port);
            Some(SpawnSpec {
                program: "sh".into(),
                args: vec!["-c".into(), c.command.clone()],
                cwd: Some(
                    c.cwd
                        .as_deref()
                        .map(|d| resolve(sc, d))
                        .unwrap_or_else(|| scenario_dir(sc).unwrap_or_else(|| ".".into())),
                ),
                env,
                label: format!("`{}`", c.command),
                stop_timeout,
                scratch: None,
            })
        }
    })
}

/// Ctrl-C or SIGTERM: stop sending, then the report is written as usual.
fn watch_signals(stop: CancellationToken, interrupted: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("\nsesscheck: interrupted; stopping and writing the report (interrupt again to quit at once)");
        interrupted.store(true, Ordering::SeqCst);
        stop.cancel();
        // A second Ctrl-C does not wait for the graceful stop. A spawned target is not left
        // behind: its guard stops it when sesscheck is gone (see `supervisor`).
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("sesscheck: interrupted twice; quitting without a report");
        std::process::exit(Outcome::Interrupted as i32);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn users_and_tabs_are_counted_in_words() {
        assert_eq!(super::users_and_tabs(10, 1), "10 users × 1 tab");
        assert_eq!(super::users_and_tabs(1, 4), "1 user × 4 tabs");
    }
}
