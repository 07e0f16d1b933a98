//! Run wiring for `[browser]`: when the browser checks happen relative to the load and the
//! restart, which cookies they carry, and the hooks the restart task calls.
//!
//! The load engine never waits on the browser: the checks run in their own task and only read
//! the watched users' jars. The restart task waits (bounded) for the `before_restart` checks,
//! so they really see the target before it restarts.

use crate::browser::{Check, Chromium, JarCookie, Plan, When};
use crate::http::client::{self, SharedJar};
use crate::load::engine::Ctx;
use crate::scenario::BrowserWhen;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use url::Url;

/// How long the before-restart checks wait for the watched users to log in.
const LOGIN_WAIT: Duration = Duration::from_secs(10);

/// What the restart task calls around each restart.
pub struct RestartHooks {
    before_done: watch::Receiver<bool>,
    restarted: watch::Sender<u32>,
    /// The longest the restart waits for the before-restart checks.
    max_wait: Duration,
}

impl RestartHooks {
    /// Before the first restart: let the before-restart checks finish (and the jars be
    /// snapshot), at most `max_wait`.
    pub async fn before_restart(&self, interrupt: &CancellationToken) {
        let mut rx = self.before_done.clone();
        tokio::select! {
            _ = tokio::time::timeout(self.max_wait, rx.wait_for(|done| *done)) => {}
            _ = interrupt.cancelled() => {}
        }
    }

    /// After each restart, once the target is ready again.
    pub fn after_restart(&self) {
        self.restarted.send_modify(|n| *n += 1);
    }
}

/// The browser task, and the hooks for the restart task.
pub struct BrowserRun {
    pub hooks: Option<RestartHooks>,
    pub task: tokio::task::JoinHandle<Vec<Check>>,
}

/// The checks the scenario asks for, in order.
fn phases(restarts_planned: u32, when: Option<BrowserWhen>) -> Vec<When> {
    match (restarts_planned > 0, when) {
        (false, _) => vec![When::MidRun],
        (true, Some(BrowserWhen::BeforeRestart)) => vec![When::BeforeRestart],
        (true, Some(BrowserWhen::AfterRestart)) => vec![When::AfterRestart],
        (true, _) => vec![When::BeforeRestart, When::AfterRestart],
    }
}

/// Start the browser task if the scenario has `[browser]` (never otherwise).
pub fn start(
    base: &Url,
    ctx: Arc<Ctx>,
    stop: CancellationToken,
    interrupt: CancellationToken,
) -> Option<BrowserRun> {
    let sc = &ctx.plan;
    let b = sc.browser.as_ref()?.clone();
    // Validation found it already; it can only have vanished since.
    let executable = match b.resolve_executable() {
        Ok(e) => e,
        Err(m) => {
            eprintln!("warning: [browser] skipped: browser.executable: {m}");
            return None;
        }
    };
    let plan = Plan {
        executable,
        base: base.clone(),
        pages: b.pages.clone(),
        settle_timeout: b.settle_timeout.0,
        ready_selector: b.ready_selector.clone(),
        busy_selector: b.busy_selector.clone(),
    };
    let (done_tx, done_rx) = watch::channel(false);
    let (restarted_tx, restarted_rx) = watch::channel(0u32);
    let hooks = (sc.restarts_planned > 0).then(|| RestartHooks {
        before_done: done_rx,
        restarted: restarted_tx,
        // Every page may take its settle_timeout, plus the browser's start.
        max_wait: b.settle_timeout.0 * b.pages.len() as u32 + Duration::from_secs(30),
    });
    let schedule = Schedule {
        phases: phases(sc.restarts_planned, b.when),
        restarts: sc.restarts_planned,
        mid_run_wait: sc
            .load
            .duration
            .map(|d| d.0.min(sc.load.max_duration.0) / 2),
        users: b.users,
    };
    let task = tokio::spawn(async move {
        let checks = run_checks(
            &plan,
            &schedule,
            &ctx,
            &stop,
            &interrupt,
            restarted_rx,
            &done_tx,
        )
        .await;
        // Whatever happened, never leave the restart waiting.
        let _ = done_tx.send(true);
        checks
    });
    Some(BrowserRun { hooks, task })
}

struct Schedule {
    phases: Vec<When>,
    restarts: u32,
    /// Without a restart: how long after the load's start the check runs.
    mid_run_wait: Option<Duration>,
    users: usize,
}

async fn run_checks(
    plan: &Plan,
    schedule: &Schedule,
    ctx: &Ctx,
    stop: &CancellationToken,
    interrupt: &CancellationToken,
    restarted: watch::Receiver<u32>,
    before_done: &watch::Sender<bool>,
) -> Vec<Check> {
    let load_start = Instant::now();
    let mut checks = Vec::new();
    // Started first, while the users log in: Chromium takes seconds to start on a busy machine.
    let mut browser: Option<Chromium> = None;
    let mut launch_error = None;
    tokio::select! {
        r = Chromium::launch(&plan.executable) => match r {
            Ok(b) => browser = Some(b),
            Err(e) => launch_error = Some(format!("starting the browser: {e:#}")),
        },
        _ = interrupt.cancelled() => return checks,
    }
    // What the users' browsers hold when the restart comes: a real tab keeps its cookies
    // across a restart, whatever sesscheck's own re-login puts in the jar afterwards.
    let mut carried: Option<Vec<(usize, Vec<JarCookie>)>> = None;
    for &when in &schedule.phases {
        let users = match when {
            When::BeforeRestart | When::MidRun => {
                let jars = wait_logged_in(ctx, schedule.users, stop).await;
                if when == When::MidRun {
                    let wait = schedule.mid_run_wait.unwrap_or(Duration::from_secs(1));
                    let at = load_start + wait;
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = stop.cancelled() => {}
                    }
                }
                snapshot(&jars)
            }
            When::AfterRestart => {
                if carried.is_none() {
                    // No before-restart check: take the cookies just before the restart.
                    let jars = wait_logged_in(ctx, schedule.users, stop).await;
                    carried = Some(snapshot(&jars));
                    let _ = before_done.send(true);
                }
                let all = schedule.restarts;
                let mut rx = restarted.clone();
                tokio::select! {
                    r = rx.wait_for(|n| *n >= all) => if r.is_err() { break },
                    _ = stop.cancelled() => {
                        // The load ended before the restart(s) happened: nothing to compare.
                        if *restarted.borrow() < all { break }
                    }
                }
                carried.clone().unwrap_or_default()
            }
        };
        if interrupt.is_cancelled() {
            break;
        }
        let Some(chrome) = browser.as_ref() else {
            let at_s = ctx.clock.elapsed().as_secs_f64();
            checks.extend(users.iter().map(|(vu, cookies)| Check {
                when,
                vu: *vu,
                at_s,
                cookies: cookies.len(),
                pages: Vec::new(),
                error: launch_error.clone(),
            }));
            continue;
        };
        let at_s = ctx.clock.elapsed().as_secs_f64();
        let runs = users
            .iter()
            .map(|(vu, cookies)| chrome.check(plan, cookies, when, *vu, at_s, interrupt));
        checks.extend(futures_util::future::join_all(runs).await);
        if when == When::BeforeRestart {
            // The jars again, now: what the browsers carry into the restart.
            let jars = watched(ctx);
            carried = Some(snapshot(&jars));
            let _ = before_done.send(true);
        }
    }
    if let Some(b) = browser {
        b.shutdown().await;
    }
    checks
}

fn watched(ctx: &Ctx) -> Vec<(usize, SharedJar)> {
    ctx.browser_jars
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The watched users' jars once they are all registered and logged in (or after
/// [`LOGIN_WAIT`], or when the load stops: then whatever there is).
async fn wait_logged_in(
    ctx: &Ctx,
    users: usize,
    stop: &CancellationToken,
) -> Vec<(usize, SharedJar)> {
    let give_up = Instant::now() + LOGIN_WAIT;
    loop {
        let jars = watched(ctx);
        let all_in = jars.len() >= users
            && (ctx.plan.login.is_none() || jars.iter().all(|(_, j)| client::lock(j).logged_in));
        if all_in || Instant::now() >= give_up || stop.is_cancelled() {
            return jars;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The unexpired cookies of each jar, as the browser context gets them.
fn snapshot(jars: &[(usize, SharedJar)]) -> Vec<(usize, Vec<JarCookie>)> {
    jars.iter()
        .map(|(vu, jar)| {
            let mut j = client::lock(jar);
            let cookies = j
                .store()
                .iter_unexpired()
                .map(|c| JarCookie {
                    name: c.name().to_string(),
                    value: c.value().to_string(),
                    path: String::from(&c.path),
                    secure: c.secure().unwrap_or(false),
                    http_only: c.http_only().unwrap_or(false),
                })
                .collect();
            (*vu, cookies)
        })
        .collect()
}
