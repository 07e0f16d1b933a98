//! Detectors: pure functions from observations to findings, one function per finding kind.
//!
//! Nothing here does I/O, so each detector is unit-tested on hand-made observations with the
//! fault present and with it absent.

use crate::judge::audit::{self, AuditConfig, ConfigAnswer, LifetimeInfo};
use crate::judge::finding::{Finding, FindingKind, Severity};
use crate::judge::logins::LoginEnds;
use crate::observe::digest::Digest;
use crate::observe::worker::WorkerId;
use crate::observe::{Failure, Observation, Phase, RestartWindow, Stage, Step};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What detectors need from the scenario, in plain numbers.
#[derive(Debug, Clone)]
pub struct DetectConfig {
    pub interrupted_statuses: Vec<u16>,
    pub interrupted_window_us: u64,
    pub recovery_timeout_us: u64,
    pub min_distinct_pids: Option<usize>,
    /// When the load ended (run time), so "no recovery" is only judged where there was time.
    pub run_end_us: u64,
    /// sesscheck started the target, so `-v` shows its output (messages say so only then).
    pub target_output: bool,
    /// `[load] connection = "new"`: every request had a connection of its own.
    pub new_connections: bool,
    /// `[login] accounts`: users log in to accounts of a file, each with its own password.
    pub accounts_file: bool,
    /// Every user logs in to one account (`Login::is_one_account`).
    pub one_account: bool,
    /// Paths of `[load] requests` that are writes (POST ...): a write refused with 403 is a
    /// failed write (a missing CSRF header), never a page the account may not see.
    pub write_paths: Vec<String>,
}

/// Everything detectors look at.
pub struct Evidence<'a> {
    /// The observations that `digest::must_keep` selected (tests may pass them all: the
    /// findings are the same).
    pub obs: &'a [Observation],
    /// Every observation's counts and the per-user facts that need no whole observation.
    pub digest: &'a Digest,
    pub restarts: &'a [RestartWindow],
    pub cfg: &'a DetectConfig,
    /// Server log lines that matched the interrupted pattern.
    pub server_log_matches: u64,
    pub audit: &'a AuditConfig,
    /// What the debug config endpoint said, if the scenario reads one.
    pub config: Option<&'a ConfigAnswer>,
}

/// Run every detector; findings come back in a stable order, empty ones left out.
pub fn detect_all(ev: &Evidence) -> Vec<Finding> {
    judge_all(ev).findings
}

/// What the judge says about a run: its findings, and the session lifetime figures (measured
/// once, when `[lifetime]` is on; the `session_lifetime` finding and the report both use them).
pub struct Judgement {
    pub findings: Vec<Finding>,
    pub lifetime: Option<LifetimeInfo>,
}

/// Run every detector and measure the lifetime once.
pub fn judge_all(ev: &Evidence) -> Judgement {
    let interrupted = interrupted_indices(ev);
    // Anonymous answers that another session of the same account caused are conflicts, not logouts.
    let kicked = audit::kicked_out(ev.obs, ev.audit);
    let (refused, refused_finding) = refused_pages(ev);
    let explained: BTreeSet<usize> = interrupted
        .union(&kicked)
        .chain(refused.iter())
        .copied()
        .collect();
    let mut out = Vec::new();
    out.extend(login_failed(ev));
    out.extend(logouts(ev, &explained));
    out.extend(refused_finding);
    out.extend(worker_coverage(ev));
    out.extend(session_interrupted(ev, &interrupted));
    out.extend(infinite_loading(ev));
    out.extend(http_error(ev, &interrupted));
    out.extend(audit::session_conflict(ev.obs, &kicked, ev.audit));
    out.extend(audit::session_fixation(ev.obs, ev.audit));
    out.extend(audit::logout_not_revoked(ev.obs, ev.audit));
    out.extend(audit::cookie_attributes(ev.obs, ev.audit));
    let lifetime = ev.audit.lifetime.as_ref().map(|_| {
        audit::measure_lifetime(ev.obs, &ev.digest.remaining, ev.digest.renewed, ev.restarts)
    });
    if let Some(info) = &lifetime {
        out.extend(audit::session_lifetime(info, ev.audit));
    }
    out.extend(audit::config(ev.config));
    Judgement {
        findings: out,
        lifetime,
    }
}

fn secs(us: u64) -> f64 {
    (us as f64 / 1e6 * 1000.0).round() / 1000.0
}

fn is_traffic(o: &Observation) -> bool {
    matches!(o.step, Step::Request | Step::Probe)
}

/// Inside a restart window (from its start until it answered ready), the target is expected to be down.
fn during_restart(t_us: u64, restarts: &[RestartWindow]) -> bool {
    Phase::at(t_us, restarts) == Phase::DuringRestart
}

/// Within `recovery_timeout` after a restart came back: connection errors are still forgiven.
fn recovering(t_us: u64, ev: &Evidence) -> bool {
    ev.restarts.iter().any(|r| {
        r.ready_us
            .is_some_and(|ready| t_us >= ready && t_us < ready + ev.cfg.recovery_timeout_us)
    })
}

fn describe(o: &Observation) -> serde_json::Value {
    // `first_status` beside `status`: a page followed through redirects has the last answer's
    // status (the login page's 200), and the first (the 302 that sent the user there) is what
    // a person looks for. Always there, so the report's shape does not depend on the run.
    json!({
        "vu": o.vu, "tab": o.tab, "step": o.step, "path": o.path,
        "status": o.status, "first_status": o.first_status, "worker": o.worker,
        "authenticated": o.authenticated,
        "started_at_s": secs(o.start_us), "latency_ms": (o.latency_us() as f64 / 1000.0),
        "failure": o.failure,
    })
}

/// `login_failed`: a login that did not work (not counting connections refused or reset while
/// the target restarts: a stopping Gunicorn resets the connections still in its accept queue).
pub fn login_failed(ev: &Evidence) -> Option<Finding> {
    let failed: Vec<&Observation> = ev
        .obs
        .iter()
        .filter(|o| o.step == Step::Login && o.authenticated == Some(false))
        .filter(|o| {
            !(matches!(o.failure, Some(Failure::Connect(_) | Failure::Transport(_)))
                && (during_restart(o.start_us, ev.restarts)
                    || during_restart(o.end_us, ev.restarts)
                    || recovering(o.start_us, ev)))
        })
        .collect();
    let first = failed.iter().min_by_key(|o| o.start_us)?;
    let attempts = ev.digest.logins;
    // The cause in words (never a Rust debug name), then what to check.
    let some_worked = failed.len() < attempts as usize;
    let in_restart = |o: &Observation| {
        during_restart(o.start_us, ev.restarts) || during_restart(o.end_us, ev.restarts)
    };
    let why = match (&first.failure, first.status) {
        // A server error while the target restarted is the restart's (Calibre-Web behind
        // nginx: logins in flight when a replica got SIGTERM came back 502), not the app's
        // tables.
        (Some(f @ Failure::LoginRejected(_)), Some(500..=599)) if in_restart(first) => format!(
            "{f}, while the target restarted ({} of the failed logins were in flight then): the restart cut them off (a proxy answers 502/503 while a replica is down, or the old process dropped requests in flight); a graceful restart lets them finish",
            failed.iter().filter(|o| in_restart(o)).count()
        ),
        // The answer decides what to check: a server error is not a wrong password.
        (Some(f @ Failure::LoginRejected(_)), Some(500..=599)) => format!(
            "{f}; the app failed (a server error), so this says nothing about the password: see its output (a missing table? migrations not run?)"
        ),
        (Some(f @ Failure::LoginRejected(_)), Some(404)) => {
            format!("{f}; check [login] path")
        }
        // The page says so in words (Calibre-Web answers its login limit with 401 and "Please
        // wait one minute before next login"): that, not a secret per worker.
        (Some(f @ Failure::LoginRejected(detail)), _) if says_wait(detail) => format!(
            "{f}; the app's page asks to wait: a login limit (per account or per address), which repeated logins of one account hit; pace logins with [login] login_rate, give users accounts of their own, or spread them with [login] source_addresses"
        ),
        (Some(f @ Failure::LoginRejected(_)), Some(429)) => format!(
            "{f}; the app limits logins (429 Too Many Requests): pace them below its limit with [login] login_rate (logins/s), or spread them with [login] source_addresses if it counts per client address"
        ),
        // Some worked, so path, fields and success are right; what differs is where it landed.
        (Some(f @ Failure::LoginRejected(_)), _) if some_worked => format!(
            "{f}; some logins worked, so [login] is right: if the login page and the login reached different workers, a SECRET_KEY (or CSRF secret) that differs per worker rejects the token{}",
            if ev.cfg.accounts_file {
                " (or that account's password in [login] accounts)"
            } else {
                ""
            }
        ),
        // Flask-WTF and Django answer a missing or refused CSRF token 400; a wrong password
        // gets the form again (FlaskBB trial: "the password?" for 400s on a CSRF form).
        (Some(f @ Failure::LoginRejected(_)), Some(400)) => format!(
            "{f}; a 400 is what Flask-WTF and Django answer a missing or refused CSRF token (a wrong password gets the form again): check [login] csrf{}",
            crossed_workers(ev, first)
        ),
        (Some(f @ Failure::LoginRejected(_)), _) => {
            format!(
                "{f}; check [login] path, fields (the password?) and success{}",
                crossed_workers(ev, first)
            )
        }
        (Some(f), _) => f.to_string(),
        (None, _) => format!(
            "HTTP {}; check [login] path, fields and success",
            first.status.unwrap_or(0)
        ),
    };
    let output = if ev.cfg.target_output {
        " (run with -v to see the server's output)"
    } else {
        ""
    };
    Some(Finding {
        kind: FindingKind::LoginFailed,
        severity: Severity::Error,
        count: failed.len() as u64,
        first_at_s: secs(first.start_us),
        message: format!(
            "{} of {attempts} logins failed; first: {why}{output}",
            failed.len()
        ),
        example: describe(first),
    })
}

/// A refused login's page that asks the user to wait or says there were too many attempts.
fn says_wait(detail: &str) -> bool {
    const WORDS: [&str; 7] = [
        "please wait",
        "too many",
        "try again later",
        "rate limit",
        "temporarily locked",
        "account is locked",
        "throttled",
    ];
    let d = detail.to_ascii_lowercase();
    WORDS.iter().any(|w| d.contains(w))
}

/// When every login failed and the failed login's CSRF page came from another worker than
/// the login (known from `[probe] worker_header`), say so: workers that do not share their
/// SECRET_KEY refuse that token as a wrong password is refused (Datasette behind a strict
/// round-robin nginx, with a secret per replica and one shared account).
fn crossed_workers(ev: &Evidence, login: &Observation) -> String {
    let page = ev
        .obs
        .iter()
        .filter(|o| o.step == Step::Csrf && o.vu == login.vu && o.start_us <= login.start_us)
        .max_by_key(|o| o.start_us);
    match (page.and_then(|p| p.worker), login.worker) {
        (Some(from), Some(to)) if from != to => format!(
            "; or the workers: its login page came from {from} and the login went to {to}, \
             and workers that do not share their SECRET_KEY (or CSRF secret) refuse that token \
             too{}",
            if ev.cfg.one_account {
                " (give users accounts of their own, `user{user}`, to tell the two apart)"
            } else {
                ""
            }
        ),
        _ => String::new(),
    }
}

/// Pages that refuse these accounts, not lost sessions: a page that answered every logged-in
/// user 403 and never served it to them, while the workers that refused it (or any, where
/// the run does not know workers) served the users' other pages as logged in. An admin page
/// in `[load] requests` of a non-admin account did that on Calibre-Web, and the run blamed
/// the replicas' SECRET_KEY. Only 403 ("forbidden"): a redirect to the login page or a 401 says
/// "not logged in" in the app's own words. The indices of those answers, and a warning.
fn refused_pages(ev: &Evidence) -> (BTreeSet<usize>, Option<Finding>) {
    let served = &ev.digest.authenticated_pages;
    let mut by_path: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, o) in ev.obs.iter().enumerate() {
        let write = ev.cfg.write_paths.iter().any(|w| **w == *o.path);
        if o.step == Step::Request && o.unexplained_anonymous() && !write {
            by_path.entry(&o.path).or_default().push(i);
        }
    }
    let mut refused = BTreeSet::new();
    let mut paths = Vec::new();
    for (path, answers) in by_path {
        let served_elsewhere = |worker: Option<WorkerId>| {
            served
                .iter()
                .any(|(p, w)| &**p != path && (worker.is_none() || *w == worker))
        };
        let forbidden = answers.iter().all(|&i| {
            let o = &ev.obs[i];
            o.status == Some(403) && served_elsewhere(o.worker)
        });
        if forbidden && !served.iter().any(|(p, _)| &**p == path) {
            paths.push((path, answers.len()));
            refused.extend(answers);
        }
    }
    let first = refused
        .iter()
        .map(|&i| &ev.obs[i])
        .min_by_key(|o| o.start_us);
    let finding = first.map(|first| {
        let which = paths
            .iter()
            .map(|(p, n)| format!("{p} ({n} times)"))
            .collect::<Vec<_>>()
            .join(", ");
        Finding {
            kind: FindingKind::PageRefused,
            severity: Severity::Warning,
            count: refused.len() as u64,
            first_at_s: secs(first.start_us),
            message: format!(
                "{which} answered logged-in users HTTP 403 every time, while their other pages showed them logged in (on the same workers, where the run knows them): these accounts may not see that page (an admin page?), so those answers are not counted as logouts; take it out of [load] requests or log in with an account that may see it"
            ),
            example: describe(first),
        }
    });
    (refused, finding)
}

/// `logout` and `restart_logout`: a logged-in user seen anonymous. When a restart happened
/// between the user's last login and the anonymous answer, the restart is to blame. A login
/// answered while the restart was under way (before the target was ready again) counts as
/// before it: the old process finishes its requests as it shuts down, and the new one may
/// not have what that process stored.
pub fn logouts(ev: &Evidence, interrupted: &BTreeSet<usize>) -> Vec<Finding> {
    let logins = LoginEnds::of(ev.obs);
    let mut plain: Vec<&Observation> = Vec::new();
    let mut after_restart: Vec<&Observation> = Vec::new();
    for (i, o) in ev.obs.iter().enumerate() {
        if !o.unexplained_anonymous() || interrupted.contains(&i) {
            continue;
        }
        let last_login = logins.last_by(o.vu, o.start_us);
        let restart_between = ev.restarts.iter().any(|r| {
            let over_us = r.ready_us.unwrap_or(u64::MAX);
            last_login <= over_us && r.start_us <= o.start_us
        });
        if restart_between {
            after_restart.push(o);
        } else {
            plain.push(o);
        }
    }
    let mut out = Vec::new();
    if let Some(f) = logout_finding(ev, &plain, &logins) {
        out.push(f);
    }
    if let Some(first) = after_restart.iter().min_by_key(|o| o.start_us) {
        let users: BTreeSet<u32> = after_restart.iter().map(|o| o.vu).collect();
        let active: BTreeSet<u32> = ev
            .obs
            .iter()
            .filter(|o| o.step == Step::Login && o.authenticated == Some(true))
            .map(|o| o.vu)
            .collect();
        out.push(Finding {
            kind: FindingKind::RestartLogout,
            severity: Severity::Error,
            count: users.len() as u64,
            first_at_s: secs(first.start_us),
            message: format!(
                "{} of {} logged-in users were anonymous after a restart with the same cookies (no login in between): sessions did not survive the restart",
                users.len(),
                active.len()
            ),
            example: describe(first),
        });
    }
    out
}

fn logout_finding(
    ev: &Evidence,
    plain: &[&Observation],
    login_ends: &LoginEnds,
) -> Option<Finding> {
    let first = plain.iter().min_by_key(|o| o.start_us)?;
    let users: BTreeSet<u32> = plain.iter().map(|o| o.vu).collect();
    let seen = ev.digest.seen_logged_in;
    let pids: BTreeSet<String> = plain
        .iter()
        .filter_map(|o| o.worker)
        .map(|w| w.to_string())
        .collect();
    let replacements = Replacements::index(ev.obs);
    // Anonymous answers after a response replaced the login cookie; of those, the ones whose
    // replacing request crossed the user's own logout and re-login: the race, on any store, so
    // the workers are not what to look at (Label Studio, tabs on a shared database store, was
    // asked whether its workers share the store).
    let (mut replaced, mut raced) = (0, 0);
    for culprit in plain.iter().filter_map(|v| replacements.before(v)) {
        replaced += 1;
        raced += crossed_login(culprit, login_ends).is_some() as usize;
    }
    let mostly_raced = raced * 2 > plain.len();
    let mut message = format!(
        "{} of {seen} requests by logged-in users came back anonymous ({} affected)",
        plain.len(),
        match users.len() {
            1 => "1 user".to_string(),
            n => format!("{n} users"),
        }
    );
    // Most anonymous answers came after a response replaced the login cookie: that is the
    // symptom to name, before the workers'.
    let mostly_replaced = replaced * 2 > plain.len();
    if mostly_replaced {
        message.push_str(&format!(
            "; {replaced} of them after a response replaced the session cookie the login had set"
        ));
    } else if let (false, Some(split)) = (pids.is_empty(), worker_split(ev, plain)) {
        message.push_str(&format!(
            "; {split} logins were anonymous on some requests and authenticated again on later ones \
             (anonymous on workers {pids:?}): sessions are not shared between workers"
        ));
    }
    // Which worker or replica rejects the logins another accepted, whatever the symptom but
    // the race.
    let who = (!mostly_raced).then(|| worker_disagreement(ev)).flatten();
    if let Some(who) = who {
        message.push_str("; ");
        message.push_str(&who);
    } else if ev.digest.pids.is_empty() && !mostly_replaced {
        // Nothing in the run named a worker: say what usually causes it, and how to see more.
        message.push_str(
            "; which worker answered is not known (no [probe] or worker_header): sessions kept per worker (an in-memory store or cache) or a SECRET_KEY that differs per worker or replica are the usual causes, and the drop-in probe (README) shows which workers disagree",
        );
    }
    let mut example = describe(first);
    // The cookie-replacement symptom: an earlier response of the same user overwrote the
    // session cookie its own login had set, and the user is anonymous since.
    if let Some((culprit, victim)) = replacements.first_culprit(plain) {
        let how = if culprit.login_cookie_deleted {
            "deleted"
        } else {
            "replaced"
        };
        message.push_str(&format!(
            "; the session cookie `{}` was {how} by the response to {} {} (started {:.3}s, finished {:.3}s), not by a login, and the user was anonymous at {:.3}s",
            culprit.replaced_login_cookie.as_deref().unwrap_or("?"),
            if culprit.step == Step::Logout { "POST" } else { "GET" },
            culprit.path,
            secs(culprit.start_us),
            secs(culprit.end_us),
            secs(victim.start_us)
        ));
        // The login whose cookie it overwrote ended before the answer came back; a request
        // sent before that login ended was sent without its cookie (Label Studio trial: tab 1's
        // request crossed tab 0's logout and re-login, and its anonymous answer's new session
        // cookie replaced the re-login's, as it would in a browser).
        if let Some(overwritten) = crossed_login(culprit, login_ends) {
            message.push_str(&format!(
                "; that request was sent at {:.3}s, before the login it overwrote had finished ({:.3}s), so it carried no such session: its answer's cookie replaced the new login's, as a browser tab's in flight across a logout and login would",
                secs(culprit.start_us),
                secs(overwritten)
            ));
        } else if culprit.authenticated == Some(false) {
            // Found on Wagtail: the request that dropped the cookie is not to blame, the
            // worker that answered it without knowing the session is.
            message.push_str(&format!(
                "; that response was itself anonymous: the worker that answered it{} did not know the session and {how} its cookie",
                culprit
                    .worker
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            ));
        }
        example = json!({ "anonymous": describe(victim), "replaced_by": describe(culprit) });
    }
    Some(Finding {
        kind: FindingKind::Logout,
        severity: Severity::Error,
        count: plain.len() as u64,
        first_at_s: secs(first.start_us),
        message,
        example,
    })
}

/// How many logins (user and epoch) were anonymous and then authenticated again without a
/// new login: the session is valid on some workers and not on others.
fn worker_split(ev: &Evidence, anonymous: &[&Observation]) -> Option<usize> {
    let logins: BTreeSet<(u32, u32)> = anonymous.iter().map(|o| (o.vu, o.epoch_start)).collect();
    // The first anonymous answer of each of those logins...
    let mut first_anonymous: HashMap<(u32, u32), u64> = HashMap::new();
    for o in ev.obs.iter().filter(|o| o.unexplained_anonymous()) {
        let key = (o.vu, o.epoch_start);
        if logins.contains(&key) {
            let t = first_anonymous.entry(key).or_insert(o.start_us);
            *t = (*t).min(o.start_us);
        }
    }
    // ...followed by an authenticated one of the same login.
    let n = first_anonymous
        .iter()
        .filter(|(key, &t)| {
            ev.digest
                .last_authenticated
                .get(key)
                .is_some_and(|&a| a > t)
        })
        .count();
    (n > 0).then_some(n)
}

/// Which workers (or replicas, when identities are `replica:worker` over several replicas)
/// disagree about sessions: "logged in via web-1, anonymous on web-3 (12 of the 12 answers
/// web-3 gave them)", the
/// pairs with the most anonymous answers first, and the one replica in every such pair.
fn worker_disagreement(ev: &Evidence) -> Option<String> {
    let pairs = &ev.digest.worker_pairs;
    let replicas: BTreeSet<String> = ev
        .digest
        .pids
        .keys()
        .map(|w| w.replica().unwrap_or_else(|| w.to_string()))
        .collect();
    // One host's identities ("vm:17", "vm:18") are told apart by the whole name.
    let by_replica = replicas.len() >= 2 && ev.digest.pids.keys().any(|w| w.replica().is_some());
    let group = |w: crate::observe::worker::WorkerId| -> String {
        match w.replica() {
            Some(r) if by_replica => r,
            _ => w.to_string(),
        }
    };
    let mut grouped: BTreeMap<(String, String), crate::observe::digest::PairCount> =
        BTreeMap::new();
    for (&(via, on), n) in pairs {
        let (via, on) = (group(via), group(on));
        if via != on {
            let g = grouped.entry((via, on)).or_default();
            g.answers += n.answers;
            g.authenticated += n.authenticated;
        }
    }
    let mut bad: Vec<(&(String, String), u64, u64)> = grouped
        .iter()
        .map(|(k, n)| (k, n.answers - n.authenticated, n.answers))
        .filter(|&(_, anonymous, _)| anonymous > 0)
        .collect();
    if bad.is_empty() {
        return None;
    }
    bad.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    // Identities of one kind (a header, a PID) do not say whether they are processes of one
    // server or replicas behind a balancer.
    let what = if by_replica {
        "replicas"
    } else {
        "workers (or replicas)"
    };
    let shown: Vec<String> = bad
        .iter()
        .take(3)
        .map(|((via, on), anonymous, answers)| {
            format!(
                "logged in via {via}, anonymous on {on} ({anonymous} of the {answers} answers \
                 {on} gave them)"
            )
        })
        .collect();
    let mut out = shown.join("; ");
    // The odd one out: a group in every disagreeing pair while others agree among themselves.
    let groups: BTreeSet<&String> = grouped.keys().flat_map(|(a, b)| [a, b]).collect();
    let in_all: Vec<&&String> = groups
        .iter()
        .filter(|g| bad.iter().all(|((a, b), _, _)| a == **g || b == **g))
        .collect();
    // ...and only where the others were seen to agree: with a key per worker, a sample whose
    // disagreeing pairs happen to share one worker named it the odd one (Label Studio trial).
    let others_agree = |odd: &String| {
        grouped
            .iter()
            .any(|((a, b), n)| a != odd && b != odd && n.answers > 0)
    };
    if bad.len() >= 2 && in_all.len() == 1 && groups.len() >= 3 && others_agree(in_all[0]) {
        out.push_str(&format!(
            "; {} disagrees with every other one of the {what}",
            in_all[0]
        ));
    }
    out.push_str(&format!(
        ": do the {what} share the session store and SECRET_KEY?"
    ));
    Some(out)
}

/// When the login a replacing answer overwrote ended, if the request was sent before that:
/// it carried no such session, whatever the worker knew.
fn crossed_login(culprit: &Observation, logins: &LoginEnds) -> Option<u64> {
    let overwritten = logins.last_by(culprit.vu, culprit.end_us);
    (culprit.start_us < overwritten).then_some(overwritten)
}

/// Responses that replaced a login cookie, per user and the login epoch they ended in, in the
/// order they ended: "which response replaced this user's cookie before it was seen anonymous"
/// is then a binary search, not a pass over every observation (a broken run keeps hundreds of
/// thousands of anonymous answers).
struct Replacements<'a>(HashMap<(u32, u32), Vec<&'a Observation>>);

impl<'a> Replacements<'a> {
    fn index(all: &'a [Observation]) -> Replacements<'a> {
        let mut by_login: HashMap<(u32, u32), Vec<&Observation>> = HashMap::new();
        // An answer that was itself authenticated and set a new value renewed the session, it
        // did not end it: Flask re-signs its cookie session on every answer (a new timestamp, so
        // a new value), and with a per-worker SECRET_KEY blaming that answer hid the real cause.
        let replacing =
            |o: &&Observation| o.replaced_login_cookie.is_some() && o.authenticated != Some(true);
        for o in all.iter().filter(replacing) {
            by_login.entry((o.vu, o.epoch_end)).or_default().push(o);
        }
        for v in by_login.values_mut() {
            v.sort_by_key(|o| o.end_us); // stable: among equal ends, the later one wins below
        }
        Replacements(by_login)
    }

    /// The response that replaced `victim`'s login cookie before it was seen anonymous (the
    /// same user, since its last login or logout).
    fn before(&self, victim: &Observation) -> Option<&'a Observation> {
        let same_login = self.0.get(&(victim.vu, victim.epoch_start))?;
        match same_login.partition_point(|o| o.end_us <= victim.start_us) {
            0 => None,
            n => Some(same_login[n - 1]),
        }
    }

    /// The first anonymous answer preceded by a response that replaced its login cookie.
    fn first_culprit(
        &self,
        anonymous: &[&'a Observation],
    ) -> Option<(&'a Observation, &'a Observation)> {
        let mut victims: Vec<&&Observation> = anonymous.iter().collect();
        victims.sort_by_key(|o| o.start_us);
        victims
            .into_iter()
            .find_map(|v| self.before(v).map(|c| (c, *v)))
    }
}

/// `worker_coverage`: fewer distinct worker PIDs than expected.
pub fn worker_coverage(ev: &Evidence) -> Option<Finding> {
    let want = ev.cfg.min_distinct_pids?;
    if ev.digest.persistence_judged == 0 && ev.digest.logins_ok == 0 {
        // No probe of a logged-in user (every login failed, say): nothing to say about workers;
        // the `min_distinct_pids` expectation reports "not measured".
        return None;
    }
    let pids: BTreeSet<String> = ev.digest.pids.keys().map(|w| w.to_string()).collect();
    if pids.len() >= want {
        return None;
    }
    let probes = ev.digest.probes;
    Some(Finding {
        kind: FindingKind::WorkerCoverage,
        severity: Severity::Error,
        count: pids.len() as u64,
        first_at_s: 0.0,
        message: format!(
            "{probes} probes reached {} distinct workers {pids:?}, expected at least {want}; {}",
            pids.len(),
            if ev.cfg.new_connections {
                "every request had a new connection, so the server or balancer sent them all \
                 there: are the other workers up and in the balancer?"
            } else {
                "with keep-alive connections a user can stick to one worker (try [load] \
                 connection = \"new\")"
            }
        ),
        example: json!({ "pids": pids }),
    })
}

/// Indices of observations that a concurrent logout of the same jar explains as
/// SessionInterrupted: a pattern match (any status), or an interrupted status on a path that
/// had worked before, in flight while that user logged out (or within the window after).
fn interrupted_indices(ev: &Evidence) -> BTreeSet<usize> {
    // A logout deletes the jar's session; so does a login that rotates the session id (Django's
    // login() calls cycle_key()): both are flushes that a concurrent save can trip over.
    let mut flushes: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    for o in ev.obs.iter().filter(|o| is_flush(o)) {
        flushes
            .entry(o.vu)
            .or_default()
            .push((o.start_us, o.end_us));
    }
    let flushes: HashMap<u32, Flushes> = flushes
        .into_iter()
        .map(|(vu, f)| (vu, Flushes::new(f)))
        .collect();
    // When each path first worked, to keep a path that always fails out of this.
    let first_ok = &ev.digest.first_ok;
    let window = ev.cfg.interrupted_window_us;
    let mut out = BTreeSet::new();
    for (i, o) in ev.obs.iter().enumerate() {
        if o.step == Step::Login || o.step == Step::Logout {
            continue;
        }
        if o.pattern_match {
            out.insert(i);
            continue;
        }
        let Some(status) = o.status else { continue };
        if !ev.cfg.interrupted_statuses.contains(&status) {
            continue;
        }
        let worked_before = first_ok.get(&o.path).is_some_and(|&t| t < o.start_us);
        let raced = flushes
            .get(&o.vu)
            .is_some_and(|f| f.overlaps(o.start_us, o.end_us, window));
        if worked_before && raced {
            out.insert(i);
        }
    }
    out
}

/// One user's flushes (start, end), sorted by start, with the latest end among each prefix:
/// "did any flush overlap this request" is then a binary search (re-logins make flushes as
/// many as anonymous answers in a broken run).
struct Flushes {
    starts: Vec<u64>,
    max_end: Vec<u64>,
}

impl Flushes {
    fn new(mut f: Vec<(u64, u64)>) -> Flushes {
        f.sort_unstable();
        let starts = f.iter().map(|&(s, _)| s).collect();
        let max_end = f
            .iter()
            .scan(0u64, |m, &(_, e)| {
                *m = (*m).max(e);
                Some(*m)
            })
            .collect();
        Flushes { starts, max_end }
    }

    /// Some flush started by `end` and ended no earlier than `window` before `start`.
    fn overlaps(&self, start: u64, end: u64, window: u64) -> bool {
        match self.starts.partition_point(|&s| s <= end) {
            0 => false,
            n => start <= self.max_end[n - 1] + window,
        }
    }
}

/// A request that deletes the jar's server-side session: a logout, or a re-login (rotation).
fn is_flush(o: &Observation) -> bool {
    o.step == Step::Logout || (o.step == Step::Login && o.epoch_start > 0)
}

/// `session_interrupted`: requests that failed because a concurrent request deleted their session.
pub fn session_interrupted(ev: &Evidence, idx: &BTreeSet<usize>) -> Option<Finding> {
    let hits: Vec<&Observation> = idx.iter().map(|&i| &ev.obs[i]).collect();
    let first = hits.iter().min_by_key(|o| o.start_us)?;
    let logouts: Vec<&Observation> = ev.obs.iter().filter(|o| o.step == Step::Logout).collect();
    let by_text = hits.iter().filter(|o| o.pattern_match).count();
    let statuses: BTreeMap<u16, usize> =
        hits.iter()
            .filter_map(|o| o.status)
            .fold(BTreeMap::new(), |mut m, s| {
                *m.entry(s).or_default() += 1;
                m
            });
    let per_logout = if logouts.is_empty() {
        None
    } else {
        Some(hits.len() as f64 / logouts.len() as f64)
    };
    let mut message = format!(
        "{} requests were interrupted by a concurrent logout (or session-rotating re-login) of the same session (statuses {statuses:?}; {by_text} named it in the response)",
        hits.len()
    );
    if let Some(r) = per_logout {
        message.push_str(&format!(
            ", {r:.2} per deliberate logout over {} logouts",
            logouts.len()
        ));
    }
    if ev.server_log_matches > 0 {
        message.push_str(&format!(
            "; the server log has {} matching lines",
            ev.server_log_matches
        ));
    }
    let logout = logouts
        .iter()
        .filter(|l| l.vu == first.vu && l.start_us <= first.end_us + ev.cfg.interrupted_window_us)
        .max_by_key(|l| l.start_us);
    Some(Finding {
        kind: FindingKind::SessionInterrupted,
        severity: Severity::Error,
        count: hits.len() as u64,
        first_at_s: secs(first.start_us),
        message,
        example: json!({
            "request": describe(first),
            "logout": logout.map(|l| describe(l)),
            "per_logout": per_logout,
        }),
    })
}

/// `infinite_loading`: timeouts, redirect loops, and users who never got an authenticated
/// page back within `recovery_timeout` after a restart.
pub fn infinite_loading(ev: &Evidence) -> Option<Finding> {
    let stuck: Vec<&Observation> = ev
        .obs
        .iter()
        .filter(|o| o.failure.as_ref().is_some_and(Failure::is_loading))
        .collect();
    let stages: Vec<Stage> = stuck
        .iter()
        .filter_map(|o| match o.failure {
            Some(Failure::Timeout(stage)) => Some(stage),
            _ => None,
        })
        .collect();
    let timeouts = stages.len();
    let loops = stuck.len() - timeouts;
    let (unrecovered, already_failing) = unrecovered_users(ev);
    let never_ready = ev.restarts.iter().filter(|r| r.ready_us.is_none()).count();
    let count = (stuck.len() + unrecovered.len() + never_ready) as u64;
    if count == 0 {
        return None;
    }
    let mut parts = Vec::new();
    if timeouts > 0 {
        parts.push(format!(
            "{timeouts} requests got no answer within loading_timeout ({})",
            by_stage(&stages)
        ));
    }
    if loops > 0 {
        parts.push(format!(
            "{loops} requests ended in a redirect loop or too many redirects"
        ));
    }
    if !unrecovered.is_empty() {
        let mut part = format!(
            "{} users got no authenticated page within recovery_timeout after a restart",
            unrecovered.len()
        );
        if let Some((late, slowest_s)) = served_late(ev, &unrecovered) {
            // Label Studio under a HUP: new workers took 5-7 s to import the app, nobody was
            // logged out, and "no authenticated page" read as sessions lost.
            part.push_str(&format!(
                " ({late} of them were served logged in again later, the last after {slowest_s:.1} s: slower than recovery_timeout ({:.1} s); new workers still starting?)",
                ev.cfg.recovery_timeout_us as f64 / 1e6
            ));
        }
        if already_failing > 0 {
            part.push_str(&format!(
                " ({already_failing} more are counted under `logout`: anonymous before the restart, or again after logging in anew since; their sessions do not stick, which the restart did not cause)"
            ));
        }
        parts.push(part);
    }
    if never_ready > 0 {
        parts.push(format!("{never_ready} restarts never came back ready"));
    }
    let first = stuck.iter().min_by_key(|o| o.start_us);
    let first_at = first
        .map(|o| o.start_us)
        .or_else(|| ev.restarts.first().map(|r| r.start_us))
        .unwrap_or(0);
    Some(Finding {
        kind: FindingKind::InfiniteLoading,
        severity: Severity::Error,
        count,
        first_at_s: secs(first_at),
        message: parts.join("; "),
        example: first
            .map(|o| describe(o))
            .unwrap_or_else(|| json!({ "users": unrecovered })),
    })
}

/// "2 still connecting, 1 sent, waiting for the answer": how far the timed-out requests got,
/// which tells a server that stopped accepting from a handler that hangs.
fn by_stage(stages: &[Stage]) -> String {
    [Stage::Connect, Stage::Answer, Stage::Body]
        .into_iter()
        .filter_map(|stage| {
            let n = stages.iter().filter(|s| **s == stage).count();
            (n > 0).then(|| format!("{n} {}", stage.describe()))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Users active after a restart that got no authenticated answer within the recovery time,
/// and how many more did not but fail by `logout` instead: anonymous before the first
/// restart, or anonymous again after a login that worked after the restart. That is a session
/// bug the restart did not cause (sessions kept per worker: a new login sticks only to the
/// worker that served it), and blaming it on infinite loading would point at the wrong cause
/// (found on Wagtail with a per-worker cache session store).
fn unrecovered_users(ev: &Evidence) -> (Vec<u32>, usize) {
    let first_restart = ev
        .restarts
        .iter()
        .map(|r| r.start_us)
        .min()
        .unwrap_or(u64::MAX);
    let logins = LoginEnds::of(ev.obs);
    let back_at: Vec<u64> = ev.restarts.iter().filter_map(|r| r.ready_us).collect();
    // Logged in anew after a restart was back: the login worked, the session did not stick.
    let relogin_lost = |o: &Observation| {
        let login_end = logins.last_by(o.vu, o.start_us);
        back_at.iter().any(|ready| login_end >= *ready)
    };
    let failing_anyway: BTreeSet<u32> = ev
        .obs
        .iter()
        .filter(|o| o.unexplained_anonymous() && (o.start_us < first_restart || relogin_lost(o)))
        .map(|o| o.vu)
        .collect();
    let mut out = BTreeSet::new();
    for (r, rec) in ev.restarts.iter().zip(&ev.digest.recovery) {
        let Some(ready) = r.ready_us else { continue };
        if ready + ev.cfg.recovery_timeout_us > ev.cfg.run_end_us {
            continue; // the run ended before the user had the whole recovery time
        }
        out.extend(rec.active.difference(&rec.recovered));
    }
    let before = out.len();
    out.retain(|vu| !failing_anyway.contains(vu));
    let folded = before - out.len();
    (out.into_iter().collect(), folded)
}

/// Of the users who were not served within `recovery_timeout` after a restart, how many were
/// served logged in again later, and the longest wait (seconds from ready).
fn served_late(ev: &Evidence, unrecovered: &[u32]) -> Option<(usize, f64)> {
    let mut late = 0;
    let mut slowest_us = 0;
    for vu in unrecovered {
        let waits = ev
            .restarts
            .iter()
            .zip(&ev.digest.recovery)
            .filter_map(|(r, rec)| Some(rec.back_at.get(vu)?.saturating_sub(r.ready_us?)));
        if let Some(wait) = waits.max() {
            late += 1;
            slowest_us = slowest_us.max(wait);
        }
    }
    (late > 0).then(|| (late, slowest_us as f64 / 1e6))
}

/// `http_error`: error statuses and transport failures not explained by a restart or a logout.
pub fn http_error(ev: &Evidence, interrupted: &BTreeSet<usize>) -> Option<Finding> {
    let mut hits: Vec<&Observation> = Vec::new();
    for (i, o) in ev.obs.iter().enumerate() {
        if !is_traffic(o) || interrupted.contains(&i) {
            continue;
        }
        let bad = match (&o.failure, o.status) {
            (Some(f), _) if f.is_loading() => false, // infinite_loading's
            (Some(Failure::Connect(_)) | Some(Failure::Transport(_)), _) => {
                !(during_restart(o.start_us, ev.restarts)
                    || during_restart(o.end_us, ev.restarts)
                    || recovering(o.start_us, ev))
            }
            (Some(_), _) => true,
            (None, Some(401 | 403)) => false, // anonymity, judged by the logout detectors
            (None, Some(s)) => s >= 400 && !(s >= 500 && during_restart(o.start_us, ev.restarts)),
            (None, None) => false,
        };
        if bad {
            hits.push(o);
        }
    }
    let first = hits.iter().min_by_key(|o| o.start_us)?;
    // Per kind of failure, how often, and on which paths: a typo in `requests` is a 404 on
    // one path, which the message should name.
    let mut kinds: BTreeMap<String, (usize, BTreeMap<&str, usize>)> = BTreeMap::new();
    for o in &hits {
        let k = match (&o.failure, o.status) {
            (Some(Failure::BadProbe(_)), _) => "bad probe answer".to_string(),
            (Some(Failure::Connect(_)), _) => "connection failed".to_string(),
            (Some(Failure::OutOfFiles(_)), _) => {
                "not sent: sesscheck ran out of open files (its own limit, `ulimit -n`)".to_string()
            }
            (Some(Failure::OffOrigin(_)), _) => {
                "redirected off the target's origin (not followed)".to_string()
            }
            (Some(_), _) => "transport error".to_string(),
            (None, Some(s)) => format!("HTTP {s}"),
            (None, None) => "?".into(),
        };
        let (n, paths) = kinds.entry(k).or_default();
        *n += 1;
        *paths.entry(&o.path).or_default() += 1;
    }
    let total = ev.digest.traffic;
    let summary: Vec<String> = kinds
        .iter()
        .map(|(k, (n, paths))| format!("{n}× {k} ({})", on_paths(paths)))
        .collect();
    Some(Finding {
        kind: FindingKind::HttpError,
        severity: Severity::Error,
        count: hits.len() as u64,
        first_at_s: secs(first.start_us),
        message: format!(
            "{} of {total} requests failed: {}",
            hits.len(),
            summary.join(", ")
        ),
        example: describe(first),
    })
}

/// "on /a" or "on /a 90×, /b 16×": the paths most hit first, at most three named.
fn on_paths(paths: &BTreeMap<&str, usize>) -> String {
    if paths.len() == 1 {
        return format!("on {}", paths.keys().next().unwrap_or(&"?"));
    }
    let mut most: Vec<(&str, usize)> = paths.iter().map(|(p, n)| (*p, *n)).collect();
    most.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<String> = most
        .iter()
        .take(3)
        .map(|(p, n)| format!("{p} {n}×"))
        .collect();
    let rest = most.len().saturating_sub(3);
    if rest > 0 {
        let paths = if rest == 1 { "path" } else { "paths" };
        format!("on {} and {rest} more {paths}", named.join(", "))
    } else {
        format!("on {}", named.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::logins::last_at_or_before;
    use crate::observe::digest::{must_keep, DigestConfig};

    fn cfg() -> DetectConfig {
        DetectConfig {
            interrupted_statuses: vec![400, 500],
            interrupted_window_us: 250_000,
            recovery_timeout_us: 2_000_000,
            target_output: true,
            min_distinct_pids: Some(2),
            run_end_us: 20_000_000,
            new_connections: false,
            accounts_file: false,
            one_account: true,
            write_paths: Vec::new(),
        }
    }

    /// A request observation; `auth` is what the answer said.
    fn obs(
        vu: u32,
        step: Step,
        start: u64,
        end: u64,
        status: u16,
        auth: Option<bool>,
    ) -> Observation {
        Observation {
            status: Some(status),
            first_status: Some(status),
            to_login: auth == Some(false),
            // Probes are answered by one of three workers.
            worker: (step == Step::Probe)
                .then(|| crate::observe::worker::WorkerId::of_pid(100 + (start / 1000) % 3)),
            authenticated: auth,
            ..Observation::sample(vu, step, start, end)
        }
    }

    fn login(vu: u32, end: u64) -> Observation {
        let mut o = obs(vu, Step::Login, end - 10, end, 302, Some(true));
        o.logged_in = false;
        o.epoch_start = 0;
        o
    }

    /// The digest's settings that go with a detector configuration, as a run derives them.
    fn digest_config(c: &DetectConfig) -> DigestConfig {
        DigestConfig {
            interrupted_statuses: c.interrupted_statuses.clone(),
            recovery_timeout_us: c.recovery_timeout_us,
            restart_planned: false,
        }
    }

    /// The message of the finding of `kind` (there must be one).
    fn message_of(findings: &[Finding], kind: FindingKind) -> &str {
        &findings
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} finding in {findings:?}"))
            .message
    }

    /// `login_failed`'s message, for these login observations and whether sesscheck started
    /// the target.
    fn login_message(logins: &[Observation], target_output: bool) -> String {
        login_message_with(
            DetectConfig {
                target_output,
                ..cfg()
            },
            logins,
        )
    }

    fn login_message_with(c: DetectConfig, logins: &[Observation]) -> String {
        login_message_around(c, logins, &[])
    }

    fn login_message_around(
        c: DetectConfig,
        logins: &[Observation],
        restarts: &[RestartWindow],
    ) -> String {
        let digest = Digest::of(logins, restarts, digest_config(&c));
        let audit = AuditConfig::default();
        let ev = Evidence {
            obs: logins,
            digest: &digest,
            restarts,
            cfg: &c,
            server_log_matches: 0,
            audit: &audit,
            config: None,
        };
        login_failed(&ev).expect("a failed login").message
    }

    fn rejected_login(vu: u32, status: u16) -> Observation {
        let mut o = obs(vu, Step::Login, 0, 10, status, Some(false));
        o.failure = Some(Failure::LoginRejected(format!("HTTP {status}")));
        o
    }

    /// "X disagrees with every other one" needs the others seen agreeing: three workers with
    /// a key each, sampled so that both disagreeing pairs share one, name no odd one out.
    #[test]
    fn the_odd_worker_out_is_named_only_when_the_others_agree() {
        use crate::observe::digest::PairCount;
        use crate::observe::worker::WorkerId;
        let (a, b, c) = (
            WorkerId::intern("odd-a"),
            WorkerId::intern("odd-b"),
            WorkerId::intern("odd-c"),
        );
        let say = |pairs: &[(WorkerId, WorkerId, u64, u64)]| {
            let c_ = cfg();
            let mut digest = Digest::of(&[], &[], digest_config(&c_));
            for &(via, on, answers, authenticated) in pairs {
                digest.pids.insert(via, 1);
                digest.pids.insert(on, 1);
                digest.worker_pairs.insert(
                    (via, on),
                    PairCount {
                        answers,
                        authenticated,
                    },
                );
            }
            let audit = AuditConfig::default();
            let ev = Evidence {
                obs: &[],
                digest: &digest,
                restarts: &[],
                cfg: &c_,
                server_log_matches: 0,
                audit: &audit,
                config: None,
            };
            worker_disagreement(&ev).unwrap()
        };
        let sampled = say(&[(a, b, 4, 0), (c, b, 3, 0)]);
        assert!(!sampled.contains("disagrees with every other"), "{sampled}");
        let odd = say(&[(a, b, 4, 0), (c, b, 3, 0), (a, c, 5, 5)]);
        assert!(
            odd.contains("odd-b disagrees with every other one"),
            "{odd}"
        );
    }

    /// Calibre-Web's login limit: 401 with the login page and "Please wait one minute before
    /// next login". Some logins worked, yet the cause is the limit, not a secret per worker.
    #[test]
    fn a_login_page_that_asks_to_wait_is_a_login_limit() {
        let ok = obs(1, Step::Login, 0, 5, 302, Some(true));
        let mut limited = rejected_login(0, 401);
        limited.failure = Some(Failure::LoginRejected(
            "HTTP 401, page \"Calibre-Web | Login: Please wait one minute before next login\""
                .into(),
        ));
        let m = login_message_with(cfg(), &[ok.clone(), limited]);
        assert!(
            m.contains("a login limit") && !m.contains("SECRET_KEY"),
            "{m}"
        );
        // A plain refusal while others worked still points at the workers.
        let m = login_message_with(cfg(), &[ok, rejected_login(0, 401)]);
        assert!(m.contains("SECRET_KEY"), "{m}");
    }

    #[test]
    fn a_server_error_to_a_login_in_flight_during_a_restart_is_put_down_to_the_restart() {
        let restart = RestartWindow {
            start_us: 8,
            ready_us: Some(50),
            method: "command".into(),
        };
        let mut ok = obs(1, Step::Login, 0, 5, 302, Some(true));
        ok.failure = None;
        let cut = rejected_login(0, 502);
        let m = login_message_around(
            cfg(),
            &[ok.clone(), cut.clone()],
            std::slice::from_ref(&restart),
        );
        assert!(
            m.contains("while the target restarted (1 of the failed logins were in flight then)")
                && !m.contains("migrations"),
            "{m}"
        );
        // The same 502 long before the restart is the app's.
        let early = RestartWindow {
            start_us: 1_000,
            ready_us: Some(2_000),
            ..restart
        };
        let m = login_message_around(cfg(), &[ok, cut], &[early]);
        assert!(
            m.contains("migrations") && !m.contains("while the target restarted"),
            "{m}"
        );
    }

    #[test]
    fn a_login_whose_page_came_from_another_worker_names_both_when_every_login_failed() {
        let named = |n: &str| Some(crate::observe::worker::WorkerId::intern(n));
        let mut page = obs(0, Step::Csrf, 0, 5, 200, None);
        page.worker = named("127.0.0.1:8881");
        let mut login = rejected_login(0, 403);
        login.start_us = 6;
        login.end_us = 10;
        login.worker = named("127.0.0.1:8882");
        let m = login_message(&[page.clone(), login.clone()], false);
        assert!(
            m.contains(
                "its login page came from 127.0.0.1:8881 and the login went to 127.0.0.1:8882"
            ) && m.contains("give users accounts of their own"),
            "{m}"
        );
        // Users with accounts of their own are not told to get them (Label Studio trial).
        let own = DetectConfig {
            one_account: false,
            ..cfg()
        };
        let m = login_message_with(own, &[page.clone(), login.clone()]);
        assert!(
            m.contains("its login page came from") && !m.contains("accounts of their own"),
            "{m}"
        );
        // The same worker for both, or workers not known: the password is the likely cause.
        login.worker = page.worker;
        assert!(
            !login_message(&[page.clone(), login.clone()], false).contains("login page came from")
        );
        login.worker = None;
        assert!(!login_message(&[page, login], false).contains("login page came from"));
    }

    #[test]
    fn login_failed_points_at_the_servers_output_only_when_sesscheck_started_it() {
        let logins = [rejected_login(0, 400)];
        assert!(login_message(&logins, true).contains("run with -v"));
        assert!(!login_message(&logins, false).contains("-v"));
    }

    #[test]
    fn login_failed_names_the_likely_cause_first() {
        // A rate limit: pace the logins.
        let m = login_message(&[rejected_login(0, 429)], false);
        assert!(m.contains("login_rate") && !m.contains("password"), "{m}");
        // Some logins worked: the scenario is right, the workers disagree.
        let m = login_message(&[rejected_login(0, 400), login(1, 20)], false);
        assert!(
            m.contains("some logins worked, so [login] is right") && m.contains("SECRET_KEY"),
            "{m}"
        );
        // An account's own password is named only where there is an accounts file (the
        // Datasette trial saw it in a scenario without one).
        assert!(!m.contains("[login] accounts"), "{m}");
        let with_file = DetectConfig {
            accounts_file: true,
            one_account: false,
            write_paths: Vec::new(),
            ..cfg()
        };
        let m = login_message_with(with_file, &[rejected_login(0, 400), login(1, 20)]);
        assert!(
            m.contains("that account's password in [login] accounts"),
            "{m}"
        );
        // None worked: the scenario first.
        let m = login_message(&[rejected_login(0, 401), rejected_login(1, 401)], false);
        assert!(
            m.contains("(the password?)") && !m.contains("SECRET_KEY"),
            "{m}"
        );
        // None worked with 400, the refused-token status (FlaskBB trial): the CSRF setup,
        // not the password.
        let m = login_message(&[rejected_login(0, 400), rejected_login(1, 400)], false);
        assert!(
            m.contains("refused CSRF token")
                && m.contains("check [login] csrf")
                && !m.contains("(the password?)"),
            "{m}"
        );
    }

    /// A supervisor restart from 10 ms to 11 ms into the run (ready again at 11 ms).
    fn one_restart() -> Vec<RestartWindow> {
        vec![RestartWindow {
            start_us: 10_000,
            ready_us: Some(11_000),
            method: "supervisor".into(),
        }]
    }

    /// The findings of a run; computed twice, from every observation and from only those a
    /// run keeps (`digest::must_keep`), which must agree: counting the rest loses nothing.
    fn run(obs: &[Observation], restarts: &[RestartWindow]) -> Vec<Finding> {
        let c = cfg();
        let dc = digest_config(&c);
        let digest = Digest::of(obs, restarts, dc.clone());
        let kept: Vec<Observation> = obs.iter().filter(|o| must_keep(o, &dc)).cloned().collect();
        let audit = AuditConfig {
            sessions_per_user: 1,
            ..Default::default()
        };
        let findings = |obs: &[Observation]| {
            detect_all(&Evidence {
                obs,
                digest: &digest,
                restarts,
                cfg: &c,
                server_log_matches: 0,
                audit: &audit,
                config: None,
            })
        };
        let all = findings(obs);
        assert_eq!(
            serde_json::to_value(&all).unwrap(),
            serde_json::to_value(findings(&kept)).unwrap(),
            "the kept observations must give the same findings as all of them"
        );
        all
    }

    fn kinds(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.kind.as_str()).collect()
    }

    fn healthy() -> Vec<Observation> {
        let mut v = vec![login(1, 100)];
        for i in 0..6 {
            v.push(obs(
                1,
                Step::Probe,
                1000 + i * 1000,
                1500 + i * 1000,
                200,
                Some(true),
            ));
            v.push(obs(
                1,
                Step::Request,
                1600 + i * 1000,
                1900 + i * 1000,
                200,
                Some(true),
            ));
        }
        v
    }

    #[test]
    fn healthy_run_has_no_findings() {
        assert!(
            run(&healthy(), &[]).is_empty(),
            "{:?}",
            run(&healthy(), &[])
        );
    }

    #[test]
    fn anonymous_probe_after_login_is_a_logout() {
        let mut v = healthy();
        v.push(obs(1, Step::Probe, 9000, 9100, 200, Some(false)));
        let f = run(&v, &[]);
        assert_eq!(kinds(&f), vec!["logout"]);
        assert_eq!(f[0].count, 1);
    }

    #[test]
    fn anonymity_explained_by_own_logout_is_not_a_logout() {
        let mut v = healthy();
        let mut racing = obs(1, Step::Request, 9000, 9500, 302, Some(false));
        racing.epoch_end = 2; // the user logged out while this was in flight
        let mut after = obs(1, Step::Probe, 9600, 9700, 200, Some(false));
        after.logged_in = false; // the user had logged out
        v.extend([racing, after]);
        assert!(run(&v, &[]).is_empty());
    }

    #[test]
    fn logout_after_restart_is_a_restart_logout() {
        let r = one_restart();
        let mut v = healthy();
        v.push(obs(1, Step::Probe, 12_000, 12_100, 200, Some(false)));
        // The user logs in again and is served (it recovered, so no infinite_loading).
        v.push(login(1, 12_500));
        v.push(obs(1, Step::Probe, 12_600, 12_700, 200, Some(true)));
        let f = run(&v, &r);
        assert_eq!(kinds(&f), vec!["restart_logout"]);
        // An anonymous answer after that fresh login is a plain logout, not the restart's.
        v.push(obs(1, Step::Probe, 13_000, 13_100, 200, Some(false)));
        assert_eq!(kinds(&run(&v, &r)), vec!["logout", "restart_logout"]);
    }

    #[test]
    fn login_answered_while_the_restart_was_under_way_is_a_restart_logout() {
        // Seen on the built-in target: a login in flight when SIGTERM came was answered by
        // the old process as it shut down; the new one started with an empty store.
        let r = one_restart();
        let mut v = healthy();
        v.push(login(1, 10_600));
        v.push(obs(1, Step::Probe, 11_200, 11_300, 200, Some(false)));
        // It logs in again and is served (so no infinite_loading).
        v.push(login(1, 11_500));
        v.push(obs(1, Step::Probe, 11_600, 11_700, 200, Some(true)));
        assert_eq!(kinds(&run(&v, &r)), vec!["restart_logout"]);
        // A login after the target was ready again is the new process's own.
        let mut v = healthy();
        v.push(login(1, 11_100));
        v.push(obs(1, Step::Probe, 11_200, 11_300, 200, Some(false)));
        v.push(login(1, 11_500));
        v.push(obs(1, Step::Probe, 11_600, 11_700, 200, Some(true)));
        assert_eq!(kinds(&run(&v, &r)), vec!["logout"]);
    }

    #[test]
    fn worker_coverage_needs_distinct_pids() {
        let mut v = healthy();
        for o in v.iter_mut() {
            if o.worker.is_some() {
                o.worker = Some(crate::observe::worker::WorkerId::of_pid(7));
            }
        }
        assert_eq!(kinds(&run(&v, &[])), vec!["worker_coverage"]);
    }

    #[test]
    fn status_400_during_own_logout_is_interrupted_and_without_logout_is_http_error() {
        let mut v = healthy();
        let bad = obs(1, Step::Request, 10_000, 10_400, 400, None);
        v.push(bad.clone());
        // No logout: a 400 is an ordinary HTTP error.
        assert_eq!(kinds(&run(&v, &[])), vec!["http_error"]);
        // A logout of the same jar while it was in flight: SessionInterrupted.
        let mut lo = obs(1, Step::Logout, 10_100, 10_200, 302, None);
        lo.path = "/logout".into();
        v.push(lo.clone());
        let f = run(&v, &[]);
        assert_eq!(kinds(&f), vec!["session_interrupted"]);
        assert!(
            f[0].message.contains("1.00 per deliberate logout"),
            "{}",
            f[0].message
        );
        // A logout of ANOTHER user does not explain it.
        let mut v2 = healthy();
        v2.push(bad);
        lo.vu = 2;
        v2.push(lo);
        assert_eq!(kinds(&run(&v2, &[])), vec!["http_error"]);
    }

    #[test]
    fn pattern_match_is_interrupted_at_any_status() {
        let mut v = healthy();
        let mut o = obs(1, Step::Request, 10_000, 10_400, 500, None);
        o.pattern_match = true;
        v.push(o);
        assert_eq!(kinds(&run(&v, &[])), vec!["session_interrupted"]);
    }

    #[test]
    fn timeouts_and_loops_are_infinite_loading() {
        let mut v = healthy();
        let mut t = obs(1, Step::Request, 10_000, 20_000, 0, None);
        t.status = None;
        t.failure = Some(Failure::Timeout(Stage::Answer));
        v.push(t);
        let mut c = obs(2, Step::Request, 11_000, 21_000, 0, None);
        c.status = None;
        c.failure = Some(Failure::Timeout(Stage::Connect));
        v.push(c);
        let f = run(&v, &[]);
        assert_eq!(kinds(&f), vec!["infinite_loading"]);
        assert!(
            f[0].message.contains(
                "2 requests got no answer within loading_timeout \
                 (1 still connecting, 1 sent, waiting for the answer)"
            ),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn connection_errors_while_restarting_are_expected() {
        let mut v = healthy();
        let mut c = obs(1, Step::Request, 10_500, 10_600, 0, None);
        c.status = None;
        c.failure = Some(Failure::Connect("refused".into()));
        v.push(c.clone());
        let r = one_restart();
        v.push(obs(1, Step::Probe, 11_500, 11_600, 200, Some(true)));
        assert!(run(&v, &r).is_empty(), "{:?}", run(&v, &r));
        // The same error with no restart going on is an http_error.
        assert_eq!(kinds(&run(&v, &[])), vec!["http_error"]);
    }

    #[test]
    fn no_recovery_after_restart_is_infinite_loading() {
        let mut v = healthy();
        let r = one_restart();
        let mut c = obs(1, Step::Request, 12_000, 12_100, 0, None);
        c.status = None;
        c.failure = Some(Failure::Connect("refused".into()));
        v.push(c);
        let f = run(&v, &r);
        assert!(kinds(&f).contains(&"infinite_loading"), "{f:?}");
    }

    /// A user served logged in again only after recovery_timeout (new workers still starting)
    /// is still infinite_loading, but the message says how late, so it does not read as lost
    /// sessions (Label Studio under a HUP).
    #[test]
    fn a_slow_recovery_says_when_users_were_served_again() {
        let mut v = healthy();
        let r = one_restart();
        let mut c = obs(1, Step::Request, 12_000, 12_100, 0, None);
        c.status = None;
        c.failure = Some(Failure::Connect("refused".into()));
        v.push(c.clone());
        let f = run(&v, &r);
        let m = message_of(&f, FindingKind::InfiniteLoading);
        assert!(!m.contains("served logged in again later"), "{m}");
        v.push(obs(1, Step::Request, 3_900_000, 4_011_000, 200, Some(true)));
        let f = run(&v, &r);
        let m = message_of(&f, FindingKind::InfiniteLoading);
        assert!(
            m.contains("1 of them were served logged in again later, the last after 4.0 s")
                && m.contains("recovery_timeout (2.0 s)"),
            "{m}"
        );
    }

    /// Issue 15 item 5: a user already logged out before the restart (a per-worker store) who
    /// does not recover after it is the `logout` finding's, not `infinite_loading`.
    #[test]
    fn no_recovery_of_a_user_already_failing_before_the_restart_is_a_logout() {
        let mut v = healthy();
        v.push(obs(1, Step::Probe, 8000, 8100, 200, Some(false)));
        let r = one_restart();
        let mut c = obs(1, Step::Request, 12_000, 12_100, 0, None);
        c.status = None;
        c.failure = Some(Failure::Connect("refused".into()));
        v.push(c);
        let f = run(&v, &r);
        assert_eq!(kinds(&f), vec!["logout"], "{f:?}");
    }

    /// Found on Wagtail with a per-worker cache session store: after the restart a user logs
    /// in anew, which works, and is anonymous again on the next worker. No authenticated page
    /// within recovery_timeout, but that is the `logout` finding's, not `infinite_loading`.
    #[test]
    fn no_recovery_of_a_user_whose_new_login_did_not_stick_is_a_logout() {
        let mut v = healthy();
        let r = one_restart();
        // With the old cookie after the restart: anonymous (the restart's logout).
        v.push(obs(1, Step::Request, 11_100, 11_200, 200, Some(false)));
        // A new login after the restart was back, then anonymous again: not sticking.
        let mut again = login(1, 11_600);
        again.epoch_start = 2;
        again.epoch_end = 3;
        v.push(again);
        for i in 0..3 {
            let t = 12_000 + i * 1000;
            let mut o = obs(1, Step::Request, t, t + 100, 200, Some(false));
            (o.epoch_start, o.epoch_end) = (3, 3);
            v.push(o);
        }
        let f = run(&v, &r);
        let mut k = kinds(&f);
        k.sort();
        assert_eq!(k, vec!["logout", "restart_logout"], "{f:?}");
    }

    #[test]
    fn replaced_cookie_is_named_in_logout() {
        let mut v = healthy();
        let mut stale = obs(1, Step::Request, 8000, 8500, 200, None);
        stale.replaced_login_cookie = Some("sessionid".into());
        v.push(stale);
        v.push(obs(1, Step::Probe, 9000, 9100, 200, Some(false)));
        let f = run(&v, &[]);
        assert_eq!(kinds(&f), vec!["logout"]);
        assert!(
            f[0].message
                .contains("`sessionid` was replaced by the response to GET /dashboard"),
            "{}",
            f[0].message
        );
    }

    /// Found on Wagtail without a probe: "58 of 124 requests ... came back anonymous" and
    /// nothing on where to look. With no worker known, the usual causes are named.
    #[test]
    fn a_logout_with_no_worker_known_names_the_usual_causes() {
        let mut v = vec![login(1, 100)];
        for i in 0..4 {
            let t = 1000 + i * 1000;
            v.push(obs(1, Step::Request, t, t + 300, 200, Some(i % 2 == 0)));
        }
        let f = run(&v, &[]);
        let m = message_of(&f, FindingKind::Logout);
        assert!(m.contains("which worker answered is not known"), "{m}");
        // With probes naming workers, the message says which ones instead.
        let mut v = healthy();
        v.push(obs(1, Step::Probe, 9000, 9100, 200, Some(false)));
        let f = run(&v, &[]);
        assert!(!f[0].message.contains("is not known"), "{}", f[0].message);
    }

    /// Found on Flask-AppBuilder: "106× HTTP 404" left the typo in `requests` to be found in
    /// the JSON.
    #[test]
    fn http_error_names_the_paths() {
        let mut v = healthy();
        for (i, path) in ["/users/lsit/", "/users/lsit/", "/a"].iter().enumerate() {
            let t = 20_000 + i as u64 * 1000;
            let mut o = obs(0, Step::Request, t, t + 100, 404, Some(true));
            o.path = (*path).into();
            v.push(o);
        }
        let f = run(&v, &[]);
        let m = message_of(&f, FindingKind::HttpError);
        assert!(m.contains("3× HTTP 404 (on /users/lsit/ 2×, /a 1×)"), "{m}");
        let one: BTreeMap<&str, usize> = [("/x", 5)].into();
        assert_eq!(on_paths(&one), "on /x");
        let many: BTreeMap<&str, usize> = [("/a", 1), ("/b", 2), ("/c", 3), ("/d", 4)].into();
        assert_eq!(on_paths(&many), "on /d 4×, /c 3×, /b 2× and 1 more path");
    }

    /// A request in flight across the user's re-login: its anonymous answer replaced the new
    /// login's cookie. That is the race, not a worker that did not know the session.
    #[test]
    fn a_cookie_replaced_by_a_request_sent_before_the_login_names_the_race() {
        let mut v = healthy();
        let mut relogin = obs(1, Step::Login, 7000, 7400, 302, Some(true));
        relogin.failure = None;
        v.push(relogin);
        let mut crossing = obs(1, Step::Request, 6900, 8000, 200, Some(false));
        crossing.replaced_login_cookie = Some("sessionid".into());
        // Sent between the user's logout and its re-login: logged out then.
        crossing.logged_in = false;
        v.push(crossing);
        // Seen anonymous by a probe, whose worker differs from the login's: without the race
        // this would ask whether the workers share the store.
        v.push(obs(1, Step::Probe, 9000, 9100, 200, Some(false)));
        let f = run(&v, &[]);
        let m = message_of(&f, FindingKind::Logout);
        assert!(
            m.contains("before the login it overwrote had finished")
                && !m.contains("did not know the session")
                && !m.contains("share the session store"),
            "{m}"
        );
    }

    /// Found on Wagtail with a per-worker cache: "replaced by the response to GET
    /// /sesscheck/probe" read as if the probe broke the session; the worker that did not know
    /// it deleted the cookie.
    #[test]
    fn a_cookie_deleted_by_an_anonymous_answer_names_its_worker() {
        let mut v = healthy();
        let mut dropped = obs(1, Step::Probe, 8000, 8500, 200, Some(false));
        dropped.replaced_login_cookie = Some("sessionid".into());
        dropped.login_cookie_deleted = true;
        v.push(dropped);
        v.push(obs(1, Step::Request, 9000, 9100, 200, Some(false)));
        let f = run(&v, &[]);
        let m = message_of(&f, FindingKind::Logout);
        assert!(
            m.contains("`sessionid` was deleted by the response to GET"),
            "{m}"
        );
        assert!(
            m.contains("that response was itself anonymous: the worker that answered it (102) did not know the session"),
            "{m}"
        );
    }

    /// Found on Flask-AppBuilder with a per-worker SECRET_KEY: every authenticated answer
    /// re-signs the cookie, and the logout was blamed on one of them.
    #[test]
    fn a_cookie_renewed_by_an_authenticated_answer_is_not_blamed() {
        let mut v = healthy();
        let mut renewed = obs(1, Step::Request, 8000, 8500, 200, Some(true));
        renewed.replaced_login_cookie = Some("session".into());
        v.push(renewed);
        v.push(obs(1, Step::Probe, 9000, 9100, 200, Some(false)));
        let f = run(&v, &[]);
        assert_eq!(kinds(&f), vec!["logout"]);
        assert!(!f[0].message.contains("replaced"), "{}", f[0].message);
    }

    proptest::proptest! {
        /// The indexed lookups answer exactly what a pass over every flush would.
        #[test]
        fn flush_index_agrees_with_a_scan(
            flushes in proptest::collection::vec((0u64..10_000, 0u64..500), 0..40),
            start in 0u64..11_000,
            len in 0u64..500,
            window in 0u64..300,
        ) {
            let f: Vec<(u64, u64)> = flushes.iter().map(|&(s, d)| (s, s + d)).collect();
            let end = start + len;
            let scan = f.iter().any(|&(ls, le)| ls <= end && start <= le + window);
            proptest::prop_assert_eq!(Flushes::new(f).overlaps(start, end, window), scan);
        }

        #[test]
        fn last_login_lookup_agrees_with_a_scan(
            mut times in proptest::collection::vec(0u64..1000, 0..30),
            limit in 0u64..1100,
        ) {
            times.sort_unstable();
            let scan = times.iter().rev().find(|&&t| t <= limit).copied();
            proptest::prop_assert_eq!(last_at_or_before(&times, limit), scan);
        }
    }

    #[test]
    fn failed_login_is_reported() {
        let mut v = healthy();
        let mut l = login(2, 500);
        l.authenticated = Some(false);
        v.push(l);
        assert_eq!(kinds(&run(&v, &[])), vec!["login_failed"]);
    }

    /// Issue 15 item 9: the cause in words, never a Rust debug name like `Timeout(Answer)`.
    #[test]
    fn failed_login_message_gives_the_cause_in_words() {
        let mut v = healthy();
        let mut l = login(2, 500);
        l.authenticated = Some(false);
        l.failure = Some(Failure::Timeout(Stage::Answer));
        v.push(l);
        let f = run(&v, &[]);
        let m = &f[0].message;
        assert!(m.contains("timed out, sent, waiting for the answer"), "{m}");
        assert!(!m.contains("Timeout(") && m.contains("-v"), "{m}");
    }

    #[test]
    fn login_reset_by_a_restarting_target_is_not_a_failed_login() {
        // Gunicorn stopping: the connection was accepted by the kernel, then reset.
        let mut v = healthy();
        let mut l = login(2, 5_000);
        l.authenticated = Some(false);
        l.failure = Some(Failure::Transport(
            "Connection reset by peer (os error 104)".into(),
        ));
        v.push(l.clone());
        let restart = RestartWindow {
            start_us: 4_000,
            ready_us: Some(6_000),
            method: "supervisor".into(),
        };
        assert!(!kinds(&run(&v, std::slice::from_ref(&restart))).contains(&"login_failed"));
        // Sent just before the restart began, reset by it.
        let mut early = l.clone();
        early.start_us = 3_900;
        early.end_us = 4_100;
        *v.last_mut().unwrap() = early;
        assert!(!kinds(&run(&v, &[restart])).contains(&"login_failed"));
        // The same reset with no restart going on is a failed login.
        assert!(kinds(&run(&v, &[])).contains(&"login_failed"));
    }
}
