//! `sesscheck run`: wires scenario → supervisor → engine → detectors → report, and maps the
//! outcome to the exit code that CI gates on.
//!
//! The folder also owns readiness, restarts with their phases, the once-a-second live judge
//! (`live`) and the `--events` stream (`events`). May import every stage below it; only `cli`
//! imports it.

mod anonymous;
mod audits;
pub mod events;
pub mod live;
mod outcome;
mod ready;
mod restart;
mod spawn;

use audits::read_config;
use outcome::unreachable;
pub use outcome::{Outcome, RunError};
use ready::{
    check_probe, ensure_port_free, move_off_a_taken_port, wait_ready, wait_workers, WorkersWait,
};
use restart::{Restarter, RunControl};
use spawn::{resolve, scratch_dir, spawn_spec, SharedSupervisor};

use crate::http::client::Http;
use crate::judge::detect::{self, DetectConfig, Evidence};
use crate::load::engine::{Ctx, Progress};
use crate::observe::digest::{Digest, Recorded};
use crate::process::supervisor::{self, SharedLog, Supervisor};
use crate::report;
use crate::run::events::{Event, Events};
use crate::run::live::Live;
use crate::scenario::Scenario;
use anyhow::Result;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use url::Url;

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
    /// `--threads`, resolved: how many threads drive closed-loop users (0 counts as 1).
    pub threads: usize,
}

/// What the detectors need from the scenario, for the live findings (`run_end_us` 0: the run
/// has not ended) and for the report's.
fn detect_config(scenario: &Scenario, run_end_us: u64) -> DetectConfig {
    let digest = &scenario.lowered.digest;
    DetectConfig {
        interrupted_statuses: digest.interrupted_statuses.clone(),
        interrupted_window_us: scenario.detect.interrupted_window.0.as_micros() as u64,
        recovery_timeout_us: digest.recovery_timeout_us,
        min_distinct_pids: scenario.expect.min_distinct_pids,
        run_end_us,
        target_output: scenario.target.spawn.is_some(),
        new_connections: scenario.lowered.http.new_connections,
        accounts_file: scenario
            .login
            .as_ref()
            .is_some_and(|l| l.accounts.is_some()),
        one_account: scenario.login.as_ref().is_some_and(|l| l.is_one_account()),
        write_paths: scenario
            .load
            .requests
            .iter()
            .filter_map(|r| match r {
                crate::scenario::requests::RequestSpec::Write(w) => Some(w.path.clone()),
                crate::scenario::requests::RequestSpec::Page(_) => None,
            })
            .collect(),
    }
}

/// "pass", "interrupted", "fail (logout, login_failed)", "fail (nothing measured: no login
/// worked)": the verdict with what made it, in one line for a CI log.
fn verdict_line(rep: &report::Report) -> String {
    if rep.interrupted {
        return "interrupted".into();
    }
    if rep.verdict == "pass" {
        return rep.verdict.clone();
    }
    if rep.nothing_measured() {
        return format!("{} (nothing measured: no login worked)", rep.verdict);
    }
    let mut kinds: Vec<String> = rep
        .findings
        .iter()
        .filter(|f| f.severity == crate::judge::finding::Severity::Error)
        .map(|f| f.kind.to_string())
        .collect();
    kinds.dedup();
    if kinds.is_empty() {
        // Failed on a figure alone (p99, downtime, worker count) or aborted.
        let checks: Vec<&str> = rep
            .expectations
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        if checks.is_empty() {
            // Aborted with every check passing: the reason's first clause, so that the CI
            // log's last line says why (FlaskBB trial: "fail" alone after a HUP restart the
            // load never got past).
            return match &rep.aborted {
                Some(why) => format!(
                    "{} (no pass: {})",
                    rep.verdict,
                    why.split(':').next().unwrap_or(why).trim()
                ),
                None => rep.verdict.clone(),
            };
        }
        return format!("{} ({})", rep.verdict, checks.join(", "));
    }
    format!("{} ({})", rep.verdict, kinds.join(", "))
}

/// How many users this process runs: all of them, or its shard's.
fn users_here(scenario: &Scenario, o: &Overrides) -> usize {
    crate::load::schedule::shard_users(scenario.load.users, o.shard).len()
}

/// The first logins of this process's users: one per session of each (`[sessions] per_user`).
fn first_logins(scenario: &Scenario, o: &Overrides) -> usize {
    users_here(scenario, o) * scenario.sessions.per_user
}

/// How many threads run the users: `--threads` for closed-loop users, but no more than there
/// are users (of this shard) or `max_connections` (each thread needs one of its own); the
/// open-loop generator runs on the run's own runtime.
fn lanes(scenario: &Scenario, o: &Overrides) -> usize {
    if scenario.load.rate.is_some() {
        return 1;
    }
    let users = users_here(scenario, o);
    let cap = scenario.load.max_connections.unwrap_or(usize::MAX);
    o.threads.min(users).min(cap).max(1)
}

/// The most connections to the target this run can hold open at once: one per request in
/// flight, so one per tab of this shard's users (logins and probes go through a user's tabs),
/// or the cap on connections.
fn peak_connections(scenario: &Scenario, o: &Overrides) -> u64 {
    let users = users_here(scenario, o);
    let tabs = (users as u64).saturating_mul(scenario.load.tabs as u64);
    match scenario.load.connection_cap() {
        Some(cap) => tabs.min(cap as u64),
        None => tabs,
    }
}

/// Refuse, before anything starts, a load whose connections do not fit under the limit on open
/// files: past it connects fail, and the run would blame the app for sesscheck's own limit.
fn fits_open_files(
    scenario: &Scenario,
    o: &Overrides,
    files: crate::util::open_files::OpenFiles,
) -> Result<()> {
    let peak = peak_connections(scenario, o);
    let room = files.connections();
    if peak <= room {
        return Ok(());
    }
    let load = &scenario.load;
    let why = match load.connection_cap() {
        Some(cap) if cap as u64 == peak => format!("[load] max_connections = {cap}"),
        _ => format!("[load] users = {} × tabs = {}", load.users, load.tabs),
    };
    Err(RunError {
        outcome: Outcome::Invalid,
        message: format!(
            "this run can hold {peak} connections to the target open at once ({why}), but \
             sesscheck may open only {} files (`ulimit -n`; {} are kept for its own use, and \
             {} is the hard limit): set [load] max_connections = {room} or less (users then \
             take turns on the connections, each with its own cookies), or raise the limit \
             (`ulimit -n {}`, as root or in limits.conf)",
            files.soft,
            crate::util::open_files::SPARE,
            files.hard,
            peak + crate::util::open_files::SPARE
        ),
    }
    .into())
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

pub async fn run(scenario: Scenario, o: Overrides) -> Result<Outcome> {
    if let Some((i, n)) = o.shard {
        if users_here(&scenario, &o) == 0 {
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
    if let Some(files) = crate::util::open_files::raise() {
        fits_open_files(&scenario, &o, files)?;
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
    // Parsed when the scenario (and `--url`) was validated.
    let base = scenario.lowered.target.clone();
    report::check_writable(&o.report_dir).map_err(|e| RunError {
        outcome: Outcome::Invalid,
        message: format!("{e:#} (check --report-dir)"),
    })?;
    if scenario.target.insecure_tls {
        eprintln!("warning: insecure_tls = true: TLS certificates of {base} are NOT verified");
    }
    let mut http =
        Http::new(&scenario.lowered.http, &base, lanes(&scenario, &o)).map_err(|e| RunError {
            outcome: Outcome::Invalid,
            message: format!("{e:#}"),
        })?;
    let pattern = scenario.lowered.http.interrupted.text.clone();
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
    if ready.is_ok() {
        let learned = anonymous::learn_login_page(&scenario, &base).await;
        if let Some(page) = &learned.login_page {
            http.set_login_page(page);
            eprintln!(
                "sesscheck: the pages send visitors without a login to {page}, not to [login] path {}: a redirect to {page} counts as logged out (set [detect] login_path to choose yourself)",
                scenario.login.as_ref().map_or("", |l| l.path.as_str())
            );
        }
        for note in &learned.notes {
            eprintln!("warning: {note}");
        }
    }
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
                    let cfg = detect_config(&scenario, 0);
                    Arc::new(Live::new(
                        events.clone(),
                        cfg,
                        scenario.lowered.audits.clone(),
                        config_answer.clone(),
                        log.clone(),
                        first_logins(&scenario, &o) as u64,
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
            (Recorded::empty(scenario.lowered.digest.clone()), None, None)
        }
        Err(e) => return Err(e),
    };
    let Recorded {
        digest,
        kept,
        not_kept,
        restarts,
        all_workers_us,
        ..
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
    let cfg = detect_config(&scenario, digest.last_end_us);
    let judgement = detect::judge_all(&Evidence {
        obs: &kept,
        digest: &digest,
        restarts: &restarts,
        cfg: &cfg,
        server_log_matches: match_count,
        audit: &scenario.lowered.audits.clone(),
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
    let aborted = aborted
        .or_else(|| {
            (digest.traffic == 0 && findings.is_empty() && !was_interrupted).then(|| {
                format!(
                    "no load request was sent in {:.1} s: nothing was measured, so this is no pass (check [load] and max_duration)",
                    duration_s
                )
            })
        })
        .or_else(|| refused_logouts(&digest, &scenario.logout));
    if let Some(w) = logins_ate_the_load(&digest, first_logins(&scenario, &o) as u64) {
        eprintln!("warning: {w}");
    }
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
        audits: crate::judge::audit::enabled(&scenario.lowered.audits),
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
        let _ = writeln!(out, "{}: {}", rep.scenario, verdict_line(&rep));
    } else {
        let _ = write!(out, "{}", redactor.redact(&report::table::render(&rep)));
        if let Some(line) = no_probe_line(&scenario.probe) {
            let _ = writeln!(out, "{line}");
        }
        for p in &written {
            let _ = writeln!(out, "report: {}", p.display());
        }
        for c in rep.expectations.iter().filter(|c| !c.passed) {
            let _ = writeln!(out, "FAILED {}: {}", c.name, redactor.redact(&c.message));
        }
        if rep.nothing_measured() {
            // Users whose first logins all fail stop (see `first_login`): the run ends early.
            let _ = writeln!(
                out,
                "nothing measured: no login worked, so every user stopped after its first login (the run took {:.1} s); see login_failed above (exit 4)",
                rep.duration_s
            );
        }
        // The last line, as with --quiet: what a CI log shows first.
        let _ = writeln!(out, "{}: {}", rep.scenario, verdict_line(&rep));
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
    } else if rep.nothing_measured() {
        Outcome::NotMeasured
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
        scenario.load_plan(),
        http,
        clock,
        stop.clone(),
        progress.clone(),
    );
    ctx.shard = o.shard;
    let ctx = Arc::new(ctx);
    let mut browser_run =
        crate::load::browser_users::start(base, ctx.clone(), stop.clone(), ctl.interrupt.clone());
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
    // The load's own time: a restart still under way is waited for below.
    let load_ran = clock.elapsed();
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
    let generator = ctx
        .generator
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let held_back = progress.logins_held_back.load(Ordering::Relaxed);
    if held_back > 0 {
        eprintln!(
            "warning: the users share one account and its first logins failed, so {held_back} other users did not try theirs: more failed logins could lock the account"
        );
    }
    let recorded = ctx.recorder.take();
    let aborted = aborted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let aborted = aborted.or_else(|| {
        let plan = scenario.restart.as_ref()?;
        if ctl.interrupt.is_cancelled() {
            return None;
        }
        // No login worked: the users stopped early, and that (login_failed, exit 4) is what
        // the run says, not that the restart came too late (found on Wagtail: a wrong
        // password was reported as 'trigger the restart earlier', exit 3).
        if scenario.login.is_some() && progress.logins.load(Ordering::Relaxed) == 0 {
            return None;
        }
        restart::missed(
            plan,
            scenario.browser.is_some(),
            recorded.restarts.len(),
            progress.requests.load(Ordering::Relaxed),
            load_ran,
        )
        .or_else(|| restart::unmeasured(&recorded.restarts, &recorded.digest.recovery, load_ran))
    });
    Ok((recorded, aborted, generator))
}

/// Every deliberate logout refused (4xx): the users were never logged out, so what the
/// scenario's logouts were there to check (tabs racing a logout, revocation, re-login) was not
/// checked. Found on Label Studio: a guessed `/user/logout/` answered 404 and the run counted
/// "16 deliberate logouts".
fn refused_logouts(
    digest: &crate::observe::digest::Digest,
    logout: &crate::scenario::Logout,
) -> Option<String> {
    let status = digest.logout_refused_status?;
    (digest.logouts_refused == digest.logouts).then(|| {
        format!(
            "all {} deliberate logouts ({} {}) answered HTTP {status}, so no user was logged out and what the logouts were to check was not: this is no pass. Check [logout] path and method (Django 5 logs out on POST only; give [logout] csrf when it wants a token)",
            digest.logouts, logout.method, logout.path
        )
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

/// Said after the table of a run without a debug endpoint: how it told logged in from
/// anonymous, and whether it knew the workers (a `worker_header` names them on every answer).
fn no_probe_line(probe: &crate::scenario::Probe) -> Option<String> {
    if probe.is_configured() {
        return None;
    }
    let anonymous =
        "a page that redirects to the login page or answers 401/403 counts as anonymous";
    Some(match &probe.worker_header {
        Some(h) => format!("no debug endpoint: workers named by the {h} header; {anonymous}"),
        None => format!("worker spread not checked: no probe (no [probe] section; {anonymous})"),
    })
}

/// Above this share of the requests' time spent logging in, the run measured the logins
/// (a slow password hash times many users) more than the app's session handling.
const LOGIN_SHARE_WARNING: f64 = 0.5;

/// Says so when logins took most of the time users spent in requests: the verdict then rests
/// on few pages and probes, and the latency figures are not the app's pages.
/// `first_logins`: the users' own first logins; more than twice as many logins in all were
/// mostly logins again after a user was sent to the login page (a logout bug), and then more
/// time or fewer users is not the fix (the advice misled the pgAdmin trial).
fn logins_ate_the_load(digest: &Digest, first_logins: u64) -> Option<String> {
    let share = digest.login_share()?;
    let advice = if digest.logins > 2 * first_logins {
        format!(
            "most of them logins again after users were sent to the login page ({first_logins} \
             users), so see the logout finding first"
        )
    } else {
        "the load measured mostly logins; give [load] duration more time or use fewer [load] \
         users"
            .to_string()
    };
    (share >= LOGIN_SHARE_WARNING && digest.logins_ok > 0).then(|| {
        format!(
            "logins took {:.0} % of the time spent in requests ({} logins, {:.0} ms each on average; {} pages and probes): {advice}",
            share * 100.0,
            digest.logins,
            digest.login_us as f64 / digest.logins as f64 / 1000.0,
            digest.traffic,
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn logins_that_ate_the_load_are_blamed_on_logouts_when_most_were_logins_again() {
        let mut d = crate::observe::digest::Digest::of(&[], &[], Default::default());
        let _ = d.overall.record(10_000);
        d.traffic = 1;
        d.login_us = 1_000_000;
        d.logins_ok = 5;
        d.logins = 5;
        let first = super::logins_ate_the_load(&d, 5).unwrap();
        assert!(first.contains("use fewer [load] users"), "{first}");
        // pgAdmin with a store per replica: 245 logins for 5 users.
        d.logins = 245;
        let again = super::logins_ate_the_load(&d, 5).unwrap();
        assert!(
            again.contains("see the logout finding first") && !again.contains("fewer"),
            "{again}"
        );
    }

    #[test]
    fn users_and_tabs_are_counted_in_words() {
        assert_eq!(super::users_and_tabs(10, 1), "10 users × 1 tab");
        assert_eq!(super::users_and_tabs(1, 4), "1 user × 4 tabs");
    }
}
