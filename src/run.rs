//! `sesscheck run`: wires scenario → supervisor → engine → detectors → report, and maps the
//! outcome to the exit code that CI gates on.

use crate::audit::{self, AuditConfig, ConfigAnswer, CookieRules, LifetimeExpect};
use crate::client::{Http, OneOff};
use crate::detect::{self, DetectConfig, Evidence};
use crate::digest::{DigestConfig, Recorded, Recorder};
use crate::engine::{self, Ctx, Progress};
use crate::report;
use crate::scenario::{RestartMethod, Scenario, Spawn};
use crate::supervisor::{self, SharedLog, SpawnSpec, Supervisor};
use anyhow::{anyhow, Context, Result};
use regex::Regex;
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
        if crate::openloop::shard_users(scenario.load.users, o.shard).is_empty() {
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
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
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
    let pattern = Regex::new(&scenario.detect.interrupted_pattern)?;
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
    let ready = wait_ready(&scenario, &base, &supervisor, &stop).await;
    let mut config_answer = None;
    let result = match ready {
        Ok(()) => {
            if let Some(c) = &scenario.config {
                config_answer = Some(read_config(&scenario, &base, c).await);
            }
            if !o.quiet {
                eprintln!(
                    "sesscheck: {} users × {} tabs against {base} ({})",
                    scenario.load.users,
                    scenario.load.tabs,
                    spawned
                        .as_deref()
                        .unwrap_or("target not spawned by sesscheck")
                );
            }
            let ctl = RunControl {
                clock,
                stop: stop.clone(),
                interrupt: interrupt.clone(),
            };
            drive(scenario.clone(), http, supervisor.clone(), &base, &o, ctl).await
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
    } = recorded;
    let duration_s = clock.elapsed().as_secs_f64();
    let (matches, match_count) = {
        let l = log.lock().unwrap_or_else(|e| e.into_inner());
        (
            l.matches
                .iter()
                .map(|(t, line)| (*t, report::scrub_log_line(line)))
                .collect::<Vec<_>>(),
            l.match_count,
        )
    };
    let DigestConfig {
        interrupted_statuses,
        recovery_timeout_us,
    } = DigestConfig::of(&scenario);
    let cfg = DetectConfig {
        interrupted_statuses,
        interrupted_window_us: scenario.detect.interrupted_window.0.as_micros() as u64,
        recovery_timeout_us,
        min_distinct_pids: scenario.expect.min_distinct_pids,
        run_end_us: digest.last_end_us,
    };
    let findings = detect::detect_all(&Evidence {
        obs: &kept,
        digest: &digest,
        restarts: &restarts,
        cfg: &cfg,
        server_log_matches: match_count,
        audit: &audit_config(&scenario, &base),
        config: config_answer.as_ref(),
    });
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
        lifetime: scenario
            .lifetime
            .as_ref()
            .map(|_| audit::measure_lifetime(&kept, &digest.remaining, digest.renewed, &restarts)),
        audits: enabled_audits(&scenario),
    });
    let mut rep = rep;
    rep.generator = generator;
    rep.not_kept = not_kept;
    rep.shard = o.shard.map(|(i, n)| format!("{i}/{n}"));
    let secrets = scenario.secrets();
    let redactor = crate::redact::Redactor::new(&secrets);
    // A report that cannot be written does not hide the verdict: the summary is printed and
    // the exit code is the run's, with the error beside it.
    let (written, write_error) = match report::write_all(&rep, &o.report_dir, &secrets) {
        Ok(w) => (w, None),
        Err(e) => (Vec::new(), Some(format!("{e:#} (check --report-dir)"))),
    };
    if o.quiet {
        let verdict = if rep.interrupted {
            "interrupted"
        } else {
            rep.verdict.as_str()
        };
        println!("{}: {verdict}", rep.scenario);
    } else {
        print!("{}", redactor.redact(&report::table::render(&rep)));
        for p in &written {
            println!("report: {}", p.display());
        }
        for c in rep.expectations.iter().filter(|c| !c.passed) {
            println!("FAILED {}: {}", c.name, redactor.redact(&c.message));
        }
    }
    if let Some(e) = write_error {
        eprintln!("error: the report was not written: {}", redactor.redact(&e));
    }
    Ok(if was_interrupted {
        Outcome::Interrupted
    } else if let Some(a) = aborted {
        eprintln!("error: {}", redactor.redact(&a));
        Outcome::Unreachable
    } else if rep.verdict == "pass" {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
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
    let restart_task = scenario.restart.clone().map(|plan| {
        let restarter = Restarter {
            sc: scenario.clone(),
            plan,
            base: base.clone(),
            sup: supervisor.clone(),
            recorder: ctx.recorder.clone(),
            progress: progress.clone(),
            ctl: ctl.clone(),
        };
        let aborted = aborted.clone();
        tokio::spawn(async move {
            if let Err(e) = restarter.run().await {
                *aborted.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{e:#}"));
                restarter.ctl.stop.cancel();
            }
        })
    });
    let progress_task = (!o.quiet).then(|| tokio::spawn(crate::progress::show(ctx.clone())));
    engine::run(ctx.clone()).await;
    stop.cancel();
    if let Some(t) = restart_task {
        let _ = t.await;
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
        } = self;
        let RunControl {
            stop, interrupt, ..
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
        for i in 0..r.count {
            if stop.is_cancelled() {
                return Ok(());
            }
            let index = recorder.restart_began(r.method.label());
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
            match wait_ready(sc, base, sup, interrupt).await {
                Ok(()) => {}
                Err(_) if interrupt.is_cancelled() => return Ok(()),
                Err(e) => return Err(e.context("after the restart")),
            }
            recorder.restart_ready(index);
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
fn enabled_audits(sc: &Scenario) -> Vec<&'static str> {
    let mut v = Vec::new();
    if sc.sessions.per_user > 1 {
        v.push("session_conflict");
    }
    if sc.checks.fixation {
        v.push("session_fixation");
    }
    if sc.checks.revocation {
        v.push("logout_not_revoked");
    }
    if sc.lifetime.is_some() {
        v.push("session_lifetime");
    }
    if sc.cookies.is_some() {
        v.push("cookie_attributes");
    }
    if sc.config.is_some() {
        v.push("config");
    }
    v
}

/// Read the debug config endpoint once: a default secret key flag and a list of warnings.
async fn read_config(sc: &Scenario, base: &Url, c: &crate::scenario::ConfigProbe) -> ConfigAnswer {
    let fetch = async {
        let url = base.join(&c.path).map_err(|e| e.to_string())?;
        let client = OneOff::new(sc.load.loading_timeout.0, sc.target.insecure_tls)
            .map_err(|e| format!("{e:#}"))?;
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
async fn wait_ready(
    sc: &Scenario,
    base: &Url,
    sup: &SharedSupervisor,
    stop: &CancellationToken,
) -> Result<()> {
    let url = base
        .join(&sc.target.ready.path)
        .context("target.ready.path")?;
    let client = OneOff::new(READY_POLL_TIMEOUT, sc.target.insecure_tls)?;
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
            Ok(r) if r.status < 500 => return wait_workers(sc, base, &client, deadline).await,
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

/// Poll the probe (or, with only `[probe] worker_header`, the ready path) over new
/// connections until `ready_workers()` distinct workers answered, so the load does not start
/// while only the first worker is up. Gives up quietly at the deadline: the run then reports
/// what it saw (`worker_coverage` if workers stay missing).
async fn wait_workers(sc: &Scenario, base: &Url, client: &OneOff, deadline: Instant) -> Result<()> {
    let want = sc.ready_workers();
    if want <= 1 {
        return Ok(());
    }
    let path = if sc.probe.path.is_empty() {
        &sc.target.ready.path
    } else {
        &sc.probe.path
    };
    let url = base.join(path).context("probe.path")?;
    let spec = crate::worker::WorkerSpec::of(&sc.probe);
    let reader = engine::ProbeReader::new(spec.clone(), "", None);
    let mut workers = std::collections::BTreeSet::new();
    while workers.len() < want && Instant::now() < deadline {
        if let Ok(r) = client.get(&url, sc.load.max_body_bytes).await {
            let served_by = spec
                .header
                .as_ref()
                .and_then(|h| r.headers.get(h.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(crate::worker::WorkerId::intern);
            let worker = if sc.probe.path.is_empty() {
                served_by
            } else {
                reader.read(&r.body, served_by).ok().and_then(|a| a.worker)
            };
            workers.extend(worker);
        }
        if workers.len() < want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
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
