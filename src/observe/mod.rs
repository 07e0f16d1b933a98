//! Observations: what the engine saw, one record per request. Detectors and reports are
//! pure functions of these (through `digest`, which folds in the ones it need not keep), so
//! they can be unit-tested on recorded observations.
//!
//! The folder owns the observation types, worker identity (`worker`), the digest and the
//! `remaining` series. May import `scenario` and `util`; the http client, the load, the judge
//! and the report import it, never the reverse.

pub mod digest;
pub mod remaining;
pub mod worker;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Fetching a page to read a CSRF token from it.
    Csrf,
    Login,
    /// An app page from `[load] requests`.
    Request,
    /// The debug endpoint.
    Probe,
    Logout,
    /// A probe with the cookies from before a logout, replayed after it (revocation check).
    Replay,
    /// A probe of another session of the same account after one of them logged out.
    ScopeCheck,
}

/// What a `Set-Cookie` said about a cookie (login responses only; values are never kept).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CookieAttrs {
    pub name: String,
    pub http_only: bool,
    pub secure: bool,
    pub same_site: Option<String>,
    /// Bytes of name and value.
    pub size: usize,
    /// Seconds from Max-Age or Expires; None for a browser-session cookie.
    pub lifetime_s: Option<f64>,
}

/// Why a request produced no usable response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Failure {
    /// No answer within `loading_timeout`; where the request was when the time ran out.
    Timeout(Stage),
    /// Could not connect: refused, or failed during the TCP connect or TLS handshake. (A reset
    /// on an established connection, even before any answer, is `Transport`.)
    Connect(String),
    /// The redirect chain came back to a URL it had visited.
    RedirectLoop(Vec<String>),
    /// More redirects than `max_redirects`.
    TooManyRedirects,
    /// The probe answered something that is not the expected JSON.
    BadProbe(String),
    /// Any other transport error (body cut short, protocol error).
    Transport(String),
    /// Login only: the app answered, but not with a good login (the form again, a redirect to
    /// the login page, an error status, or a probe saying anonymous right after); why, in words.
    LoginRejected(String),
    /// Login only: the CSRF page answered, but no token could be read from it (an error status,
    /// or no such hidden field); what it answered, in words. The login was not sent.
    CsrfUnreadable(String),
    /// A redirect (or a request) to another origin than the target's, not followed: "302 to
    /// http://other:81/x" (no query). Add the host to `[target] allow_hosts` to follow it.
    OffOrigin(String),
    /// sesscheck could not open a socket: it (or the system) ran out of open files. Its own
    /// limit, not the target refusing; the cause's text.
    OutOfFiles(String),
}

impl Failure {
    pub fn is_loading(&self) -> bool {
        matches!(
            self,
            Failure::Timeout(_) | Failure::RedirectLoop(_) | Failure::TooManyRedirects
        )
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Failure::Timeout(_))
    }

    /// Rewrite the text a failure carries (a target's words: a body's first bytes, a
    /// `Location`, the URLs of a redirect loop), e.g. to cut echoed cookie values out of it.
    pub fn rewrite_text(&mut self, f: impl Fn(&str) -> String) {
        match self {
            Failure::Connect(t)
            | Failure::BadProbe(t)
            | Failure::Transport(t)
            | Failure::OffOrigin(t)
            | Failure::OutOfFiles(t)
            | Failure::LoginRejected(t)
            | Failure::CsrfUnreadable(t) => *t = f(t),
            Failure::RedirectLoop(urls) => urls.iter_mut().for_each(|u| *u = f(u)),
            Failure::Timeout(_) | Failure::TooManyRedirects => {}
        }
    }
}

/// In words, for a message: the cause itself for connect and transport errors ("Connection
/// refused (os error 111)"), the stage for a timeout.
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout(stage) => write!(f, "timed out, {}", stage.describe()),
            Failure::Connect(cause)
            | Failure::Transport(cause)
            | Failure::BadProbe(cause)
            | Failure::LoginRejected(cause)
            | Failure::CsrfUnreadable(cause) => f.write_str(cause),
            Failure::RedirectLoop(urls) => write!(f, "redirect loop: {}", urls.join(" -> ")),
            Failure::TooManyRedirects => f.write_str("too many redirects"),
            Failure::OffOrigin(what) => write!(
                f,
                "not followed: {what} leaves the target's origin (add the host to [target] allow_hosts to follow it)"
            ),
            Failure::OutOfFiles(cause) => write!(
                f,
                "sesscheck ran out of open files, not the app ({cause}): raise `ulimit -n` or set [load] max_connections"
            ),
        }
    }
}

/// How far a request got before `loading_timeout` ran out. They point at different faults: a
/// connect that never completes is a server that stopped accepting (a full listen queue, a
/// process stopped but still bound); no answer after the request was sent is a hanging
/// handler; a body that stops coming is a stalled stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Opening the TCP connection or the TLS handshake.
    Connect,
    /// The request was (being) sent; no answer's head came back.
    Answer,
    /// The answer's head came; its body did not finish.
    Body,
}

impl Stage {
    /// How a report names it: "... got no answer within loading_timeout (2 still connecting)".
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Connect => "still connecting",
            Stage::Answer => "sent, waiting for the answer",
            Stage::Body => "reading the answer's body",
        }
    }
}

/// Where a request in flight is, kept outside its future, because a timeout drops the future
/// and with it anything the future knew.
#[derive(Debug)]
pub struct Progress(std::sync::atomic::AtomicU8);

impl Progress {
    pub fn new() -> Progress {
        Progress(std::sync::atomic::AtomicU8::new(Stage::Connect as u8))
    }

    pub fn set(&self, stage: Stage) {
        self.0
            .store(stage as u8, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self) -> Stage {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            0 => Stage::Connect,
            1 => Stage::Answer,
            _ => Stage::Body,
        }
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

/// A request path, shared (`Arc<str>`): the engine hands out clones of one allocation per
/// configured path, so an observation costs no heap allocation for it. Reads like a `&str`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PathStr(pub std::sync::Arc<str>);

impl std::ops::Deref for PathStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PathStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PathStr {
    fn from(s: &str) -> Self {
        PathStr(s.into())
    }
}

impl From<String> for PathStr {
    fn from(s: String) -> Self {
        PathStr(s.into())
    }
}

impl PartialEq<str> for PathStr {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for PathStr {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for PathStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PathStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(PathStr::from)
    }
}

/// One request as the engine saw it. Times are microseconds since the run started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    /// Virtual user (one cookie jar each).
    pub vu: u32,
    /// Tab of that user (concurrent streams sharing the user's jar).
    pub tab: u16,
    pub step: Step,
    /// Shared with every other observation of the same path (no allocation per request).
    pub path: PathStr,
    pub start_us: u64,
    pub end_us: u64,
    /// Final status after the redirects the engine followed.
    pub status: Option<u16>,
    /// Status of the first response (before redirects).
    pub first_status: Option<u16>,
    /// Some hop redirected to the login path.
    pub to_login: bool,
    pub redirects: u8,
    /// Which worker answered: from the probe, or from `[probe] worker_header` on any page.
    #[serde(alias = "pid")]
    pub worker: Option<crate::observe::worker::WorkerId>,
    /// What the probe said, or what an app page implied (redirect to login / 401 / 403 = false).
    pub authenticated: Option<bool>,
    /// The body or a header matched the SessionInterrupted pattern.
    pub pattern_match: bool,
    /// A response set a new value for a cookie that this user's login had set.
    pub replaced_login_cookie: Option<String>,
    /// That new value deleted the cookie (empty, or expired at once).
    pub login_cookie_deleted: bool,
    /// The jar's login epoch when the request started and when it ended. It changes at every
    /// login and logout of this user, so a response whose epochs differ raced its own user.
    pub epoch_start: u32,
    pub epoch_end: u32,
    /// The user was logged in (as far as it knew) when the request started.
    pub logged_in: bool,
    pub failure: Option<Failure>,
    /// Login only: the session cookie kept the value it had before the login.
    #[serde(default)]
    pub fixation: bool,
    /// Login only: the cookies the login set, as its Set-Cookie headers described them.
    #[serde(default)]
    pub cookies: Option<Arc<LoginCookies>>,
    /// Probe only: seconds the session has left, from `[lifetime] remaining`.
    #[serde(default)]
    pub remaining_s: Option<f32>,
    /// The response re-sent a login cookie, unchanged, with a fresh Max-Age/Expires.
    #[serde(default)]
    pub renewed: bool,
    /// Of the latency, how long the request waited for one of the `[load] max_connections`
    /// connections before it was sent (µs; 0 without a cap or a wait).
    #[serde(default)]
    pub waited_us: u32,
}

impl Observation {
    pub fn latency_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }

    /// A request that got a usable HTTP answer below 400.
    pub fn ok(&self) -> bool {
        self.failure.is_none() && self.status.is_some_and(|s| s < 400)
    }

    /// A page or probe seen anonymous.
    pub fn anonymous(&self) -> bool {
        self.authenticated == Some(false)
    }

    /// The user was logged in when the request started, and no login or logout of its own
    /// happened while it was in flight: its answer speaks for the user's current login.
    pub fn own_login_held(&self) -> bool {
        self.logged_in && self.epoch_start == self.epoch_end
    }

    /// A page or probe answered anonymous that nothing the user did explains.
    pub fn unexplained_anonymous(&self) -> bool {
        matches!(self.step, Step::Request | Step::Probe)
            && self.anonymous()
            && self.own_login_held()
    }
}

impl Observation {
    /// A request with nothing known yet about its answer; the engine fills in what came back.
    pub fn new(
        vu: u32,
        tab: u16,
        step: Step,
        path: PathStr,
        start_us: u64,
        end_us: u64,
    ) -> Observation {
        Observation {
            vu,
            tab,
            step,
            path,
            start_us,
            end_us,
            status: None,
            first_status: None,
            to_login: false,
            redirects: 0,
            worker: None,
            authenticated: None,
            pattern_match: false,
            replaced_login_cookie: None,
            login_cookie_deleted: false,
            epoch_start: 0,
            epoch_end: 0,
            logged_in: false,
            failure: None,
            fixation: false,
            cookies: None,
            remaining_s: None,
            renewed: false,
            waited_us: 0,
        }
    }

    /// A logged-in user's successful request, for detector tests to adjust.
    #[cfg(test)]
    pub fn sample(vu: u32, step: Step, start_us: u64, end_us: u64) -> Observation {
        let path = if step == Step::Probe {
            "/debug/session"
        } else {
            "/dashboard"
        };
        Observation {
            status: Some(200),
            first_status: Some(200),
            epoch_start: 1,
            epoch_end: 1,
            logged_in: true,
            ..Observation::new(vu, 0, step, path.into(), start_us, end_us)
        }
    }
}

/// The cookies a login set. Only logins have them, so observations keep a thin pointer; a
/// shared one, as every login of a run usually sets the same (see `Recorded::add`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LoginCookies(pub Vec<CookieAttrs>);

impl std::ops::Deref for LoginCookies {
    type Target = [CookieAttrs];
    fn deref(&self) -> &[CookieAttrs] {
        &self.0
    }
}

impl LoginCookies {
    pub fn shared(cookies: Vec<CookieAttrs>) -> Arc<LoginCookies> {
        Arc::new(LoginCookies(cookies))
    }
}

/// A restart the engine went through, in run time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestartWindow {
    pub start_us: u64,
    /// When the target answered ready again (None: it never did).
    pub ready_us: Option<u64>,
    pub method: String,
}

/// Which part of the run an instant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A run without restarts.
    Load,
    BeforeRestart,
    DuringRestart,
    AfterRestart,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Load => "load",
            Phase::BeforeRestart => "before_restart",
            Phase::DuringRestart => "during_restart",
            Phase::AfterRestart => "after_restart",
        }
    }

    /// The phase of a request that started at `t_us`.
    pub fn at(t_us: u64, restarts: &[RestartWindow]) -> Phase {
        if restarts.is_empty() {
            return Phase::Load;
        }
        let mut phase = Phase::BeforeRestart;
        for r in restarts {
            if t_us < r.start_us {
                break;
            }
            match r.ready_us {
                Some(ready) if t_us >= ready => phase = Phase::AfterRestart,
                _ => return Phase::DuringRestart,
            }
        }
        phase
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_stay_small() {
        // The observations a run keeps (logins, logouts, anomalies: see digest::must_keep)
        // cost this much each (plus nothing on the heap for the path, which is shared; a
        // failure's text, rare, is extra).
        let size = std::mem::size_of::<Observation>();
        // 136 before the session-rule fields (fixation, renewal, remaining time, login cookies).
        assert!(size <= 152, "Observation grew to {size} bytes");
        let a = PathStr::from("/dashboard");
        let b = a.clone();
        assert!(std::ptr::eq(&*a, &*b));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"/dashboard\"");
        assert_eq!(a, "/dashboard");
    }

    #[test]
    fn phases_follow_restart_windows() {
        let r = vec![
            RestartWindow {
                start_us: 100,
                ready_us: Some(200),
                method: "x".into(),
            },
            RestartWindow {
                start_us: 300,
                ready_us: None,
                method: "x".into(),
            },
        ];
        assert_eq!(Phase::at(50, &r), Phase::BeforeRestart);
        assert_eq!(Phase::at(150, &r), Phase::DuringRestart);
        assert_eq!(Phase::at(250, &r), Phase::AfterRestart);
        assert_eq!(Phase::at(350, &r), Phase::DuringRestart);
        assert_eq!(Phase::at(5, &[]), Phase::Load);
    }
}
