//! The scenario's strings that need parsing, parsed once, when the scenario is validated, into
//! the types the stages below use: the interrupted pattern as compiled regexes, source
//! addresses as IP addresses, HTTP methods as methods. Nothing below the scenario parses these
//! strings again, so nothing can fall back silently to a default where validation said "fine".

use super::requests::RequestSpec;
use super::{AllowedHost, RestartMethod, Scenario, LOGOUT_METHODS};
use http::{HeaderName, HeaderValue};
use std::net::IpAddr;
use std::time::Duration;

/// The interrupted pattern (`[detect] interrupted_pattern`), for text (headers, server log) and
/// for bodies (bytes).
#[derive(Debug, Clone)]
pub struct Interrupted {
    pub text: regex::Regex,
    pub bytes: regex::bytes::Regex,
}

impl Interrupted {
    pub fn new(pattern: &str) -> Result<Interrupted, regex::Error> {
        Ok(Interrupted {
            text: regex::Regex::new(pattern)?,
            bytes: regex::bytes::Regex::new(pattern)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Lowered {
    /// `[target] url`, parsed (the run moves its port when the default one is taken).
    pub target: url::Url,
    pub logout_method: http::Method,
    /// The method of each `[load] requests` entry (a page: GET), in their order.
    pub request_methods: Vec<http::Method>,
    /// The CSRF header of each `[load] requests` write that sends one (`csrf = {...}`).
    pub request_csrf_headers: Vec<Option<HeaderName>>,
    /// `[restart] method = { signal, pidfile }`: the signal.
    pub restart_signal: Option<nix::sys::signal::Signal>,
    /// Everything the HTTP stage needs, so that it never reads the scenario itself.
    pub http: HttpPlan,
    pub digest: DigestConfig,
    pub audits: AuditConfig,
}

/// Which session audits the scenario turned on, in plain values for the judge.
#[derive(Debug, Clone, Default)]
pub struct AuditConfig {
    pub sessions_per_user: usize,
    pub logout_scope: Option<super::LogoutScope>,
    pub fixation: bool,
    pub revocation: bool,
    pub lifetime: Option<LifetimeExpect>,
    pub cookies: Option<CookieRules>,
    /// `[config]`: the debug config endpoint is read and judged.
    pub config: bool,
}

#[derive(Debug, Clone, Default)]
pub struct LifetimeExpect {
    pub min_s: Option<f64>,
    pub sliding: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct CookieRules {
    pub http_only: bool,
    pub secure: bool,
    /// "any" or a SameSite value.
    pub same_site: String,
    pub max_size: usize,
    pub names: Vec<String>,
}

/// What the digest (`observe::digest`) needs to fold observations.
#[derive(Debug, Clone, Default)]
pub struct DigestConfig {
    /// `[detect] interrupted_statuses`: such answers are kept (SessionInterrupted correlation).
    pub interrupted_statuses: Vec<u16>,
    /// `[restart] recovery_timeout`: how long after a restart a user has to be served again.
    pub recovery_timeout_us: u64,
    /// The scenario restarts the target: requests before the first restart began are
    /// `before_restart`, not `load` (the digest folds them before that restart is known).
    pub restart_planned: bool,
}

/// The HTTP stage's configuration (`http::client::Http`, `OneOff::for_target`).
#[derive(Debug, Clone)]
pub struct HttpPlan {
    /// `[target] headers`, sent with every request to the target's origin.
    pub target_headers: Vec<(HeaderName, HeaderValue)>,
    /// `[target] allow_hosts`: other hosts whose redirects may be followed.
    pub allow_hosts: Vec<AllowedHost>,
    /// `[probe] worker_header`: the response header naming the worker or replica.
    pub worker_header: Option<HeaderName>,
    /// `[login] source_addresses`, loopback addresses (empty: the system's choice).
    pub source_addresses: Vec<IpAddr>,
    pub interrupted: Interrupted,
    pub insecure_tls: bool,
    /// `[load] loading_timeout`: one request, connecting included.
    pub timeout: Duration,
    /// `[load] connection = "new"`: a connection per request, `Connection: close` sent.
    pub new_connections: bool,
    pub max_connections: Option<usize>,
    pub max_redirects: usize,
    pub max_body: usize,
    /// Where the app sends anonymous users.
    pub login_path: String,
    /// The scenario's own paths (pages, probe, login, its CSRF page, logout), prepared once.
    pub paths: Vec<String>,
}

impl Default for Lowered {
    /// What a scenario with every default lowers to.
    fn default() -> Lowered {
        let interrupted = Interrupted::new(&super::Detect::default().interrupted_pattern)
            .expect("the default interrupted pattern is a valid regex");
        Lowered {
            target: url::Url::parse("http://127.0.0.1:8765").expect("a valid URL"),
            logout_method: http::Method::POST,
            request_methods: Vec::new(),
            request_csrf_headers: Vec::new(),
            restart_signal: None,
            http: HttpPlan {
                target_headers: Vec::new(),
                allow_hosts: Vec::new(),
                worker_header: None,
                source_addresses: Vec::new(),
                interrupted,
                insecure_tls: false,
                timeout: super::default_loading_timeout().0,
                new_connections: false,
                max_connections: None,
                max_redirects: super::default_max_redirects(),
                max_body: super::default_max_body(),
                login_path: "/login".into(),
                paths: Vec::new(),
            },
            digest: DigestConfig {
                interrupted_statuses: super::Detect::default().interrupted_statuses,
                recovery_timeout_us: NO_RECOVERY_BOUND_US,
                restart_planned: false,
            },
            audits: AuditConfig::default(),
        }
    }
}

/// What the load stage (`load/`) needs, so that it never reads the scenario itself: the
/// sections the users follow and what validation parsed for them. Built by
/// [`Scenario::load_plan`] once the overrides are applied and the scenario validated.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub load: super::Load,
    pub sessions: super::Sessions,
    pub checks: super::Checks,
    pub probe: super::Probe,
    pub login: Option<super::Login>,
    pub logout: super::Logout,
    pub browser: Option<super::BrowserSection>,
    /// `[lifetime] remaining`: the probe's pointer to the seconds the session has left.
    pub lifetime_remaining: Option<String>,
    /// `[restart] count`, or 0 without `[restart]`.
    pub restarts_planned: u32,
    /// Distinct workers a probe should see (`Scenario::ready_workers`).
    pub ready_workers: usize,
    pub logout_method: http::Method,
    pub request_methods: Vec<http::Method>,
    pub request_csrf_headers: Vec<Option<HeaderName>>,
    pub digest: DigestConfig,
}

impl Scenario {
    /// The load stage's part of the scenario (see [`LoadPlan`]).
    pub fn load_plan(&self) -> LoadPlan {
        LoadPlan {
            load: self.load.clone(),
            sessions: self.sessions.clone(),
            checks: self.checks.clone(),
            probe: self.probe.clone(),
            login: self.login.clone(),
            logout: self.logout.clone(),
            browser: self.browser.clone(),
            lifetime_remaining: self.lifetime.as_ref().and_then(|l| l.remaining.clone()),
            restarts_planned: self.restart.as_ref().map_or(0, |r| r.count),
            ready_workers: self.ready_workers(),
            logout_method: self.lowered.logout_method.clone(),
            request_methods: self.lowered.request_methods.clone(),
            request_csrf_headers: self.lowered.request_csrf_headers.clone(),
            digest: self.lowered.digest.clone(),
        }
    }
}

/// Without restarts nobody has to recover: a bound no run reaches.
const NO_RECOVERY_BOUND_US: u64 = u64::MAX / 4;

/// Parse what `validate` must not only check but hand on; an error names the field.
pub fn lower(s: &Scenario, url: &url::Url) -> Result<Lowered, (String, String)> {
    let interrupted = Interrupted::new(&s.detect.interrupted_pattern).map_err(|e| {
        (
            "detect.interrupted_pattern".to_string(),
            format!("not a valid regex: {e}"),
        )
    })?;
    let mut source_addresses = Vec::new();
    for a in s.login.iter().flat_map(|l| &l.source_addresses) {
        let bad = |m: String| ("login.source_addresses".to_string(), m);
        match a.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => source_addresses.push(ip),
            Ok(_) => {
                return Err(bad(format!(
                    "{a} is not a loopback address (127.0.0.0/8 or ::1)"
                )))
            }
            Err(_) => return Err(bad(format!("{a:?} is not an IP address"))),
        }
    }
    let method = |text: &str| http::Method::from_bytes(text.to_ascii_uppercase().as_bytes());
    let logout_method = match method(&s.logout.method) {
        Ok(m) if LOGOUT_METHODS.contains(&m.as_str()) => m,
        _ => {
            return Err((
                "logout.method".into(),
                format!(
                    "unknown method {:?}; expected one of {}",
                    s.logout.method,
                    LOGOUT_METHODS.join(", ")
                ),
            ))
        }
    };
    let request_methods = s
        .load
        .requests
        .iter()
        .map(|r| match r {
            RequestSpec::Page(_) => Ok(http::Method::GET),
            RequestSpec::Write(w) => method(&w.method).map_err(|_| {
                (
                    "load.requests".to_string(),
                    format!("method {:?}", w.method),
                )
            }),
        })
        .collect::<Result<_, _>>()?;
    let request_csrf_headers = s
        .load
        .requests
        .iter()
        .map(|r| match r {
            RequestSpec::Write(w) => w
                .csrf
                .as_ref()
                .map(|c| {
                    HeaderName::from_bytes(c.header.as_bytes()).map_err(|_| {
                        (
                            "load.requests".to_string(),
                            format!("csrf header {:?} is not a valid header name", c.header),
                        )
                    })
                })
                .transpose(),
            RequestSpec::Page(_) => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let mut target_headers = Vec::new();
    for (name, value) in &s.target.headers {
        let field = || format!("target.headers.{name}");
        let parsed_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| (field(), format!("{name:?} is not a valid header name")))?;
        let parsed_value = HeaderValue::from_str(value).map_err(|_| {
            (
                field(),
                "the value is not a valid header value (control characters or a line break?)"
                    .to_string(),
            )
        })?;
        target_headers.push((parsed_name, parsed_value));
    }
    let allow_hosts = s
        .target
        .allow_hosts
        .iter()
        .map(|entry| AllowedHost::parse(entry).map_err(|m| ("target.allow_hosts".to_string(), m)))
        .collect::<Result<_, _>>()?;
    let worker_header = match &s.probe.worker_header {
        Some(h) => Some(HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
            (
                "probe.worker_header".to_string(),
                "not a valid header name (e.g. \"X-Served-By\")".to_string(),
            )
        })?),
        None => None,
    };
    let restart_signal = match s.restart.as_ref().map(|r| &r.method) {
        Some(RestartMethod::Signal { signal, .. }) => Some(
            crate::process::supervisor::parse_signal(signal)
                .map_err(|m| ("restart.method".to_string(), m))?,
        ),
        _ => None,
    };
    let load = &s.load;
    let mut paths: Vec<String> = load
        .requests
        .iter()
        .map(|r| r.as_str().to_string())
        .collect();
    paths.push(s.probe.path.clone());
    if let Some(l) = &s.login {
        paths.push(l.path.clone());
        if let Some(c) = &l.csrf {
            paths.push(c.page.clone());
        }
    }
    paths.push(s.logout.path.clone());
    let http = HttpPlan {
        target_headers,
        allow_hosts,
        worker_header,
        source_addresses,
        interrupted,
        insecure_tls: s.target.insecure_tls,
        timeout: load.loading_timeout.0,
        new_connections: load.connection == super::ConnectionPolicy::New,
        max_connections: load.connection_cap(),
        max_redirects: load.max_redirects,
        max_body: load.max_body_bytes,
        login_path: s.login_path().to_string(),
        paths,
    };
    let digest = DigestConfig {
        interrupted_statuses: s.detect.interrupted_statuses.clone(),
        recovery_timeout_us: s
            .restart
            .as_ref()
            .map(|r| r.recovery_timeout.0.as_micros() as u64)
            .unwrap_or(NO_RECOVERY_BOUND_US),
        restart_planned: s.restart.is_some(),
    };
    let audits = AuditConfig {
        sessions_per_user: s.sessions.per_user,
        logout_scope: s.sessions.logout_scope,
        fixation: s.checks.fixation,
        revocation: s.checks.revocation,
        lifetime: s.lifetime.as_ref().map(|l| LifetimeExpect {
            min_s: l.min.map(|d| d.0.as_secs_f64()),
            sliding: l.sliding,
        }),
        cookies: s.cookies.as_ref().map(|c| CookieRules {
            http_only: c.http_only,
            // Secure is only expected of https targets unless the scenario says so.
            secure: c.secure.unwrap_or(url.scheme() == "https"),
            same_site: c.same_site.clone(),
            max_size: c.max_size,
            names: c.names.clone(),
        }),
        config: s.config.is_some(),
    };
    Ok(Lowered {
        target: url.clone(),
        logout_method,
        request_methods,
        request_csrf_headers,
        restart_signal,
        http,
        digest,
        audits,
    })
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;

    const TEXT: &str = r#"
name = "t"
[target]
url = "http://127.0.0.1:9"
headers = { X-Api-Key = "k" }
allow_hosts = ["127.0.0.2:8080"]
[login]
fields = { username = "u", password = "p" }
success = { redirect_to = "/dashboard" }
source_addresses = ["127.0.0.2", "::1"]
[logout]
method = "delete"
[probe]
path = "/debug/session"
worker_header = "X-Served-By"
[detect]
interrupted_pattern = "Gone|Interrupted"
[load]
duration = "1s"
requests = ["/", { method = "put", path = "/notes", form = { a = "b" }, csrf = { header = "X-CSRF" } }]
[restart]
at = "500ms"
method = { signal = "hup", pidfile = "app.pid" }
"#;

    #[test]
    fn validation_hands_on_the_parsed_values() {
        let s = Scenario::parse(TEXT, "t.toml").unwrap();
        let l = &s.lowered;
        assert!(l.http.interrupted.text.is_match("410 Gone"));
        assert!(l.http.interrupted.bytes.is_match(b"... Interrupted ..."));
        assert_eq!(
            l.http.source_addresses,
            [
                "127.0.0.2".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(l.logout_method, http::Method::DELETE);
        assert_eq!(l.request_methods, [http::Method::GET, http::Method::PUT]);
        assert_eq!(
            l.request_csrf_headers,
            [None, Some(http::HeaderName::from_static("x-csrf"))]
        );
        assert_eq!(l.http.target_headers.len(), 1);
        assert_eq!(l.http.target_headers[0].0, "x-api-key");
        assert_eq!(l.http.allow_hosts[0].port, Some(8080));
        assert_eq!(l.http.worker_header.as_ref().unwrap(), "x-served-by");
        assert_eq!(l.restart_signal, Some(nix::sys::signal::Signal::SIGHUP));
    }

    #[test]
    fn what_does_not_parse_is_named() {
        let bad = |from: &str, to: &str| {
            Scenario::parse(&TEXT.replace(from, to), "t.toml")
                .unwrap_err()
                .to_string()
        };
        let e = bad("Gone|Interrupted", "Gone(");
        assert!(
            e.contains("detect.interrupted_pattern") && e.contains("regex"),
            "{e}"
        );
        let e = bad("\"::1\"", "\"10.0.0.1\"");
        assert!(
            e.contains("login.source_addresses") && e.contains("loopback"),
            "{e}"
        );
        let e = bad("\"::1\"", "\"localhost\"");
        assert!(e.contains("is not an IP address"), "{e}");
        let e = bad("method = \"delete\"", "method = \"FETCH\"");
        assert!(e.contains("logout.method") && e.contains("FETCH"), "{e}");
        let e = bad("header = \"X-CSRF\"", "header = \"X CSRF\"");
        assert!(e.contains("load.requests") && e.contains("X CSRF"), "{e}");
        let e = bad("X-Api-Key = \"k\"", "X-Api-Key = \"k\\n\"");
        assert!(e.contains("target.headers.X-Api-Key"), "{e}");
        let e = bad("\"X-Served-By\"", "\"X Served\"");
        assert!(e.contains("probe.worker_header"), "{e}");
        let e = bad("signal = \"hup\"", "signal = \"NOPE\"");
        assert!(e.contains("restart.method") && e.contains("NOPE"), "{e}");
    }
}
