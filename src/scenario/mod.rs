//! Scenario files: typed TOML with defaults, `${VAR}` interpolation and validation.
//!
//! A scenario is the whole description of a run: which target, how to log in, what to
//! probe, how much load, when to restart and what to expect. Every error names the file,
//! the line and the field, because the person reading it is editing that file.
//!
//! The folder owns the schema (here), `accounts` (the `[login] accounts` CSV), `requests`
//! (`[load] requests`) and `lowered` (what validation parsed, handed to the stages below).
//! May import `process`, `browser`, `demo` (its store names) and `util`; every stage below
//! reads the scenario, none writes it.

pub mod accounts;
pub mod lowered;
pub mod requests;

use anyhow::Result;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A scenario file that cannot be used: parse error, unknown key, bad value.
/// The CLI maps it to exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

/// A duration written as text in the scenario ("20s", "500ms", "1m 30s").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// As the scenario would write it ("8s", "1m 30s"), for messages that name a field's value.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// Longest duration a scenario (or `--duration`) may give: far beyond any run, and far below
/// what `Instant + Duration` can hold (a larger one made the run panic).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write it like \"20s\", \"500ms\" or \"2m\"")
    })?;
    if d > MAX_DURATION {
        return Err(format!("duration {text:?} is too long (at most 100 years)"));
    }
    Ok(d)
}

fn secs(s: u64) -> Dur {
    Dur(Duration::from_secs(s))
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Used in report file names and titles.
    pub name: String,
    /// What validation parsed, in the types the stages use (set by `Scenario::parse`).
    #[serde(skip)]
    pub lowered: lowered::Lowered,
    #[serde(default)]
    pub description: Option<String>,
    pub target: Target,
    #[serde(default)]
    pub login: Option<Login>,
    #[serde(default)]
    pub logout: Logout,
    /// No `[probe]` section: no probe (authentication is judged from the pages alone).
    #[serde(default = "Probe::none")]
    pub probe: Probe,
    pub load: Load,
    #[serde(default)]
    pub restart: Option<Restart>,
    #[serde(default)]
    pub detect: Detect,
    /// Several logins per account (devices), and what a logout of one does to the others.
    #[serde(default)]
    pub sessions: Sessions,
    /// Session-ID rotation at login and revocation at logout.
    #[serde(default)]
    pub checks: Checks,
    #[serde(default)]
    pub lifetime: Option<Lifetime>,
    /// Audit the attributes of the cookies the login sets.
    #[serde(default)]
    pub cookies: Option<CookieAudit>,
    /// Read a debug config endpoint and report what it warns about.
    #[serde(default)]
    pub config: Option<ConfigProbe>,
    #[serde(default)]
    pub expect: Expect,
    /// Open pages in a real headless browser with virtual users' cookies (see `browser`).
    #[serde(default)]
    pub browser: Option<BrowserSection>,
    /// Where the scenario came from; relative paths (cwd, log) are resolved against its folder.
    #[serde(skip)]
    pub source: PathBuf,
    /// The password of a `user:password@` in the target URL, moved into an `Authorization`
    /// header (see `move_url_credentials`); kept only to be redacted.
    #[serde(skip)]
    pub url_password: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Base URL of the application, e.g. "http://127.0.0.1:8765".
    pub url: String,
    #[serde(default)]
    pub spawn: Option<Spawn>,
    #[serde(default)]
    pub ready: Ready,
    /// A server log file to follow during the run (lines matching the interrupted pattern are counted).
    #[serde(default)]
    pub log: Option<String>,
    /// How long a spawned target gets to exit after SIGTERM before it is killed.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: Dur,
    /// Accept invalid TLS certificates. Must be explicit; printed as a warning.
    #[serde(default)]
    pub insecure_tls: bool,
    /// Extra headers sent with every request to the target's origin (values may use ${VAR}).
    /// They never go to another host, not even to one in `allow_hosts`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Other hosts whose redirects may be followed ("sso.example.test", "127.0.0.2:8080",
    /// "https://sso.example.test"). By default sesscheck talks to the target's origin only: a
    /// redirect elsewhere is recorded and not followed.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
}

fn default_stop_timeout() -> Dur {
    secs(10)
}

/// How sesscheck starts the target, if it does.
#[derive(Debug, Deserialize, Clone)]
#[serde(try_from = "SpawnTable")]
pub enum Spawn {
    /// The built-in demo target (`sesscheck target`), started by sesscheck itself.
    Builtin(BuiltinTarget),
    /// Any shell command that starts the app in the foreground, e.g. "gunicorn -w 4 app:app".
    Command(CommandTarget),
}

/// `spawn` as written: `{ builtin = { ... } }` or `{ command = "...", cwd = "...", env = { ... } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpawnTable {
    #[serde(default)]
    builtin: Option<BuiltinTarget>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

impl TryFrom<SpawnTable> for Spawn {
    type Error = String;
    fn try_from(t: SpawnTable) -> std::result::Result<Spawn, String> {
        match (t.builtin, t.command) {
            (Some(b), None) if t.cwd.is_none() && t.env.is_empty() => Ok(Spawn::Builtin(b)),
            (Some(_), None) => Err("`cwd` and `env` go with `command`, not with `builtin`".into()),
            (None, Some(command)) => Ok(Spawn::Command(CommandTarget { command, cwd: t.cwd, env: t.env })),
            _ => Err("spawn needs exactly one of `builtin = { workers = 4, store = \"shared\" }` or `command = \"gunicorn -w 4 -b 127.0.0.1:$PORT app:app\"`".into()),
        }
    }
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct BuiltinTarget {
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default = "default_store")]
    pub store: String,
    /// Further `sesscheck target` flags, e.g. ["--race", "--latency-ms", "50"].
    #[serde(default)]
    pub args: Vec<String>,
}

fn default_workers() -> usize {
    4
}
fn default_store() -> String {
    "shared".into()
}

#[derive(Debug, Clone)]
pub struct CommandTarget {
    /// Run with `sh -c`; may use ${VAR}. The command must stay in the foreground.
    pub command: String,
    /// Working directory, relative to the scenario file.
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    /// A path that answers (any HTTP status below 500) once the target is up.
    #[serde(default = "default_ready_path")]
    pub path: String,
    #[serde(default = "default_ready_timeout")]
    pub timeout: Dur,
    /// Also wait until the probe has been answered by this many distinct worker PIDs
    /// (servers answer as soon as their first worker is up). Default: the built-in target's
    /// worker count, else 0 (do not wait).
    #[serde(default)]
    pub min_workers: Option<usize>,
}

impl Default for Ready {
    fn default() -> Self {
        Ready {
            path: default_ready_path(),
            timeout: default_ready_timeout(),
            min_workers: None,
        }
    }
}
fn default_ready_path() -> String {
    "/debug/session".into()
}
fn default_ready_timeout() -> Dur {
    secs(20)
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum BodyKind {
    #[default]
    Form,
    Json,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default = "default_login_path")]
    pub path: String,
    /// Send the fields as an HTML form (default) or as a JSON object.
    #[serde(default)]
    pub body: BodyKind,
    /// Login fields. Values may use ${VAR} and ${VAR:-default}; "{user}" becomes the
    /// virtual user's number (1, 2, ...) so every user can log in as its own account.
    /// With `accounts`, "{username}" and "{password}" are the user's account's cells (and
    /// the default fields are `{ username = "{username}", password = "{password}" }`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// A CSV file (`username,password`, relative to the scenario) of accounts that users
    /// take in turn; see `accounts`.
    #[serde(default)]
    pub accounts: Option<String>,
    /// The accounts file's rows, read when the scenario is loaded.
    #[serde(skip)]
    pub account_list: Vec<crate::scenario::accounts::Account>,
    /// Field names whose values may appear in reports (all others are redacted).
    #[serde(default = "default_public_fields")]
    pub public_fields: Vec<String>,
    /// Fetch a page first and copy a hidden form field (a CSRF token) into the login.
    #[serde(default)]
    pub csrf: Option<Csrf>,
    #[serde(default)]
    pub success: LoginSuccess,
    /// At most this many logins per second across all users (0 = unlimited); apps often rate-limit logins.
    #[serde(default)]
    pub login_rate: f64,
    /// Source addresses (from 127.0.0.0/8) handed round-robin to users, for apps that rate-limit per client IP.
    #[serde(default)]
    pub source_addresses: Vec<String>,
}

fn default_login_path() -> String {
    "/login".into()
}
impl Login {
    /// Every user logs in to the same account: no field names the user, and there is at most
    /// one account in `accounts`.
    pub fn is_one_account(&self) -> bool {
        if self.accounts.is_some() {
            return self.account_list.len() <= 1;
        }
        !self.fields.values().any(|v| v.contains("{user}"))
    }
}

pub fn default_public_fields() -> Vec<String> {
    ["username", "user", "email", "login", "usuario", "name"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Csrf {
    /// Page that holds the form, fetched with the user's cookie jar.
    #[serde(default = "default_login_path")]
    pub page: String,
    /// The form field the token is sent in, and the hidden input it is read from:
    /// "csrf_token" (Flask-WTF), "csrfmiddlewaretoken" (Django).
    #[serde(default = "default_csrf_field")]
    pub field: String,
    /// Where the page keeps the token when it is no hidden input: a regular expression whose
    /// first group is the token, e.g. `"csrfToken":\s*"([^"]+)"` for a token in a script's
    /// JSON (pgAdmin), or a `<meta name="csrf-token" content="...">`.
    #[serde(default)]
    pub pattern: Option<TokenPattern>,
}

impl Csrf {
    /// The token in a page: the pattern's first group, or the hidden input `field`, or a
    /// `<meta name="FIELD" content="...">` (Rails, Laravel and many single-page apps).
    pub fn read(&self, html: &str) -> Option<String> {
        use crate::util::html;
        match &self.pattern {
            Some(p) => p.0.captures(html)?.get(1).map(|m| html::decode(m.as_str())),
            None => html::hidden_field(html, &self.field).or_else(|| {
                html::tags(html, "meta")
                    .find(|tag| html::attr(tag, "name").as_deref() == Some(self.field.as_str()))
                    .and_then(|tag| html::attr(tag, "content"))
            }),
        }
    }

    /// Where the token was looked for, for a message.
    pub fn describe(&self) -> String {
        match &self.pattern {
            Some(p) => format!("matching csrf.pattern {:?}", p.0.as_str()),
            None => format!("`{}`", self.field),
        }
    }
}

/// `[login] csrf.pattern`, compiled when the scenario is read: a regex with a group.
#[derive(Debug, Clone)]
pub struct TokenPattern(pub regex::Regex);

impl<'de> Deserialize<'de> for TokenPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let re = regex::Regex::new(&text)
            .map_err(|e| D::Error::custom(format!("not a regular expression: {e}")))?;
        if re.captures_len() < 2 {
            return Err(D::Error::custom(
                "needs a group around the token, e.g. \"csrfToken\":\\s*\"([^\"]+)\"",
            ));
        }
        Ok(TokenPattern(re))
    }
}

fn default_csrf_field() -> String {
    "csrf_token".into()
}

/// How sesscheck tells a good login from a bad one. Many apps answer a failed login with
/// the same 302 as a good one, so the default looks at where the redirect goes.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct LoginSuccess {
    /// The final response after redirects must have this status (e.g. 200).
    #[serde(default)]
    pub status: Option<u16>,
    /// The login response must redirect to exactly this path (the query is ignored).
    #[serde(default)]
    pub redirect_to: Option<String>,
    /// After login, the probe must say authenticated (default true when a probe is configured;
    /// set false for a probe that cannot tell, then the login answer alone decides).
    #[serde(default)]
    pub probe_authenticated: Option<bool>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Logout {
    #[serde(default = "default_logout_path")]
    pub path: String,
    #[serde(default = "default_logout_method")]
    pub method: String,
    /// Fetch a page and send its hidden CSRF field with the logout (Django needs this).
    #[serde(default)]
    pub csrf: Option<Csrf>,
}

impl Default for Logout {
    fn default() -> Self {
        Logout {
            path: default_logout_path(),
            method: default_logout_method(),
            csrf: None,
        }
    }
}
fn default_logout_path() -> String {
    "/logout".into()
}
fn default_logout_method() -> String {
    "POST".into()
}

#[derive(Debug, Deserialize, Clone)]
#[serde(from = "ProbeSection")]
pub struct Probe {
    /// The app's debug endpoint answering JSON. Empty string: no probe.
    pub path: String,
    /// JSON pointer to the worker PID.
    pub pid: String,
    /// JSON pointer to the worker's identity, a string or a number ("/worker/id" answering
    /// "web-2:17"); replaces `pid`. See `worker::WorkerSpec`.
    pub worker: Option<String>,
    /// JSON pointer to the worker's host: the identity is then "<host>:<pid>".
    pub host: Option<String>,
    /// A response header naming the worker or replica (e.g. "X-Served-By", added by a reverse
    /// proxy), read from every response; joined with the JSON identity when there is one.
    pub worker_header: Option<String>,
    /// JSON pointer to the authenticated flag.
    pub authenticated: String,
    /// Probe after every N app requests.
    pub every: u32,
}

/// `[probe]` as written. Its `path` defaults to `/debug/session`, except in a section that
/// names only a `worker_header`: that is the header alone, with no debug endpoint to ask (a
/// pgAdmin trial's `[probe] worker_header = "X-Served-By"` stopped with exit 3 on a 404 from
/// /debug/session).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeSection {
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "default_pid_pointer")]
    pid: String,
    #[serde(default)]
    worker: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    worker_header: Option<String>,
    #[serde(default = "default_auth_pointer")]
    authenticated: String,
    #[serde(default = "one")]
    every: u32,
}

impl From<ProbeSection> for Probe {
    fn from(p: ProbeSection) -> Probe {
        let header_only = p.worker_header.is_some() && p.worker.is_none() && p.host.is_none();
        let path = p.path.unwrap_or_else(|| {
            if header_only {
                String::new()
            } else {
                default_ready_path()
            }
        });
        Probe {
            path,
            pid: p.pid,
            worker: p.worker,
            host: p.host,
            worker_header: p.worker_header,
            authenticated: p.authenticated,
            every: p.every,
        }
    }
}

impl Probe {
    /// What a scenario without `[probe]` gets: no probe at all (an empty path).
    fn none() -> Probe {
        Probe {
            path: String::new(),
            ..Probe::default()
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.path.is_empty()
    }
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            path: default_ready_path(),
            pid: default_pid_pointer(),
            worker: None,
            host: None,
            worker_header: None,
            authenticated: default_auth_pointer(),
            every: 1,
        }
    }
}
fn default_pid_pointer() -> String {
    "/worker/pid".into()
}
fn default_auth_pointer() -> String {
    "/authenticated".into()
}
fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionPolicy {
    /// A new TCP connection for every request, so the server's accept spreads requests over workers.
    #[default]
    New,
    /// Reuse pooled keep-alive connections (fast, but can pin a user to one worker).
    KeepAlive,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Load {
    #[serde(default = "default_users")]
    pub users: usize,
    /// Concurrent request streams per user, sharing that user's one cookie jar (browser tabs).
    #[serde(default = "one_usize")]
    pub tabs: usize,
    /// How long the load runs, counted from the moment the target answered ready: logins
    /// happen inside it. Either this or `total_requests`.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// Stop after this many app requests in total.
    #[serde(default)]
    pub total_requests: Option<u64>,
    /// App pages each tab requests in turn; each must come back authenticated. An entry may
    /// also be a write request table (see `write::RequestSpec`).
    #[serde(default = "default_requests")]
    pub requests: Vec<crate::scenario::requests::RequestSpec>,
    /// Pause between a tab's requests.
    #[serde(default)]
    pub think_time: Dur,
    #[serde(default)]
    pub connection: ConnectionPolicy,
    /// A request slower than this counts as infinite loading.
    #[serde(default = "default_loading_timeout")]
    pub loading_timeout: Dur,
    #[serde(default = "default_max_redirects")]
    pub max_redirects: usize,
    /// Stop reading a response body after this many bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// One tab of each user logs out every this often while the others keep loading pages.
    #[serde(default)]
    pub logout_every: Option<Dur>,
    /// Log in again after each `logout_every` logout (default true).
    #[serde(default = "yes")]
    pub relogin: bool,
    /// Hard cap on the whole run, whatever else is configured.
    #[serde(default = "default_max_duration")]
    pub max_duration: Dur,
    /// Open-loop load: send this many requests/s at a constant arrival rate (round-robin over
    /// the users, each with its own jar) instead of closed-loop tabs. Latency is counted from
    /// each request's intended send time, so a slow target cannot hide it (no coordinated
    /// omission). With `--shard I/N` each shard sends rate/N.
    #[serde(default)]
    pub rate: Option<f64>,
    /// At most this many requests in flight at once, so at most this many connections (default:
    /// no limit for closed-loop tabs, whose users and tabs bound them already;
    /// `OPEN_LOOP_MAX_CONNECTIONS` with `rate`). Many users then share few connections, each
    /// still with its own jar; a request waiting for a free connection counts that wait in its
    /// latency.
    #[serde(default)]
    pub max_connections: Option<usize>,
}

/// The open loop's default `max_connections`. Arrivals keep coming whatever the target does, so
/// without a cap a target slower than the rate gets one more connection for every request still
/// waiting for its answer: thousands within seconds, past a common limit of 1,024 open files.
/// With the cap, an arrival waits for a connection (its latency still counted from its intended
/// time, as wrk2 does with its fixed connections). 256 in flight carry 25,000 requests/s at
/// 10 ms each.
pub const OPEN_LOOP_MAX_CONNECTIONS: usize = 256;

impl Load {
    /// The cap on requests in flight that the run applies: the scenario's, or the open loop's
    /// default.
    pub fn connection_cap(&self) -> Option<usize> {
        self.max_connections
            .or(self.rate.map(|_| OPEN_LOOP_MAX_CONNECTIONS))
    }
}

fn default_users() -> usize {
    10
}
fn one_usize() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn default_requests() -> Vec<crate::scenario::requests::RequestSpec> {
    vec!["/dashboard".into()]
}
fn default_loading_timeout() -> Dur {
    secs(10)
}
fn default_max_redirects() -> usize {
    10
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_duration() -> Dur {
    secs(3600)
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    /// Restart this long after the load started...
    #[serde(default)]
    pub at: Option<Dur>,
    /// ...or once this many app requests have been sent.
    #[serde(default)]
    pub after_requests: Option<u64>,
    #[serde(default = "default_restart_method")]
    pub method: RestartMethod,
    /// Number of restarts (rolling deploys), `interval` apart.
    #[serde(default = "one_u32")]
    pub count: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// After the target is ready again, users must be served authenticated within this time.
    #[serde(default = "default_recovery")]
    pub recovery_timeout: Dur,
}

fn one_u32() -> u32 {
    1
}
fn default_interval() -> Dur {
    secs(5)
}
fn default_recovery() -> Dur {
    secs(10)
}
fn default_restart_method() -> RestartMethod {
    RestartMethod::Named(NamedRestart::Supervisor)
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RestartMethod {
    /// `"supervisor"`: sesscheck stops and starts the target it spawned.
    Named(NamedRestart),
    /// `{ command = "systemctl restart app", timeout = "30s" }`
    Command {
        command: String,
        #[serde(default = "default_command_timeout")]
        timeout: Dur,
    },
    /// `{ signal = "HUP", pidfile = "/run/gunicorn.pid" }`
    Signal { signal: String, pidfile: String },
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NamedRestart {
    Supervisor,
}

fn default_command_timeout() -> Dur {
    secs(60)
}

impl RestartMethod {
    pub fn label(&self) -> String {
        match self {
            RestartMethod::Named(NamedRestart::Supervisor) => "supervisor".into(),
            RestartMethod::Command { .. } => "command".into(),
            RestartMethod::Signal { signal, .. } => format!("signal {signal}"),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    /// Regex matched against response bodies/headers (and the server log) to spot SessionInterrupted.
    #[serde(default = "default_interrupted_pattern")]
    pub interrupted_pattern: String,
    /// Statuses that count as interrupted when a logout of the same jar explains them.
    #[serde(default = "default_interrupted_statuses")]
    pub interrupted_statuses: Vec<u16>,
    /// A response finishing this long after a logout of its jar still counts as in flight.
    #[serde(default = "default_interrupted_window")]
    pub interrupted_window: Dur,
    /// Where the app sends anonymous users (default: the login path).
    #[serde(default)]
    pub login_path: Option<String>,
}

impl Default for Detect {
    fn default() -> Self {
        Detect {
            interrupted_pattern: default_interrupted_pattern(),
            interrupted_statuses: default_interrupted_statuses(),
            interrupted_window: default_interrupted_window(),
            login_path: None,
        }
    }
}
fn default_interrupted_pattern() -> String {
    "SessionInterrupted|session was deleted before the request completed".into()
}
fn default_interrupted_statuses() -> Vec<u16> {
    let mut v = vec![400];
    v.extend(500..=599);
    v
}
fn default_interrupted_window() -> Dur {
    Dur(Duration::from_millis(250))
}

/// What a logout of one of an account's sessions must do to its other sessions.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogoutScope {
    /// Logging out ends only that session (other devices stay logged in).
    Session,
    /// Logging out ends every session of the account.
    User,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct Sessions {
    /// Separate logins (each with its own cookie jar, like devices) per account.
    #[serde(default = "one_usize")]
    pub per_user: usize,
    /// When set, at the end one session of each account logs out and the others are probed.
    #[serde(default)]
    pub logout_scope: Option<LogoutScope>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            per_user: 1,
            logout_scope: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// The session identifier must change at login (`session_fixation` otherwise).
    #[serde(default)]
    pub fixation: bool,
    /// After logout, replaying the old cookie must not be authenticated (`logout_not_revoked`).
    #[serde(default)]
    pub revocation: bool,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Lifetime {
    /// The session must last at least this long (from Set-Cookie Max-Age/Expires or `remaining`).
    #[serde(default)]
    pub min: Option<Dur>,
    /// JSON pointer into the probe answer to the seconds the session has left, e.g. "/expires_in".
    #[serde(default)]
    pub remaining: Option<String>,
    /// Whether activity must renew the session (true) or must not (false).
    #[serde(default)]
    pub sliding: Option<bool>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct CookieAudit {
    #[serde(default = "yes")]
    pub http_only: bool,
    /// Require Secure. Default: only when the target URL is https.
    #[serde(default)]
    pub secure: Option<bool>,
    /// Required SameSite value ("Lax", "Strict", "None"), or "any" for any explicit value.
    #[serde(default = "default_same_site")]
    pub same_site: String,
    /// Largest acceptable cookie (name + value) in bytes; browsers drop cookies over 4096.
    #[serde(default = "default_cookie_size")]
    pub max_size: usize,
    /// Which cookies to audit (default: the ones the login sets).
    #[serde(default)]
    pub names: Vec<String>,
}

fn default_same_site() -> String {
    "any".into()
}
fn default_cookie_size() -> usize {
    4096
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConfigProbe {
    #[serde(default = "default_config_path")]
    pub path: String,
    /// JSON pointer to a flag that is true when the secret key is a default one.
    #[serde(default = "default_secret_pointer")]
    pub default_secret: String,
    /// JSON pointer to a list of warning strings.
    #[serde(default = "default_warnings_pointer")]
    pub warnings: String,
}

fn default_config_path() -> String {
    "/debug/config".into()
}
fn default_secret_pointer() -> String {
    "/secret_key_is_default".into()
}
fn default_warnings_pointer() -> String {
    "/warnings".into()
}

/// `[browser]`: a headless Chromium opens `pages` with the cookies of the first `users`
/// virtual users and watches whether each page settles.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BrowserSection {
    pub pages: Vec<String>,
    /// How many of the run's virtual users also get a browser check (contexts at a time).
    #[serde(default = "default_browser_users")]
    pub users: usize,
    /// When to check; default: both sides of the restart, or once mid-run without `[restart]`.
    #[serde(default)]
    pub when: Option<BrowserWhen>,
    #[serde(default = "default_settle_timeout")]
    pub settle_timeout: Dur,
    /// CSS selector: the page is settled once it exists.
    #[serde(default)]
    pub ready_selector: Option<String>,
    /// CSS selector of a spinner: the page is settled once it is gone.
    #[serde(default)]
    pub busy_selector: Option<String>,
    /// The browser to run; default: `chromium`, `chromium-browser` or `google-chrome` on PATH.
    #[serde(default)]
    pub executable: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BrowserWhen {
    BeforeRestart,
    AfterRestart,
    Both,
}

fn default_browser_users() -> usize {
    2
}
fn default_settle_timeout() -> Dur {
    secs(10)
}

impl BrowserSection {
    /// The browser executable: `executable` as a path or a name on PATH, else the first known
    /// Chromium on PATH. The error says which key to set and which package to install.
    pub fn resolve_executable(&self) -> std::result::Result<PathBuf, String> {
        use crate::browser::{find_on_path, is_executable, EXECUTABLES};
        match &self.executable {
            Some(e) if e.contains('/') => {
                let p = PathBuf::from(e);
                if is_executable(&p) {
                    Ok(p)
                } else {
                    Err(format!("{e} is not an executable file; install Debian's `chromium` package (apt-get install chromium) or point it at a Chromium/Chrome binary"))
                }
            }
            Some(name) => find_on_path(&[name.as_str()]).ok_or_else(|| {
                format!("{name:?} is not on PATH; install Debian's `chromium` package (apt-get install chromium) or give the full path")
            }),
            None => find_on_path(&EXECUTABLES).ok_or_else(|| {
                format!(
                    "no browser found on PATH (looked for {}); install Debian's `chromium` package (apt-get install chromium) or set executable = \"/path/to/chromium\"",
                    EXECUTABLES.join(", ")
                )
            }),
        }
    }
}

/// Thresholds. Each one that is set becomes a pass/fail check in the report.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub min_distinct_pids: Option<usize>,
    /// Fraction of probes (outside restart windows) that must be authenticated: 1.0 = all.
    pub auth_persistence: Option<f64>,
    pub max_logouts: Option<u64>,
    pub max_restart_logouts: Option<u64>,
    pub max_session_interrupted: Option<u64>,
    pub max_infinite_loading: Option<u64>,
    pub max_login_failures: Option<u64>,
    /// Fraction of requests that may fail (HTTP errors and transport errors outside restarts).
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub max_downtime_s: Option<f64>,
}

impl Scenario {
    /// Read, parse, interpolate and validate a scenario file.
    pub fn load(path: &Path) -> std::result::Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read scenario file: {e}"),
        })?;
        let mut scenario = Scenario::parse(&text, &file)?;
        scenario.source = path.to_path_buf();
        Ok(scenario)
    }

    pub fn parse(text: &str, file: &str) -> std::result::Result<Scenario, ScenarioError> {
        let mut scenario: Scenario = toml::from_str(text).map_err(|e| toml_error(e, text, file))?;
        let err = |field: &str, message: String| ScenarioError {
            file: file.to_string(),
            line: locate(text, field),
            message: format!("{field}: {message}"),
        };
        scenario
            .interpolate()
            .map_err(|(field, m)| err(&field, m))?;
        scenario.move_url_credentials();
        scenario.read_accounts(file).map_err(|e| match e {
            Ok(e) => e,
            Err((field, m)) => err(&field, m),
        })?;
        scenario.lowered = scenario.validate().map_err(|(field, m)| err(&field, m))?;
        Ok(scenario)
    }

    /// `http://user:pw@host/`: the credentials become an `Authorization: Basic` header (as
    /// curl sends them; a configured `Authorization` header wins) and leave the URL, so no
    /// banner, message or report ever shows them.
    pub fn move_url_credentials(&mut self) {
        use base64::Engine;
        let Ok(mut url) = url::Url::parse(&self.target.url) else {
            return;
        };
        if url.username().is_empty() && url.password().is_none() {
            return;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let password = url.password().map(decode).unwrap_or_default();
        let has_authorization = self
            .target
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        if !has_authorization {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            self.target
                .headers
                .insert("Authorization".into(), format!("Basic {token}"));
        }
        if !password.is_empty() {
            self.url_password = Some(password);
        }
        let _ = url.set_username("");
        let _ = url.set_password(None);
        self.target.url = url.to_string();
    }

    /// `[login] accounts`: read the file (relative to the scenario file `file`), and give the
    /// login its default fields. A mistake in the file names the file and its line.
    fn read_accounts(
        &mut self,
        file: &str,
    ) -> std::result::Result<(), std::result::Result<ScenarioError, (String, String)>> {
        let Some(login) = self.login.as_mut() else {
            return Ok(());
        };
        let Some(name) = login.accounts.as_deref() else {
            return Ok(());
        };
        let name = interpolate_env(name).map_err(|m| Err(("login.accounts".to_string(), m)))?;
        let path = Path::new(file)
            .parent()
            .map(|dir| dir.join(&name))
            .unwrap_or_else(|| PathBuf::from(&name));
        login.account_list = crate::scenario::accounts::load(&path).map_err(|e| {
            Ok(ScenarioError {
                file: path.display().to_string(),
                line: e.line,
                message: format!("login.accounts: {}", e.message),
            })
        })?;
        if login.fields.is_empty() {
            login.fields = [("username", "{username}"), ("password", "{password}")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
        Ok(())
    }

    /// Replace ${VAR} / ${VAR:-default} in the fields where secrets and ports live.
    fn interpolate(&mut self) -> std::result::Result<(), (String, String)> {
        let f = |field: &str, s: &mut String| -> std::result::Result<(), (String, String)> {
            *s = interpolate_env(s).map_err(|m| (field.to_string(), m))?;
            Ok(())
        };
        f("target.url", &mut self.target.url)?;
        for (k, v) in self.target.headers.iter_mut() {
            f(&format!("target.headers.{k}"), v)?;
        }
        if let Some(log) = self.target.log.as_mut() {
            f("target.log", log)?;
        }
        if let Some(Spawn::Builtin(b)) = self.target.spawn.as_mut() {
            for a in b.args.iter_mut() {
                f("target.spawn.args", a)?;
            }
        }
        if let Some(Spawn::Command(c)) = self.target.spawn.as_mut() {
            f("target.spawn.command", &mut c.command)?;
            for (k, v) in c.env.iter_mut() {
                f(&format!("target.spawn.env.{k}"), v)?;
            }
            if let Some(cwd) = c.cwd.as_mut() {
                f("target.spawn.cwd", cwd)?;
            }
        }
        if let Some(login) = self.login.as_mut() {
            for (k, v) in login.fields.iter_mut() {
                f(&format!("login.fields.{k}"), v)?;
            }
        }
        if let Some(r) = self.restart.as_mut() {
            match &mut r.method {
                RestartMethod::Command { command, .. } => f("restart.method", command)?,
                RestartMethod::Signal { pidfile, .. } => f("restart.method", pidfile)?,
                RestartMethod::Named(_) => {}
            }
        }
        Ok(())
    }

    /// Check every field; what needs parsing comes back parsed (see `lowered`).
    pub fn validate(&self) -> std::result::Result<lowered::Lowered, (String, String)> {
        let bad = |field: &str, m: &str| Err((field.to_string(), m.to_string()));
        let url = url::Url::parse(&self.target.url)
            .map_err(|e| ("target.url".to_string(), format!("not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return bad("target.url", "must start with http:// or https://");
        }
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty");
        }
        if let Some(Spawn::Builtin(b)) = &self.target.spawn {
            if b.workers == 0 || b.workers > 64 {
                return bad("target.spawn.builtin.workers", "must be between 1 and 64");
            }
            // The demo target's own names (its `--store` flag), so the two lists cannot drift.
            use clap::ValueEnum;
            if crate::demo::StoreMode::from_str(&b.store, false).is_err() {
                let names: Vec<String> = crate::demo::StoreMode::value_variants()
                    .iter()
                    .filter_map(|v| v.to_possible_value())
                    .map(|v| v.get_name().to_string())
                    .collect();
                return Err((
                    "target.spawn.builtin.store".into(),
                    format!(
                        "unknown store {:?}; expected one of {}",
                        b.store,
                        names.join(", ")
                    ),
                ));
            }
        }
        for (field, path) in [
            ("target.ready.path", &self.target.ready.path),
            ("logout.path", &self.logout.path),
        ] {
            check_path(field, path)?;
        }
        if let Some(c) = &self.logout.csrf {
            check_path("logout.csrf.page", &c.page)?;
        }
        if !self.probe.path.is_empty() {
            check_path("probe.path", &self.probe.path)?;
            let (worker, host) = (&self.probe.worker, &self.probe.host);
            for (field, p) in [
                ("probe.pid", &self.probe.pid),
                ("probe.authenticated", &self.probe.authenticated),
                ("probe.worker", worker.as_ref().unwrap_or(&String::new())),
                ("probe.host", host.as_ref().unwrap_or(&String::new())),
            ] {
                if !p.is_empty() && !p.starts_with('/') {
                    return bad(
                        field,
                        "a JSON pointer starts with '/', e.g. \"/worker/pid\"",
                    );
                }
            }
            if self.probe.every == 0 {
                return bad("probe.every", "must be at least 1");
            }
            if worker.is_some() && host.is_some() {
                return bad(
                    "probe.host",
                    "`host` goes with `pid` (identity \"<host>:<pid>\"); `worker` is the whole identity",
                );
            }
            if host.is_some() && self.probe.pid.is_empty() {
                return bad("probe.pid", "`host` needs a `pid` pointer to go with it");
            }
        }
        if let Some(login) = &self.login {
            check_path("login.path", &login.path)?;
            check_redirect_to(login)?;
            if let Some(c) = &login.csrf {
                check_path("login.csrf.page", &c.page)?;
            }
            if login.fields.is_empty() {
                return bad("login.fields", "needs at least one field, e.g. { username = \"demo\", password = \"${DEMO_PASSWORD}\" }");
            }
            if login.login_rate < 0.0 || !login.login_rate.is_finite() {
                return bad(
                    "login.login_rate",
                    "must be a positive number of logins per second (0 = unlimited)",
                );
            }
        }
        let load = &self.load;
        if load.users == 0 || load.users > 100_000 {
            return bad("load.users", "must be between 1 and 100000");
        }
        if load.tabs == 0 || load.tabs > 64 {
            return bad("load.tabs", "must be between 1 and 64");
        }
        if load.max_connections == Some(0) {
            return bad("load.max_connections", "must be at least 1");
        }
        if let Some(r) = load.rate {
            if !(r.is_finite() && r > 0.0 && r <= 1_000_000.0) {
                return bad("load.rate", "must be between 0 and 1000000 requests/s");
            }
        }
        if load.duration.is_none() && load.total_requests.is_none() {
            return bad(
                "load",
                "set `duration` (e.g. \"20s\") or `total_requests`, so the run ends by itself",
            );
        }
        if load.duration.is_some_and(|d| d.0.is_zero()) {
            return bad("load.duration", "must be longer than 0s");
        }
        if load.total_requests == Some(0) {
            return bad("load.total_requests", "must be at least 1");
        }
        if load.requests.is_empty() {
            return bad(
                "load.requests",
                "needs at least one path, e.g. [\"/dashboard\"]",
            );
        }
        for p in &load.requests {
            check_path("load.requests", p.as_str())?;
            p.check().map_err(|m| ("load.requests".to_string(), m))?;
        }
        if load.loading_timeout.0.is_zero() {
            return bad("load.loading_timeout", "must be longer than 0s");
        }
        if load.max_duration.0.is_zero() {
            return bad(
                "load.max_duration",
                "must be longer than 0s (it caps the whole run; a run that sends no load proves nothing)",
            );
        }
        if load.max_redirects > MAX_REDIRECTS_LIMIT {
            return Err((
                "load.max_redirects".into(),
                format!("must be at most {MAX_REDIRECTS_LIMIT} (browsers give up after about 20)"),
            ));
        }
        if load.logout_every.is_some() && self.login.is_none() {
            return bad(
                "load.logout_every",
                "needs a [login] section (users must be logged in to log out)",
            );
        }
        if load.logout_every.is_some_and(|d| d.0.is_zero()) {
            return bad("load.logout_every", "must be longer than 0s");
        }
        if let Some(r) = &self.restart {
            if r.at.is_some() == r.after_requests.is_some() {
                return bad(
                    "restart",
                    "set exactly one of `at` (e.g. \"8s\") or `after_requests`",
                );
            }
            if r.count == 0 {
                return bad("restart.count", "must be at least 1");
            }
            // A restart the load never reaches verifies nothing; say so before the run.
            if let Some(at) = r.at {
                let ends = [
                    ("load.duration", load.duration),
                    ("load.max_duration", Some(load.max_duration)),
                ];
                if let Some((field, Some(end))) = ends
                    .iter()
                    .find(|(_, end)| end.is_some_and(|e| at.0 >= e.0))
                {
                    return bad(
                        "restart.at",
                        &format!("{at} is not before the end of the load ({field} = {end}): the restart would never run"),
                    );
                }
            }
            if let (Some(n), Some(total)) = (r.after_requests, load.total_requests) {
                if n >= total {
                    return bad(
                        "restart.after_requests",
                        &format!("{n} is not below load.total_requests = {total}: the restart would never run"),
                    );
                }
            }
            if let RestartMethod::Named(NamedRestart::Supervisor) = r.method {
                if self.target.spawn.is_none() {
                    return bad(
                        "restart.method",
                        "\"supervisor\" restarts a target that sesscheck spawned; add [target] spawn, or use { command = \"...\" } or { signal = \"HUP\", pidfile = \"...\" }",
                    );
                }
            }
        }
        if self.sessions.per_user == 0 || self.sessions.per_user > 16 {
            return bad("sessions.per_user", "must be between 1 and 16");
        }
        if self.sessions.logout_scope.is_some() && self.sessions.per_user < 2 {
            return bad(
                "sessions.logout_scope",
                "needs per_user = 2 or more (sessions to compare)",
            );
        }
        if (self.sessions.per_user > 1 || self.checks.fixation || self.checks.revocation)
            && self.login.is_none()
        {
            return bad("sessions", "session checks need a [login] section");
        }
        if let Some(l) = &self.lifetime {
            if let Some(p) = &l.remaining {
                if !p.starts_with('/') {
                    return bad(
                        "lifetime.remaining",
                        "a JSON pointer starts with '/', e.g. \"/expires_in\"",
                    );
                }
            }
        }
        if let Some(c) = &self.cookies {
            const SAME_SITE: [&str; 4] = ["any", "lax", "strict", "none"];
            if !SAME_SITE.contains(&c.same_site.to_ascii_lowercase().as_str()) {
                return bad(
                    "cookies.same_site",
                    "is one of \"Lax\", \"Strict\", \"None\" or \"any\"",
                );
            }
        }
        if let Some(c) = &self.config {
            check_path("config.path", &c.path)?;
        }
        if let Some(b) = &self.browser {
            self.validate_browser(b)?;
        }
        if let Some(a) = self.expect.auth_persistence {
            if !(0.0..=1.0).contains(&a) {
                return bad(
                    "expect.auth_persistence",
                    "is a fraction between 0.0 and 1.0",
                );
            }
            // A share of probe answers: without a probe it could only be "0 of 0" (found on
            // Label Studio with a header-only [probe], which failed the run on nothing).
            if !self.probe.is_configured() {
                return bad(
                    "expect.auth_persistence",
                    "is the share of probe answers that said authenticated, and this scenario asks no probe ([probe] path): leave it out (max_logouts counts logouts from the pages), or add a probe",
                );
            }
        }
        if let Some(a) = self.expect.max_error_rate {
            if !(0.0..=1.0).contains(&a) {
                return bad("expect.max_error_rate", "is a fraction between 0.0 and 1.0");
            }
        }
        lowered::lower(self, &url)
    }

    fn validate_browser(&self, b: &BrowserSection) -> std::result::Result<(), (String, String)> {
        let bad = |field: &str, m: &str| Err((field.to_string(), m.to_string()));
        if b.pages.is_empty() {
            return bad("browser.pages", "needs at least one path, e.g. [\"/app\"]");
        }
        for p in &b.pages {
            check_path("browser.pages", p)?;
        }
        if b.users == 0 || b.users > 16 || b.users > self.load.users {
            return bad(
                "browser.users",
                "must be between 1 and 16, and at most load.users (each is a browser context)",
            );
        }
        if b.settle_timeout.0.is_zero() {
            return bad("browser.settle_timeout", "must be longer than 0s");
        }
        if b.when.is_some() && self.restart.is_none() {
            return bad(
                "browser.when",
                "needs a [restart] section (without one the pages are checked once, mid-run)",
            );
        }
        if self.load.rate.is_some() {
            return bad(
                "browser",
                "is not supported with an open-loop [load] rate; remove `rate` or [browser]",
            );
        }
        for (field, sel) in [
            ("browser.ready_selector", &b.ready_selector),
            ("browser.busy_selector", &b.busy_selector),
        ] {
            if sel.as_ref().is_some_and(|s| s.trim().is_empty()) {
                return bad(
                    field,
                    "must not be empty (a CSS selector such as \".loading\")",
                );
            }
        }
        b.resolve_executable()
            .map_err(|m| ("browser.executable".to_string(), m))?;
        Ok(())
    }

    /// How many distinct worker PIDs must have answered before the load starts.
    pub fn ready_workers(&self) -> usize {
        let from_probe = !self.probe.path.is_empty()
            && (!self.probe.pid.is_empty() || self.probe.worker.is_some());
        if !from_probe && self.probe.worker_header.is_none() {
            return 0;
        }
        match (&self.target.ready.min_workers, &self.target.spawn) {
            (Some(n), _) => *n,
            (None, Some(Spawn::Builtin(b))) => b.workers,
            _ => 0,
        }
    }

    /// The path the app sends anonymous users to, without a query: a login posted to
    /// `/admin/login/?next=/admin/` (so that Django redirects to the admin) still has its page
    /// at `/admin/login/`, where a redirect of an anonymous user lands with a `next` of its own.
    pub fn login_path(&self) -> &str {
        let path = match (&self.detect.login_path, &self.login) {
            (Some(p), _) => p.as_str(),
            (None, Some(l)) => l.path.as_str(),
            (None, None) => "/login",
        };
        without_query(path)
    }

    /// Values that must never appear in output: every login field not declared public, and the
    /// values of credential-like headers (Authorization, Cookie, tokens, keys).
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.url_password.iter().cloned().collect();
        for (name, value) in &self.target.headers {
            let n = name.to_ascii_lowercase();
            if CREDENTIAL_HEADER_WORDS.iter().any(|w| n.contains(w)) {
                out.push(value.clone());
                // "Bearer abc": the credential alone must not leak either.
                if let Some((_, credential)) = value.split_once(' ') {
                    out.push(credential.trim().to_string());
                }
            }
        }
        if let Some(login) = &self.login {
            for (k, v) in &login.fields {
                if !login
                    .public_fields
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(k))
                    && !v.is_empty()
                    && !is_form_flag(k, v)
                {
                    out.push(v.clone());
                }
            }
            // Passwords from the accounts file are secrets like any other.
            out.extend(
                login
                    .account_list
                    .iter()
                    .filter(|a| !a.password.is_empty())
                    .map(|a| a.password.clone()),
            );
        }
        out
    }
}

/// `success.redirect_to` is matched exactly; the login page itself (or a path holding it, like
/// "/accounts/login/?next=/") is where a *failed* login goes, so it cannot mean success.
fn check_redirect_to(login: &Login) -> std::result::Result<(), (String, String)> {
    let Some(want) = &login.success.redirect_to else {
        return Ok(());
    };
    // Both compared as paths: `/admin/login/?next=/admin/` is still the page `/admin/login/`.
    let path = without_query(want);
    let login_path = without_query(&login.path).trim_end_matches('/');
    if !login_path.is_empty()
        && (path.trim_end_matches('/') == login_path || want.contains(login_path))
    {
        return Err((
            "login.success.redirect_to".to_string(),
            format!(
                "{want:?} is the login page ({}): a failed login goes there; give the page a good login lands on, e.g. \"/dashboard\"",
                login.path
            ),
        ));
    }
    Ok(())
}

/// The path part of a path-with-query: what names the page, without `?query` or `#fragment`.
pub fn without_query(path: &str) -> &str {
    path.split(['?', '#']).next().unwrap_or(path)
}

/// A path on the target: starts with one `/`. `//host/x` (and `/\host/x`, which URL parsers
/// read the same way) would name another host, so it is refused like an absolute URL.
fn check_path(field: &str, p: &str) -> std::result::Result<(), (String, String)> {
    if !p.starts_with('/') {
        return Err((
            field.to_string(),
            format!("{p:?} must be a path starting with '/' (not a URL: requests go to [target] url only)"),
        ));
    }
    if matches!(p.as_bytes().get(1), Some(b'/' | b'\\')) {
        return Err((
            field.to_string(),
            format!("{p:?} starts with two slashes, which names another host; a path starts with a single '/'"),
        ));
    }
    Ok(())
}

/// A `[target] headers` entry whose name contains one of these carries a credential: its value
/// is a secret (`Authorization`, `Cookie`, `X-Api-Key`, `X-Auth-Token`, `X-Password`, ...).
const CREDENTIAL_HEADER_WORDS: [&str; 9] = [
    "auth",
    "cookie",
    "token",
    "key",
    "secret",
    "pass",
    "session",
    "csrf",
    "credential",
];

/// A checkbox's value in a field whose name is not a credential's (`remember = "on"`,
/// `persist_session = "1"`), or a submit button's (`submit = "Login"`): no secret. Redacted,
/// "on" became `[REDACTED]` in every "anonymous on web-2" of the messages (Label Studio trial),
/// and "Login" in every page title (FlaskBB trial).
fn is_form_flag(name: &str, value: &str) -> bool {
    const BUTTONS: [&str; 3] = ["submit", "button", "commit"];
    if BUTTONS.iter().any(|b| name.eq_ignore_ascii_case(b)) {
        return true;
    }
    const FLAGS: [&str; 8] = ["on", "off", "true", "false", "yes", "no", "1", "0"];
    let name = name.to_ascii_lowercase();
    // Not the header words: "session" names a checkbox here (`persist_session`).
    const CREDENTIAL_FIELD_WORDS: [&str; 10] = [
        "pass",
        "pw",
        "secret",
        "token",
        "key",
        "pin",
        "otp",
        "code",
        "auth",
        "credential",
    ];
    FLAGS.iter().any(|f| value.eq_ignore_ascii_case(f))
        && !CREDENTIAL_FIELD_WORDS.iter().any(|w| name.contains(w))
}

/// The HTTP methods a logout may use.
pub const LOGOUT_METHODS: [&str; 4] = ["POST", "GET", "DELETE", "PUT"];

/// Upper bound for `[load] max_redirects`: browsers stop at about 20.
pub const MAX_REDIRECTS_LIMIT: usize = 100;

/// One `[target] allow_hosts` entry: a host, with a port when given ("host", "host:port" or a
/// URL "scheme://host[:port]").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub host: String,
    pub port: Option<u16>,
}

impl AllowedHost {
    pub fn parse(entry: &str) -> std::result::Result<AllowedHost, String> {
        let text = entry.trim();
        let url = if text.contains("://") {
            url::Url::parse(text)
        } else {
            url::Url::parse(&format!("http://{text}"))
        }
        .map_err(|e| format!("{entry:?} is not a host or host:port ({e})"))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{entry:?} names no host"))?;
        if !url.username().is_empty() || url.password().is_some() || url.path().len() > 1 {
            return Err(format!(
                "{entry:?}: give a host or host:port, without user, password or path"
            ));
        }
        Ok(AllowedHost {
            host: host.to_ascii_lowercase(),
            port: if text.contains("://") {
                url.port()
            } else {
                url.port()
                    .or_else(|| text.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            },
        })
    }

    /// Does a URL's host (and port, when this entry names one) match?
    pub fn matches(&self, url: &url::Url) -> bool {
        url.host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && self
                .port
                .is_none_or(|p| url.port_or_known_default() == Some(p))
    }
}

/// `${VAR}`, `${VAR:-default}`; `$$` is a literal `$`.
pub fn interpolate_env(s: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name {name:?} in ${{...}}"));
            }
            match (std::env::var(name), default) {
                (Ok(v), _) if !v.is_empty() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (Ok(v), None) => out.push_str(&v),
                (Err(_), None) => {
                    return Err(format!(
                        "environment variable {name} is not set (set it, or give a default: ${{{name}:-value}})"
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Turn a toml/serde error into file:line plus a did-you-mean for unknown keys.
fn toml_error(e: toml::de::Error, text: &str, file: &str) -> ScenarioError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let mut message = e.message().to_string();
    if message.contains("untagged enum RestartMethod") {
        message = format!(
            "unknown restart method; expected \"supervisor\", {{ command = \"systemctl restart app\", timeout = \"60s\" }} or {{ signal = \"HUP\", pidfile = \"/run/app.pid\" }}{}",
            e.span()
                .and_then(|sp| text.get(sp.start..sp.end))
                .filter(|v| v.starts_with('"'))
                .filter(|v| strsim::jaro_winkler(v.trim_matches('"'), "supervisor") > 0.8)
                .map(|_| " — did you mean \"supervisor\"?")
                .unwrap_or("")
        );
    }
    if let Some(hint) = did_you_mean(&message) {
        message.push_str(&format!(" — did you mean `{hint}`?"));
    }
    // A bad value names its key: serde only says "unknown variant `x`".
    if !message.starts_with("unknown field") {
        if let Some(key) = line.and_then(|l| key_at(text, l)) {
            message = format!("{key}: {message}");
        }
    }
    ScenarioError {
        file: file.to_string(),
        line,
        message,
    }
}

/// The dotted key (`load.connection`) written on a line of the scenario, for messages.
fn key_at(text: &str, line: usize) -> Option<String> {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
        if i + 1 == line {
            let (key, _) = l.split_once('=')?;
            let key = key.trim().trim_matches('"');
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
    }
    None
}

/// serde says "unknown field `userz`, expected one of `users`, `tabs`" (or "unknown variant
/// `kep-alive`, expected `new` or `keep-alive`"): suggest the closest.
fn did_you_mean(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (unknown, rest) = rest.split_once('`')?;
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (strsim::jaro_winkler(unknown, cand), cand))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

/// Find the line of a dotted field ("load.users") in the source text, for validation errors.
/// Falls back to the table's header line, then to None.
pub fn locate(text: &str, field: &str) -> Option<usize> {
    let parts: Vec<&str> = field.split('.').collect();
    let mut table: Vec<String> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (matched depth, line)
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let name = line.trim_matches(|c| c == '[' || c == ']').trim();
            table = name.split('.').map(|s| s.trim().to_string()).collect();
            if parts.starts_with(&table.iter().map(String::as_str).collect::<Vec<_>>())
                && best.is_none_or(|b| b.0 < table.len())
            {
                best = Some((table.len(), i + 1));
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let mut full: Vec<&str> = table.iter().map(String::as_str).collect();
        full.extend(key.trim().trim_matches('"').split('.').map(str::trim));
        let depth = full.iter().zip(&parts).take_while(|(a, b)| a == b).count();
        if depth == full.len().min(parts.len()) && depth > 0 && best.is_none_or(|b| b.0 < depth) {
            best = Some((depth, i + 1));
        }
    }
    best.map(|b| b.1)
}

/// The built-in target's command line, for spawning and for display.
pub fn builtin_args(b: &BuiltinTarget, url: &url::Url) -> Result<Vec<String>> {
    let port = url.port_or_known_default().unwrap_or(80);
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let mut args = vec![
        "target".to_string(),
        "--host".into(),
        host,
        "--port".into(),
        port.to_string(),
        "--workers".into(),
        b.workers.to_string(),
        "--store".into(),
        b.store.clone(),
    ];
    args.extend(b.args.iter().cloned());
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "t"
[target]
url = "http://127.0.0.1:9"
[load]
duration = "1s"
"#;

    #[test]
    fn a_csrf_token_is_read_from_a_hidden_input_a_meta_tag_or_a_pattern() {
        let csrf = |extra: &str| -> Csrf {
            toml::from_str(&format!(
                "page = \"/login\"\nfield = \"csrf-token\"\n{extra}"
            ))
            .unwrap()
        };
        let plain = csrf("");
        assert_eq!(
            plain
                .read(r#"<input type=hidden name="csrf-token" value="a&amp;b">"#)
                .as_deref(),
            Some("a&b")
        );
        assert_eq!(
            plain
                .read(r#"<meta name="csrf-token" content="m1">"#)
                .as_deref(),
            Some("m1")
        );
        assert_eq!(plain.read("<p>none</p>"), None);
        let script = csrf(r#"pattern = '"csrfToken":\s*"([^"]+)"'"#);
        assert_eq!(
            script
                .read(r#"<script>cfg = {"csrfToken": "s-3"}</script>"#)
                .as_deref(),
            Some("s-3")
        );
        assert!(script.describe().contains("csrf.pattern"));
    }

    #[test]
    fn a_probe_section_with_only_a_worker_header_asks_no_debug_endpoint() {
        let probe = |section: &str| {
            Scenario::parse(&format!("{MINIMAL}\n[probe]\n{section}\n"), "t.toml")
                .unwrap()
                .probe
        };
        let header = probe("worker_header = \"X-Served-By\"");
        assert!(!header.is_configured(), "{header:?}");
        assert_eq!(header.worker_header.as_deref(), Some("X-Served-By"));
        let both = probe("worker_header = \"X-Served-By\"\npath = \"/debug/session\"");
        assert_eq!(both.path, "/debug/session");
        assert_eq!(probe("pid = \"/pid\"").path, "/debug/session");
        assert_eq!(
            probe("worker_header = \"X\"\nworker = \"/w\"").path,
            "/debug/session"
        );
        let unknown = Scenario::parse(&format!("{MINIMAL}\n[probe]\npaht = \"/x\"\n"), "t.toml");
        assert!(unknown.is_err(), "unknown keys are still refused");
    }

    #[test]
    fn the_login_path_is_a_path_without_its_query() {
        let login = |path: &str| {
            let text = format!(
                "{MINIMAL}\n[login]\npath = \"{path}\"\nfields = {{ username = \"u\" }}\nsuccess = {{ redirect_to = \"/admin/\" }}\n"
            );
            Scenario::parse(&text, "t.toml")
                .unwrap()
                .login_path()
                .to_string()
        };
        assert_eq!(login("/admin/login/?next=/admin/"), "/admin/login/");
        assert_eq!(login("/login#form"), "/login");
        assert_eq!(login("/accounts/login/"), "/accounts/login/");
    }

    #[test]
    fn a_redirect_to_the_login_page_is_refused_when_the_login_path_has_a_query() {
        let text = format!(
            "{MINIMAL}\n[login]\npath = \"/admin/login/?next=/admin/\"\nfields = {{ username = \"u\" }}\nsuccess = {{ redirect_to = \"/admin/login/\" }}\n"
        );
        let e = Scenario::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("login.success.redirect_to"), "{e}");
    }

    #[test]
    fn a_restart_the_load_cannot_reach_is_refused() {
        let e = |extra: &str| {
            Scenario::parse(&format!("{MINIMAL}{extra}"), "t.toml")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let late = e("\n[restart]\nmethod = { command = \"true\" }\nat = \"1s\"\n").unwrap_err();
        assert!(
            late.contains("restart.at: 1s is not before the end of the load (load.duration = 1s)"),
            "{late}"
        );
        assert!(e("\n[restart]\nmethod = { command = \"true\" }\nat = \"999ms\"\n").is_ok());
        let counted = MINIMAL.replace("duration = \"1s\"", "total_requests = 50");
        let never = Scenario::parse(
            &format!(
                "{counted}\n[restart]\nmethod = {{ command = \"true\" }}\nafter_requests = 50\n"
            ),
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            never.contains("restart.after_requests: 50 is not below load.total_requests = 50"),
            "{never}"
        );
        assert!(Scenario::parse(
            &format!(
                "{counted}\n[restart]\nmethod = {{ command = \"true\" }}\nafter_requests = 49\n"
            ),
            "t.toml"
        )
        .is_ok());
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert_eq!(s.load.users, 10);
        assert_eq!(s.probe.pid, "/worker/pid");
        assert_eq!(s.load.connection, ConnectionPolicy::New);
        assert_eq!(s.load.duration.unwrap().0, Duration::from_secs(1));
    }

    #[test]
    fn unknown_key_names_line_and_suggests() {
        let text = MINIMAL.replace("duration = \"1s\"", "duration = \"1s\"\nuserz = 3");
        let e = Scenario::parse(&text, "t.toml").unwrap_err();
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.to_string().contains("userz"), "{e}");
        assert!(e.to_string().contains("did you mean `users`"), "{e}");
    }

    #[test]
    fn validation_error_names_field_and_line() {
        let text = MINIMAL.replace("duration = \"1s\"", "duration = \"1s\"\nusers = 0");
        let e = Scenario::parse(&text, "t.toml").unwrap_err();
        assert_eq!(e.line, Some(7), "{e}");
        assert!(e.message.starts_with("load.users"), "{e}");
    }

    #[test]
    fn unbounded_run_is_refused() {
        let text = MINIMAL.replace("duration = \"1s\"", "users = 2");
        let e = Scenario::parse(&text, "t.toml").unwrap_err();
        assert!(e.message.contains("duration"), "{e}");
    }

    #[test]
    fn bad_duration_is_explained() {
        let text = MINIMAL.replace("\"1s\"", "\"soon\"");
        let e = Scenario::parse(&text, "t.toml").unwrap_err();
        assert!(e.message.contains("invalid duration"), "{e}");
        assert_eq!(e.line, Some(6));
    }

    #[test]
    fn env_interpolation() {
        std::env::set_var("SESSCHECK_TEST_PW", "hunter2");
        assert_eq!(
            interpolate_env("a${SESSCHECK_TEST_PW}b").unwrap(),
            "ahunter2b"
        );
        assert_eq!(
            interpolate_env("${SESSCHECK_NOPE_X:-dflt}").unwrap(),
            "dflt"
        );
        assert_eq!(interpolate_env("$$5").unwrap(), "$5");
        assert!(interpolate_env("${SESSCHECK_NOPE_X}")
            .unwrap_err()
            .contains("SESSCHECK_NOPE_X"));
        assert!(interpolate_env("${OPEN").is_err());
    }

    #[test]
    fn secrets_are_non_public_login_fields() {
        let text =
            format!("{MINIMAL}\n[login]\nfields = {{ username = \"u\", password = \"pw1\" }}\n");
        let s = Scenario::parse(&text, "t.toml").unwrap();
        assert_eq!(s.secrets(), vec!["pw1".to_string()]);
    }

    #[test]
    fn a_checkbox_value_is_no_secret_but_a_pin_of_one_digit_is() {
        let text = format!(
            "{MINIMAL}\n[login]\nfields = {{ email = \"u\", password = \"pw1\", persist_session = \"on\", pin = \"1\", submit = \"Login\" }}\n"
        );
        let s = Scenario::parse(&text, "t.toml").unwrap();
        let mut secrets = s.secrets();
        secrets.sort();
        assert_eq!(secrets, vec!["1".to_string(), "pw1".to_string()]);
    }

    #[test]
    fn credential_headers_are_secrets() {
        let text = MINIMAL.replace(
            "url = \"http://127.0.0.1:9\"",
            "url = \"http://127.0.0.1:9\"\nheaders = { Authorization = \"Bearer tok-123\", Accept = \"text/html\" }",
        );
        let s = Scenario::parse(&text, "t.toml").unwrap();
        let secrets = s.secrets();
        assert!(
            secrets.contains(&"Bearer tok-123".to_string())
                && secrets.contains(&"tok-123".to_string()),
            "{secrets:?}"
        );
        assert!(!secrets.iter().any(|v| v == "text/html"));
    }

    #[test]
    fn supervisor_restart_needs_spawn() {
        let text = format!("{MINIMAL}\n[restart]\nat = \"500ms\"\n");
        let e = Scenario::parse(&text, "t.toml").unwrap_err();
        assert!(e.message.contains("supervisor"), "{e}");
        assert_eq!(e.line, Some(8), "falls back to the [restart] header");
    }

    #[test]
    fn spawn_forms() {
        let with = |spawn: &str| {
            MINIMAL.replace(
                "url = \"http://127.0.0.1:9\"",
                &format!("url = \"http://127.0.0.1:9\"\nspawn = {spawn}"),
            )
        };
        let s = Scenario::parse(
            &with(r#"{ command = "gunicorn app:app", cwd = "app", env = { A = "1" } }"#),
            "t.toml",
        )
        .unwrap();
        assert!(
            matches!(s.target.spawn, Some(Spawn::Command(ref c)) if c.command == "gunicorn app:app" && c.env["A"] == "1")
        );
        let s = Scenario::parse(&with(r#"{ builtin = { workers = 2 } }"#), "t.toml").unwrap();
        assert!(
            matches!(s.target.spawn, Some(Spawn::Builtin(ref b)) if b.workers == 2 && b.store == "shared")
        );
        let e = Scenario::parse(&with(r#"{ cwd = "x" }"#), "t.toml").unwrap_err();
        assert!(e.message.contains("exactly one of"), "{e}");
        assert_eq!(e.line, Some(5), "the spawn line");
    }

    #[test]
    fn restart_methods_parse() {
        let text = format!("{MINIMAL}\n[restart]\nat = \"500ms\"\nmethod = {{ signal = \"HUP\", pidfile = \"/tmp/x.pid\" }}\n");
        let s = Scenario::parse(&text, "t.toml").unwrap();
        assert!(matches!(
            s.restart.unwrap().method,
            RestartMethod::Signal { .. }
        ));
        let text =
            format!("{MINIMAL}\n[restart]\nat = \"500ms\"\nmethod = {{ command = \"true\" }}\n");
        assert!(Scenario::parse(&text, "t.toml").is_ok());
    }

    #[test]
    fn enum_typos_name_the_key_and_the_choices() {
        let text = format!("{MINIMAL}\n[restart]\nat = \"500ms\"\nmethod = \"supervisr\"\n");
        let e = Scenario::parse(&text, "t.toml").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("restart.method"), "{m}");
        assert!(
            m.contains("did you mean \"supervisor\"") && m.contains("signal"),
            "{m}"
        );
        assert!(!m.contains("untagged enum"), "{m}");
        assert_eq!(e.line, Some(10), "{m}");
        let text = MINIMAL.replace(
            "duration = \"1s\"",
            "duration = \"1s\"\nconnection = \"kep-alive\"",
        );
        let m = Scenario::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(
            m.contains("load.connection") && m.contains("did you mean `keep-alive`"),
            "{m}"
        );
    }

    #[test]
    fn no_probe_section_means_no_probe() {
        let s = Scenario::parse(MINIMAL, "t.toml").unwrap();
        assert!(!s.probe.is_configured());
        let s = Scenario::parse(&format!("{MINIMAL}\n[probe]\nevery = 2\n"), "t.toml").unwrap();
        assert_eq!(s.probe.path, "/debug/session");
    }
}
