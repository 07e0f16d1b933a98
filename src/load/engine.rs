//! The engine: virtual users as tokio tasks, each with its own cookie jar and K tabs.
//!
//! A user logs in, then each of its tabs loops over the scenario's pages, probing the debug
//! endpoint between them. Every request becomes an `Observation`. The engine knows nothing
//! about detectors or report formats: it only records what happened.

use crate::http::client::{self, Body, Http, Jar, Req, SharedJar};
use crate::load::login_check;
use crate::observe::digest::Recorder;
use crate::observe::worker::{WorkerId, WorkerSpec};
use crate::observe::{Failure, LoginCookies, Observation, PathStr, Step};
use crate::scenario::lowered::LoadPlan;
use crate::scenario::{BodyKind, Login};
use http::Method;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Live counters for the progress line, and the request count that `after_requests`
/// restarts and `total_requests` watch.
#[derive(Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
    pub anonymous: AtomicU64,
    pub logins: AtomicU64,
    /// Users that never tried their login: they share one account whose first login failed.
    pub logins_held_back: AtomicU64,
    /// Distinct worker identities seen so far.
    pub pids: Mutex<std::collections::BTreeSet<WorkerId>>,
}

/// Users that all log in to one account: the first `FIRST_WAVE` log in together, and the
/// others wait and only try once one of those has worked. A wrong password then fails twice,
/// not once per user: five users failing together locked a pgAdmin account
/// (`MAX_LOGIN_ATTEMPTS = 3`), and the next run, with the right password, failed as well.
struct OneAccount {
    /// How many users have claimed a place in the first wave (or found it full).
    claimed: std::sync::atomic::AtomicUsize,
    /// How many of the first wave failed.
    failed: std::sync::atomic::AtomicUsize,
    /// None until one of the first wave worked (true) or all of it failed (false).
    first: tokio::sync::watch::Sender<Option<bool>>,
}

/// Two, not one: a lone first login is no test of an app whose workers do not share their
/// SECRET_KEY. Its login page and its login go to different workers every time behind a strict
/// round-robin balancer (Datasette behind nginx failed every run, as if the password were
/// wrong), and half the time where the kernel spreads new connections; two users logging in
/// together land on the same worker for both far more often. Lockouts come at 3 or more.
const FIRST_WAVE: usize = 2;

/// Everything the users share.
pub struct Ctx {
    pub plan: LoadPlan,
    pub http: Http,
    pub clock: Instant,
    pub stop: CancellationToken,
    pub progress: Arc<Progress>,
    /// When the load ends (run start + duration, capped by max_duration): no request starts
    /// after it, and pauses (think time, login pacing) end at it.
    pub deadline: Instant,
    /// `max_duration` after the load started: everything still in flight is cancelled then,
    /// whatever `loading_timeout` or a stalled server would make it wait.
    pub hard_deadline: Instant,
    login_pacer: tokio::sync::Mutex<Instant>,
    /// `[load] requests` and the probe path, allocated once and shared by every observation.
    pub paths: Vec<PathStr>,
    pub probe_path: PathStr,
    /// The probe's JSON pointers, prepared once.
    pub probe_reader: ProbeReader,
    /// `--shard I/N` (1-based I): only users with index ≡ I (mod N) run.
    pub shard: Option<(usize, usize)>,
    /// What the open-loop generator achieved (`[load] rate`), for the report.
    pub generator: Mutex<Option<crate::load::schedule::Generator>>,
    /// Where observations go as they are made (and the restart windows are recorded).
    pub recorder: Arc<Recorder>,
    /// `[browser]`: the jars of the first `users` virtual users, which the browser checks
    /// read their cookies from (the engine only registers them; it never waits on a browser).
    pub browser_jars: Mutex<Vec<(usize, SharedJar)>>,
    /// Set when every user logs in to the same account (see `OneAccount`).
    one_account: Option<OneAccount>,
}

impl Ctx {
    pub fn new(
        plan: LoadPlan,
        mut http: Http,
        clock: Instant,
        stop: CancellationToken,
        progress: Arc<Progress>,
    ) -> Ctx {
        let load = &plan.load;
        let duration = load
            .duration
            .map(|d| d.0)
            .unwrap_or(load.max_duration.0)
            .min(load.max_duration.0);
        let now = Instant::now();
        http.set_hard_deadline(now + load.max_duration.0);
        Ctx {
            // The load starts now, after the target answered ready: a slow-booting app
            // (Django + Gunicorn takes seconds) must not eat into the load's duration.
            deadline: now + duration,
            hard_deadline: now + load.max_duration.0,
            login_pacer: tokio::sync::Mutex::new(clock),
            paths: load
                .requests
                .iter()
                .map(|p| PathStr::from(p.as_str()))
                .collect(),
            probe_path: PathStr::from(plan.probe.path.as_str()),
            probe_reader: ProbeReader::new(
                WorkerSpec::of(&plan.probe),
                &plan.probe.authenticated,
                plan.lifetime_remaining.as_deref(),
            ),
            shard: None,
            generator: Mutex::new(None),
            recorder: Arc::new(Recorder::new(clock, plan.digest.clone())),
            browser_jars: Mutex::new(Vec::new()),
            one_account: plan
                .login
                .as_ref()
                .filter(|l| l.is_one_account() && load.users * plan.sessions.per_user > 1)
                .map(|_| OneAccount {
                    claimed: Default::default(),
                    failed: Default::default(),
                    first: tokio::sync::watch::Sender::new(None),
                }),
            plan,
            http,
            clock,
            stop,
            progress,
        }
    }

    /// Hand finished observations to the recorder (empties `obs`).
    pub fn record(&self, obs: &mut Vec<Observation>) {
        self.recorder.record(obs);
    }

    /// Hand one observation to the recorder. A tab's pages and probes go one by one: a batch
    /// kept between them would hold its capacity in every user's task for the whole run.
    fn record_one(&self, o: Observation) {
        self.recorder.record_one(o);
    }

    fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    /// True once the run must end: stopped, past the deadline, or out of requests.
    fn done(&self) -> bool {
        if self.stop.is_cancelled() || Instant::now() >= self.deadline {
            return true;
        }
        match self.plan.load.total_requests {
            Some(total) => self.progress.requests.load(Ordering::Relaxed) >= total,
            None => false,
        }
    }
}

/// Sleep for `pause`, but not past the load's end; false if the run was stopped meanwhile.
async fn pause_within_load(ctx: &Ctx, pause: Duration) -> bool {
    let until = (Instant::now() + pause).min(ctx.deadline);
    tokio::select! {
        _ = tokio::time::sleep_until(until.into()) => true,
        _ = ctx.stop.cancelled() => false,
    }
}

/// One account: `[sessions] per_user` logins (devices), each with its own jar and its tabs.
/// Virtual user numbers are `account * per_user + device`.
pub(crate) async fn account_task(ctx: Arc<Ctx>, account: usize) {
    let per_user = ctx.plan.sessions.per_user;
    let devices: Vec<SharedJar> = (0..per_user)
        .map(|_| Arc::new(Mutex::new(Jar::default())))
        .collect();
    let tab_ids = devices.iter().enumerate().map(|(device, jar)| {
        register_browser_jar(&ctx, account * per_user + device, jar);
        TabId {
            vu: account * per_user + device,
            tab: 0,
            jar: jar.clone(),
        }
    });
    // One session (the usual case) runs in this task: a task of its own per user would cost
    // its future and header in memory for the whole run (10,000 users: ~15 MB).
    if per_user == 1 {
        for t in tab_ids {
            session_task(ctx.clone(), t).await;
        }
    } else {
        let mut sessions = JoinSet::new();
        for t in tab_ids {
            sessions.spawn(session_task(ctx.clone(), t));
        }
        while sessions.join_next().await.is_some() {}
    }
    if !ctx.stop.is_cancelled() {
        let ids: Vec<TabId> = devices
            .iter()
            .enumerate()
            .map(|(device, jar)| TabId {
                vu: account * per_user + device,
                tab: 0,
                jar: jar.clone(),
            })
            .collect();
        let mut obs = Vec::new();
        end_checks(&ctx, &ids, &mut obs).await;
        ctx.record(&mut obs);
    }
}

/// Let the browser checks see this user's jar, if it is one of the first `[browser] users`.
fn register_browser_jar(ctx: &Ctx, vu: usize, jar: &SharedJar) {
    let Some(b) = &ctx.plan.browser else {
        return;
    };
    let mut jars = ctx.browser_jars.lock().unwrap_or_else(|e| e.into_inner());
    if jars.len() < b.users {
        jars.push((vu, jar.clone()));
    }
}

/// One login (one jar): log in, then run its tabs to the end.
async fn session_task(ctx: Arc<Ctx>, first: TabId) {
    if ctx.plan.login.is_some() && !first_login(&ctx, &first).await {
        return;
    }
    // One tab (the usual case) runs in this task, as one session runs in its account's.
    if ctx.plan.load.tabs == 1 {
        return tab_loop(ctx, first).await;
    }
    let mut tabs = JoinSet::new();
    for tab in 0..ctx.plan.load.tabs {
        tabs.spawn(tab_loop(
            ctx.clone(),
            TabId {
                vu: first.vu,
                tab,
                jar: first.jar.clone(),
            },
        ));
    }
    while tabs.join_next().await.is_some() {}
}

/// After the load: the first session logs out; then its old cookies are replayed
/// (revocation) and the account's other sessions are probed (logout scope).
async fn end_checks(ctx: &Ctx, devices: &[TabId], obs: &mut Vec<Observation>) {
    Box::pin(end_check_steps(ctx, devices, obs)).await
}

async fn end_check_steps(ctx: &Ctx, devices: &[TabId], obs: &mut Vec<Observation>) {
    let scope = ctx.plan.sessions.logout_scope.is_some();
    let revocation = ctx.plan.checks.revocation;
    let Some(first) = devices.first() else { return };
    if !(scope || revocation) || !client::lock(&first.jar).logged_in {
        return;
    }
    let before_logout = client::lock(&first.jar).store().clone();
    logout(ctx, first, obs).await;
    if revocation {
        let old = Jar::with_cookies(before_logout);
        let replay = TabId {
            vu: first.vu,
            tab: first.tab,
            jar: Arc::new(Mutex::new(old)),
        };
        if let Some(mut p) = session_check(ctx, &replay).await {
            p.step = Step::Replay;
            obs.push(p);
        }
    }
    if scope {
        // A session whose own periodic logout fell at the very end is not logged in: skip it.
        for other in devices[1..]
            .iter()
            .filter(|d| client::lock(&d.jar).logged_in)
        {
            if let Some(mut p) = session_check(ctx, other).await {
                p.step = Step::ScopeCheck;
                obs.push(p);
            }
        }
    }
}

/// Is this jar's session alive? The probe says, or without one the first page of `[load]
/// requests` (a redirect to the login page, 401 or 403: anonymous). Before, a scenario without
/// a probe sent the replay to the probe's empty path, `/`, and judged nothing from its answer:
/// Label Studio's signed-cookie sessions, alive after logout, passed `[checks] revocation`.
async fn session_check(ctx: &Ctx, t: &TabId) -> Option<Observation> {
    if !ctx.plan.probe.path.is_empty() {
        return probe(ctx, t, Turn::now(ctx, t)).await;
    }
    let index = ctx
        .plan
        .load
        .requests
        .iter()
        .position(|r| matches!(r, crate::scenario::requests::RequestSpec::Page(_)))?;
    page(ctx, t, &ctx.paths[index], Turn::now(ctx, t)).await
}

/// One tab: pages and probes in turn; tab 0 also does the periodic logout when configured.
async fn tab_loop(ctx: Arc<Ctx>, t: TabId) {
    let (tab, jar) = (t.tab, t.jar.clone());
    let load = &ctx.plan.load;
    // Tabs start at different pages so that K tabs do not march in lock-step.
    let mut i = tab;
    let logout_every = if tab == 0 {
        load.logout_every.map(|d| d.0)
    } else {
        None
    };
    let mut next_logout = logout_every.map(|d| Instant::now() + d);
    while !ctx.done() {
        if let (Some(at), Some(every)) = (next_logout, logout_every) {
            if Instant::now() >= at {
                let mut obs = Vec::new();
                logout(&ctx, &t, &mut obs).await;
                if load.relogin && !ctx.done() {
                    relogin(&ctx, &t, &mut obs).await;
                }
                ctx.record(&mut obs);
                next_logout = Some(Instant::now() + every);
                continue;
            }
        }
        let index = i % ctx.paths.len();
        i += 1;
        // Boxed, as the probe below: a request's future lives on the heap while it is in
        // flight, so a thinking user's task holds only the loop and its pause (10,000 users
        // mostly thinking: ~7 MB less, for one small allocation per request). It is built
        // once the tab has its connection slot: a waiting user holds only `wait_turn`.
        let Some(turn) = wait_turn(&ctx, &t).await else {
            break;
        };
        let Some(page) = Box::pin(load_request(&ctx, &t, index, turn)).await else {
            break;
        };
        let bounced = page.unexplained_anonymous();
        let pause = pause_after(&page, load.think_time.0);
        let epoch = page.epoch_end;
        ctx.record_one(page);
        if wants_login(&ctx, &jar, bounced, epoch) {
            let mut obs = Vec::new();
            relogin(&ctx, &t, &mut obs).await;
            ctx.record(&mut obs);
        }
        if !ctx.plan.probe.path.is_empty() && (i as u32).is_multiple_of(ctx.plan.probe.every) {
            let Some(turn) = wait_turn(&ctx, &t).await else {
                break;
            };
            match Box::pin(probe(&ctx, &t, turn)).await {
                Some(p) => ctx.record_one(p),
                None => break,
            }
        }
        if !pause.is_zero() && !pause_within_load(&ctx, pause).await {
            break;
        }
    }
}

/// While the target is down (connection refused), a tab waits at least this long before its
/// next page, as a person pressing reload would.
const REFUSED_BACKOFF: Duration = Duration::from_millis(100);

/// The pause before a tab's next page: `think_time`, and at least `REFUSED_BACKOFF` after a
/// refused connection. Without it, every tab spins on refused connects during a restart
/// (thousands per second), starving the restarting app of the CPU it needs to boot.
fn pause_after(page: &Observation, think_time: Duration) -> Duration {
    // Out of files: spinning would not free any.
    if matches!(
        page.failure,
        Some(Failure::Connect(_) | Failure::OutOfFiles(_))
    ) {
        think_time.max(REFUSED_BACKOFF)
    } else {
        think_time
    }
}

/// How often a user tries its first login at most (see `first_login`).
const FIRST_LOGIN_TRIES: u32 = 3;

/// A user's first login. One that fails is tried again, `LOGIN_RETRY_PAUSE` later and up to
/// `FIRST_LOGIN_TRIES` times in all, when another user's login has worked meanwhile: then the
/// password and path are right, and what failed is the app (a CSRF token from another worker, a
/// rate limit, a 5xx), which a person meets by trying again. While no login of the run has
/// worked, the failure is most likely the scenario's, and trying again would only add failed
/// logins on the account (apps lock accounts after a few). The cap keeps it so for an account
/// of `[login] accounts` whose own password is wrong.
async fn first_login(ctx: &Ctx, t: &TabId) -> bool {
    let Some(gate) = &ctx.one_account else {
        return first_login_tries(ctx, t).await;
    };
    if gate.claimed.fetch_add(1, Ordering::SeqCst) < FIRST_WAVE {
        let ok = first_login_tries(ctx, t).await;
        if ok {
            gate.first.send_replace(Some(true));
        } else if gate.failed.fetch_add(1, Ordering::SeqCst) + 1 == FIRST_WAVE {
            // Every one of the first wave failed, so none set `true`: the others need not try.
            gate.first.send_replace(Some(false));
        }
        return ok;
    }
    let mut first = gate.first.subscribe();
    let worked = tokio::select! {
        seen = first.wait_for(Option::is_some) => seen.ok().and_then(|r| *r),
        _ = ctx.stop.cancelled() => None,
        _ = tokio::time::sleep_until(ctx.deadline.into()) => None,
    };
    if worked == Some(false) {
        ctx.progress
            .logins_held_back
            .fetch_add(1, Ordering::Relaxed);
    }
    worked == Some(true) && first_login_tries(ctx, t).await
}

/// A user's first login, tried again as `first_login` says.
async fn first_login_tries(ctx: &Ctx, t: &TabId) -> bool {
    let retry_pause = login_retry_pause(ctx);
    for attempt in 1..=FIRST_LOGIN_TRIES {
        let mut obs = Vec::new();
        let ok = login(ctx, t, &mut obs).await;
        ctx.record(&mut obs);
        if ok {
            return true;
        }
        if attempt == FIRST_LOGIN_TRIES || ctx.done() || !pause_within_load(ctx, retry_pause).await
        {
            return false;
        }
        // Counted after the pause: the users that started beside this one have answers by now.
        if ctx.progress.logins.load(Ordering::Relaxed) == 0 {
            return false;
        }
    }
    false
}

/// After a page: should this tab log in now? A person sent to the login page logs in again; so
/// does a virtual user (once per bounce: the first tab to notice claims the re-login). One whose
/// re-login failed tries again once `LOGIN_RETRY_PAUSE` has passed (again one tab for the user).
fn wants_login(ctx: &Ctx, jar: &SharedJar, bounced: bool, epoch: u32) -> bool {
    ctx.plan.login.is_some()
        && ((bounced && claim_relogin(jar, Some(epoch))) || claim_login_retry(jar, Instant::now()))
}

/// How long a user whose login failed waits before it tries again: a person reads the error
/// page and tries again after a moment; a retry on every page would hammer an app that is down.
const LOGIN_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// `LOGIN_RETRY_PAUSE`, or `think_time` if that is longer: a user never tries faster than it
/// loads pages.
fn login_retry_pause(ctx: &Ctx) -> Duration {
    LOGIN_RETRY_PAUSE.max(ctx.plan.load.think_time.0)
}

/// A login after the first: the user was sent to the login page, logged out on purpose, or its
/// last re-login failed. When it fails, the user tries again later (`wants_login`), instead of
/// staying anonymous for the rest of the run: this user's login has worked before, so the
/// failure is the app's (down, a 5xx while it starts), not the scenario's.
async fn relogin(ctx: &Ctx, t: &TabId, obs: &mut Vec<Observation>) {
    let ok = login(ctx, t, obs).await;
    let retry_at = (!ok).then(|| Instant::now() + login_retry_pause(ctx));
    client::lock(&t.jar).login_retry_at = retry_at;
}

/// Claim a due login retry (see `relogin`): true for the one caller that should log in.
fn claim_login_retry(jar: &SharedJar, now: Instant) -> bool {
    let mut j = client::lock(jar);
    match j.login_retry_at {
        Some(at) if !j.logged_in && now >= at => {
            j.login_retry_at = None;
            true
        }
        _ => false,
    }
}

/// Mark the jar logged out if nobody else has since `epoch`; true if this caller should log in.
fn claim_relogin(jar: &SharedJar, epoch: Option<u32>) -> bool {
    let mut j = client::lock(jar);
    if j.logged_in && Some(j.epoch) == epoch {
        j.logged_in = false;
        j.epoch += 1;
        true
    } else {
        false
    }
}

/// Which user and tab a request belongs to, and that user's (shared) jar.
struct TabId {
    vu: usize,
    tab: usize,
    jar: SharedJar,
}

/// A tab's turn to send: when it asked (the request's start: a wait for a connection slot
/// counts in its time) and, if it waited for one already, its slot.
struct Turn {
    start: Pending,
    slot: Option<client::Slot>,
}

impl Turn {
    /// Starting now; `send` waits for the slot.
    fn now(ctx: &Ctx, t: &TabId) -> Turn {
        Turn {
            start: begin(ctx, t),
            slot: None,
        }
    }
}

/// Start a request now and wait for its connection slot; None if the run was stopped first.
async fn wait_turn(ctx: &Ctx, t: &TabId) -> Option<Turn> {
    let start = begin(ctx, t);
    tokio::select! {
        slot = ctx.http.slot() => Some(Turn { start, slot: Some(slot) }),
        _ = ctx.stop.cancelled() => None,
    }
}

/// A request in flight, recorded with the jar's state before and after.
struct Pending {
    start_us: u64,
    epoch_start: u32,
    logged_in: bool,
}

fn begin(ctx: &Ctx, t: &TabId) -> Pending {
    let j = client::lock(&t.jar);
    Pending {
        start_us: ctx.now_us(),
        epoch_start: j.epoch,
        logged_in: j.logged_in,
    }
}

fn finish(
    ctx: &Ctx,
    t: &TabId,
    step: Step,
    path: impl Into<PathStr>,
    p: Pending,
    result: &std::result::Result<client::Reply, Failure>,
) -> Observation {
    let epoch_end = client::lock(&t.jar).epoch;
    let mut o = Observation {
        epoch_start: p.epoch_start,
        epoch_end,
        logged_in: p.logged_in,
        ..Observation::new(
            t.vu as u32,
            t.tab as u16,
            step,
            path.into(),
            p.start_us,
            ctx.now_us(),
        )
    };
    match result {
        Ok(r) => {
            o.status = Some(r.status);
            o.first_status = Some(r.first_status);
            o.to_login = r.to_login;
            o.redirects = r.redirects;
            o.pattern_match = r.pattern_match;
            o.replaced_login_cookie = r.replaced_login_cookie.clone();
            o.login_cookie_deleted = r.login_cookie_deleted;
            o.renewed = r.renewed;
            o.waited_us = u32::try_from(r.waited.as_micros()).unwrap_or(u32::MAX);
        }
        Err(f) => {
            let mut f = f.clone();
            f.rewrite_text(|text| client::scrub_cookies(&t.jar, text));
            o.failure = Some(f);
        }
    }
    let progress = &ctx.progress;
    if step == Step::Request || step == Step::Probe {
        progress.requests.fetch_add(1, Ordering::Relaxed);
    }
    if o.failure.is_some() || o.status.is_some_and(|s| s >= 400 && s != 401 && s != 403) {
        progress.errors.fetch_add(1, Ordering::Relaxed);
    }
    o
}

/// Send unless the run is stopped first (Ctrl-C must not wait for a hanging request).
async fn send(
    ctx: &Ctx,
    t: &TabId,
    req: Req<'_>,
) -> Option<std::result::Result<client::Reply, Failure>> {
    tokio::select! {
        r = ctx.http.send(t.vu, &t.jar, req) => Some(r),
        _ = ctx.stop.cancelled() => None,
    }
}

/// `[load] requests` entry `index`: a page, or a write request.
async fn load_request(ctx: &Ctx, t: &TabId, index: usize, turn: Turn) -> Option<Observation> {
    let path = &ctx.paths[index];
    match &ctx.plan.load.requests[index] {
        crate::scenario::requests::RequestSpec::Write(w) => write(ctx, t, index, w, turn).await,
        crate::scenario::requests::RequestSpec::Page(_) => page(ctx, t, path, turn).await,
    }
}

/// A write request (POST a form or JSON): not followed through redirects (a redirect to the
/// login page means anonymous, as for pages); with `csrf`, the token cookie's value goes in
/// the header, as Django's AJAX pattern does. An answer other than `expect_status` fails.
async fn write(
    ctx: &Ctx,
    t: &TabId,
    index: usize,
    w: &crate::scenario::requests::WriteRequest,
    turn: Turn,
) -> Option<Observation> {
    // What validation parsed for this entry of `[load] requests`.
    let path = &ctx.paths[index];
    let method = ctx.plan.request_methods[index].clone();
    let mut headers = Vec::new();
    if let Some(csrf) = &w.csrf {
        let token = ctx
            .http
            .url(path)
            .ok()
            .and_then(|u| client::cookie_values(&t.jar, &u).remove(&csrf.cookie));
        // Without the cookie the request goes without the header: the app's answer (Django:
        // 403) is the finding.
        let name = ctx.plan.request_csrf_headers[index].clone();
        if let (Some(token), Some(name)) = (token, name) {
            if let Ok(value) = http::HeaderValue::from_str(&token) {
                headers.push((name, value));
            }
        }
    }
    let user = t.vu / ctx.plan.sessions.per_user + 1;
    let req = Req {
        method,
        body: crate::load::write::body_for(w, user),
        follow: false,
        headers,
        slot: turn.slot,
        ..Req::page(path)
    };
    let r = send(ctx, t, req).await?;
    let mut o = finish(ctx, t, Step::Request, path.clone(), turn.start, &r);
    if let Ok(reply) = &r {
        o.authenticated = match reply.status {
            401 | 403 => Some(false),
            _ if reply.to_login => Some(false),
            s if w.expect_status.is_none_or(|e| e == s) && s < 400 => Some(true),
            _ => None,
        };
        if let Some(want) = w.expect_status {
            if reply.status != want && o.authenticated != Some(false) && reply.status < 400 {
                // A 2xx/3xx that is not the promised answer: counted as an error.
                o.failure = Some(Failure::Transport(format!(
                    "{} {path} answered HTTP {} instead of expect_status {want}",
                    w.method, reply.status
                )));
                ctx.progress.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        if o.authenticated == Some(false) {
            ctx.progress.anonymous.fetch_add(1, Ordering::Relaxed);
        }
    }
    Some(o)
}

/// An app page: followed through redirects like a browser; the login page means anonymous.
async fn page(ctx: &Ctx, t: &TabId, path: &PathStr, turn: Turn) -> Option<Observation> {
    let req = Req {
        slot: turn.slot,
        ..Req::page(path)
    };
    let r = send(ctx, t, req).await?;
    let mut o = finish(ctx, t, Step::Request, path.clone(), turn.start, &r);
    if let Ok(reply) = &r {
        o.authenticated = match reply.status {
            401 | 403 => Some(false),
            _ if reply.to_login => Some(false),
            200..=299 => Some(true),
            _ => None,
        };
        if o.authenticated == Some(false) {
            ctx.progress.anonymous.fetch_add(1, Ordering::Relaxed);
        }
        // `[probe] worker_header`: every page says who served it, not only probes; but where
        // the probe names the worker too, pages stay out (a replica is no worker of it).
        if ctx.probe_reader.pages_identify(&ctx.plan.probe.path) {
            o.worker = reply.served_by;
            note_worker(ctx, reply.served_by);
        }
    }
    Some(o)
}

/// Who answered a login or its CSRF page, where `[probe] worker_header` alone names workers:
/// a login page and a login answered by different workers is what a per-worker secret needs.
fn header_worker(ctx: &Ctx, r: &Result<client::Reply, Failure>) -> Option<WorkerId> {
    let reply = r.as_ref().ok()?;
    ctx.probe_reader
        .pages_identify(&ctx.plan.probe.path)
        .then_some(reply.served_by)
        .flatten()
}

/// Count a worker identity for the progress line.
fn note_worker(ctx: &Ctx, worker: Option<WorkerId>) {
    if let Some(w) = worker {
        ctx.progress
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(w);
    }
}

/// The debug endpoint: worker PID and authenticated flag through JSON pointers.
async fn probe(ctx: &Ctx, t: &TabId, turn: Turn) -> Option<Observation> {
    let probe = &ctx.plan.probe;
    let req = Req {
        follow: false,
        slot: turn.slot,
        ..Req::page(&probe.path)
    };
    let r = send(ctx, t, req).await?;
    let mut o = finish(ctx, t, Step::Probe, ctx.probe_path.clone(), turn.start, &r);
    if let Ok(reply) = &r {
        if reply.to_login || reply.status == 401 || reply.status == 403 {
            o.authenticated = Some(false);
        } else if (200..300).contains(&reply.status) {
            match ctx.probe_reader.read(&reply.body, reply.served_by) {
                Ok(answer) => {
                    o.worker = answer.worker;
                    o.authenticated = answer.authenticated;
                    o.remaining_s = answer.remaining_s.map(|x| x as f32);
                    note_worker(ctx, answer.worker);
                }
                Err(why) => {
                    o.failure = Some(Failure::BadProbe(client::scrub_cookies(&t.jar, &why)))
                }
            }
        }
        if o.authenticated == Some(false) {
            ctx.progress.anonymous.fetch_add(1, Ordering::Relaxed);
        }
    }
    Some(o)
}

/// Pull the worker PID and authenticated flag out of a probe body. Never panics on odd input.
pub fn read_probe(
    body: &[u8],
    pid_ptr: &str,
    auth_ptr: &str,
) -> std::result::Result<(Option<WorkerId>, Option<bool>), String> {
    ProbeReader::new(WorkerSpec::pid(pid_ptr), auth_ptr, None)
        .read(body, None)
        .map(|a| (a.worker, a.authenticated))
}

/// What a probe answered.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ProbeAnswer {
    pub worker: Option<WorkerId>,
    pub authenticated: Option<bool>,
    /// `[lifetime] remaining`: the session's seconds left, when asked for and a number.
    pub remaining_s: Option<f64>,
}

/// Reads probe answers: the scenario's pointers (worker identity, authenticated flag, and
/// `[lifetime] remaining` when set) prepared once, all read in one pass over each body,
/// building only the values they name (see `jsonseek`).
pub struct ProbeReader {
    worker: WorkerSpec,
    auth_ptr: String,
    pointers: crate::util::jsonseek::Pointers,
}

impl ProbeReader {
    /// An empty pointer means "not asked".
    pub fn new(worker: WorkerSpec, auth_ptr: &str, remaining_ptr: Option<&str>) -> ProbeReader {
        // To `jsonseek` "" would be the whole document; a string that is no pointer at all
        // finds nothing (and the body must still be JSON).
        const NOT_ASKED: &str = "-";
        let [first, second] = worker.pointers();
        let asked = [first, second, auth_ptr, remaining_ptr.unwrap_or("")].map(|p| {
            if p.is_empty() {
                NOT_ASKED
            } else {
                p
            }
        });
        let pointers = crate::util::jsonseek::Pointers::new(&asked);
        ProbeReader {
            worker,
            auth_ptr: auth_ptr.to_string(),
            pointers,
        }
    }

    /// Whether pages carry the identity: `worker_header` is its only source.
    pub fn pages_identify(&self, probe_path: &str) -> bool {
        self.worker.header.is_some()
            && (probe_path.is_empty()
                || self.worker.json == crate::observe::worker::JsonIdentity::None)
    }

    /// `served_by`: the identity the response's `worker_header` named, if any.
    pub fn read(
        &self,
        body: &[u8],
        served_by: Option<WorkerId>,
    ) -> std::result::Result<ProbeAnswer, String> {
        let not_json = |e: serde_json::Error| {
            let head: String = String::from_utf8_lossy(&body[..body.len().min(60)])
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            format!("probe did not answer JSON ({e}); it began {head:?}")
        };
        let mut values = self.pointers.find(body).map_err(not_json)?.into_iter();
        let mut next = || values.next().flatten();
        let (first, second, auth_v, remaining_v) = (next(), next(), next(), next());
        let worker = self
            .worker
            .identity(served_by, first.as_ref(), second.as_ref())?;
        interpret(&self.auth_ptr, worker, auth_v, remaining_v)
    }
}

/// The probe's values as sesscheck counts them.
fn interpret(
    auth_ptr: &str,
    worker: Option<WorkerId>,
    auth_v: Option<serde_json::Value>,
    remaining_v: Option<serde_json::Value>,
) -> std::result::Result<ProbeAnswer, String> {
    let authenticated = if auth_ptr.is_empty() {
        None
    } else {
        match auth_v.as_ref() {
            Some(serde_json::Value::Bool(b)) => Some(*b),
            // Some apps answer null/None for anonymous users, or a user object for a logged-in one.
            Some(serde_json::Value::Null) | None => Some(false),
            Some(serde_json::Value::Number(n)) => Some(n.as_f64().is_some_and(|x| x != 0.0)),
            Some(serde_json::Value::String(s)) => Some(matches!(
                s.to_ascii_lowercase().as_str(),
                "true" | "1" | "yes"
            )),
            Some(_) => Some(true),
        }
    };
    let remaining_s = match remaining_v {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(ProbeAnswer {
        worker,
        authenticated,
        remaining_s,
    })
}

/// Wait for this login's turn under `login_rate`.
async fn pace_login(ctx: &Ctx) {
    let rate = ctx.plan.login.as_ref().map(|l| l.login_rate).unwrap_or(0.0);
    if rate <= 0.0 {
        return;
    }
    let slot = {
        let mut next = ctx.login_pacer.lock().await;
        let slot = (*next).max(Instant::now());
        *next = slot + Duration::from_secs_f64(1.0 / rate);
        slot
    };
    // A login whose turn comes after the load's end would only delay the report.
    tokio::select! {
        _ = tokio::time::sleep_until(slot.min(ctx.deadline).into()) => {}
        _ = ctx.stop.cancelled() => {}
    }
}

/// What the CSRF page gave a login.
enum CsrfAnswer {
    Token(String),
    /// A user who had logged in before was sent on from the login page to the app's page:
    /// the app still counts the user logged in, as Flask apps and Django's
    /// `redirect_authenticated_user` do. Found on Calibre-Web behind two replicas: the
    /// re-login after an anonymous answer failed as "check [login] csrf.field", though the
    /// replica that served the login page knew the session.
    StillLoggedIn,
    Unreadable(Failure),
}

/// Fetch the CSRF page with the user's jar and copy out the token.
async fn csrf_token(
    ctx: &Ctx,
    t: &TabId,
    csrf: &crate::scenario::Csrf,
    obs: &mut Vec<Observation>,
) -> Option<CsrfAnswer> {
    let page = csrf.page.as_str();
    let p = begin(ctx, t);
    let r = send(ctx, t, Req::page(page)).await?;
    let mut o = finish(ctx, t, Step::Csrf, page, p, &r);
    o.worker = header_worker(ctx, &r);
    // Not `login_cookies`: a logout clears them, and a logout the app refused (a wrong
    // [logout] path) leaves the user logged in (Label Studio trial).
    let had_logged_in = client::lock(&t.jar).ever_logged_in;
    let answer = match &r {
        Ok(reply) => match csrf.read(&String::from_utf8_lossy(&reply.body)) {
            Some(token) => CsrfAnswer::Token(token),
            None if had_logged_in && sent_on_logged_in(reply) => CsrfAnswer::StillLoggedIn,
            None => CsrfAnswer::Unreadable(unreadable_csrf(csrf, reply)),
        },
        // No answer at all: its own failure (a connection refused while a target restarts
        // is forgiven like any other).
        Err(f) => CsrfAnswer::Unreadable(f.clone()),
    };
    if let (CsrfAnswer::Unreadable(f), None) = (&answer, &o.failure) {
        o.failure = Some(f.clone());
    }
    obs.push(o);
    Some(answer)
}

/// The login page redirected to a page that answered 2xx and is not the login page: what an
/// app does with a user it counts as logged in.
fn sent_on_logged_in(reply: &client::Reply) -> bool {
    let redirected = (300..400).contains(&reply.first_status) && reply.first_location.is_some();
    redirected && (200..300).contains(&reply.status) && !reply.to_login
}

/// Why a CSRF page that answered gave no token, with what to check: the answer decides it
/// (a server error is not a wrong field name).
fn unreadable_csrf(csrf: &crate::scenario::Csrf, reply: &client::Reply) -> Failure {
    let (page, field) = (&csrf.page, &csrf.field);
    let answered = login_check::describe(reply);
    let check = match reply.status {
        500..=599 => "the app failed serving the login page, before any password was sent (a missing table? migrations not run?)".to_string(),
        404 => "check [login] csrf.page".to_string(),
        s if s >= 400 => format!("check [login] csrf.page (it answered {s})"),
        _ if csrf.pattern.is_some() => "check [login] csrf.pattern (its first group is the token)".to_string(),
        _ => format!("check [login] csrf.field (the name of the hidden input holding the token, now {field:?}), or give csrf.pattern when the page keeps it elsewhere (a script, a data- attribute)"),
    };
    Failure::CsrfUnreadable(format!(
        "no CSRF token {} on {page}: it answered {answered}; {check}",
        csrf.describe()
    ))
}

/// Log in with the user's jar. Returns whether it worked.
///
/// Boxed, as `logout` and `end_checks` are: they are rare next to pages and their futures
/// large (a CSRF page, the POST, a confirming probe), so they take memory only while they run,
/// not in every user's task for the whole run (10,000 users: ~10 MB).
async fn login(ctx: &Ctx, t: &TabId, obs: &mut Vec<Observation>) -> bool {
    Box::pin(login_steps(ctx, t, obs)).await
}

async fn login_steps(ctx: &Ctx, t: &TabId, obs: &mut Vec<Observation>) -> bool {
    let Some(login) = ctx.plan.login.as_ref() else {
        return true;
    };
    pace_login(ctx).await;
    if ctx.stop.is_cancelled() || Instant::now() >= ctx.deadline {
        return false;
    }
    let mut fields: Vec<(String, String)> = login
        .fields
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.replace(
                    "{user}",
                    &(t.vu / ctx.plan.sessions.per_user + 1).to_string(),
                ),
            )
        })
        .collect();
    // `[login] accounts`: this user's account in turn.
    if let Some(account) = crate::scenario::accounts::for_user(
        &login.account_list,
        t.vu / ctx.plan.sessions.per_user + 1,
    ) {
        for (_, v) in fields.iter_mut() {
            *v = v
                .replace("{username}", &account.username)
                .replace("{password}", &account.password);
        }
    }
    if let Some(csrf) = &login.csrf {
        // A person whose login page failed to load reloads it once; so does a virtual user.
        let token = match csrf_token(ctx, t, csrf, obs).await {
            Some(CsrfAnswer::Unreadable(_)) if !ctx.stop.is_cancelled() => {
                csrf_token(ctx, t, csrf, obs).await
            }
            token => token,
        };
        match token {
            Some(CsrfAnswer::Token(token)) => fields.push((csrf.field.clone(), token)),
            Some(CsrfAnswer::StillLoggedIn) => {
                // Logged in again without a login: the anonymous answer before this came from
                // a worker that did not know the session (counted as such), not from the app
                // forgetting the user. The session, and its cookies, carry on.
                client::lock(&t.jar).logged_in = true;
                return true;
            }
            Some(CsrfAnswer::Unreadable(failure)) => {
                record_login_failure(ctx, t, login, obs, failure);
                return false;
            }
            None => return false,
        }
    }
    let body = match login.body {
        BodyKind::Form => Body::Form(fields),
        BodyKind::Json => Body::Json(serde_json::Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )),
    };
    let follow = login.success.status.is_some();
    // What the jar held before the login: a session id that survives the login is fixation.
    let before = ctx
        .http
        .url("/")
        .map(|u| client::cookie_values(&t.jar, &u))
        .unwrap_or_default();
    let p = begin(ctx, t);
    let req = Req {
        method: Method::POST,
        path: &login.path,
        body: Some(body),
        follow,
        is_login: true,
        headers: Vec::new(),
        slot: None,
    };
    let Some(r) = send(ctx, t, req).await else {
        return false;
    };
    let mut o = finish(ctx, t, Step::Login, login.path.as_str(), p, &r);
    o.worker = header_worker(ctx, &r);
    let mut verdict = match &r {
        Ok(reply) => login_verdict(ctx, login, reply),
        Err(_) => Err(String::new()),
    };
    // The documented default: with a probe, the login is good only when the probe right after
    // it says authenticated. It runs before the jar counts as logged in, so an anonymous
    // answer here is this failed login, not a `logout`.
    let conclusive = r.as_ref().is_ok_and(login_check::is_conclusive);
    if verdict.is_ok() && !conclusive && wants_probe_after_login(ctx, login) {
        let Some(checked) = confirm_login(ctx, t, obs).await else {
            return false;
        };
        if let Err((why, failure)) = checked {
            verdict = Err(format!(
                "the login answered {}, but {why}",
                r.as_ref().map(login_check::describe).unwrap_or_default(),
            ));
            // A probe that could not connect (a restarting target) keeps its own failure kind,
            // so the detectors forgive it like any connection refused during a restart.
            o.failure = failure;
        }
    }
    let success = verdict.is_ok();
    if let (Err(why), None) = (&verdict, &o.failure) {
        // The page's title or text may echo what the user sent, or its cookie.
        o.failure = Some(Failure::LoginRejected(client::scrub_cookies(&t.jar, why)));
    }
    if success {
        if let Ok(reply) = &r {
            remember_login(ctx, &t.jar, reply);
            let own = client::lock(&t.jar).login_cookies.clone();
            o.fixation = own
                .iter()
                .any(|(name, value)| before.get(name).map(String::as_str) == Some(value));
            o.cookies = Some(LoginCookies::shared(reply.cookie_attrs.clone()));
        }
        ctx.progress.logins.fetch_add(1, Ordering::Relaxed);
    }
    o.authenticated = Some(success);
    o.epoch_end = client::lock(&t.jar).epoch;
    obs.push(o);
    success
}

/// Probes that confirm a login: at least the first, at most the second; the first answer that
/// says authenticated ends it.
const CONFIRM_PROBES: (usize, usize) = (4, 32);

/// The probe after a login that looked good: is the user authenticated? One "yes" is enough.
/// With sessions kept per worker, only the worker that served the login knows the session, so
/// "no" is believed only once every worker PID seen so far in the run (and at least
/// `ready_workers` of them) said anonymous: a per-worker store must stay a `logout`, not become
/// a failed login. None: the run was stopped.
async fn confirm_login(
    ctx: &Ctx,
    t: &TabId,
    obs: &mut Vec<Observation>,
) -> Option<std::result::Result<(), (String, Option<Failure>)>> {
    let (least, most) = CONFIRM_PROBES;
    let want_pids = ctx.plan.ready_workers.max(1);
    let mut anonymous_pids = std::collections::BTreeSet::new();
    let mut answers = 0;
    let mut last;
    loop {
        let check = probe(ctx, t, Turn::now(ctx, t)).await?;
        answers += 1;
        if let Some(f) = &check.failure {
            // No answer to judge by: a connection problem is the login's failure.
            let failure = matches!(
                f,
                Failure::Connect(_) | Failure::Transport(_) | Failure::OutOfFiles(_)
            )
            .then(|| f.clone());
            let why = format!("the probe {} right after it failed: {f}", check.path);
            obs.push(check);
            return Some(Err((why, failure)));
        }
        if check.authenticated == Some(true) {
            obs.push(check);
            return Some(Ok(()));
        }
        if let Some(worker) = check.worker {
            anonymous_pids.insert(worker);
        }
        last = (check.path.clone(), check.status);
        obs.push(check);
        let every_worker_said_no = anonymous_pids.len() >= want_pids
            && ctx
                .progress
                .pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_subset(&anonymous_pids);
        if answers >= most || (answers >= least && every_worker_said_no) {
            break;
        }
    }
    let (path, status) = last;
    Some(Err((
        format!(
            "the probe {path} right after it said anonymous (HTTP {}, {answers} answers from workers {})",
            status.unwrap_or(0),
            anonymous_pids
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None,
    )))
}

/// `success.probe_authenticated`, default true when a probe with an authenticated pointer is
/// configured. A conclusive login answer (`login_check::is_conclusive`) needs no confirmation:
/// the tab's own probes then judge the session.
fn wants_probe_after_login(ctx: &Ctx, login: &Login) -> bool {
    let probe = &ctx.plan.probe;
    !probe.path.is_empty()
        && !probe.authenticated.is_empty()
        && login.success.probe_authenticated != Some(false)
}

/// The login answer against `[login] success`, or the default judgement (see `login_check`).
fn login_verdict(
    ctx: &Ctx,
    login: &Login,
    reply: &client::Reply,
) -> std::result::Result<(), login_check::Rejection> {
    if let Some(status) = login.success.status {
        if reply.status == status && !reply.to_login {
            return Ok(());
        }
        return Err(format!(
            "{}, not the HTTP {status} that [login] success.status expects",
            login_check::describe(reply)
        ));
    }
    if let Some(want) = &login.success.redirect_to {
        // Where the login sent the user, parsed once: matched against `want`, and its path
        // for the hint when it does not match.
        let got = reply
            .first_location
            .as_deref()
            .and_then(|l| ctx.http.url(l).ok());
        let matched = match (&got, ctx.http.url(want)) {
            (Some(got), Ok(to)) => login_check::redirect_matches(&to, got),
            _ => false,
        };
        if matched {
            return Ok(());
        }
        return Err(format!(
            "{}, not a redirect to {want} ([login] success.redirect_to){}",
            login_check::describe(reply),
            login_redirect_hint(
                &login.path,
                ctx.http.login_page(),
                want,
                reply.first_status,
                got.as_ref().map(|u| u.path())
            )
        ));
    }
    login_check::default_verdict(reply)
}

/// What to try when a login redirected to `location` (its path), not to `want`:
/// - back to the login page (where it posts, or `login_page`, where the app sends visitors
///   without a login): the app refused the login;
/// - 307/308 elsewhere: the login is at that address (`/login` → `/login/`), so post there;
/// - elsewhere: many apps send a login to its `next` parameter, and without one to a default
///   (Django: LOGIN_REDIRECT_URL, `/accounts/profile/`), said when the path has no query yet.
fn login_redirect_hint(
    login_path: &str,
    login_page: &str,
    want: &str,
    status: u16,
    location: Option<&str>,
) -> String {
    let Some(location) = location else {
        return String::new();
    };
    if matches!(status, 307 | 308) {
        return format!(
            "; HTTP {status} says the login is at {location}: [login] path = \"{location}\""
        );
    }
    let page = |p: &str| {
        crate::scenario::without_query(p)
            .trim_end_matches('/')
            .to_string()
    };
    if page(location) == page(login_path) || page(location) == page(login_page) {
        return "; that is the login page again: the app refused the login (the password? a \
                CSRF token the form wants, see [login] csrf? an account locked after failed \
                logins?)"
            .to_string();
    }
    if login_path.contains('?') {
        return String::new();
    }
    format!(
        "; if the app sends a login to its `next` parameter, give it one: [login] path = \"{login_path}?next={want}\""
    )
}

/// After a good login: the cookies it set are the user's own session cookies.
fn remember_login(ctx: &Ctx, jar: &SharedJar, reply: &client::Reply) {
    let mut j = client::lock(jar);
    j.login_cookies = reply
        .set_cookies
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    if j.login_cookies.is_empty() {
        // The login set nothing (the session cookie came earlier): what the jar holds is it.
        if let Ok(url) = ctx.http.url("/") {
            j.login_cookies = j.store().get_request_values(&url).collect();
        }
    }
    j.logged_in = true;
    j.ever_logged_in = true;
    j.epoch += 1;
}

fn record_login_failure(
    ctx: &Ctx,
    t: &TabId,
    login: &Login,
    obs: &mut Vec<Observation>,
    failure: Failure,
) {
    // The login that was not sent, carrying why the CSRF page gave no token.
    let p = begin(ctx, t);
    let mut o = finish(ctx, t, Step::Login, login.path.as_str(), p, &Err(failure));
    o.authenticated = Some(false);
    obs.push(o);
}

/// A deliberate logout (the user asked for it), with a CSRF token when the app wants one.
async fn logout(ctx: &Ctx, t: &TabId, obs: &mut Vec<Observation>) {
    Box::pin(logout_steps(ctx, t, obs)).await
}

async fn logout_steps(ctx: &Ctx, t: &TabId, obs: &mut Vec<Observation>) {
    let cfg = &ctx.plan.logout;
    {
        // From here on, anonymous answers to this user's other tabs are expected.
        let mut j = client::lock(&t.jar);
        j.logged_in = false;
        j.epoch += 1;
    }
    let mut fields = Vec::new();
    if let Some(csrf) = &cfg.csrf {
        if let Some(CsrfAnswer::Token(token)) = csrf_token(ctx, t, csrf, obs).await {
            fields.push((csrf.field.clone(), token));
        }
    }
    let method = ctx.plan.logout_method.clone();
    let body = (method != Method::GET).then_some(Body::Form(fields));
    let p = begin(ctx, t);
    if let Some(r) = send(
        ctx,
        t,
        Req {
            method,
            path: &cfg.path,
            body,
            follow: false,
            is_login: false,
            headers: Vec::new(),
            slot: None,
        },
    )
    .await
    {
        obs.push(finish(ctx, t, Step::Logout, cfg.path.as_str(), p, &r));
    }
    let mut j = client::lock(&t.jar);
    j.login_cookies.clear();
}

/// Open-loop hooks (see `openloop`): a user's jar, its login, and one arrival of the schedule.
pub(crate) struct OpenUser(TabId);

/// True once the run must end (stopped, past the deadline, out of requests).
pub(crate) fn open_done(ctx: &Ctx) -> bool {
    ctx.done()
}

/// Create user `vu` and log it in (when the scenario has a login; tried again as in closed-loop
/// runs). None: the login failed.
pub(crate) async fn open_user(ctx: &Ctx, vu: usize) -> Option<OpenUser> {
    let t = TabId {
        vu,
        tab: 0,
        jar: Arc::new(Mutex::new(Jar::default())),
    };
    if ctx.plan.login.is_some() && !first_login(ctx, &t).await {
        return None;
    }
    Some(OpenUser(t))
}

/// The `n`-th arrival of a user: its n-th page (or probe, every `probe.every` pages), with
/// latency counted from `intended_us`, the time the schedule meant to send it, over the
/// connection `slot` the generator waited for.
pub(crate) async fn open_arrival(
    ctx: &Ctx,
    u: &OpenUser,
    n: u64,
    intended_us: u64,
    slot: client::Slot,
    obs: &mut Vec<Observation>,
) {
    let t = &u.0;
    let turn = Turn {
        start: begin(ctx, t),
        slot: Some(slot),
    };
    let every = u64::from(ctx.plan.probe.every.max(1));
    let probing = !ctx.plan.probe.path.is_empty();
    let cycle = if probing { every + 1 } else { 1 };
    let o = if probing && n % cycle == every {
        probe(ctx, t, turn).await
    } else {
        let i = (n - n / cycle) as usize;
        load_request(ctx, t, i % ctx.paths.len(), turn).await
    };
    let Some(mut o) = o else { return };
    o.start_us = o.start_us.min(intended_us);
    let bounced = o.step == Step::Request && o.unexplained_anonymous();
    let epoch = o.epoch_end;
    obs.push(o);
    if wants_login(ctx, &t.jar, bounced, epoch) {
        relogin(ctx, t, obs).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_retry_is_claimed_once_when_due_and_only_while_logged_out() {
        let jar: SharedJar = Arc::new(Mutex::new(Jar::default()));
        let now = Instant::now();
        assert!(
            !claim_login_retry(&jar, now),
            "no failed re-login, no retry"
        );
        client::lock(&jar).login_retry_at = Some(now + Duration::from_secs(1));
        assert!(!claim_login_retry(&jar, now), "not due yet");
        let later = now + Duration::from_secs(2);
        assert!(claim_login_retry(&jar, later));
        assert!(!claim_login_retry(&jar, later), "claimed by one tab only");
        let mut j = client::lock(&jar);
        j.login_retry_at = Some(now);
        j.logged_in = true;
        drop(j);
        assert!(
            !claim_login_retry(&jar, later),
            "logged in meanwhile: nothing to retry"
        );
    }

    #[test]
    fn a_login_sent_elsewhere_is_told_about_next() {
        let hint = login_redirect_hint(
            "/admin/login/",
            "/admin/login/",
            "/admin/",
            302,
            Some("/accounts/profile/"),
        );
        assert_eq!(
            hint,
            "; if the app sends a login to its `next` parameter, give it one: [login] path = \"/admin/login/?next=/admin/\""
        );
        // Already has a query, or did not redirect at all: nothing to suggest.
        assert_eq!(
            login_redirect_hint(
                "/admin/login/?next=/x",
                "/admin/login/",
                "/admin/",
                302,
                Some("/x")
            ),
            ""
        );
        assert_eq!(
            login_redirect_hint("/login", "/login", "/dashboard", 200, None),
            ""
        );
    }

    /// Found on Flask-AppBuilder (a wrong password comes back to `/login/?next=/`, and `/login`
    /// answers a POST with 308 to `/login/`) and pgAdmin (the login posts to
    /// /authenticate/login, a wrong password goes back to the /login page).
    #[test]
    fn a_login_sent_back_is_refused_and_one_moved_is_told_where() {
        let again = "; that is the login page again: the app refused the login (the password? a CSRF token the form wants, see [login] csrf? an account locked after failed logins?)";
        assert_eq!(
            login_redirect_hint("/login/", "/login/", "/", 302, Some("/login/")),
            again
        );
        assert_eq!(
            login_redirect_hint("/login", "/login", "/", 302, Some("/login")),
            again
        );
        assert_eq!(
            login_redirect_hint(
                "/authenticate/login",
                "/login",
                "/browser/",
                302,
                Some("/login")
            ),
            again
        );
        assert_eq!(
            login_redirect_hint("/login", "/login", "/", 308, Some("/login/")),
            "; HTTP 308 says the login is at /login/: [login] path = \"/login/\""
        );
    }

    #[test]
    fn refused_connections_back_off() {
        let mut o = Observation {
            authenticated: Some(true),
            ..Observation::sample(0, Step::Request, 0, 1)
        };
        assert_eq!(pause_after(&o, Duration::ZERO), Duration::ZERO);
        o.status = None;
        o.failure = Some(Failure::Connect("Connection refused (os error 111)".into()));
        assert_eq!(pause_after(&o, Duration::ZERO), REFUSED_BACKOFF);
        assert_eq!(
            pause_after(&o, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn load_duration_counts_from_the_load_not_from_the_spawn() {
        let text =
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\nduration = \"3s\"\n";
        let scenario = crate::scenario::Scenario::parse(text, "t.toml").unwrap();
        let base = url::Url::parse(&scenario.target.url).unwrap();
        let http = Http::new(&scenario.lowered.http, &base, 1).unwrap();
        // The target took 5 s to become ready.
        let clock = Instant::now() - Duration::from_secs(5);
        let ctx = Ctx::new(
            scenario.load_plan(),
            http,
            clock,
            CancellationToken::new(),
            Default::default(),
        );
        assert!(ctx.deadline > Instant::now() + Duration::from_secs(2));
        assert!(!ctx.done());
    }

    #[test]
    fn probe_reading_is_tolerant_and_never_panics() {
        let ok = br#"{"worker":{"pid":42},"authenticated":true}"#;
        assert_eq!(
            read_probe(ok, "/worker/pid", "/authenticated").unwrap(),
            (Some(WorkerId::of_pid(42)), Some(true))
        );
        let s = br#"{"worker":{"pid":"42"},"authenticated":null}"#;
        assert_eq!(
            read_probe(s, "/worker/pid", "/authenticated").unwrap(),
            (Some(WorkerId::of_pid(42)), Some(false))
        );
        assert!(read_probe(b"<html>", "/worker/pid", "/authenticated")
            .unwrap_err()
            .contains("not answer JSON"));
        assert!(read_probe(br#"{"worker":{}}"#, "/worker/pid", "/authenticated").is_err());
        let with_remaining = |body: &[u8], ptr| {
            ProbeReader::new(WorkerSpec::pid("/worker/pid"), "/authenticated", Some(ptr))
                .read(body, None)
                .unwrap()
        };
        let body = br#"{"worker":{"pid":7},"authenticated":true,"session":{"left":"90.5","n":3}}"#;
        assert_eq!(
            with_remaining(body, "/session/left"),
            ProbeAnswer {
                worker: Some(WorkerId::of_pid(7)),
                authenticated: Some(true),
                remaining_s: Some(90.5)
            }
        );
        assert_eq!(with_remaining(body, "/session/n").remaining_s, Some(3.0));
        assert_eq!(with_remaining(body, "/session").remaining_s, None);
        assert_eq!(with_remaining(body, "/missing").remaining_s, None);
        // Neither pointer asked: still only JSON is accepted.
        assert_eq!(read_probe(body, "", ""), Ok((None, None)));
        assert!(read_probe(b"{", "", "").is_err());
        assert!(read_probe(&[0xff, 0xfe, 0x00], "/a", "/b").is_err());
        let deep = "[".repeat(100_000);
        assert!(read_probe(deep.as_bytes(), "/a", "/b").is_err());
    }
}
