//! The session audits the scenario turned on, as plain values for the judge, and the debug
//! config endpoint read once.

use crate::http::client::OneOff;
use crate::judge::audit::{AuditConfig, ConfigAnswer, CookieRules, LifetimeExpect};
use crate::judge::finding::FindingKind;
use crate::scenario::Scenario;
use url::Url;

/// The config endpoint's answer is read up to this size (then it is not JSON: an error).
const CONFIG_MAX_BYTES: usize = 1 << 20;

/// The session-rule audits the scenario turned on, as plain values for the detectors.
pub(super) fn audit_config(sc: &Scenario, base: &Url) -> AuditConfig {
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
pub(super) fn enabled_audits(sc: &Scenario) -> Vec<FindingKind> {
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
pub(super) async fn read_config(
    sc: &Scenario,
    base: &Url,
    c: &crate::scenario::ConfigProbe,
) -> ConfigAnswer {
    let fetch = async {
        let url = base.join(&c.path).map_err(|e| e.to_string())?;
        let client = OneOff::for_target(sc.load.loading_timeout.0, &sc.lowered.http)
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
