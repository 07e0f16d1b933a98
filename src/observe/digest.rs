//! What a run keeps of its observations: a `Digest` that every observation is folded into as it
//! arrives (counts, latency histograms, PIDs, timeline, the few per-user facts detectors need),
//! and, whole, only the observations that a detector must correlate with others.
//!
//! Why: a healthy request (logged in, authenticated, below 400) tells the detectors nothing a
//! counter cannot. Keeping every one cost ~150 bytes per request, so memory grew for as long as
//! a run lasted (a 10-minute soak went from 23 to 70 MB). Now memory grows with logins, logouts
//! and anomalies, not with requests.
//!
//! The split is exact, not sampled: `must_keep` names every observation a detector looks at one
//! by one, and the detector tests run each fixture twice, with every observation and with only
//! the kept ones, and require the same findings.

use crate::observe::worker::WorkerId;
use crate::observe::{Failure, LoginCookies, Observation, PathStr, Phase, RestartWindow, Step};
use crate::util::stats;
use hdrhistogram::Histogram;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use crate::scenario::lowered::DigestConfig;

/// True for an observation that a detector examines one by one; everything else is only counted.
pub fn must_keep(o: &Observation, cfg: &DigestConfig) -> bool {
    let traffic = matches!(o.step, Step::Request | Step::Probe);
    !traffic
        || o.failure.is_some()
        || o.status
            .is_none_or(|s| s >= 400 || cfg.interrupted_statuses.contains(&s))
        || o.authenticated == Some(false)
        || o.pattern_match
        || o.replaced_login_cookie.is_some()
}

/// One phase's requests (see `Phase`).
#[derive(Debug, Clone)]
pub struct PhaseTally {
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    /// Anonymous answers to logged-in users that nothing they did explains.
    pub logouts: u64,
}

/// Per restart that came back: who was active after it and who was served again in time.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Users with a page or probe that started after the target was ready again.
    pub active: BTreeSet<u32>,
    /// Users with an authenticated answer within `recovery_timeout` of ready.
    pub recovered: BTreeSet<u32>,
    /// When each user's first authenticated answer after ready ended (µs), however late: a
    /// user not `recovered` but here was served again, slowly.
    pub back_at: BTreeMap<u32, u64>,
}

/// Every observation's contribution to the report and the detectors.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Latency of pages and probes (µs).
    pub overall: Histogram<u64>,
    /// Of that latency, the wait for a `[load] max_connections` slot (µs; 0 for most).
    pub connection_wait: Histogram<u64>,
    pub phases: BTreeMap<Phase, PhaseTally>,
    /// All observations (logins, CSRF pages and logouts too), and how many were ok / errors.
    pub total: u64,
    pub ok: u64,
    pub errors: u64,
    /// Pages and probes.
    pub traffic: u64,
    /// Probes sent, and those whose answer said authenticated or not.
    pub probes: u64,
    pub probes_answered: u64,
    pub probes_authenticated: u64,
    pub probes_anonymous: u64,
    pub logins: u64,
    pub logins_ok: u64,
    /// The time logins took, summed over all of them (µs): set against the pages' and
    /// probes' time, it says whether the load measured the app or mostly its logins.
    pub login_us: u64,
    pub logouts: u64,
    /// Deliberate logouts the app refused (answered 4xx: a wrong `[logout] path` or method),
    /// and the first such status.
    pub logouts_refused: u64,
    pub logout_refused_status: Option<u16>,
    /// Worker identity → answers carrying it (probes; with `worker_header`, every page).
    pub pids: BTreeMap<WorkerId, u64>,
    /// Per user and login epoch, the first worker that answered it authenticated: "logged in
    /// via web-1" in the `logout` finding.
    pub first_authenticated_by: FxHashMap<(u32, u32), WorkerId>,
    /// (the login's first authenticating worker, the answering worker) → answers to that
    /// login's own requests, and how many were authenticated: "anonymous on web-3 (12 of 12
    /// times)". Bounded by the square of the distinct workers.
    pub worker_pairs: FxHashMap<(WorkerId, WorkerId), PairCount>,
    /// Pages and probes of logged-in users whose answer said authenticated or not.
    pub seen_logged_in: u64,
    /// `auth_persistence`: probes of logged-in users outside restarts, and how many were
    /// authenticated.
    pub persistence_judged: u64,
    pub persistence_ok: u64,
    /// When each path first answered ok (end, µs): a path that never worked is not "interrupted".
    pub first_ok: FxHashMap<PathStr, u64>,
    /// Pages that answered a logged-in user as logged in, per path and answering worker (None:
    /// not known): a page that never did, while the same workers served the users' other
    /// pages, refuses these accounts rather than losing their sessions (see `refused_pages`).
    pub authenticated_pages: FxHashSet<(PathStr, Option<WorkerId>)>,
    /// Per user and login epoch, the latest start of an authenticated answer that the user's
    /// own login explains: "anonymous, then authenticated again" means the session lives on
    /// some workers only.
    pub last_authenticated: FxHashMap<(u32, u32), u64>,
    /// Per restart window (same index).
    pub recovery: Vec<Recovery>,
    /// Some response re-sent a login cookie with a fresh lifetime (sliding sessions).
    pub renewed: bool,
    /// `[lifetime] remaining`: each login's series of answers, reduced as they arrive.
    pub remaining: crate::observe::remaining::RemainingLog,
    /// When the last observation ended (µs).
    pub last_end_us: u64,
    pub timeline: Timeline,
    cfg: DigestConfig,
}

/// Answers of one worker to logins another worker authenticated first.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct PairCount {
    pub answers: u64,
    pub authenticated: u64,
}

/// An error in the report's sense: a failure, or a status of 400 and up other than 401/403
/// (anonymity is judged by the detectors, not counted as an error).
pub fn is_error(o: &Observation) -> bool {
    match (&o.failure, o.status) {
        // A rejected login is an answer, judged by its status like any other.
        (Some(Failure::LoginRejected(_) | Failure::CsrfUnreadable(_)), Some(s)) => {
            s >= 400 && s != 401 && s != 403
        }
        (Some(_), _) => true,
        (None, Some(401 | 403)) => false,
        (None, Some(s)) => s >= 400,
        (None, None) => false,
    }
}

impl Digest {
    pub fn new(cfg: DigestConfig) -> Digest {
        Digest {
            overall: stats::new_histogram(),
            connection_wait: stats::new_histogram(),
            phases: BTreeMap::new(),
            total: 0,
            ok: 0,
            errors: 0,
            traffic: 0,
            probes: 0,
            probes_answered: 0,
            probes_authenticated: 0,
            probes_anonymous: 0,
            logins: 0,
            logins_ok: 0,
            login_us: 0,
            logouts: 0,
            logouts_refused: 0,
            logout_refused_status: None,
            pids: BTreeMap::new(),
            first_authenticated_by: FxHashMap::default(),
            worker_pairs: FxHashMap::default(),
            seen_logged_in: 0,
            persistence_judged: 0,
            persistence_ok: 0,
            first_ok: FxHashMap::default(),
            authenticated_pages: FxHashSet::default(),
            last_authenticated: FxHashMap::default(),
            recovery: Vec::new(),
            renewed: false,
            remaining: crate::observe::remaining::RemainingLog::default(),
            last_end_us: 0,
            timeline: Timeline::default(),
            cfg,
        }
    }

    /// The digest of recorded observations, with the run's final restart windows (for tests:
    /// the same as recording them one by one).
    #[cfg(test)]
    pub fn of(obs: &[Observation], restarts: &[RestartWindow], cfg: DigestConfig) -> Digest {
        let mut d = Digest::new(cfg);
        for o in obs {
            d.add(o, restarts);
        }
        d
    }

    /// Fold one observation in. `restarts` are the windows known when it arrived: a window's
    /// times are taken under the same lock that `Recorder` folds under, so a request that
    /// started after a restart's start (or after its ready) always sees that time here.
    pub fn add(&mut self, o: &Observation, restarts: &[RestartWindow]) {
        // A login whose CSRF token could not be read was never sent: a failed login, but no
        // request (the pgAdmin trial's server saw 2 requests where the summary counted 3).
        let sent =
            !(o.step == Step::Login && matches!(o.failure, Some(Failure::CsrfUnreadable(_))));
        if sent {
            self.total += 1;
            self.ok += o.ok() as u64;
            self.errors += is_error(o) as u64;
        }
        self.renewed |= o.renewed;
        self.remaining.add(o, restarts);
        self.last_end_us = self.last_end_us.max(o.end_us);
        if let Some(w) = o.worker {
            *self.pids.entry(w).or_default() += 1;
        }
        if o.ok() {
            // Looked up before inserting: the common case (known path) clones nothing.
            match self.first_ok.get_mut(&o.path) {
                Some(first) => *first = (*first).min(o.end_us),
                None => {
                    self.first_ok.insert(o.path.clone(), o.end_us);
                }
            }
        }
        match o.step {
            Step::Login => {
                self.logins += 1;
                self.logins_ok += (o.authenticated == Some(true)) as u64;
                self.login_us += o.latency_us();
            }
            Step::Logout => {
                self.logouts += 1;
                if let Some(status @ 400..=499) = o.status {
                    self.logouts_refused += 1;
                    self.logout_refused_status.get_or_insert(status);
                }
            }
            Step::Request | Step::Probe => self.add_traffic(o, restarts),
            _ => {}
        }
    }

    /// The share of the time spent in requests that went to logins (0 to 1), None before
    /// any request.
    pub fn login_share(&self) -> Option<f64> {
        let traffic_us = self.overall.mean() * self.overall.len() as f64;
        let all = self.login_us as f64 + traffic_us;
        (all > 0.0).then(|| self.login_us as f64 / all)
    }

    fn add_traffic(&mut self, o: &Observation, restarts: &[RestartWindow]) {
        self.traffic += 1;
        let latency = o.latency_us().max(1);
        let _ = self.overall.record(latency);
        let _ = self.connection_wait.record(u64::from(o.waited_us));
        let phase = match Phase::at(o.start_us, restarts) {
            Phase::Load if self.cfg.restart_planned => Phase::BeforeRestart,
            phase => phase,
        };
        let tally = self.phases.entry(phase).or_insert_with(|| PhaseTally {
            latency: stats::new_histogram(),
            requests: 0,
            errors: 0,
            logouts: 0,
        });
        let _ = tally.latency.record(latency);
        tally.requests += 1;
        tally.errors += is_error(o) as u64;
        tally.logouts += o.unexplained_anonymous() as u64;
        if o.step == Step::Probe {
            self.probes += 1;
            if o.authenticated.is_some() {
                self.probes_answered += 1;
                self.probes_authenticated += (o.authenticated == Some(true)) as u64;
                self.probes_anonymous += o.anonymous() as u64;
                if o.own_login_held() && phase != Phase::DuringRestart {
                    self.persistence_judged += 1;
                    self.persistence_ok += (o.authenticated == Some(true)) as u64;
                }
            }
        }
        if o.logged_in && o.authenticated.is_some() {
            self.seen_logged_in += 1;
        }
        if o.step == Step::Request && o.own_login_held() && o.authenticated == Some(true) {
            self.authenticated_pages.insert((o.path.clone(), o.worker));
        }
        self.add_worker_pair(o, restarts);
        if o.own_login_held() && o.authenticated == Some(true) {
            let last = self
                .last_authenticated
                .entry((o.vu, o.epoch_start))
                .or_insert(o.start_us);
            *last = (*last).max(o.start_us);
        }
        self.add_recovery(o, restarts);
        self.timeline.add(o);
    }

    /// Which worker authenticated a login, and how the other workers answered it.
    fn add_worker_pair(&mut self, o: &Observation, restarts: &[RestartWindow]) {
        let (Some(w), Some(auth)) = (o.worker, o.authenticated) else {
            return;
        };
        // A restart logs out by itself (`restart_logout`): only answers before the first
        // restart say whether the workers agree.
        let restarted = restarts.first().is_some_and(|r| o.end_us >= r.start_us);
        if !o.own_login_held() || restarted {
            return;
        }
        let key = (o.vu, o.epoch_start);
        let first = match self.first_authenticated_by.get(&key) {
            Some(&f) => f,
            None if auth => {
                self.first_authenticated_by.insert(key, w);
                w
            }
            None => return,
        };
        // An explained anonymous answer (a logout in flight) says nothing about the worker.
        if !auth && !o.unexplained_anonymous() {
            return;
        }
        let pair = self.worker_pairs.entry((first, w)).or_default();
        pair.answers += 1;
        pair.authenticated += auth as u64;
    }

    fn add_recovery(&mut self, o: &Observation, restarts: &[RestartWindow]) {
        if self.recovery.len() < restarts.len() {
            self.recovery.resize_with(restarts.len(), Recovery::default);
        }
        for (r, rec) in restarts.iter().zip(self.recovery.iter_mut()) {
            let Some(ready) = r.ready_us else { continue };
            if o.start_us >= ready {
                rec.active.insert(o.vu);
            }
            let until = ready.saturating_add(self.cfg.recovery_timeout_us);
            if o.authenticated == Some(true) && o.end_us >= ready {
                if o.end_us <= until {
                    rec.recovered.insert(o.vu);
                }
                let back = rec.back_at.entry(o.vu).or_insert(o.end_us);
                *back = (*back).min(o.end_us);
            }
        }
    }
}

/// The observations of a run as they come in: the digest and the kept observations, and the
/// restart windows (recorded here so that folding always sees them; see `Digest::add`).
pub struct Recorder {
    clock: Instant,
    inner: Mutex<Recorded>,
}

/// What a run recorded.
pub struct Recorded {
    pub digest: Digest,
    /// The observations `must_keep` selected, in arrival order, at most `MAX_KEPT`.
    pub kept: Vec<Observation>,
    /// Observations `must_keep` selected after `kept` was full: counted in the digest, but
    /// not examined by the detectors (findings describe the first `MAX_KEPT`).
    pub not_kept: u64,
    pub restarts: Vec<RestartWindow>,
    /// Per restart: when every worker the scenario waits for (`ready.min_workers`) had
    /// answered the probe again, if they did (the window itself ends at the first answer).
    pub all_workers_us: Vec<Option<u64>>,
    /// The distinct cookie descriptions of the kept logins, at most `COOKIE_SETS`: each kept
    /// login points at one of them instead of holding its own copy (~300 bytes per user).
    cookie_sets: Vec<Arc<LoginCookies>>,
}

/// How many distinct cookie descriptions are shared; logins with others keep their own.
const COOKIE_SETS: usize = 16;

/// At most this many observations are kept whole (~150 bytes each, so ~75 MB). A healthy run
/// keeps only its logins; a badly broken one keeps most requests (every answer anonymous), and
/// without a bound a long run against it would grow without end.
pub const MAX_KEPT: usize = 500_000;

impl Recorded {
    /// Count one observation in the digest, and keep it whole if a detector examines it.
    fn add(&mut self, mut o: Observation) {
        self.digest.add(&o, &self.restarts);
        if must_keep(&o, &self.digest.cfg) {
            if self.kept.len() < MAX_KEPT {
                if let Some(cookies) = &mut o.cookies {
                    match self.cookie_sets.iter().find(|s| ***s == **cookies) {
                        Some(same) => *cookies = same.clone(),
                        None if self.cookie_sets.len() < COOKIE_SETS => {
                            self.cookie_sets.push(cookies.clone())
                        }
                        None => {}
                    }
                }
                self.kept.push(o);
            } else {
                self.not_kept += 1;
            }
        }
    }

    /// Nothing recorded (also the result of a run interrupted before its load began).
    pub fn empty(cfg: DigestConfig) -> Recorded {
        Recorded {
            digest: Digest::new(cfg),
            kept: Vec::new(),
            not_kept: 0,
            restarts: Vec::new(),
            all_workers_us: Vec::new(),
            cookie_sets: Vec::new(),
        }
    }
}

impl Recorder {
    pub fn new(clock: Instant, cfg: DigestConfig) -> Recorder {
        Recorder {
            clock,
            inner: Mutex::new(Recorded::empty(cfg)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A panic elsewhere while holding it leaves counts that are still the best we have.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fold in (and empty) a batch of observations.
    pub fn record(&self, batch: &mut Vec<Observation>) {
        if batch.is_empty() {
            return;
        }
        let mut r = self.lock();
        for o in batch.drain(..) {
            r.add(o);
        }
    }

    /// `record` for one observation.
    pub fn record_one(&self, o: Observation) {
        self.lock().add(o);
    }

    /// A restart begins now; returns its index for `restart_ready`.
    pub fn restart_began(&self, method: String) -> usize {
        let mut r = self.lock();
        // The time is taken under the lock: see `Digest::add`.
        let start_us = self.clock.elapsed().as_micros() as u64;
        r.restarts.push(RestartWindow {
            start_us,
            ready_us: None,
            method,
        });
        let index = r.restarts.len() - 1;
        r.digest.remaining.restart_began(index);
        index
    }

    /// The target answered ready again after restart `index`.
    pub fn restart_ready(&self, index: usize) {
        let mut r = self.lock();
        let ready_us = self.clock.elapsed().as_micros() as u64;
        if let Some(w) = r.restarts.get_mut(index) {
            w.ready_us = Some(ready_us);
        }
    }

    /// Every worker answered again after restart `index` (see `Recorded::all_workers_us`).
    pub fn restart_all_workers(&self, index: usize) {
        let mut r = self.lock();
        let t_us = self.clock.elapsed().as_micros() as u64;
        if r.all_workers_us.len() <= index {
            r.all_workers_us.resize(index + 1, None);
        }
        r.all_workers_us[index] = Some(t_us);
    }

    /// A copy of the digest, the kept observations from index `from` on, and the restart
    /// windows: what a live judge (`--events`) needs, taken quickly under the lock so that
    /// recording is not held up while it judges.
    pub fn snapshot_since(&self, from: usize) -> (Digest, Vec<Observation>, Vec<RestartWindow>) {
        let r = self.lock();
        let new = r.kept.get(from..).map(<[_]>::to_vec).unwrap_or_default();
        (r.digest.clone(), new, r.restarts.clone())
    }

    /// The restart windows so far.
    #[cfg(test)]
    pub fn restarts(&self) -> Vec<RestartWindow> {
        self.lock().restarts.clone()
    }

    /// Everything recorded so far (the run is over: nothing records any more).
    pub fn take(&self) -> Recorded {
        let mut r = self.lock();
        let cfg = r.digest.cfg.clone();
        std::mem::replace(&mut *r, Recorded::empty(cfg))
    }
}

/// Requests per time bucket, for the report's charts. Buckets start 1 s wide; when a run
/// outgrows `MAX_BUCKETS` of them, neighbours merge and the width doubles, so the timeline of a
/// day-long soak is as small as a minute's.
#[derive(Debug, Clone)]
pub struct Timeline {
    width_us: u64,
    buckets: Vec<TimelineBucket>,
}

/// At most this many buckets (the report's charts are ~300 points wide).
const MAX_BUCKETS: usize = 300;

#[derive(Debug, Clone, Default)]
struct TimelineBucket {
    requests: u64,
    errors: u64,
    authenticated: u64,
    anonymous: u64,
    pids: BTreeMap<WorkerId, u64>,
    /// Latency of the requests that got an answer (or timed out), µs. One significant digit
    /// (values within ~6 %) is plenty for a chart and keeps a bucket under 2 KB; with two, the
    /// 300 buckets took 4 MB, which a soak's memory curve showed as growth for its first 5 min.
    latency: Option<Histogram<u32>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            width_us: 1_000_000,
            buckets: Vec::new(),
        }
    }
}

impl TimelineBucket {
    fn merge(&mut self, other: TimelineBucket) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.authenticated += other.authenticated;
        self.anonymous += other.anonymous;
        for (pid, n) in other.pids {
            *self.pids.entry(pid).or_default() += n;
        }
        match (&mut self.latency, other.latency) {
            (Some(a), Some(b)) => {
                let _ = a.add(&b);
            }
            (None, Some(b)) => self.latency = Some(b),
            _ => {}
        }
    }
}

impl Timeline {
    fn index(&mut self, t_us: u64) -> usize {
        while t_us / self.width_us >= MAX_BUCKETS as u64 {
            self.coarsen();
        }
        let i = (t_us / self.width_us) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, TimelineBucket::default);
        }
        i
    }

    /// Double the bucket width, merging neighbours.
    fn coarsen(&mut self) {
        self.width_us *= 2;
        let old = std::mem::take(&mut self.buckets);
        let mut pairs = old.into_iter();
        while let Some(mut a) = pairs.next() {
            if let Some(b) = pairs.next() {
                a.merge(b);
            }
            self.buckets.push(a);
        }
    }

    fn add(&mut self, o: &Observation) {
        let i = self.index(o.start_us);
        let b = &mut self.buckets[i];
        b.requests += 1;
        b.errors += is_error(o) as u64;
        match o.authenticated {
            Some(true) => b.authenticated += 1,
            Some(false) => b.anonymous += 1,
            None => {}
        }
        if let Some(w) = o.worker {
            *b.pids.entry(w).or_default() += 1;
        }
        if o.failure.is_none() || o.failure.as_ref().is_some_and(Failure::is_timeout) {
            let h = b.latency.get_or_insert_with(|| {
                Histogram::new_with_bounds(1, 3_600_000_000, 1)
                    .expect("static histogram bounds are valid")
            });
            h.saturating_record(o.latency_us().max(1));
        }
    }

    /// The buckets covering `duration_s`, empty ones included, for the report.
    pub fn buckets(&self, duration_s: f64) -> Vec<Bucket> {
        let mut t = self.clone();
        // The last instant of the run, not its end (a 1200 s run fits 300 buckets of 4 s).
        let duration_us = (duration_s.max(0.0) * 1e6) as u64;
        let last = t.index(duration_us.saturating_sub(1));
        let n = (last + 1).max(t.buckets.len());
        t.buckets.resize_with(n, TimelineBucket::default);
        t.buckets
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                let q = |q: f64| {
                    b.latency
                        .as_ref()
                        .map(|h| stats::round3(h.value_at_quantile(q) as f64 / 1000.0))
                        .unwrap_or(0.0)
                };
                Bucket {
                    t_s: stats::round3((i as u64 * t.width_us) as f64 / 1e6),
                    requests: b.requests,
                    errors: b.errors,
                    authenticated: b.authenticated,
                    anonymous: b.anonymous,
                    p50_ms: q(0.5),
                    p99_ms: q(0.99),
                    pids: b.pids.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
                }
            })
            .collect()
    }
}

/// One slice of the run's timeline, as the report shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
pub struct Bucket {
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub authenticated: u64,
    pub anonymous: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Worker identity → answers in this bucket.
    pub pids: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DigestConfig {
        DigestConfig {
            interrupted_statuses: vec![400, 500],
            recovery_timeout_us: 2_000_000,
            restart_planned: false,
        }
    }

    /// Issue 15 item 6: requests folded before the first restart began are `before_restart`
    /// when the scenario plans one, `load` only in runs without restarts.
    #[test]
    fn requests_before_a_planned_restart_are_before_restart() {
        let o = Observation {
            authenticated: Some(true),
            ..Observation::sample(1, Step::Request, 0, 100)
        };
        let planned = DigestConfig {
            restart_planned: true,
            ..cfg()
        };
        let names = |c: DigestConfig| -> Vec<&str> {
            Digest::of(std::slice::from_ref(&o), &[], c)
                .phases
                .keys()
                .map(|p| p.name())
                .collect()
        };
        assert_eq!(names(planned), vec!["before_restart"]);
        assert_eq!(names(cfg()), vec!["load"]);
    }

    #[test]
    fn healthy_requests_are_counted_not_kept() {
        let ok = Observation {
            authenticated: Some(true),
            worker: Some(WorkerId::of_pid(7)),
            ..Observation::sample(1, Step::Probe, 0, 100)
        };
        assert!(!must_keep(&ok, &cfg()));
        let mut anonymous = ok.clone();
        anonymous.authenticated = Some(false);
        let mut failed = ok.clone();
        failed.status = Some(502);
        let mut interrupted_status = ok.clone();
        interrupted_status.status = Some(200);
        let login = Observation::sample(1, Step::Login, 0, 100);
        for o in [&anonymous, &failed, &login] {
            assert!(must_keep(o, &cfg()), "{o:?}");
        }
        let odd = DigestConfig {
            interrupted_statuses: vec![200],
            ..cfg()
        };
        assert!(must_keep(&interrupted_status, &odd));
    }

    #[test]
    fn recorder_keeps_only_what_detectors_examine_and_counts_everything() {
        let rec = Recorder::new(Instant::now(), cfg());
        let mut batch: Vec<Observation> = (0..1000)
            .map(|i| Observation {
                authenticated: Some(true),
                worker: Some(WorkerId::of_pid(100 + i % 3)),
                ..Observation::sample(1, Step::Probe, i * 1000, i * 1000 + 500)
            })
            .collect();
        batch.push(Observation::sample(1, Step::Login, 0, 10));
        rec.record(&mut batch);
        assert!(batch.is_empty());
        let r = rec.take();
        assert_eq!(r.kept.len(), 1);
        assert_eq!(r.digest.total, 1001);
        assert_eq!(r.digest.probes_authenticated, 1000);
        assert_eq!(r.digest.pids.len(), 3);
        assert_eq!(r.digest.overall.len(), 1000);
    }

    #[test]
    fn kept_observations_are_capped_and_the_rest_counted() {
        let rec = Recorder::new(Instant::now(), cfg());
        let anonymous = |i: u64| Observation {
            authenticated: Some(false),
            ..Observation::sample(1, Step::Probe, i, i + 1)
        };
        let mut batch: Vec<Observation> = (0..MAX_KEPT as u64 + 10).map(anonymous).collect();
        rec.record(&mut batch);
        let r = rec.take();
        assert_eq!(r.kept.len(), MAX_KEPT);
        assert_eq!(r.not_kept, 10);
        assert_eq!(r.digest.probes_anonymous, MAX_KEPT as u64 + 10);
    }

    /// Logins that set the same cookies share one description; another one gets its own.
    #[test]
    fn kept_logins_share_equal_cookie_descriptions() {
        let rec = Recorder::new(Instant::now(), cfg());
        let attrs = |http_only| crate::observe::CookieAttrs {
            name: "sessionid".into(),
            http_only,
            secure: false,
            same_site: Some("Lax".into()),
            size: 40,
            lifetime_s: Some(3600.0),
        };
        for (user, http_only) in [(1, true), (2, true), (3, false)] {
            let mut login = Observation::sample(user, Step::Login, 0, 10);
            login.cookies = Some(LoginCookies::shared(vec![attrs(http_only)]));
            rec.record_one(login);
        }
        let r = rec.take();
        let cookies: Vec<&Arc<LoginCookies>> =
            r.kept.iter().map(|o| o.cookies.as_ref().unwrap()).collect();
        assert_eq!(cookies.len(), 3);
        assert!(Arc::ptr_eq(cookies[0], cookies[1]));
        assert!(!Arc::ptr_eq(cookies[0], cookies[2]));
        assert!(!cookies[2][0].http_only && cookies[1][0].http_only);
    }

    #[test]
    fn timeline_coarsens_and_keeps_every_request() {
        let mut t = Timeline::default();
        // 20 minutes, one request every second.
        for s in 0..1200u64 {
            t.add(&Observation::sample(
                1,
                Step::Request,
                s * 1_000_000,
                s * 1_000_000 + 2_000,
            ));
        }
        let b = t.buckets(1200.0);
        assert!(b.len() <= MAX_BUCKETS, "{} buckets", b.len());
        assert_eq!(b.iter().map(|b| b.requests).sum::<u64>(), 1200);
        assert_eq!(b[1].t_s, 4.0); // 4 s wide after two doublings
        assert!((b[0].p50_ms - 2.0).abs() < 0.13, "{}", b[0].p50_ms);
        // A short run: one bucket per second, empty ones up to its end included.
        let mut short = Timeline::default();
        short.add(&Observation::sample(1, Step::Request, 0, 1000));
        assert_eq!(short.buckets(9.5).len(), 10);
    }

    #[test]
    fn requests_after_a_restart_count_for_its_recovery_and_phase() {
        let rec = Recorder::new(Instant::now(), cfg());
        let i = rec.restart_began("supervisor".into());
        rec.restart_ready(i);
        let ready = rec.restarts()[0].ready_us.unwrap();
        let mut after = vec![Observation {
            authenticated: Some(true),
            ..Observation::sample(3, Step::Probe, ready + 10, ready + 20)
        }];
        rec.record(&mut after);
        let r = rec.take();
        assert!(r.digest.recovery[0].active.contains(&3));
        assert!(r.digest.recovery[0].recovered.contains(&3));
        let phases: Vec<Phase> = r.digest.phases.keys().copied().collect();
        assert_eq!(phases, vec![Phase::AfterRestart]);
    }
}
