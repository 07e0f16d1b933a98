//! HTTP for virtual users: one shared connection pool, one cookie jar per user.
//!
//! The engine follows redirects itself so that every hop's `Set-Cookie` lands in the user's jar
//! (as in a browser), so that it can see a hop to the login page, and so that it can recognise a
//! redirect loop. Underneath are sesscheck's own connection pool (`pool`) over hyper's HTTP/1.1
//! connections, and `transport`. Every path the scenario names is turned into what hyper needs
//! (origin, path as a `Uri`, the headers its requests start from) once at start: a request parses
//! no URL unless it follows a redirect or asks for a path not in the scenario.

use crate::http::pool::{Origin, Pool};
use crate::http::transport::{self, ConnectOptions, Connector};
use crate::observe::{CookieAttrs, Failure, Progress, Stage};
use crate::scenario::lowered::HttpPlan;
use crate::scenario::AllowedHost;
use anyhow::{Context, Result};
use bytes::Bytes;
use cookie_store::{CookieExpiration, CookieStore, RawCookie};
use http::header::{
    HeaderMap, HeaderValue, ACCEPT, CONNECTION, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE,
    USER_AGENT,
};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use regex::Regex;
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use url::Url;

/// A user's cookies plus what the engine must remember about its login.
#[derive(Default)]
pub struct Jar {
    /// Read through `store()`: a renewed `Max-Age` may still be on its way into it.
    store: CookieStore,
    /// Cookies (name → value) that this user's last login set: its session cookie(s).
    pub login_cookies: crate::http::cookie_values::CookieValues,
    /// Bumped at every login and logout, so observations can tell they raced one.
    pub epoch: u32,
    pub logged_in: bool,
    /// Some login of this user worked (never cleared, not even by a logout): a login page
    /// that sends the user on to the app then means "still logged in" (see `CsrfAnswer`).
    pub ever_logged_in: bool,
    /// A login after the first failed (the app was down, or answered 5xx): the user tries again
    /// on a page at or after this time, as a person sent back to the login page would.
    pub login_retry_at: Option<std::time::Instant>,
    /// `Cookie` headers already built (None: no cookie to send), per request URL, with the
    /// earliest expiry of the cookies in them. Cleared whenever a response sets a new cookie;
    /// an entry is unused once that expiry has come (a renewal only moves it later, so an entry
    /// may be rebuilt sooner than needed, never later). Saves the cookie store's domain/path
    /// matching (and its IDNA processing of the host) on every request.
    header_cache: Vec<CachedHeader>,
    /// The `Set-Cookie` answers the store already holds, by their bytes: a sliding session's
    /// cookie, set again by every answer, is then neither parsed nor inserted the long way,
    /// and the built `Cookie` headers stay. Valid while `store` changes only in
    /// `absorb_cookies`.
    seen: crate::http::seen_cookies::SeenCookies,
}

struct CachedHeader {
    url: String,
    header: Option<HeaderValue>,
    /// The earliest expiry of its cookies; None: browser-session cookies only.
    valid_until: Option<SystemTime>,
}

impl Jar {
    /// A jar holding these cookies and nothing else (the revocation check replays a copy).
    pub fn with_cookies(store: CookieStore) -> Jar {
        Jar {
            store,
            ..Jar::default()
        }
    }

    /// The cookies, every renewal written.
    pub fn store(&mut self) -> &CookieStore {
        self.seen.flush(&mut self.store);
        &self.store
    }
}

/// At most this many URLs per jar keep a built `Cookie` header.
const HEADER_CACHE: usize = 8;

/// Tabs of one user share its jar; users never share one.
pub type SharedJar = Arc<Mutex<Jar>>;

/// Lock a jar. A poisoned lock only means another tab panicked mid-update; the cookies are
/// still the best information we have, so keep going.
pub fn lock(jar: &SharedJar) -> std::sync::MutexGuard<'_, Jar> {
    jar.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a request body is.
pub enum Body {
    Form(Vec<(String, String)>),
    Json(serde_json::Value),
}

/// One request as a virtual user makes it.
pub struct Req<'a> {
    pub method: Method,
    pub path: &'a str,
    pub body: Option<Body>,
    /// Follow redirects (GET), as a browser does for page loads.
    pub follow: bool,
    /// A login's Set-Cookie is the user's own session, not a replacement of it.
    pub is_login: bool,
    /// Headers of this request only (a write's CSRF token), on top of the defaults.
    pub headers: Vec<(http::HeaderName, HeaderValue)>,
    /// The connection slot it already waited for (`Http::slot`); None: `send` waits for one.
    pub slot: Option<Slot>,
}

/// A place among the `[load] max_connections` requests in flight (nothing to hold without a
/// cap), given back when dropped.
pub struct Slot {
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// How long the request waited for it: queued in sesscheck, not yet sent. Part of the
    /// request's latency, and reported apart so that nobody takes it for the app's.
    waited: Duration,
}

impl Slot {
    /// The same slot, waited for `waited` in all: an open-loop arrival queues from its intended
    /// send time, not from when the generator came to ask for its slot.
    pub fn queued_for(self, waited: Duration) -> Slot {
        Slot { waited, ..self }
    }

    /// Whether it had to wait: every request in flight had a slot when it asked.
    pub fn waited(&self) -> bool {
        !self.waited.is_zero()
    }
}

impl<'a> Req<'a> {
    /// A page load: GET, redirects followed.
    pub fn page(path: &'a str) -> Req<'a> {
        Req {
            method: Method::GET,
            path,
            body: None,
            follow: true,
            is_login: false,
            headers: Vec::new(),
            slot: None,
        }
    }
}

/// What came back after the redirects were followed.
pub struct Reply {
    pub status: u16,
    pub first_status: u16,
    /// `Location` of the first response, if it was a redirect.
    pub first_location: Option<String>,
    pub to_login: bool,
    pub redirects: u8,
    /// The final body, cut at `max_body_bytes`.
    pub body: Vec<u8>,
    pub pattern_match: bool,
    /// Name of a login cookie that a (non-login) response replaced.
    pub replaced_login_cookie: Option<String>,
    /// That replacement deleted it: an empty value or a lifetime already over.
    pub login_cookie_deleted: bool,
    /// Names of cookies set by any hop (used to learn the session cookie at login).
    pub set_cookies: Vec<(String, String)>,
    /// Login requests only: the attributes of each Set-Cookie.
    pub cookie_attrs: Vec<CookieAttrs>,
    /// A login cookie came back unchanged with a fresh lifetime (sliding sessions).
    pub renewed: bool,
    /// `[probe] worker_header` of the last response in the chain, or of the one that sent the
    /// user to the login page: who served it.
    pub served_by: Option<crate::observe::worker::WorkerId>,
    /// How long the request waited for a `[load] max_connections` slot before it was sent.
    pub waited: Duration,
}

/// A URL requests go to, prepared for hyper: at start for the scenario's paths.
struct Target {
    /// For the cookie jar, and to resolve a redirect's `Location` against.
    url: Url,
    /// Which pooled connections can carry the request.
    origin: Origin,
    /// The path and query as the request line has them; a clone only bumps reference counts.
    path: Uri,
    /// What every request to it starts from: the default headers plus its `Host`.
    headers: HeaderMap,
}

/// Where one hop goes: a path of the scenario (prepared at start) or a URL met on the way (a
/// redirect's `Location`, a path the scenario does not name), prepared for this hop.
enum Dest<'a> {
    Known(&'a Target),
    Other(Box<Target>),
}

impl Dest<'_> {
    fn target(&self) -> &Target {
        match self {
            Dest::Known(t) => t,
            Dest::Other(t) => t,
        }
    }
}

thread_local! {
    /// Which load thread this is (0: the run's own thread): its requests use its own pools.
    static LANE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Mark the current thread as load thread `lane`, before it sends any request.
pub fn enter_lane(lane: usize) {
    LANE.set(lane);
}

pub struct Http {
    /// Per load thread (lane), one pool per source address (just one when none are
    /// configured). A connection's task runs on the runtime that opened it, so each thread
    /// keeps to its own connections: no request waits on another thread to be woken.
    pools: Vec<Vec<Pool>>,
    /// What every request to the target's origin starts from (see `default_headers`), with a
    /// `Cookie` slot.
    headers: HeaderMap,
    /// What a request to an `allow_hosts` host starts from: the same without the configured
    /// `[target] headers`, which are the target's credentials.
    foreign_headers: HeaderMap,
    /// `[target] allow_hosts`: other hosts whose redirects may be followed.
    allow_hosts: Vec<AllowedHost>,
    /// The `Cookie` in `headers` is a placeholder, not a configured header.
    cookie_slot: bool,
    base: Url,
    timeout: Duration,
    max_redirects: usize,
    max_body: usize,
    login_path: String,
    /// `max_duration` after the load began (set by the engine): no request runs past it, so
    /// one still waiting then ends as a timeout, at the stage it had reached.
    hard_deadline: Option<std::time::Instant>,
    /// `[load] max_connections`: permits for requests in flight, per load thread (empty: no
    /// cap). A thread only uses connections it opened, so each has its share of the cap: with
    /// one shared semaphore, every thread's pool could fill up to the whole cap.
    slots: Vec<Arc<tokio::sync::Semaphore>>,
    /// The scenario's paths (pages, probe, login, CSRF page, logout), prepared once.
    /// By path; FxHash: looked up on every request, keyed by the scenario's own paths.
    targets: rustc_hash::FxHashMap<String, Target>,
    pattern: Regex,
    /// The same pattern over raw bytes: bodies are matched without a UTF-8 copy.
    body_pattern: regex::bytes::Regex,
    /// `[probe] worker_header`: the response header naming the worker or replica.
    worker_header: Option<http::HeaderName>,
}

impl Http {
    /// `lanes`: how many load threads will send requests (see `enter_lane`).
    pub fn new(plan: &HttpPlan, base: &Url, lanes: usize) -> Result<Http> {
        let mut headers = default_headers(plan, true);
        let cookie_slot = with_cookie_slot(&mut headers);
        let mut foreign_headers = default_headers(plan, false);
        with_cookie_slot(&mut foreign_headers);
        let addresses: Vec<Option<IpAddr>> = match &plan.source_addresses {
            none if none.is_empty() => vec![None],
            some => some.iter().copied().map(Some).collect(),
        };
        let mut pools = Vec::new();
        for _ in 0..lanes.max(1) {
            let mut lane = Vec::new();
            for local_address in &addresses {
                let options = ConnectOptions {
                    timeout: plan.timeout,
                    local_address: *local_address,
                };
                // One TLS configuration (and so one session-resumption cache) per pool.
                let tls = transport::tls_config(plan.insecure_tls)
                    .context("building the TLS configuration")?;
                lane.push(Pool::new(
                    Connector::new(&options, tls),
                    !plan.new_connections,
                ));
            }
            pools.push(lane);
        }
        let mut origins = Vec::new();
        let mut targets = rustc_hash::FxHashMap::default();
        for p in &plan.paths {
            let Ok(url) = base.join(p) else { continue };
            // Validation refuses such paths; this keeps a path that slipped through (an
            // override) from sending credentials elsewhere.
            if url.origin() != base.origin() {
                anyhow::bail!("{p:?} is not a path on {}", shown_url(base));
            }
            let Ok(mut t) = target(url, &headers) else {
                continue;
            };
            // One `Origin` for all paths on the same host: the pool matches them by pointer.
            t.origin = t.origin.shared(&mut origins);
            targets.insert(p.clone(), t);
        }
        Ok(Http {
            hard_deadline: None,
            slots: plan
                .max_connections
                .map(|n| split_slots(n, lanes))
                .unwrap_or_default(),
            targets,
            pools,
            headers,
            foreign_headers,
            allow_hosts: plan.allow_hosts.clone(),
            cookie_slot,
            base: base.clone(),
            timeout: plan.timeout,
            max_redirects: plan.max_redirects,
            max_body: plan.max_body,
            login_path: plan.login_path.clone(),
            pattern: plan.interrupted.text.clone(),
            body_pattern: plan.interrupted.bytes.clone(),
            worker_header: plan.worker_header.clone(),
        })
    }

    /// How many load threads this client was built for (see `enter_lane`).
    pub fn lanes(&self) -> usize {
        self.pools.len()
    }

    /// No request may run past `at` (the run's `max_duration` cap).
    pub fn set_hard_deadline(&mut self, at: std::time::Instant) {
        self.hard_deadline = Some(at);
    }

    /// Where the app sends visitors without a login: a redirect there is a logout.
    pub fn login_page(&self) -> &str {
        &self.login_path
    }

    /// The login page learned before the load (see `run::anonymous`).
    pub fn set_login_page(&mut self, path: &str) {
        self.login_path = path.to_string();
    }

    pub fn url(&self, path: &str) -> Result<Url> {
        if let Some(t) = self.targets.get(path) {
            return Ok(t.url.clone());
        }
        self.base
            .join(path)
            .with_context(|| format!("invalid path {path:?}"))
    }

    /// Where a request for `path` goes: prepared at start for the scenario's own paths.
    fn dest(&self, path: &str) -> std::result::Result<Dest<'_>, Failure> {
        if let Some(t) = self.targets.get(path) {
            return Ok(Dest::Known(t));
        }
        let url = self
            .url(path)
            .map_err(|e| Failure::Transport(format!("{e:#}")))?;
        if url.origin() != self.base.origin() {
            return Err(Failure::OffOrigin(format!(
                "request for {}",
                shown_url(&url)
            )));
        }
        target(url, &self.headers).map(|t| Dest::Other(Box::new(t)))
    }

    /// Where a redirect may go: the target's origin with its headers, an `allow_hosts` host
    /// without them, or nowhere (then it is recorded, not followed).
    fn redirect_dest(&self, status: u16, next: Url) -> std::result::Result<Dest<'_>, Failure> {
        if next.origin() == self.base.origin() {
            return target(next, &self.headers).map(|t| Dest::Other(Box::new(t)));
        }
        if matches!(next.scheme(), "http" | "https")
            && self.allow_hosts.iter().any(|h| h.matches(&next))
        {
            return target(next, &self.foreign_headers).map(|t| Dest::Other(Box::new(t)));
        }
        Err(Failure::OffOrigin(format!(
            "{status} to {}",
            shown_url(&next)
        )))
    }

    /// Wait for a connection slot (`[load] max_connections`), for a request's `slot`. A caller
    /// that waits for it before it builds the request's future keeps a waiting user small: with
    /// many users and few connections, most users are waiting.
    pub async fn slot(&self) -> Slot {
        let Some(slots) = self.slots.get(LANE.get() % self.slots.len().max(1)) else {
            return Slot {
                _permit: None,
                waited: Duration::ZERO,
            };
        };
        // A free slot is taken at once, without reading the clock. (The semaphore is fair:
        // with requests queued, no permit is free, so this never jumps the queue.)
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Slot {
                _permit: Some(permit),
                waited: Duration::ZERO,
            };
        }
        let asked = std::time::Instant::now();
        let permit = slots.clone().acquire_owned().await.ok();
        Slot {
            _permit: permit,
            waited: asked.elapsed(),
        }
    }

    /// Send one request with the user's jar, following redirects (GET) when `follow` is set.
    /// The whole chain must finish within `loading_timeout`.
    pub async fn send(
        &self,
        vu: usize,
        jar: &SharedJar,
        mut req: Req<'_>,
    ) -> std::result::Result<Reply, Failure> {
        // Held for the whole chain of redirects, given back when dropped.
        let slot = match req.slot.take() {
            Some(slot) => slot,
            None => self.slot().await,
        };
        // Boxed: the request's (large) state lives on the heap only while it is in flight, so
        // the task of an idle user (thinking, or waiting for a slot) stays small.
        let progress = Progress::new();
        let chain = Box::pin(self.chain(vu, jar, req, &progress, slot.waited));
        let mut until = std::time::Instant::now() + self.timeout;
        if let Some(cap) = self.hard_deadline {
            until = until.min(cap);
        }
        match tokio::time::timeout_at(until.into(), chain).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout(progress.get())),
        }
    }

    async fn chain(
        &self,
        vu: usize,
        jar: &SharedJar,
        req: Req<'_>,
        progress: &Progress,
        waited: Duration,
    ) -> std::result::Result<Reply, Failure> {
        let Req {
            mut method,
            path,
            mut body,
            follow,
            is_login,
            headers: extra_headers,
            slot: _,
        } = req;
        let lane = &self.pools[LANE.get() % self.pools.len()];
        let pool = &lane[vu % lane.len()];
        let mut dest = self.dest(path)?;
        // Hops already followed (URL, cookies): filled only when a redirect is followed, so a
        // plain request allocates nothing for loop detection.
        let mut visited: HashSet<(String, String)> = HashSet::new();
        let mut chain_urls: Vec<String> = Vec::new();
        // Redirects followed; `reply.redirects` (a u8 for the observation) saturates, this
        // does not, so `max_redirects` holds whatever its value.
        let mut hops = 0usize;
        let mut reply = Reply {
            status: 0,
            first_status: 0,
            first_location: None,
            to_login: false,
            redirects: 0,
            body: Vec::new(),
            pattern_match: false,
            replaced_login_cookie: None,
            login_cookie_deleted: false,
            set_cookies: Vec::new(),
            cookie_attrs: Vec::new(),
            renewed: false,
            served_by: None,
            waited,
        };
        loop {
            let url = &dest.target().url;
            let cookie_header = cookie_header(jar, url);
            // A loop is the same URL asked for with the same cookies: nothing can change.
            let cookies_text = || {
                cookie_header
                    .as_ref()
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            if !visited.is_empty() && visited.contains(&(url.to_string(), cookies_text())) {
                chain_urls.push(url.path().to_string());
                return Err(Failure::RedirectLoop(chain_urls));
            }
            let hop = dest.target();
            let mut request = self.request(hop, &method, cookie_header.as_ref(), body.take());
            // A request's own headers (a CSRF token) are the target's business only.
            if hop.url.origin() == self.base.origin() {
                for (name, value) in &extra_headers {
                    request.headers_mut().insert(name.clone(), value.clone());
                }
            }
            let (mut resp, connection) = pool.send(&hop.origin, request, progress).await?;
            let status = resp.status().as_u16();
            if reply.first_status == 0 {
                reply.first_status = status;
            }
            absorb_cookies(jar, url, resp.headers(), is_login, &mut reply);
            if resp.headers().values().any(|v| self.header_matches(v)) {
                reply.pattern_match = true;
            }
            // Once a hop sent the user to the login page, its server is the one that did not
            // know the session; the login page's server after it is not (found on pgAdmin
            // behind nginx, where that blamed the wrong replica).
            if let Some(name) = self.worker_header.as_ref().filter(|_| !reply.to_login) {
                reply.served_by = resp
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(crate::observe::worker::answering_server)
                    .filter(|v| !v.is_empty())
                    .map(crate::observe::worker::WorkerId::intern);
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if (300..400).contains(&status) {
                if let Some(loc) = &location {
                    if reply.redirects == 0 {
                        reply.first_location = Some(loc.clone());
                    }
                    let next = url
                        .join(loc)
                        .map_err(|e| Failure::Transport(format!("bad Location {loc:?}: {e}")))?;
                    if next.path().starts_with(&self.login_path) {
                        reply.to_login = true;
                    }
                    if follow {
                        if hops >= self.max_redirects {
                            return Err(Failure::TooManyRedirects);
                        }
                        let next_dest = self.redirect_dest(status, next)?;
                        hops += 1;
                        reply.redirects = reply.redirects.saturating_add(1);
                        chain_urls.push(url.path().to_string());
                        visited.insert((url.to_string(), cookies_text()));
                        // The redirect's body is not read: with none, the connection is free
                        // for the next hop; otherwise it closes, as the rest is not wanted.
                        if resp.body().is_end_stream() {
                            connection.release();
                        }
                        dest = next_dest;
                        if status != 307 && status != 308 {
                            method = Method::GET;
                        }
                        continue;
                    }
                }
            }
            reply.status = status;
            progress.set(Stage::Body);
            let (body, whole) = read_capped(resp.body_mut(), self.max_body).await?;
            if whole {
                connection.release();
            }
            reply.body = body;
            if !reply.pattern_match && self.body_pattern.is_match(&reply.body) {
                reply.pattern_match = true;
            }
            return Ok(reply);
        }
    }

    /// The request for one hop: clones of the target's prepared parts, plus the user's cookies
    /// and the body.
    fn request(
        &self,
        target: &Target,
        method: &Method,
        cookies: Option<&HeaderValue>,
        body: Option<Body>,
    ) -> Request<Full<Bytes>> {
        let mut headers = target.headers.clone();
        // The request's own headers replace defaults of the same name.
        match cookies {
            Some(c) => {
                headers.insert(COOKIE, c.clone());
            }
            // The slot `with_cookie_slot` made: removed, unless it holds a configured `Cookie`.
            None if self.cookie_slot => {
                headers.remove(COOKIE);
            }
            None => {}
        }
        let body = match body {
            None => Bytes::new(),
            Some(Body::Form(fields)) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                Bytes::from(form_encode(&fields))
            }
            Some(Body::Json(v)) => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(v.to_string())
            }
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.uri_mut() = target.path.clone();
        *request.headers_mut() = headers;
        request
    }

    /// Does a response header's value show the SessionInterrupted pattern? Only values that are
    /// text count. The byte pattern screens first (for text the two agree), so the usual
    /// header, which does not match, is not checked for being text at all.
    fn header_matches(&self, value: &HeaderValue) -> bool {
        self.body_pattern.is_match(value.as_bytes())
            && value.to_str().is_ok_and(|s| self.pattern.is_match(s))
    }
}

/// `max_connections` permits dealt out over `lanes` load threads, as evenly as they go. The
/// caller gives no thread none: it runs at most `max_connections` threads.
fn split_slots(max_connections: usize, lanes: usize) -> Vec<Arc<tokio::sync::Semaphore>> {
    let lanes = lanes.clamp(1, max_connections.max(1));
    (0..lanes)
        .map(|lane| {
            let share = max_connections / lanes + usize::from(lane < max_connections % lanes);
            Arc::new(tokio::sync::Semaphore::new(share))
        })
        .collect()
}

/// Put every Set-Cookie of a response into the jar, noting a replaced login cookie.
fn absorb_cookies(
    jar: &SharedJar,
    url: &Url,
    headers: &HeaderMap,
    is_login: bool,
    reply: &mut Reply,
) {
    let set_cookies = headers.get_all(SET_COOKIE);
    if set_cookies.iter().next().is_none() {
        return; // most responses: nothing to take, no lock to take either
    }
    let mut guard = lock(jar);
    let jar = &mut *guard;
    for value in set_cookies {
        // Seen before (a sliding session): nothing to parse, the built headers still hold
        // (a renewed expiry only makes them rebuilt sooner than needed).
        if !is_login {
            if let Some(c) = jar.seen.retake(url, value.as_bytes()) {
                if let Some(own) = jar.login_cookies.get(c.name()) {
                    if own != c.value() {
                        reply.replaced_login_cookie = Some(c.name().to_string());
                        reply.login_cookie_deleted = deletes(c.value(), cookie_lifetime(c));
                    } else if cookie_lifetime(c).is_some() {
                        reply.renewed = true;
                    }
                }
                continue;
            }
        }
        jar.header_cache.clear();
        let Ok(text) = value.to_str() else { continue };
        let Ok(raw) = RawCookie::parse(text.to_string()) else {
            continue;
        };
        let (name, val) = (raw.name().to_string(), raw.value().to_string());
        let lifetime_s = cookie_lifetime(&raw);
        if is_login {
            reply.cookie_attrs.push(CookieAttrs {
                name: name.clone(),
                http_only: raw.http_only().unwrap_or(false),
                secure: raw.secure().unwrap_or(false),
                same_site: raw.same_site().map(|s| s.to_string()),
                size: name.len() + val.len(),
                lifetime_s,
            });
        } else if let Some(own) = jar.login_cookies.get(&name) {
            if *own != val {
                reply.replaced_login_cookie = Some(name.clone());
                reply.login_cookie_deleted = deletes(&val, lifetime_s);
            } else if lifetime_s.is_some() {
                reply.renewed = true;
            }
        }
        // A cookie the jar refuses (bad domain, malformed) is what a browser would drop too.
        jar.seen.take(&mut jar.store, url, value.as_bytes(), &raw);
        // Only a login needs them (to learn its session cookie).
        if is_login {
            reply.set_cookies.push((name, val));
        }
    }
}

/// The headers every request carries unless it sets its own. Later inserts win: `Accept: */*`,
/// then `[target] headers` (`configured`: only for the target's own origin), then
/// `Connection: close` for `connection = "new"` (so the server closes too, and no side keeps
/// the connection and its worker around), then the User-Agent.
fn default_headers(plan: &HttpPlan, configured: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
    if configured {
        for (name, value) in &plan.target_headers {
            headers.insert(name.clone(), value.clone());
        }
    }
    if plan.new_connections {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("sesscheck/", env!("CARGO_PKG_VERSION"))),
    );
    headers
}

/// Give the default headers a `Cookie` entry (empty) unless one is configured; true if it was
/// added. Most requests carry the user's cookies, and a cloned `HeaderMap` has no spare room:
/// setting a value in place costs nothing, adding one reallocates the map on every request.
fn with_cookie_slot(headers: &mut HeaderMap) -> bool {
    if headers.contains_key(COOKIE) {
        return false;
    }
    headers.insert(COOKIE, HeaderValue::from_static(""));
    true
}

/// A URL as messages and reports show it: no user or password, no query (tokens travel
/// there), no fragment.
pub fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Prepare a URL for requests: its origin, its path as the request line has it (the origin
/// form), and its headers with the `Host` header (the port only when not the scheme's
/// default; a configured `Host` header stays). A URL no request can go to (not http(s), not a
/// valid `Uri`) is refused with the words reqwest used; otherwise the request is the one
/// reqwest sent (the same `Uri`, so a fragment is dropped).
fn target(url: Url, defaults: &HeaderMap) -> std::result::Result<Target, Failure> {
    let invalid = || Failure::Transport("Parsed Url is not a valid Uri".into());
    if !url.has_host() || !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::Transport("URL scheme is not allowed".into()));
    }
    let uri: Uri = url.as_str().parse().map_err(|_| invalid())?;
    let origin = Origin::of(&uri).ok_or_else(invalid)?;
    let path = match uri.path_and_query() {
        Some(p) => Uri::from(p.clone()),
        None => Uri::from_static("/"),
    };
    let mut headers = defaults.clone();
    if !headers.contains_key(HOST) {
        headers.insert(HOST, transport::host_header(&uri).ok_or_else(invalid)?);
    }
    Ok(Target {
        url,
        origin,
        path,
        headers,
    })
}

/// A GET outside the load, for sesscheck's own questions (is the target ready, which workers
/// answer, what does its config endpoint say): a connection of its own, closed afterwards (so a
/// multi-worker server spreads them), no cookies, no redirects followed, and `timeout` for the
/// whole exchange. The same transport as the load, so readiness sees what the users will see
/// (TLS settings included).
pub struct OneOff {
    pool: Pool,
    timeout: Duration,
    /// What every request starts from: nothing, or the target's configured headers.
    headers: HeaderMap,
}

/// What a one-off GET got back.
pub struct OneOffAnswer {
    pub status: u16,
    /// The `Location` header, for a message about a redirect.
    pub location: Option<String>,
    /// The response's headers (Set-Cookie, Location, a `worker_header`...).
    pub headers: HeaderMap,
    /// At most the `max_body` asked for.
    pub body: Vec<u8>,
}

impl OneOff {
    pub fn new(timeout: Duration, insecure_tls: bool) -> Result<OneOff> {
        let options = ConnectOptions {
            timeout,
            local_address: None,
        };
        let tls = transport::tls_config(insecure_tls).context("building the TLS configuration")?;
        Ok(OneOff {
            pool: Pool::new(Connector::new(&options, tls), false),
            timeout,
            headers: HeaderMap::new(),
        })
    }

    /// The same, carrying the scenario's `[target] headers` (a probe token, an API key), as
    /// the load's requests do: readiness, the probe check and the wait for workers must see
    /// what the users will. Callers ask for paths on the target's origin only.
    pub fn for_target(timeout: Duration, plan: &HttpPlan) -> Result<OneOff> {
        let mut one = OneOff::new(timeout, plan.insecure_tls)?;
        for (name, value) in &plan.target_headers {
            one.headers.insert(name.clone(), value.clone());
        }
        Ok(one)
    }

    pub async fn get(
        &self,
        url: &Url,
        max_body: usize,
    ) -> std::result::Result<OneOffAnswer, Failure> {
        let progress = Progress::new();
        let exchange = async {
            let mut t = target(url.clone(), &self.headers)?;
            t.headers
                .insert(CONNECTION, HeaderValue::from_static("close"));
            let mut request = Request::new(Full::new(Bytes::new()));
            *request.uri_mut() = t.path;
            *request.headers_mut() = t.headers;
            let (mut response, _connection) = self.pool.send(&t.origin, request, &progress).await?;
            progress.set(Stage::Body);
            let (body, _) = read_capped(response.body_mut(), max_body).await?;
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            Ok(OneOffAnswer {
                status: response.status().as_u16(),
                location,
                headers: response.headers().clone(),
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(Failure::Timeout(progress.get())),
        }
    }
}

/// Seconds a cookie lives by its Max-Age or Expires; None for a browser-session cookie.
/// A `Set-Cookie` that deletes its cookie: an empty value, or `Max-Age=0` / an `Expires` in
/// the past (Django's `sessionid=""; Max-Age=0` for a session it does not know).
fn deletes(value: &str, lifetime_s: Option<f64>) -> bool {
    value.is_empty() || lifetime_s.is_some_and(|s| s <= 0.0)
}

fn cookie_lifetime(raw: &RawCookie) -> Option<f64> {
    if let Some(age) = raw.max_age() {
        return Some(age.as_seconds_f64());
    }
    let expires = raw.expires_datetime()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(expires.unix_timestamp() as f64 - now)
}

/// Cut the values of the user's cookies out of text the target sent back (a probe answer that
/// echoes the session, a malformed `Location` carrying it), before the text is kept anywhere.
/// Values shorter than 4 characters ("1", "en") are no credential and left alone.
pub fn scrub_cookies(jar: &SharedJar, text: &str) -> String {
    let jar = lock(jar);
    // Values only (every cookie, expired or not): a renewal still on its way changes none.
    let mut values: Vec<String> = jar
        .store
        .iter_any()
        .map(|c| c.value().to_string())
        .chain(jar.login_cookies.values().map(str::to_string))
        .filter(|v| v.len() >= 4)
        .collect();
    drop(jar);
    if values.is_empty() {
        return text.to_string();
    }
    values.sort();
    values.dedup();
    crate::util::redact::Redactor::new(&values).redact(text)
}

/// The jar's cookies for `url` as name → value (for comparing before and after a login).
pub fn cookie_values(jar: &SharedJar, url: &Url) -> BTreeMap<String, String> {
    lock(jar)
        .store()
        .get_request_values(url)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The `Cookie` header for `url` from the user's jar (None: no cookie to send).
fn cookie_header(jar: &SharedJar, url: &Url) -> Option<HeaderValue> {
    let mut guard = lock(jar);
    let jar = &mut *guard;
    let key = url.as_str();
    if let Some(i) = jar.header_cache.iter().position(|c| c.url == key) {
        let c = &jar.header_cache[i];
        // Expired when the expiry is now or earlier, as `CookieExpiration::is_expired` says.
        if c.valid_until.is_none_or(|t| SystemTime::now() < t) {
            return c.header.clone();
        }
        jar.header_cache.swap_remove(i);
    }
    jar.seen.flush(&mut jar.store);
    let mut out = String::with_capacity(128);
    let mut valid_until: Option<SystemTime> = None;
    for c in jar.store.matches(url) {
        let (name, value) = c.name_value();
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
        if let CookieExpiration::AtUtc(t) = &c.expires {
            let t = SystemTime::from(*t);
            valid_until = Some(valid_until.map_or(t, |v| v.min(t)));
        }
    }
    // None also for a value no header can carry (reqwest refused such a request): then send no
    // cookies.
    let header = if out.is_empty() {
        None
    } else {
        HeaderValue::from_str(&out).ok()
    };
    if jar.header_cache.len() >= HEADER_CACHE {
        jar.header_cache.remove(0);
    }
    // One at a time, as `SeenCookies` does: most users ask for two or three URLs.
    jar.header_cache.reserve_exact(1);
    jar.header_cache.push(CachedHeader {
        url: key.to_string(),
        header: header.clone(),
        valid_until,
    });
    header
}

fn form_encode(fields: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// Read at most `cap` bytes of the body, and whether that was all of it (then the connection
/// can carry another request); the rest is dropped with the connection.
async fn read_capped(
    body: &mut Incoming,
    cap: usize,
) -> std::result::Result<(Vec<u8>, bool), Failure> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| transport::failure(&e, Stage::Body))?;
        // Trailers carry no body bytes.
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            return Ok((out, body.is_end_stream()));
        }
    }
    Ok((out, true))
}

/// The jar's fast paths against `cookie_store` itself (differential property test).
#[cfg(test)]
#[path = "client_jar_tests.rs"]
mod jar_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_connections_is_split_over_the_load_threads() {
        let shares = |n, lanes| -> Vec<usize> {
            split_slots(n, lanes)
                .iter()
                .map(|s| s.available_permits())
                .collect()
        };
        assert_eq!(shares(5, 2), vec![3, 2]);
        assert_eq!(shares(200, 2), vec![100, 100]);
        assert_eq!(shares(4, 1), vec![4]);
        // Never a thread without a permit (it would wait forever): fewer threads instead.
        assert_eq!(shares(2, 3), vec![1, 1]);
    }

    #[test]
    fn form_encoding_escapes() {
        let f = vec![("a b".to_string(), "x&y=z".to_string())];
        assert_eq!(form_encode(&f), "a+b=x%26y%3Dz");
    }
}
