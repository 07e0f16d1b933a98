//! Restarts during the load: when the scenario says, by supervisor, command or signal; each
//! window recorded with the observations, browser checks before and after.

use super::events::{Event, Events};
use super::live::Live;
use super::ready::{wait_ready, wait_workers, WorkersWait};
use super::spawn::{resolve, scenario_dir, SharedSupervisor};
use crate::load::engine::Progress;
use crate::observe::digest::Recorder;
use crate::process::supervisor;
use crate::scenario::{RestartMethod, Scenario};
use anyhow::{anyhow, Context, Result};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;

/// When the run started, and the two ways it is told to stop: `stop` ends the load (its end,
/// or a failed restart), `interrupt` is Ctrl-C/SIGTERM.
#[derive(Clone)]
pub(super) struct RunControl {
    pub(super) clock: Instant,
    pub(super) stop: CancellationToken,
    pub(super) interrupt: CancellationToken,
    /// `[browser]`: the checks' results, handed from the load to the report.
    pub(super) browser_checks: Arc<Mutex<Vec<crate::browser::Check>>>,
    /// `--events`: restarts are announced there; `live` judges the run as it goes.
    pub(super) events: Events,
    pub(super) live: Option<Arc<Live>>,
}

/// The restart task: the scenario's `[restart]` plan and the run's shared handles.
pub(super) struct Restarter {
    pub(super) sc: Scenario,
    pub(super) plan: crate::scenario::Restart,
    pub(super) base: Url,
    pub(super) sup: SharedSupervisor,
    /// Restart windows are recorded with the observations (see `Digest::add`).
    pub(super) recorder: Arc<Recorder>,
    pub(super) progress: Arc<Progress>,
    pub(super) ctl: RunControl,
    /// `[browser]`: checks before the first restart and after each one.
    pub(super) browser: Option<crate::load::browser_users::RestartHooks>,
}

impl Restarter {
    /// Restart the target when the scenario says, `count` times, recording each window.
    pub(super) async fn run(&self) -> Result<()> {
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
                RestartMethod::Signal { pidfile, .. } => {
                    // Parsed when the scenario was validated: a Signal method has one.
                    let signal = sc
                        .lowered
                        .restart_signal
                        .context("restart.method: no signal was parsed")?;
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

/// A planned restart that never ran verified nothing about restarts, so the run is no pass:
/// the reason, when fewer restarts began than `[restart] count` asks. The load ends on its own
/// clock; the restart waits for its trigger and, with `[browser]`, for the before-restart page
/// checks, so a short load or a slow browser start can end first.
pub(super) fn missed(
    plan: &crate::scenario::Restart,
    browser: bool,
    ran: usize,
    requests_sent: u64,
    load_ran: Duration,
) -> Option<String> {
    let planned = plan.count as usize;
    if ran >= planned {
        return None;
    }
    let trigger = match (plan.at, plan.after_requests) {
        (Some(at), _) => format!("restart.at = {at}"),
        (None, Some(n)) => format!("restart.after_requests = {n}; the load sent {requests_sent}"),
        (None, None) => "no trigger".to_string(),
    };
    let waited = if browser && ran == 0 {
        " (with [browser], the first restart also waits for the before-restart page checks)"
    } else {
        ""
    };
    Some(format!(
        "the scenario plans {planned} restart(s) ({trigger}, count = {}, interval = {}) but {ran} ran before the load ended after {:.1} s{waited}: what a restart does to sessions was not checked, so this is no pass. Trigger the restart earlier or lengthen load.duration",
        plan.count,
        plan.interval,
        load_ran.as_secs_f64()
    ))
}

/// A restart that ran while nothing came after it checked nothing either: the load ended while
/// it was under way (a restart command slower than the rest of the load, found on Calibre-Web:
/// a 9.6 s command in a 10 s load passed `max_restart_logouts` with no request after it), or
/// before any user's next page. The reason for the first such restart, so the run is no pass.
pub(super) fn unmeasured(
    restarts: &[crate::observe::RestartWindow],
    recovery: &[crate::observe::digest::Recovery],
    load_ran: Duration,
) -> Option<String> {
    let (i, r) = restarts
        .iter()
        .enumerate()
        .find(|(i, _)| recovery.get(*i).is_none_or(|rec| rec.active.is_empty()))?;
    let began = r.start_us as f64 / 1e6;
    let ready = match r.ready_us {
        Some(us) => format!(
            "the target answered ready again at {:.1} s",
            us as f64 / 1e6
        ),
        None => "the target did not answer ready again".to_string(),
    };
    Some(format!(
        "restart {} began at {began:.1} s ({}) and {ready}, but no page or probe started after that before the load ended after {:.1} s: what the restart did to sessions was not checked, so this is no pass. Trigger the restart earlier or lengthen load.duration",
        i + 1,
        r.method,
        load_ran.as_secs_f64()
    ))
}
