//! `sesscheck init URL`: look at a running app and write a first scenario for it.
//!
//! It finds the login form (its action, the user and password inputs, a hidden CSRF field and
//! whether a CSRF cookie comes with it), tries the usual debug endpoints and a worker header,
//! and, given credentials, logs in once with the right password and once with a wrong one, to
//! learn where a good login lands and what a bad one looks like. What it could not find it says,
//! on stderr and in the file's comments. Every request goes through sesscheck's own client and
//! stays on the URL's origin, like a run's.

use crate::http::client::{self, Body, Http, Jar, OneOff, Req, SharedJar};
use crate::scenario::Scenario;
use crate::util::html::attr;
use anyhow::Result;
use http::Method;
use regex::Regex;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// Where login pages usually are, after the one `--login` names and the one `/` redirects to.
const LOGIN_PATHS: [&str; 8] = [
    "/login",
    "/accounts/login/",
    "/admin/login/",
    "/user/login",
    "/users/sign_in",
    "/auth/login",
    "/signin",
    "/login/",
];
/// Where debug endpoints usually are: sesscheck's drop-in probe, then hand-written ones.
const PROBE_PATHS: [&str; 4] = [
    "/sesscheck/probe",
    "/debug/session",
    "/debug/session/",
    "/api/debug/session",
];
/// Response headers that reverse proxies and platforms use to name the backend that answered.
const WORKER_HEADERS: [&str; 6] = [
    "x-served-by",
    "x-upstream",
    "x-backend",
    "x-backend-server",
    "x-instance",
    "x-worker",
];
const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The app's base URL, e.g. http://127.0.0.1:8000 (the app must be running).
    pub url: String,
    /// The login page's path, if it is not at a usual place.
    #[arg(long)]
    pub login: Option<String>,
    /// Write the scenario here (default: stdout).
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    /// A user to log in as once, to learn where a good login goes.
    #[arg(long)]
    pub user: Option<String>,
    /// The environment variable holding that user's password (never a flag: flags show in `ps`).
    #[arg(long, default_value = "SESSCHECK_PASSWORD")]
    pub password_env: String,
    /// The scenario's name (default: the URL's host).
    #[arg(long)]
    pub name: Option<String>,
}

/// Why `init` stopped; each maps to an exit code.
#[derive(Debug)]
pub enum InitError {
    /// 2: no login form, or a bad argument.
    Usage(String),
    /// 3: the app could not be reached.
    Unreachable(String),
}

/// A login form as found on a page.
#[derive(Debug, Default, PartialEq)]
pub struct LoginForm {
    pub page: String,
    pub action: String,
    pub user_field: Option<String>,
    pub password_field: String,
    pub csrf_field: Option<String>,
}

impl LoginForm {
    /// Is `path` this form's page or where it posts to (a trailing `/` aside)?
    fn is_login_page(&self, path: &str) -> bool {
        let page = |p: &str| p.trim_end_matches('/').to_string();
        let path = page(path);
        path == page(&self.page) || path == page(&self.action)
    }
}

/// A debug endpoint that answered JSON, and the pointers into it.
#[derive(Debug, PartialEq)]
pub struct ProbeFound {
    pub path: String,
    pub worker: Option<String>,
    pub pid: Option<String>,
    pub authenticated: Option<String>,
}

/// What one login with the right (and one with a wrong) password showed.
#[derive(Debug, Default)]
struct LoginLearned {
    good_to: Option<String>,
    good_status: u16,
    bad: String,
    confirmed: Option<bool>,
    /// Same-origin paths the landing page links to, as the logged-in user saw it.
    links: Vec<String>,
    /// The good login's page and its POST were served by these two different workers (known
    /// from the worker header): what a refused token means then is not sure.
    crossed: Option<(String, String)>,
}

/// The pages the scenario loads, and whether they show a logout.
#[derive(Debug, Default)]
struct Pages {
    paths: Vec<String>,
    /// The page a login lands on answers anonymous visitors too, and no page that needs a
    /// login was found: without a probe, a logout would not show.
    public_only: Option<String>,
}

/// At most this many of the landing page's links are tried for a page that needs a login.
const MAX_LINKS_TRIED: usize = 12;
/// At most this many pages go in `requests`.
const MAX_PAGES: usize = 3;

pub async fn run(args: InitArgs) -> std::result::Result<String, InitError> {
    let mut base = Url::parse(&args.url)
        .map_err(|e| InitError::Usage(format!("{:?} is not a URL ({e})", args.url)))?;
    if !matches!(base.scheme(), "http" | "https") {
        return Err(InitError::Usage(
            "the URL must start with http:// or https://".into(),
        ));
    }
    let _ = base.set_username("");
    let _ = base.set_password(None);
    base.set_path("/");
    base.set_query(None);
    let probe_client =
        OneOff::new(TIMEOUT, false).map_err(|e| InitError::Usage(format!("{e:#}")))?;
    let get = |path: String| fetch(&probe_client, &base, path);
    // Reachable at all? The first answer says, and may point at the login page.
    let home = get("/".into())
        .await
        .map_err(|e| InitError::Unreachable(format!("{base} did not answer ({e})")))?;
    let mut candidates: Vec<String> = Vec::new();
    if let Some(p) = &args.login {
        candidates.push(p.clone());
    }
    if let Some(loc) = &home.location {
        if let Ok(u) = base.join(loc) {
            if u.origin() == base.origin() {
                candidates.push(u.path().to_string());
            }
        }
    }
    // A "Log in" link on the home page (Datasette's menu links to /-/login).
    candidates.extend(
        links_to_login(&String::from_utf8_lossy(&home.body), &base)
            .into_iter()
            .take(2),
    );
    candidates.extend(LOGIN_PATHS.iter().map(|p| p.to_string()));
    // The home page's redirect is often one of the usual places: ask each once.
    let mut seen = std::collections::HashSet::new();
    candidates.retain(|p| seen.insert(p.clone()));
    let mut form = None;
    // Pages that answered, but with no login form in their HTML: rendered by JavaScript?
    let mut formless: Vec<String> = Vec::new();
    let mut worker_header = header_identity(&home.headers);
    let mut csrf_cookie = None;
    for path in &candidates {
        let Ok(answer) = get(path.clone()).await else {
            continue;
        };
        if !(200..300).contains(&answer.status) {
            continue;
        }
        if let Some(f) = find_login_form(&String::from_utf8_lossy(&answer.body), path) {
            worker_header = worker_header.or_else(|| header_identity(&answer.headers));
            csrf_cookie = answer
                .headers
                .get_all(http::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .filter_map(|v| v.split('=').next())
                .find(|name| name.to_ascii_lowercase().contains("csrf"))
                .map(str::to_string);
            form = Some(f);
            break;
        }
        formless.push(path.clone());
        if args.login.as_deref() == Some(path.as_str()) {
            break;
        }
    }
    let Some(form) = form else {
        let tried = if let Some(p) = &args.login {
            p.clone()
        } else {
            candidates.join(", ")
        };
        let next = if formless.is_empty() {
            String::new()
        } else {
            format!(
                "; {} answered, but with no <form> with a password input in its HTML: a page \
                 its JavaScript renders? Then write [login] by hand (README \"Point it at your \
                 app\"): path = where the form posts (a browser's network tab shows the POST), \
                 fields = its field names",
                formless.join(", ")
            )
        };
        let hint = if args.login.is_some() {
            ""
        } else {
            "; give the login page with --login PATH"
        };
        return Err(InitError::Usage(format!(
            "no login form (a <form> with a password input) found on {base} (tried {tried}){next}{hint}"
        )));
    };
    let mut probe = None;
    for path in PROBE_PATHS {
        if let Ok(answer) = get(path.to_string()).await {
            if answer.status == 200 {
                if let Some(p) = probe_pointers(path, &answer.body) {
                    probe = Some(p);
                    break;
                }
            }
        }
    }
    let learned = match &args.user {
        Some(user) => {
            let password = std::env::var(&args.password_env).map_err(|_| {
                InitError::Usage(format!(
                    "--user {user}: set the password in the environment variable {} (or name another with --password-env)",
                    args.password_env
                ))
            })?;
            Some(
                learn_login(
                    &base,
                    &form,
                    probe.as_ref(),
                    worker_header.as_deref(),
                    user,
                    &password,
                )
                .await
                .map_err(|e| InitError::Unreachable(format!("{e:#}")))?,
            )
        }
        None => None,
    };
    let pages = pick_pages(&get, &base, &form, learned.as_ref()).await;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| base.host_str().unwrap_or("app").replace(['.', ':'], "-"));
    let text = render(&Draft {
        name: &name,
        base: &base,
        form: &form,
        csrf_cookie: csrf_cookie.as_deref(),
        probe: probe.as_ref(),
        worker_header: worker_header.as_deref(),
        user: args.user.as_deref(),
        password_env: &args.password_env,
        learned: learned.as_ref(),
        pages: &pages,
    });
    // What init writes, validate accepts: checked here, whatever the environment holds. The
    // password reference has no default in the file (a forgotten variable must stop the run,
    // not log in with an empty password), so it gets one for this check only.
    let reference = password_reference(&args.password_env);
    let checked = text.replace(
        &reference,
        &format!("${{{}:-not-checked}}", args.password_env),
    );
    Scenario::parse(&checked, "the written scenario").map_err(|e| {
        InitError::Usage(format!(
            "the scenario init wrote does not validate (a bug in init): {e}"
        ))
    })?;
    for missing in not_found(
        &form,
        probe.as_ref(),
        worker_header.as_deref(),
        learned.as_ref(),
        &pages,
    ) {
        eprintln!("sesscheck init: {missing}");
    }
    Ok(text)
}

/// GET `path` on the app's origin (and nowhere else), without cookies or redirects.
async fn fetch(
    client: &OneOff,
    base: &Url,
    path: String,
) -> std::result::Result<client::OneOffAnswer, String> {
    let url = base.join(&path).map_err(|e| e.to_string())?;
    if url.origin() != base.origin() {
        return Err(format!("{path} is not on {base}"));
    }
    client.get(&url, MAX_BODY).await.map_err(|e| e.to_string())
}

/// The first `<form>` with a password input, and its fields.
pub fn find_login_form(html: &str, page: &str) -> Option<LoginForm> {
    static FORM: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    static INPUT: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let form_re =
        FORM.get_or_init(|| Regex::new(r"(?is)<form\b([^>]*)>(.*?)</form>").expect("static"));
    let input_re = INPUT.get_or_init(|| Regex::new(r"(?is)<input\b[^>]*>").expect("static"));
    for form in form_re.captures_iter(html) {
        let (head, inner) = (&form[1], &form[2]);
        let inputs: Vec<(String, String)> = input_re
            .find_iter(inner)
            .filter_map(|m| {
                let tag = m.as_str();
                let name = attr(tag, "name")?;
                let kind = attr(tag, "type")
                    .unwrap_or_else(|| "text".into())
                    .to_ascii_lowercase();
                Some((name, kind))
            })
            .collect();
        let Some((password, _)) = inputs.iter().find(|(_, t)| t == "password") else {
            continue;
        };
        let user = inputs
            .iter()
            .find(|(n, t)| {
                matches!(t.as_str(), "text" | "email")
                    && ["user", "email", "login", "name"]
                        .iter()
                        .any(|w| n.to_ascii_lowercase().contains(w))
            })
            .or_else(|| {
                inputs
                    .iter()
                    .find(|(_, t)| matches!(t.as_str(), "text" | "email"))
            })
            .map(|(n, _)| n.clone());
        let csrf = inputs
            .iter()
            .find(|(n, t)| {
                let n = n.to_ascii_lowercase();
                t == "hidden"
                    && (n.contains("csrf") || n.contains("token") || n == "authenticity_token")
            })
            .map(|(n, _)| n.clone());
        let action = attr(head, "action")
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| page.to_string());
        return Some(LoginForm {
            page: page.to_string(),
            action,
            user_field: user,
            password_field: password.clone(),
            csrf_field: csrf,
        });
    }
    None
}

/// Pointers into a debug endpoint's JSON: the worker's identity (a whole `worker.id`, else a
/// `pid`) and the authenticated flag. None when the answer is not a JSON object with either.
pub fn probe_pointers(path: &str, body: &[u8]) -> Option<ProbeFound> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.as_object()?;
    let mut found = ProbeFound {
        path: path.to_string(),
        worker: None,
        pid: None,
        authenticated: None,
    };
    fn walk(v: &serde_json::Value, at: String, found: &mut ProbeFound) {
        let Some(map) = v.as_object() else { return };
        for (k, child) in map {
            let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
            match (k.as_str(), child) {
                ("id", serde_json::Value::String(_)) if at.ends_with("worker") => {
                    found.worker.get_or_insert(here.clone());
                }
                ("pid", serde_json::Value::Number(_)) => {
                    found.pid.get_or_insert(here.clone());
                }
                ("authenticated" | "is_authenticated", serde_json::Value::Bool(_)) => {
                    found.authenticated.get_or_insert(here.clone());
                }
                _ => walk(child, here, found),
            }
        }
    }
    walk(&v, String::new(), &mut found);
    (found.worker.is_some() || found.pid.is_some() || found.authenticated.is_some())
        .then_some(found)
}

fn header_identity(headers: &http::HeaderMap) -> Option<String> {
    WORKER_HEADERS
        .iter()
        .find(|h| headers.contains_key(**h))
        .map(|h| h.to_string())
}

/// Log in once with the password and once with a wrong one, each with a fresh jar, through the
/// client a run uses (so cookies, CSRF and redirects behave as they will in the run).
async fn learn_login(
    base: &Url,
    form: &LoginForm,
    probe: Option<&ProbeFound>,
    worker_header: Option<&str>,
    user: &str,
    password: &str,
) -> Result<LoginLearned> {
    // With the worker header, every answer says who served it (`Reply::served_by`).
    let header = worker_header
        .map(|h| format!("[probe]\nworker_header = {}\n", toml_string(h)))
        .unwrap_or_default();
    let draft = format!(
        "name = \"init\"\n[target]\nurl = {}\n{header}[load]\nduration = \"1s\"\nrequests = [{}]\n",
        toml_string(base.as_str()),
        toml_string(&form.page)
    );
    let scenario = Scenario::parse(&draft, "init").map_err(|e| anyhow::anyhow!("{e}"))?;
    let http = Http::new(&scenario.lowered.http, base, 1)?;
    let attempt = |pw: String| {
        let http = &http;
        async move {
            let jar: SharedJar = Arc::new(Mutex::new(Jar::default()));
            let mut fields = vec![(form.password_field.clone(), pw)];
            if let Some(u) = &form.user_field {
                fields.push((u.clone(), user.to_string()));
            }
            let mut page_worker = None;
            if let Some(field) = &form.csrf_field {
                let page = http.send(0, &jar, Req::page(&form.page)).await;
                if let Ok(page) = page {
                    page_worker = page.served_by;
                    if let Some(token) =
                        crate::util::html::hidden_field(&String::from_utf8_lossy(&page.body), field)
                    {
                        fields.push((field.clone(), token));
                    }
                }
            }
            let req = Req {
                method: Method::POST,
                path: &form.action,
                body: Some(Body::Form(fields)),
                follow: false,
                is_login: true,
                headers: Vec::new(),
                slot: None,
            };
            let reply = http
                .send(0, &jar, req)
                .await
                .map_err(|e| anyhow::anyhow!("the login POST {} failed: {e}", form.action))?;
            let crossed = match (page_worker, reply.served_by) {
                (Some(page), Some(post)) if page != post => {
                    Some((page.to_string(), post.to_string()))
                }
                _ => None,
            };
            anyhow::Ok((reply, jar, crossed))
        }
    };
    let (good, jar, crossed) = attempt(password.to_string()).await?;
    let (bad, _, _) = attempt(format!("{password}-sesscheck-wrong")).await?;
    let login_path = form.action.trim_end_matches('/').to_string();
    let landing = |r: &client::Reply| {
        r.first_location
            .as_ref()
            .and_then(|l| base.join(l).ok())
            .map(|u| u.path().to_string())
    };
    let good_to = landing(&good).filter(|p| !p.trim_end_matches('/').ends_with(&login_path));
    let bad_text = match (bad.first_status, landing(&bad)) {
        (s, Some(to)) => format!("HTTP {s} to {to}"),
        (s, None) => format!("HTTP {s}"),
    };
    // Was the good login really logged in? Ask the probe, or load where it landed.
    let confirmed = match (probe, &good_to) {
        (Some(p), _) if p.authenticated.is_some() => {
            let r = http
                .send(
                    0,
                    &jar,
                    Req {
                        follow: false,
                        ..Req::page(&p.path)
                    },
                )
                .await;
            r.ok().and_then(|r| {
                let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
                v.pointer(p.authenticated.as_deref()?)?.as_bool()
            })
        }
        (_, Some(to)) => {
            let r = http.send(0, &jar, Req::page(to)).await;
            r.ok().map(|r| r.status < 400 && !r.to_login)
        }
        _ => None,
    };
    // The landing page as the user sees it: its links are candidates for pages that need a
    // login (only looked at, never followed with the user's cookies: one may be a logout).
    let links = match &good_to {
        Some(to) => match http.send(0, &jar, Req::page(to)).await {
            Ok(r) => links_in(&String::from_utf8_lossy(&r.body), base),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    Ok(LoginLearned {
        good_to,
        good_status: good.first_status,
        bad: bad_text,
        confirmed,
        links,
        crossed,
    })
}

/// The same-origin paths an HTML page links to (`<a href>`), in order, once each; not
/// assets, and not what looks like it would log out or change something.
/// The paths of a page's same-origin links, in order, each once; a link to a place on the page
/// itself (`#top`) is no page.
fn same_origin_links(html: &str, base: &Url) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for tag in crate::util::html::tags(html, "a") {
        let Some(href) = attr(tag, "href").filter(|h| !h.starts_with('#')) else {
            continue;
        };
        let Ok(url) = base.join(href.trim()) else {
            continue;
        };
        let path = url.path().to_string();
        if url.origin() == base.origin() && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// Same-origin links whose address says log in or sign in.
fn links_to_login(html: &str, base: &Url) -> Vec<String> {
    const WORDS: [&str; 6] = ["login", "log-in", "log_in", "signin", "sign-in", "sign_in"];
    let mut links = same_origin_links(html, base);
    links.retain(|path| {
        let lower = path.to_ascii_lowercase();
        WORDS.iter().any(|w| lower.contains(w))
    });
    links
}

/// Same-origin links that may be pages of the app: no logout (or delete) link, no asset.
fn links_in(html: &str, base: &Url) -> Vec<String> {
    const SKIP_WORDS: [&str; 7] = [
        "logout", "log-out", "log_out", "signout", "sign-out", "sign_out", "delete",
    ];
    const ASSET_ENDINGS: [&str; 9] = [
        ".css", ".js", ".png", ".jpg", ".svg", ".ico", ".gif", ".woff", ".woff2",
    ];
    let mut links = same_origin_links(html, base);
    links.retain(|path| {
        let lower = path.to_ascii_lowercase();
        !SKIP_WORDS.iter().any(|w| lower.contains(w))
            && !ASSET_ENDINGS.iter().any(|e| lower.ends_with(e))
    });
    links
}

/// Does an anonymous visitor get sent away from `answer`'s page? A redirect to the login page
/// (any query), or 401/403.
fn needs_login(answer: &client::OneOffAnswer, base: &Url, form: &LoginForm) -> bool {
    if matches!(answer.status, 401 | 403) {
        return true;
    }
    if !(300..400).contains(&answer.status) {
        return false;
    }
    answer
        .location
        .as_deref()
        .and_then(|l| base.join(l).ok())
        .is_some_and(|u| form.is_login_page(u.path()))
}

/// The pages a logged-in user loads: where a login lands if an anonymous visitor is sent
/// away from it; else the pages it links to that are (asked without cookies, so nothing is
/// done as the user), up to `MAX_PAGES`.
async fn pick_pages<F, Fut>(
    get: F,
    base: &Url,
    form: &LoginForm,
    learned: Option<&LoginLearned>,
) -> Pages
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<client::OneOffAnswer, String>>,
{
    let Some(landing) = learned.and_then(|l| l.good_to.clone()) else {
        return Pages {
            paths: vec!["/".into()],
            public_only: None,
        };
    };
    let mut protected = Vec::new();
    let mut public_landing = false;
    if let Ok(a) = get(landing.clone()).await {
        if needs_login(&a, base, form) {
            protected.push(landing.clone());
        } else {
            public_landing = a.status < 400;
        }
    }
    let links = learned.map(|l| l.links.as_slice()).unwrap_or_default();
    for link in links
        .iter()
        .filter(|l| **l != landing && !form.is_login_page(l))
        .take(MAX_LINKS_TRIED)
    {
        if protected.len() >= MAX_PAGES {
            break;
        }
        if let Ok(a) = get(link.clone()).await {
            if needs_login(&a, base, form) {
                protected.push(link.clone());
            }
        }
    }
    if protected.is_empty() {
        return Pages {
            paths: vec![landing.clone()],
            public_only: public_landing.then_some(landing),
        };
    }
    Pages {
        paths: protected,
        public_only: None,
    }
}

/// `${SESSCHECK_PASSWORD}`: how the written scenario names the password.
fn password_reference(env: &str) -> String {
    format!("${{{env}}}")
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

struct Draft<'a> {
    name: &'a str,
    base: &'a Url,
    form: &'a LoginForm,
    csrf_cookie: Option<&'a str>,
    probe: Option<&'a ProbeFound>,
    worker_header: Option<&'a str>,
    user: Option<&'a str>,
    password_env: &'a str,
    learned: Option<&'a LoginLearned>,
    pages: &'a Pages,
}

/// What init could not find, in words.
fn not_found(
    form: &LoginForm,
    probe: Option<&ProbeFound>,
    worker_header: Option<&str>,
    learned: Option<&LoginLearned>,
    pages: &Pages,
) -> Vec<String> {
    let mut out = Vec::new();
    if form.user_field.is_none() {
        out.push(
            "the login form has no text input for the user name: add the field to [login] fields"
                .into(),
        );
    }
    if probe.is_none() {
        let workers = match worker_header {
            Some(h) => format!("which worker answered is read from the {h} header only"),
            None => "which worker answered is not checked".to_string(),
        };
        out.push(format!(
            "no debug endpoint answered JSON (tried {}): the scenario runs without a probe, so {workers}; see README for the drop-in probe",
            PROBE_PATHS.join(", ")
        ));
    }
    if probe.is_none() && worker_header.is_none() {
        out.push("no response header names the worker (tried X-Served-By and the like)".into());
    }
    match learned {
        None => out.push("no login was tried (give --user and the password in SESSCHECK_PASSWORD): where a good login lands is a guess".into()),
        Some(l) if l.good_to.is_none() => match &l.crossed {
            // Found on Calibre-Web as two replicas with a secret each: "check the password"
            // while the password was right and the replicas refused each other's CSRF token.
            Some((page, post)) => out.push(format!(
                "the login with the password answered HTTP {} without a redirect away from the login page, but its login page came from {page} and the login went to {post}: workers (or replicas) that do not share their SECRET_KEY (or CSRF secret) refuse that token, so the password may be right; `sesscheck run` with accounts of their own per user (user{{user}}) tells the two apart; set [login] success by hand",
                l.good_status
            )),
            None => out.push(format!(
                "the login with the password answered HTTP {} without a redirect away from the login page: check the password, or set [login] success by hand",
                l.good_status
            )),
        },
        Some(l) if l.confirmed == Some(false) => out.push("after the login with the password the app still said anonymous: check the password".into()),
        Some(_) => {}
    }
    let probe_tells = probe.is_some_and(|p| p.authenticated.is_some());
    if let (Some(page), false) = (&pages.public_only, probe_tells) {
        out.push(format!(
            "no page that needs a login: {page}, where a login lands, answers anonymous visitors too, and none of its links send them to the login page; a logout would not show there: put pages that need a login in [load] requests"
        ));
    }
    out
}

fn render(d: &Draft) -> String {
    let mut s = String::new();
    let q = toml_string;
    s.push_str(&format!(
        "# Written by `sesscheck init {}`. Review it, then: sesscheck validate FILE; sesscheck run FILE\n",
        d.base
    ));
    for missing in not_found(d.form, d.probe, d.worker_header, d.learned, d.pages) {
        s.push_str(&format!("# not found: {missing}\n"));
    }
    s.push_str(&format!("name = {}\n\n[target]\n", q(d.name)));
    s.push_str(&format!(
        "url = {}\n",
        q(d.base.as_str().trim_end_matches('/'))
    ));
    s.push_str("# The app is already running; to let sesscheck start (and restart) it, add e.g.\n");
    s.push_str(
        "# spawn = { command = \"gunicorn -w 4 -b 127.0.0.1:$PORT app:app\", cwd = \"..\" }\n",
    );
    s.push_str(&format!(
        "ready = {{ path = {}, timeout = \"30s\" }}\n\n",
        q(&d.form.page)
    ));
    s.push_str("[login]\n");
    s.push_str(&format!("path = {}\n", q(&d.form.action)));
    let user = d.user.unwrap_or("user{user}");
    let mut fields = format!(
        "{} = {}",
        q(&d.form.password_field),
        q(&password_reference(d.password_env))
    );
    if let Some(u) = &d.form.user_field {
        fields = format!("{} = {}, {fields}", q(u), q(user));
    }
    s.push_str(&format!(
        "# Every virtual user logs in as this account (\"user{{user}}\" gives each its own: user1, user2, ...).\n# The password comes from the environment: {} (never write it here).\nfields = {{ {fields} }}\n",
        d.password_env
    ));
    if let Some(u) = &d.form.user_field {
        if !crate::scenario::default_public_fields()
            .iter()
            .any(|p| p.eq_ignore_ascii_case(u))
        {
            s.push_str(&format!("public_fields = [{}]\n", q(u)));
        }
    }
    if let Some(field) = &d.form.csrf_field {
        let cookie = d
            .csrf_cookie
            .map(|c| format!(" (it comes with the cookie {c})"))
            .unwrap_or_default();
        s.push_str(&format!(
            "# The form carries a CSRF token{cookie}: read from the page before each login.\n"
        ));
        s.push_str(&format!(
            "csrf = {{ page = {}, field = {} }}\n",
            q(&d.form.page),
            q(field)
        ));
    }
    match d.learned {
        Some(l) => {
            if let Some(to) = &l.good_to {
                s.push_str(&format!(
                    "# A good login answered HTTP {} to {to}; a wrong password answered {}.\n",
                    l.good_status, l.bad
                ));
                s.push_str(&format!("success = {{ redirect_to = {} }}\n", q(to)));
            } else if l.crossed.is_some() {
                // No good login was seen: both were refused tokens (see "not found" above).
                s.push_str(&format!(
                    "# The login with the password answered HTTP {} and a wrong password {}, but its login page and POST reached different workers: set `success` by hand once a login works.\n",
                    l.good_status, l.bad
                ));
            } else {
                s.push_str(&format!(
                    "# A good login answered HTTP {} and a wrong password {}: set `success` by hand if they look alike.\n",
                    l.good_status, l.bad
                ));
            }
        }
        None => s.push_str("# success = { redirect_to = \"/dashboard\" }   # where a good login lands (exact path)\n"),
    }
    s.push('\n');
    match d.probe {
        Some(p) => {
            s.push_str("[probe]\n");
            s.push_str(&format!("path = {}\n", q(&p.path)));
            if let Some(w) = &p.worker {
                s.push_str(&format!("worker = {}\n", q(w)));
            } else if let Some(pid) = &p.pid {
                s.push_str(&format!("pid = {}\n", q(pid)));
            }
            if let Some(a) = &p.authenticated {
                s.push_str(&format!("authenticated = {}\n", q(a)));
            }
            if let Some(h) = d.worker_header {
                s.push_str(&format!("worker_header = {}\n", q(h)));
            }
            s.push('\n');
        }
        None => match d.worker_header {
            Some(h) => s.push_str(&format!(
                "# No debug endpoint: the worker comes from the {h} header, and pages tell anonymous (a redirect to the login page, 401, 403); a [probe] with only worker_header asks no debug endpoint.\n[probe]\nworker_header = {}\n\n",
                q(h)
            )),
            None => s.push_str("# No [probe]: pages alone tell anonymous (a redirect to the login page, 401, 403); which worker answered is not known.\n\n"),
        },
    }
    let pages: Vec<String> = d.pages.paths.iter().map(|p| q(p)).collect();
    s.push_str("[load]\nusers = 10\nduration = \"20s\"\n");
    s.push_str("# Pages a logged-in user loads in turn; each must stay logged in. A logout shows on a\n# page that sends anonymous visitors to the login page (or answers 401/403).\n");
    if let Some(page) = &d.pages.public_only {
        s.push_str(&format!(
            "# {page} answers anonymous visitors too: replace it with pages that need a login.\n"
        ));
    }
    s.push_str(&format!("requests = [{}]\n\n", pages.join(", ")));
    s.push_str("[expect]\n");
    if d.probe
        .is_some_and(|p| p.worker.is_some() || p.pid.is_some())
        || d.worker_header.is_some()
    {
        s.push_str("min_distinct_pids = 2   # more than one worker must answer\n");
    }
    s.push_str("max_logouts = 0\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_in_link_on_the_home_page_is_a_place_to_look_for_the_form() {
        let base = Url::parse("http://127.0.0.1:8880/").unwrap();
        // Datasette's menu; a link elsewhere and a page that is no login are left out.
        let html = r#"<a href="/-/login">Log in</a> <a href="/private">db</a>
            <a href="https://idp.test/login">SSO</a> <a href="/-/login">again</a>
            <a href='/accounts/sign-in/'>x</a>"#;
        assert_eq!(
            links_to_login(html, &base),
            ["/-/login", "/accounts/sign-in/"]
        );
    }

    #[test]
    fn links_are_same_origin_pages_once_without_assets_or_logouts() {
        let base = Url::parse("http://127.0.0.1:8000/").unwrap();
        let html = r##"<a href="/users/list/">Users</a> <A class="x" HREF='/roles/list/?page=2'>
            <a href="http://127.0.0.1:8000/users/list/">again</a> <a href="https://other.test/x">off</a>
            <a href="/logout/">Log out</a> <a href="/static/a.css">css</a> <a href="#top">top</a>
            <a href="reports/">relative</a>"##;
        assert_eq!(
            links_in(html, &base),
            ["/users/list/", "/roles/list/", "/reports/"]
        );
    }

    #[test]
    fn a_page_needs_a_login_when_it_sends_anonymous_visitors_to_the_login_page() {
        let base = Url::parse("http://127.0.0.1:8000/").unwrap();
        let form = LoginForm {
            page: "/login/".into(),
            action: "/login/".into(),
            ..LoginForm::default()
        };
        let answer = |status: u16, location: Option<&str>| client::OneOffAnswer {
            status,
            location: location.map(str::to_string),
            headers: http::HeaderMap::new(),
            body: Vec::new(),
        };
        let to_login = answer(
            302,
            Some("http://127.0.0.1:8000/login/?next=%2Fusers%2Flist%2F"),
        );
        assert!(needs_login(&to_login, &base, &form));
        assert!(needs_login(&answer(403, None), &base, &form));
        assert!(!needs_login(&answer(200, None), &base, &form));
        assert!(!needs_login(
            &answer(302, Some("/elsewhere/")),
            &base,
            &form
        ));
    }

    #[test]
    fn login_forms_are_found_with_their_fields() {
        let django = r#"<form method="post" action="/accounts/login/"><input type="hidden" name="csrfmiddlewaretoken" value="t"><input type="text" name="username"><input type="password" name="password"></form>"#;
        let f = find_login_form(django, "/accounts/login/").unwrap();
        assert_eq!(f.action, "/accounts/login/");
        assert_eq!(f.user_field.as_deref(), Some("username"));
        assert_eq!(f.password_field, "password");
        assert_eq!(f.csrf_field.as_deref(), Some("csrfmiddlewaretoken"));
        // A search form first, the login form second; no action: the page itself.
        let two = r#"<form action="/search"><input name="q"></form><form method=post><input name=email type=email><input name=pw type=password></form>"#;
        let f = find_login_form(two, "/signin").unwrap();
        assert_eq!(
            (
                f.action.as_str(),
                f.user_field.as_deref(),
                f.password_field.as_str()
            ),
            ("/signin", Some("email"), "pw")
        );
        assert!(find_login_form("<form><input name=q></form>", "/").is_none());
    }

    #[test]
    fn probe_pointers_prefer_a_whole_identity() {
        let drop_in =
            br#"{"worker":{"host":"web-1","pid":17,"id":"web-1:17"},"authenticated":false}"#;
        let p = probe_pointers("/sesscheck/probe", drop_in).unwrap();
        assert_eq!(p.worker.as_deref(), Some("/worker/id"));
        assert_eq!(p.authenticated.as_deref(), Some("/authenticated"));
        let plain = br#"{"pid":4,"user":{"is_authenticated":true}}"#;
        let p = probe_pointers("/debug/session", plain).unwrap();
        assert_eq!(
            (p.pid.as_deref(), p.authenticated.as_deref()),
            (Some("/pid"), Some("/user/is_authenticated"))
        );
        assert!(probe_pointers("/x", b"<html>").is_none());
        assert!(probe_pointers("/x", b"[1,2]").is_none());
    }
}
