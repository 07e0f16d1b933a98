//! The debug config endpoint, read once before the load (which audits are on is lowered with
//! the scenario: `scenario::lowered::AuditConfig`).

use crate::http::client::OneOff;
use crate::judge::audit::ConfigAnswer;
use crate::scenario::Scenario;
use url::Url;

/// The config endpoint's answer is read up to this size (then it is not JSON: an error).
const CONFIG_MAX_BYTES: usize = 1 << 20;

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
