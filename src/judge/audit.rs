//! Session-rule audits: the promises an app makes about its sessions beyond "the login sticks".
//! Several sessions per account, fixation, revocation, lifetime and renewal, cookie attributes,
//! debug config. Like `detect`, pure functions over observations, one per finding kind.

use crate::judge::finding::{Finding, FindingKind, Severity};
use crate::judge::logins::LoginEnds;
use crate::observe::remaining::{RemainingLog, RemainingSeries};
use crate::observe::{Observation, RestartWindow, Step};
use crate::scenario::LogoutScope;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

// Which audits are on is part of the lowered scenario (the judge reads the plan).
pub use crate::scenario::lowered::{AuditConfig, CookieRules, LifetimeExpect};

/// Finding kinds of the audits that are on: each becomes a pass/fail expectation.
pub fn enabled(cfg: &AuditConfig) -> Vec<FindingKind> {
    let on = [
        (cfg.sessions_per_user > 1, FindingKind::SessionConflict),
        (cfg.fixation, FindingKind::SessionFixation),
        (cfg.revocation, FindingKind::LogoutNotRevoked),
        (cfg.lifetime.is_some(), FindingKind::SessionLifetime),
        (cfg.cookies.is_some(), FindingKind::CookieAttributes),
        (cfg.config, FindingKind::Config),
    ];
    on.into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, k)| k)
        .collect()
}

/// What the debug config endpoint said.
#[derive(Debug, Clone, Default)]
pub struct ConfigAnswer {
    pub default_secret: Option<bool>,
    pub warnings: Vec<String>,
    /// The endpoint could not be read (status, not JSON...).
    pub error: Option<String>,
}

/// Measured session lifetime figures, for the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LifetimeInfo {
    /// Max-Age/Expires of the session cookie at login (null: a browser-session cookie).
    pub cookie_lifetime_s: Option<f64>,
    /// What the app said was left, at the first probe after a login.
    pub remaining_at_login_s: Option<f64>,
    /// Whether activity renewed the session (null: no evidence either way).
    pub renewed: Option<bool>,
    /// How much a restart cut off the remaining lifetime (null: no restart or no evidence).
    pub restart_shortened_s: Option<f64>,
}

fn secs(us: u64) -> f64 {
    (us as f64 / 1e6 * 1000.0).round() / 1000.0
}

fn finding(
    kind: FindingKind,
    count: usize,
    first_us: u64,
    message: String,
    example: serde_json::Value,
) -> Finding {
    Finding {
        kind,
        severity: Severity::Error,
        count: count as u64,
        first_at_s: secs(first_us),
        message,
        example,
    }
}

fn account(o: &Observation, cfg: &AuditConfig) -> u32 {
    o.vu / cfg.sessions_per_user.max(1) as u32
}

/// Indices of anonymous answers explained by another session of the same account logging in
/// after this session's own last login (a single-session app kicking the older session out).
pub fn kicked_out(obs: &[Observation], cfg: &AuditConfig) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    if cfg.sessions_per_user < 2 {
        return out;
    }
    // Successful logins' end times per session, and the logins per account by end time, so
    // that each anonymous answer costs a binary search and a short walk, not a pass over every
    // login (a broken run re-logs in as often as it is bounced).
    let own = LoginEnds::of(obs);
    let mut by_account: HashMap<u32, Vec<&Observation>> = HashMap::new();
    let mut longest_login = 0;
    for l in obs
        .iter()
        .filter(|o| o.step == Step::Login && o.authenticated == Some(true))
    {
        by_account.entry(account(l, cfg)).or_default().push(l);
        longest_login = longest_login.max(l.latency_us());
    }
    for v in by_account.values_mut() {
        v.sort_by_key(|l| l.end_us);
    }
    for (i, o) in obs.iter().enumerate() {
        if !o.unexplained_anonymous() {
            continue;
        }
        let own_last = own.last_by(o.vu, o.start_us);
        // Another session of the account logged in after ours and before this answer came back
        // (that login may still have been in flight when it ended our session). Logins ending
        // later than `o.end_us + longest_login` also started after it: the walk stops there.
        let Some(logins) = by_account.get(&account(o, cfg)) else {
            continue;
        };
        let from = logins.partition_point(|l| l.end_us < own_last);
        let other_since = logins[from..]
            .iter()
            .take_while(|l| l.end_us <= o.end_us.saturating_add(longest_login))
            .any(|l| l.vu != o.vu && l.start_us <= o.end_us);
        if other_since {
            out.insert(i);
        }
    }
    out
}

/// `session_conflict`: one session of an account broke another (a login kicked it out), or a
/// logout ended more or fewer sessions than `logout_scope` says.
pub fn session_conflict(
    obs: &[Observation],
    kicked: &BTreeSet<usize>,
    cfg: &AuditConfig,
) -> Option<Finding> {
    let mut parts = Vec::new();
    let mut count = 0;
    let mut first: Option<&Observation> = None;
    if !kicked.is_empty() {
        let hits: Vec<&Observation> = kicked.iter().map(|&i| &obs[i]).collect();
        let accounts: BTreeSet<u32> = hits.iter().map(|o| account(o, cfg)).collect();
        parts.push(format!(
            "{} requests of {} accounts came back anonymous after ANOTHER session of the same account logged in: a new login ends the older sessions",
            hits.len(),
            accounts.len()
        ));
        count += hits.len();
        first = hits.into_iter().min_by_key(|o| o.start_us);
    }
    if let Some(scope) = cfg.logout_scope {
        let checks: Vec<&Observation> = obs
            .iter()
            .filter(|o| o.step == Step::ScopeCheck && o.authenticated.is_some())
            .collect();
        let wrong: Vec<&Observation> = checks
            .iter()
            .copied()
            .filter(|o| match scope {
                LogoutScope::Session => o.authenticated == Some(false),
                LogoutScope::User => o.authenticated == Some(true),
            })
            .collect();
        if !wrong.is_empty() {
            parts.push(match scope {
                LogoutScope::Session => format!(
                    "logging out of one session ended {} of {} other sessions of the same account (logout_scope = \"session\")",
                    wrong.len(),
                    checks.len()
                ),
                LogoutScope::User => format!(
                    "after logging out of one session, {} of {} other sessions of the same account were still logged in (logout_scope = \"user\")",
                    wrong.len(),
                    checks.len()
                ),
            });
            count += wrong.len();
            first = first.or(wrong.first().copied());
        }
    }
    let first = first?;
    Some(finding(
        FindingKind::SessionConflict,
        count,
        first.start_us,
        parts.join("; "),
        json!({ "vu": first.vu, "path": first.path, "step": first.step }),
    ))
}

/// `session_fixation`: the session identifier did not change at login.
pub fn session_fixation(obs: &[Observation], cfg: &AuditConfig) -> Option<Finding> {
    if !cfg.fixation {
        return None;
    }
    let fixed: Vec<&Observation> = obs
        .iter()
        .filter(|o| o.step == Step::Login && o.fixation)
        .collect();
    let first = fixed.first()?;
    let logins = obs
        .iter()
        .filter(|o| o.step == Step::Login && o.authenticated == Some(true))
        .count();
    Some(finding(
        FindingKind::SessionFixation,
        fixed.len(),
        first.start_us,
        format!("{} of {logins} logins kept the session identifier the visitor had before logging in: an attacker who plants a session id can take over the session", fixed.len()),
        json!({ "vu": first.vu, "path": first.path }),
    ))
}

/// `logout_not_revoked`: the cookie from before a logout still authenticates after it.
pub fn logout_not_revoked(obs: &[Observation], cfg: &AuditConfig) -> Option<Finding> {
    if !cfg.revocation {
        return None;
    }
    let replays: Vec<&Observation> = obs
        .iter()
        .filter(|o| o.step == Step::Replay && o.authenticated.is_some())
        .collect();
    let alive: Vec<&&Observation> = replays
        .iter()
        .filter(|o| o.authenticated == Some(true))
        .collect();
    let first = alive.first()?;
    Some(finding(
        FindingKind::LogoutNotRevoked,
        alive.len(),
        first.start_us,
        format!("{} of {} sessions were still authenticated when their pre-logout cookie was replayed after the logout: logout only cleared the cookie in the browser", alive.len(), replays.len()),
        json!({ "vu": first.vu, "path": first.path, "worker": first.worker }),
    ))
}

/// `cookie_attributes`: what the login's Set-Cookie headers lack.
pub fn cookie_attributes(obs: &[Observation], cfg: &AuditConfig) -> Option<Finding> {
    let rules = cfg.cookies.as_ref()?;
    let mut problems: BTreeSet<String> = BTreeSet::new();
    let mut first_us = None;
    for o in obs.iter().filter(|o| o.step == Step::Login) {
        let Some(cookies) = &o.cookies else { continue };
        for c in cookies.iter() {
            // Deleting cookies (Max-Age=0) and cookies not in `names` are not audited.
            let audited = if rules.names.is_empty() {
                c.lifetime_s.is_none_or(|l| l > 0.0)
            } else {
                rules.names.contains(&c.name)
            };
            if !audited {
                continue;
            }
            let before = problems.len();
            // A CSRF cookie is read by the page's scripts on purpose (Django's `csrftoken`,
            // Angular's `XSRF-TOKEN`): the HttpOnly rule is for session cookies (Label Studio
            // trial), unless `names` lists it.
            let scripts_read_it = rules.names.is_empty() && {
                let n = c.name.to_ascii_lowercase();
                n.contains("csrf") || n.contains("xsrf")
            };
            if rules.http_only && !c.http_only && !scripts_read_it {
                problems.insert(format!(
                    "cookie `{}` lacks HttpOnly (scripts can read it)",
                    c.name
                ));
            }
            if rules.secure && !c.secure {
                problems.insert(format!(
                    "cookie `{}` lacks Secure (sent over plain HTTP)",
                    c.name
                ));
            }
            match (&c.same_site, rules.same_site.to_ascii_lowercase().as_str()) {
                (None, _) => {
                    problems.insert(format!("cookie `{}` has no SameSite attribute", c.name));
                }
                (Some(have), want) if want != "any" && !have.eq_ignore_ascii_case(want) => {
                    problems.insert(format!(
                        "cookie `{}` has SameSite={have}, expected {}",
                        c.name, rules.same_site
                    ));
                }
                _ => {}
            }
            if c.size > rules.max_size {
                problems.insert(format!(
                    "cookie `{}` is {} bytes, over {} (browsers drop it)",
                    c.name, c.size, rules.max_size
                ));
            }
            if problems.len() > before && first_us.is_none() {
                first_us = Some(o.start_us);
            }
        }
    }
    let first_us = first_us?;
    let list: Vec<String> = problems.into_iter().collect();
    Some(finding(
        FindingKind::CookieAttributes,
        list.len(),
        first_us,
        list.join("; "),
        json!({ "problems": list }),
    ))
}

/// Lifetime figures from login cookies, probe `remaining` values (`remaining`, folded during
/// the run) and renewals. `renewed`: some response re-sent a login cookie with a fresh lifetime
/// (`Digest::renewed`; such responses are counted, not kept).
pub fn measure_lifetime(
    obs: &[Observation],
    remaining: &RemainingLog,
    renewed: bool,
    restarts: &[RestartWindow],
) -> LifetimeInfo {
    // The login's longest-lived cookie is taken as the session's.
    let cookie_lifetime_s = obs
        .iter()
        .filter(|o| o.step == Step::Login && o.authenticated == Some(true))
        .filter_map(|o| o.cookies.as_ref())
        .flat_map(|c| c.iter().filter_map(|a| a.lifetime_s))
        .filter(|l| *l > 0.0)
        .reduce(f64::max);
    let mut info = LifetimeInfo {
        cookie_lifetime_s,
        ..Default::default()
    };
    // Per user and login epoch, in a fixed order (the figures below do not depend on it).
    let mut series: Vec<(&(u32, u32), &RemainingSeries)> = remaining.series.iter().collect();
    series.sort_by_key(|(k, _)| **k);
    info.remaining_at_login_s = series.iter().map(|(_, s)| s.first.1).reduce(f64::max);
    // Renewed: the cookie came back with a fresh lifetime, or `remaining` fell by much less than
    // the time that passed. Not renewed: it fell by about the time that passed.
    let cookie_renewed = renewed || obs.iter().any(|o| o.renewed);
    let mut renewed_votes = 0;
    let mut expiring_votes = 0;
    for (_, s) in &series {
        let ((t0, r0), (t1, r1)) = (s.first, s.last);
        let elapsed = (t1 - t0) as f64 / 1e6;
        if elapsed < 1.0 {
            continue;
        }
        if r0 - r1 < elapsed / 2.0 {
            renewed_votes += 1;
        } else {
            expiring_votes += 1;
        }
    }
    info.renewed = if cookie_renewed || renewed_votes > expiring_votes {
        Some(true)
    } else if expiring_votes > 0 || info.cookie_lifetime_s.is_some() {
        Some(false)
    } else {
        None
    };
    // A restart shortens the lifetime when, for the same login, `remaining` right after the
    // restart is lower than what was left before it minus the time in between.
    for (k, r) in restarts.iter().enumerate() {
        if r.ready_us.is_none() {
            continue;
        }
        for (_, s) in &series {
            if let Some(&(Some((tb, rb)), Some((ta, ra)))) = s.around.get(k) {
                let expected = rb - (ta - tb) as f64 / 1e6;
                let cut = expected - ra;
                if cut > 2.0 {
                    let worst = info
                        .restart_shortened_s
                        .unwrap_or(0.0)
                        .max((cut * 10.0).round() / 10.0);
                    info.restart_shortened_s = Some(worst);
                }
            }
        }
    }
    info
}

/// `session_lifetime`: shorter than `min`, renewal not as expected, or cut by a restart.
pub fn session_lifetime(info: &LifetimeInfo, cfg: &AuditConfig) -> Option<Finding> {
    let want = cfg.lifetime.as_ref()?;
    let mut problems = Vec::new();
    let measured = info.remaining_at_login_s.or(info.cookie_lifetime_s);
    if let (Some(min), Some(m)) = (want.min_s, measured) {
        if m < min {
            problems.push(format!(
                "the session lasts {m:.0} s, shorter than the {min:.0} s expected"
            ));
        }
    }
    match (want.sliding, info.renewed) {
        (Some(true), Some(false)) => problems
            .push("activity did not renew the session (expected sliding expiry)".to_string()),
        (Some(false), Some(true)) => {
            problems.push("activity renewed the session (expected a fixed expiry)".to_string())
        }
        _ => {}
    }
    if let Some(cut) = info.restart_shortened_s {
        problems.push(format!(
            "a restart cut {cut:.0} s off the sessions' remaining lifetime"
        ));
    }
    if problems.is_empty() {
        return None;
    }
    let n = problems.len();
    Some(finding(
        FindingKind::SessionLifetime,
        n,
        0,
        problems.join("; "),
        serde_json::to_value(info).unwrap_or_default(),
    ))
}

/// `config`: a default secret key or other warnings from the app's debug config endpoint.
pub fn config(answer: Option<&ConfigAnswer>) -> Option<Finding> {
    let a = answer?;
    let mut items = Vec::new();
    if let Some(e) = &a.error {
        items.push(format!("the config endpoint could not be read: {e}"));
    }
    if a.default_secret == Some(true) {
        items.push(
            "the secret key is a default value: anyone can forge session cookies".to_string(),
        );
    }
    items.extend(a.warnings.iter().cloned());
    if items.is_empty() {
        return None;
    }
    let n = items.len();
    Some(finding(
        FindingKind::Config,
        n,
        0,
        items.join("; "),
        json!({ "warnings": items }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::remaining::Point;
    use crate::observe::{CookieAttrs, LoginCookies};
    use std::collections::BTreeMap;

    /// What the run folds into a `RemainingLog`, from a list of observations: each is folded
    /// at `fold_at(o)` (its end, or later: a tab hands its observations over after the page),
    /// and the restart times are stamped in between at their own moments, as `Recorder` does.
    fn remaining_log(
        obs: &[Observation],
        restarts: &[RestartWindow],
        fold_at: impl Fn(&Observation) -> u64,
    ) -> RemainingLog {
        enum Event<'a> {
            Began(usize),
            Ready(usize),
            Fold(&'a Observation),
        }
        let mut events: Vec<(u64, u8, Event)> = Vec::new();
        for (k, w) in restarts.iter().enumerate() {
            events.push((w.start_us, 0, Event::Began(k)));
            if let Some(ready) = w.ready_us {
                events.push((ready, 0, Event::Ready(k)));
            }
        }
        for o in obs {
            // A fold at the very moment of a stamp comes after it (stamps sort first).
            events.push((fold_at(o).max(o.end_us), 1, Event::Fold(o)));
        }
        events.sort_by_key(|(t, order, _)| (*t, *order));
        let mut known: Vec<RestartWindow> = Vec::new();
        let mut log = RemainingLog::default();
        for (_, _, e) in events {
            match e {
                Event::Began(k) => {
                    known.push(RestartWindow {
                        ready_us: None,
                        ..restarts[k].clone()
                    });
                    log.restart_began(k);
                }
                Event::Ready(k) => known[k].ready_us = restarts[k].ready_us,
                Event::Fold(o) => log.add(o, &known),
            }
        }
        log
    }

    /// `measure_lifetime` over the log folded in time order.
    fn lifetime(obs: &[Observation], renewed: bool, restarts: &[RestartWindow]) -> LifetimeInfo {
        let log = remaining_log(obs, restarts, |o| o.end_us);
        let info = measure_lifetime(obs, &log, renewed, restarts);
        assert_eq!(info, measure_lifetime_by_scan(obs, renewed, restarts));
        info
    }

    /// The oracle for `RemainingLog`: every login's whole series of `remaining` answers, in the
    /// order they were kept, sorted by time (a stable sort), and the points picked out of it
    /// by scanning: what the lifetime figures were computed from before the log existed.
    fn remaining_log_by_scan(obs: &[Observation], restarts: &[RestartWindow]) -> RemainingLog {
        let mut whole: BTreeMap<(u32, u32), Vec<Point>> = BTreeMap::new();
        for o in obs
            .iter()
            .filter(|o| o.step == Step::Probe && o.authenticated == Some(true))
        {
            if let Some(r) = o.remaining_s.map(f64::from) {
                whole
                    .entry((o.vu, o.epoch_start))
                    .or_default()
                    .push((o.end_us, r));
            }
        }
        let mut log = RemainingLog::default();
        for (key, mut s) in whole {
            s.sort_by_key(|p| p.0);
            let around = restarts
                .iter()
                .map(|r| {
                    let before = s.iter().rev().find(|p| p.0 <= r.start_us).copied();
                    let after = r
                        .ready_us
                        .and_then(|ready| s.iter().find(|p| p.0 >= ready).copied());
                    (before, after)
                })
                .collect();
            let (first, last) = (s[0], s[s.len() - 1]);
            log.series.insert(
                key,
                RemainingSeries {
                    first,
                    last,
                    around,
                },
            );
        }
        log
    }

    /// The lifetime figures from what the run folds, checked against the scan.
    fn measure_lifetime_by_scan(
        obs: &[Observation],
        renewed: bool,
        restarts: &[RestartWindow],
    ) -> LifetimeInfo {
        measure_lifetime(
            obs,
            &remaining_log_by_scan(obs, restarts),
            renewed,
            restarts,
        )
    }

    fn o(vu: u32, step: Step, start: u64, auth: Option<bool>) -> Observation {
        Observation {
            authenticated: auth,
            ..Observation::sample(vu, step, start, start + 100)
        }
    }

    fn cfg2() -> AuditConfig {
        AuditConfig {
            sessions_per_user: 2,
            ..Default::default()
        }
    }

    /// `kicked_out` as it was first written: a pass over every login per anonymous answer.
    fn kicked_out_by_scan(obs: &[Observation], cfg: &AuditConfig) -> BTreeSet<usize> {
        let logins: Vec<&Observation> = obs
            .iter()
            .filter(|o| o.step == Step::Login && o.authenticated == Some(true))
            .collect();
        let mut out = BTreeSet::new();
        for (i, o) in obs.iter().enumerate() {
            if !(matches!(o.step, Step::Request | Step::Probe)
                && o.anonymous()
                && o.logged_in
                && o.epoch_start == o.epoch_end)
            {
                continue;
            }
            let own_last = logins
                .iter()
                .filter(|l| l.vu == o.vu && l.end_us <= o.start_us)
                .map(|l| l.end_us)
                .max()
                .unwrap_or(0);
            if logins.iter().any(|l| {
                l.vu != o.vu
                    && account(l, cfg) == account(o, cfg)
                    && l.end_us >= own_last
                    && l.start_us <= o.end_us
            }) {
                out.insert(i);
            }
        }
        out
    }

    proptest::proptest! {
        /// The indexed `kicked_out` finds exactly what the scan finds.
        #[test]
        fn kicked_out_index_agrees_with_a_scan(
            events in proptest::collection::vec(
                (0u32..6, proptest::bool::ANY, 0u64..5_000, 1u64..400), 1..60),
        ) {
            let obs: Vec<Observation> = events
                .iter()
                .map(|&(vu, is_login, start, len)| {
                    let step = if is_login { Step::Login } else { Step::Probe };
                    Observation {
                        authenticated: Some(is_login),
                        ..Observation::sample(vu, step, start, start + len)
                    }
                })
                .collect();
            proptest::prop_assert_eq!(kicked_out(&obs, &cfg2()), kicked_out_by_scan(&obs, &cfg2()));
        }
    }

    #[test]
    fn a_login_elsewhere_that_kicks_a_session_out_is_a_conflict() {
        // vu 0 and 1 are two sessions of account 0; vu 2 is account 1.
        let mut obs = vec![
            o(0, Step::Login, 0, Some(true)),
            o(1, Step::Login, 1000, Some(true)),
            o(0, Step::Probe, 2000, Some(false)),
        ];
        let k = kicked_out(&obs, &cfg2());
        assert_eq!(k.len(), 1);
        assert!(session_conflict(&obs, &k, &cfg2()).is_some());
        // The other login belongs to another account: not a conflict.
        obs[1].vu = 2;
        assert!(kicked_out(&obs, &cfg2()).is_empty());
        // One session per account: never a conflict.
        assert!(kicked_out(
            &obs,
            &AuditConfig {
                sessions_per_user: 1,
                ..Default::default()
            }
        )
        .is_empty());
    }

    #[test]
    fn logout_scope_is_checked_both_ways() {
        let obs = vec![o(1, Step::ScopeCheck, 5000, Some(false))];
        let session = AuditConfig {
            logout_scope: Some(LogoutScope::Session),
            ..cfg2()
        };
        let user = AuditConfig {
            logout_scope: Some(LogoutScope::User),
            ..cfg2()
        };
        assert!(session_conflict(&obs, &BTreeSet::new(), &session).is_some());
        assert!(session_conflict(&obs, &BTreeSet::new(), &user).is_none());
        let obs = vec![o(1, Step::ScopeCheck, 5000, Some(true))];
        assert!(session_conflict(&obs, &BTreeSet::new(), &session).is_none());
        assert!(session_conflict(&obs, &BTreeSet::new(), &user).is_some());
    }

    #[test]
    fn fixation_and_revocation() {
        let cfg = AuditConfig {
            fixation: true,
            revocation: true,
            ..Default::default()
        };
        let mut login = o(0, Step::Login, 0, Some(true));
        assert!(session_fixation(&[login.clone()], &cfg).is_none());
        login.fixation = true;
        assert!(session_fixation(&[login.clone()], &cfg).is_some());
        assert!(
            session_fixation(&[login], &AuditConfig::default()).is_none(),
            "opt-in"
        );
        assert!(logout_not_revoked(&[o(0, Step::Replay, 0, Some(false))], &cfg).is_none());
        assert!(logout_not_revoked(&[o(0, Step::Replay, 0, Some(true))], &cfg).is_some());
    }

    fn attrs(http_only: bool, same_site: Option<&str>) -> CookieAttrs {
        CookieAttrs {
            name: "session".into(),
            http_only,
            secure: false,
            same_site: same_site.map(String::from),
            size: 40,
            lifetime_s: None,
        }
    }

    #[test]
    fn cookie_attributes_name_the_missing_attribute() {
        let rules = CookieRules {
            http_only: true,
            secure: false,
            same_site: "any".into(),
            max_size: 4096,
            names: vec![],
        };
        let cfg = AuditConfig {
            cookies: Some(rules),
            ..Default::default()
        };
        let mut login = o(0, Step::Login, 0, Some(true));
        login.cookies = Some(LoginCookies::shared(vec![attrs(true, Some("Lax"))]));
        assert!(cookie_attributes(&[login.clone()], &cfg).is_none());
        login.cookies = Some(LoginCookies::shared(vec![attrs(false, None)]));
        let f = cookie_attributes(&[login], &cfg).unwrap();
        assert_eq!(f.count, 2);
        assert!(
            f.message.contains("lacks HttpOnly") && f.message.contains("no SameSite"),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_csrf_cookie_without_http_only_is_no_finding_unless_named() {
        let rules = CookieRules {
            http_only: true,
            secure: false,
            same_site: "any".into(),
            max_size: 4096,
            names: vec![],
        };
        let mut cfg = AuditConfig {
            cookies: Some(rules),
            ..Default::default()
        };
        let csrf = CookieAttrs {
            name: "csrftoken".into(),
            ..attrs(false, Some("Lax"))
        };
        let mut login = o(0, Step::Login, 0, Some(true));
        login.cookies = Some(LoginCookies::shared(vec![
            attrs(true, Some("Lax")),
            csrf.clone(),
        ]));
        assert!(cookie_attributes(&[login.clone()], &cfg).is_none());
        // Listed by name, it is audited like any other.
        if let Some(r) = cfg.cookies.as_mut() {
            r.names = vec!["csrftoken".into()];
        }
        let f = cookie_attributes(&[login], &cfg).unwrap();
        assert!(
            f.message.contains("`csrftoken` lacks HttpOnly"),
            "{}",
            f.message
        );
    }

    #[test]
    fn lifetime_min_sliding_and_restart_cut() {
        let mut login = o(0, Step::Login, 0, Some(true));
        login.cookies = Some(LoginCookies::shared(vec![CookieAttrs {
            lifetime_s: Some(60.0),
            ..attrs(true, Some("Lax"))
        }]));
        let mut p1 = o(0, Step::Probe, 1_000_000, Some(true));
        p1.remaining_s = Some(59.0);
        let mut p2 = o(0, Step::Probe, 6_000_000, Some(true));
        p2.remaining_s = Some(54.0); // fell by the 5 s that passed: not renewed
        let obs = vec![login, p1.clone(), p2.clone()];
        let info = lifetime(&obs, false, &[]);
        assert_eq!(info.cookie_lifetime_s, Some(60.0));
        assert_eq!(info.renewed, Some(false));
        let want = |min: f64, sliding| AuditConfig {
            lifetime: Some(LifetimeExpect {
                min_s: Some(min),
                sliding,
            }),
            ..Default::default()
        };
        assert!(session_lifetime(&info, &want(30.0, None)).is_none());
        assert!(session_lifetime(&info, &want(300.0, None))
            .unwrap()
            .message
            .contains("shorter"));
        assert!(session_lifetime(&info, &want(30.0, Some(true)))
            .unwrap()
            .message
            .contains("did not renew"));
        // Renewed when remaining stays up.
        let mut p3 = p2.clone();
        p3.remaining_s = Some(59.5);
        assert_eq!(lifetime(&[p1.clone(), p3], false, &[]).renewed, Some(true));
        // A restart between the probes that resets the clock to 20 s left cuts 34 s.
        let mut after = o(0, Step::Probe, 8_000_000, Some(true));
        after.remaining_s = Some(20.0);
        let r = vec![RestartWindow {
            start_us: 7_000_000,
            ready_us: Some(7_500_000),
            method: "x".into(),
        }];
        let cut = lifetime(&[p1, p2, after], false, &r)
            .restart_shortened_s
            .unwrap();
        assert!((cut - 32.0).abs() < 1.0, "{cut}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Folded as a run folds them (each probe handed over up to 3 ms after it ended, so out
        /// of order, with restarts stamped in between), the log gives the figures a scan of
        /// every probe gives.
        #[test]
        fn remaining_log_equals_the_scan(
            probes in proptest::collection::vec(
                (0u32..3, 0u32..2, 0u64..40, 0u64..3_000, 0u32..5), 0..40),
            restarts in proptest::collection::vec((0u64..40, 0u64..8, proptest::bool::ANY), 0..3),
        ) {
            // Times on a coarse grid (ms) so that ties, and probes at a restart's very start or
            // ready time, happen.
            let obs: Vec<Observation> = probes
                .iter()
                .map(|&(vu, epoch, at, _, left)| {
                    let mut p = o(vu, Step::Probe, at * 100_000, Some(true));
                    p.epoch_start = epoch;
                    p.remaining_s = Some(60.0 - left as f32 * 7.0 - at as f32 * 0.1);
                    p
                })
                .collect();
            let mut windows: Vec<RestartWindow> = restarts
                .iter()
                .map(|&(at, took, ready)| RestartWindow {
                    // At a probe's very end time now and then (probes end 100 µs after the grid).
                    start_us: at * 100_000 + 100,
                    ready_us: ready.then_some((at + took) * 100_000 + 100),
                    method: "x".into(),
                })
                .collect();
            windows.sort_by_key(|w| w.start_us);
            let delays: Vec<u64> = probes.iter().map(|p| p.3).collect();
            let fold_at = |p: &Observation| {
                let i = obs.iter().position(|q| std::ptr::eq(q, p)).unwrap();
                p.end_us + delays[i]
            };
            let log = remaining_log(&obs, &windows, fold_at);
            // The scan sees them as they were kept: in the order they were folded.
            let mut kept: Vec<&Observation> = obs.iter().collect();
            kept.sort_by_key(|p| fold_at(p));
            let kept: Vec<Observation> = kept.into_iter().cloned().collect();
            proptest::prop_assert_eq!(
                measure_lifetime(&kept, &log, false, &windows),
                measure_lifetime_by_scan(&kept, false, &windows)
            );
        }
    }

    #[test]
    fn config_warnings() {
        assert!(config(None).is_none());
        assert!(config(Some(&ConfigAnswer::default())).is_none());
        let a = ConfigAnswer {
            default_secret: Some(true),
            warnings: vec!["DEBUG is on".into()],
            error: None,
        };
        assert_eq!(config(Some(&a)).unwrap().count, 2);
    }
}
