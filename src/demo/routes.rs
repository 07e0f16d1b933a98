//! The HTTP routes and the session layer around them.
//!
//! Every request except `/health` goes through [`session_layer`], which loads
//! the session named by the cookie at the start, runs the route, sleeps
//! `--latency-ms` (the "work"), and then, with `--race`, "saves" the session
//! Django-style. Routes that manage the session themselves (login, logout)
//! mark their response with [`SessionHandledByRoute`] so the layer leaves it alone.
use super::app::App;
use super::crypto;
use super::pages;
use super::store::{Session, User};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long a `--hang-after-restart` request holds its connection.
const HANG: Duration = Duration::from_secs(3600);

pub fn router(app: Arc<App>) -> Router {
    let login = match &app.args.login_action {
        Some(action) => Router::new()
            .route("/login", get(login_page))
            .route(action, axum::routing::post(login_submit)),
        None => Router::new().route("/login", get(login_page).post(login_submit)),
    };
    login
        .route("/", get(dashboard))
        .route("/dashboard", get(dashboard))
        .route("/logout", get(logout).post(logout))
        .route("/notes", axum::routing::post(notes))
        .route("/debug/session", get(debug_session))
        .route("/debug/config", get(debug_config))
        .route("/app", get(spa_page))
        .route("/api/session", get(api_session))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            session_layer,
        ))
        // Added after the layer, so the layer does not wrap it.
        .route("/health", get(health))
        .route("/status/{code}", get(status))
        .with_state(app)
}

/// `--no-tables`: what a Django or Flask app answers when its tables were never created.
fn no_such_table() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(
            "<!doctype html>\n<html><head><title>OperationalError at /login</title></head>\n<body><h1>OperationalError</h1><p>no such table: auth_user</p></body></html>\n",
        ),
    )
        .into_response()
}

/// A login while the app's database is not ready yet, as a WSGI server's error page would
/// say it.
fn login_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html("<!doctype html>\n<html><head><title>503 Service Unavailable</title></head>\n<body><h1>Service Unavailable</h1><p>the database is not ready yet</p></body></html>\n"),
    )
        .into_response()
}

/// A login over `--login-limit`, as a rate limiter answers it.
fn too_many_logins() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "1")],
        Html("<!doctype html>\n<html><head><title>429 Too Many Requests</title></head>\n<body><h1>Too Many Requests</h1><p>1 per 1 second</p></body></html>\n"),
    )
        .into_response()
}

/// What the session layer found at the start of the request.
#[derive(Clone)]
struct RequestSession {
    /// The live session that cookie named at the start of the request.
    session: Option<Session>,
}

/// Response marker: the route already decided what happens to the session.
#[derive(Clone)]
struct SessionHandledByRoute;

fn handled(mut response: Response) -> Response {
    response.extensions_mut().insert(SessionHandledByRoute);
    response
}

async fn session_layer(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let cookie = session_cookie_of(request.headers());
    let mut session = match &cookie {
        Some(value) => app.store.load(value).await,
        None => None,
    };

    if app.args.hang_after_restart && session.as_ref().is_some_and(|s| app.is_stale(s)) {
        // The bug being simulated: a request that never gets an answer.
        tokio::time::sleep(HANG).await;
    }

    // --sliding: every authenticated request pushes the expiry forward.
    let mut refreshed_cookie = None;
    if app.args.sliding && app.user_of(session.as_ref()).is_some() {
        if let Some(session) = session.as_mut() {
            session.expires_at = app.new_session(None).expires_at;
            refreshed_cookie = app.store.save(session).await.ok();
        }
    }

    request.extensions_mut().insert(RequestSession {
        session: session.clone(),
    });
    let mut response = next.run(request).await;

    if app.args.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(app.args.latency_ms)).await;
    }
    if response
        .extensions()
        .get::<SessionHandledByRoute>()
        .is_some()
    {
        return response;
    }

    if let (true, Some(cookie)) = (app.args.race_enabled(), cookie.as_deref()) {
        match save_every_request(&app, cookie, session.is_some()).await {
            RaceSave::Saved => {}
            RaceSave::Interrupted => return session_interrupted(&app, &path),
            RaceSave::CreatedAnonymous(value) => {
                set_cookie(&mut response, &app.session_cookie(&value));
                return response;
            }
        }
    }
    if let Some(value) = refreshed_cookie {
        set_cookie(&mut response, &app.session_cookie(&value));
    }
    response
}

/// What the end-of-request save of `--race` found.
enum RaceSave {
    /// The session is still there (or never mattered): nothing to add.
    Saved,
    /// The session existed at the start and is gone now.
    Interrupted,
    /// The cookie named no session, so a new empty one was created.
    CreatedAnonymous(String),
}

/// `--race`: Django with SESSION_SAVE_EVERY_REQUEST saves the session at the
/// end of every request that carried a cookie. If the session was deleted
/// meanwhile (a concurrent logout), the save fails (SessionInterrupted). If it
/// was already missing at the start, saving creates a new empty session.
async fn save_every_request(app: &App, cookie: &str, existed_at_start: bool) -> RaceSave {
    if existed_at_start {
        return match app.store.load(cookie).await {
            Some(_) => RaceSave::Saved,
            None => RaceSave::Interrupted,
        };
    }
    match app.store.save(&app.new_session(None)).await {
        Ok(value) => RaceSave::CreatedAnonymous(value),
        Err(e) => {
            eprintln!("[worker {}] saving a new session: {e:#}", app.pid);
            RaceSave::Saved
        }
    }
}

/// Django's answer to SessionInterrupted: a 400 without a cookie, and a log line.
fn session_interrupted(app: &App, path: &str) -> Response {
    eprintln!(
        "[worker {}] SessionInterrupted: {}",
        app.pid,
        pages::SESSION_INTERRUPTED_MESSAGE
    );
    let body = if app.args.race_verbose {
        pages::session_interrupted_400(path)
    } else {
        pages::BAD_REQUEST_400.to_owned()
    };
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

async fn health() -> &'static str {
    "ok"
}

/// `GET /status/400`: answers with that status and no session logic, so tests can produce
/// an HTTP error that no logout explains (like httpbin's /status).
async fn status(axum::extract::Path(code): axum::extract::Path<u16>) -> Response {
    match StatusCode::from_u16(code) {
        Ok(s) => (s, format!("status {code}\n")).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "not a status code\n").into_response(),
    }
}

/// `POST /notes` (form or JSON, not read): a write that needs a logged-in session, and with
/// `--notes-csrf` Django's AJAX CSRF header. 201 with the note's author and worker.
async fn notes(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
    headers: HeaderMap,
) -> Response {
    let Some(user) = app.user_of(rs.session.as_ref()) else {
        return redirect("/login");
    };
    if app.args.notes_csrf {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("csrftoken=").map(str::to_string));
        let sent = headers.get("x-csrftoken").and_then(|v| v.to_str().ok());
        let valid = matches!((&cookie, sent), (Some(c), Some(s)) if c == s && crypto::csrf_token_is_valid(&app.secret, s));
        if !valid {
            return (
                StatusCode::FORBIDDEN,
                "CSRF verification failed. Request aborted.\n",
            )
                .into_response();
        }
    }
    let mut response =
        json(&serde_json::json!({"author": user.username, "worker": {"pid": app.pid}}));
    *response.status_mut() = StatusCode::CREATED;
    response
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

async fn dashboard(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
) -> Response {
    match app.user_of(rs.session.as_ref()) {
        Some(user) => {
            let csrf_token = crypto::new_csrf_token(&app.secret);
            Html(pages::dashboard(&user.username, &csrf_token)).into_response()
        }
        None => redirect("/login"),
    }
}

async fn login_page(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
    uri: Uri,
) -> Response {
    if app.args.no_tables {
        return no_such_table();
    }
    let stale_login = rs
        .session
        .as_ref()
        .is_some_and(|s| s.user.is_some() && app.is_stale(s));
    if app.args.redirect_loop_after_restart && stale_login {
        // `/` sends this session here, and here sends it back: a loop.
        return redirect("/");
    }
    if app.args.login_redirects_logged_in && app.user_of(rs.session.as_ref()).is_some() {
        // A page without a form: nothing there to take a CSRF token from.
        return redirect("/app");
    }
    let failed = parse_form(uri.query().unwrap_or("").as_bytes()).contains_key("error");
    let csrf_token = crypto::new_csrf_token(&app.secret);
    let mut response =
        Html(pages::login_form(&csrf_token, failed, &app.form_shape())).into_response();
    if app.args.notes_csrf {
        // Django sets its CSRF cookie with the form; AJAX code sends it back in a header.
        set_cookie(
            &mut response,
            &format!("csrftoken={csrf_token}; Path=/; SameSite=Lax"),
        );
    }

    // --no-rotate: like apps that create a session before login, which is
    // what makes the fixation (keeping this id at login) observable.
    if app.args.no_rotate && rs.session.is_none() {
        match app.store.save(&app.new_session(None)).await {
            Ok(value) => set_cookie(&mut response, &app.session_cookie(&value)),
            Err(e) => return server_error(&app, "saving a pre-login session", e),
        }
        return handled(response);
    }
    response
}

async fn login_submit(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
    body: Bytes,
) -> Response {
    if app.args.no_tables {
        return no_such_table();
    }
    if app.logins_unavailable() {
        return login_unavailable();
    }
    if !app.login_within_limit() {
        return too_many_logins();
    }
    if app.args.login_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(app.args.login_latency_ms)).await;
    }
    let form = parse_form(&body);
    if app.args.require_csrf && !csrf_is_valid(&app, &form) {
        return handled(csrf_rejected());
    }
    let username = form.get("username").map(|name| name.trim()).unwrap_or("");
    let password_ok = form.get("password").is_some_and(|pw| {
        if app.args.accounts.is_empty() {
            *pw == app.args.password
        } else {
            // --account USER:PASSWORD: each account its own password.
            app.args.accounts.iter().any(|a| {
                a.split_once(':')
                    .is_some_and(|(user, password)| user == username && password == pw)
            })
        }
    });
    if (username.is_empty() || !password_ok) && app.args.login_error_page {
        let csrf_token = crypto::new_csrf_token(&app.secret);
        return handled(
            Html(pages::login_form(&csrf_token, true, &app.form_shape())).into_response(),
        );
    }
    if username.is_empty() || !password_ok {
        // Like many real apps: a redirect, not a 401, so clients must check where it goes.
        return handled(redirect("/login?error=1"));
    }

    let user = User {
        id: crypto::user_id_for(username),
        username: username.to_owned(),
    };
    let mut session = app.new_session(Some(user));
    match &rs.session {
        // The session fixation bug: keep the id the visitor had before login.
        Some(existing) if app.args.no_rotate => session.id = existing.id.clone(),
        // Rotation: the pre-login id must not survive the login.
        Some(existing) => app.store.delete(&existing.id).await,
        None => {}
    }
    let cookie_value = match app.store.save(&session).await {
        Ok(value) => value,
        Err(e) => return server_error(&app, "saving the session", e),
    };
    if app.args.single_session {
        app.store
            .delete_other_sessions_of(username, &session.id)
            .await;
    }
    let mut response = redirect("/dashboard");
    set_cookie(&mut response, &app.session_cookie(&cookie_value));
    handled(response)
}

async fn logout(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
    method: Method,
    body: Bytes,
) -> Response {
    if method == Method::POST && app.args.require_csrf && !csrf_is_valid(&app, &parse_form(&body)) {
        return handled(csrf_rejected());
    }
    if !app.args.no_revoke {
        if let Some(session) = &rs.session {
            app.store.delete(&session.id).await;
        }
    }
    let mut response = redirect("/login");
    set_cookie(&mut response, "session=; Path=/; Max-Age=0");
    handled(response)
}

#[derive(Serialize)]
struct DebugSession<'a> {
    worker: WorkerInfo,
    authenticated: bool,
    current_user: Option<&'a User>,
    session_backend: &'static str,
    boot: u64,
    /// Absent without `--session-lifetime`; `null` for a visitor without a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<Option<u64>>,
}

#[derive(Serialize)]
struct WorkerInfo {
    pid: u32,
}

async fn debug_session(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
) -> Response {
    let user = app.user_of(rs.session.as_ref());
    // With a lifetime configured the key is always there: the seconds left,
    // or null when the visitor has no session at all.
    let expires_in = app.args.session_lifetime.map(|_| {
        let expires_at = rs.session.as_ref().and_then(|session| session.expires_at);
        expires_at.map(|at| at.saturating_sub(super::store::unix_now()))
    });
    json(&DebugSession {
        worker: WorkerInfo { pid: app.pid },
        authenticated: user.is_some(),
        current_user: user,
        session_backend: app.args.store.name(),
        boot: app.boot,
        expires_in,
    })
}

/// `GET /app`: a single-page app that polls `/api/session` until it answers 200 (no session
/// check here: the page itself is static, as a SPA's index.html is).
async fn spa_page() -> Response {
    Html(pages::SPA_PAGE).into_response()
}

#[derive(Serialize)]
struct ApiSession<'a> {
    username: &'a str,
}

/// `GET /api/session`: the SPA's session endpoint. 200 with the user's name, else 401. With
/// `--spa-stale-loop-after-restart` a pre-restart session gets 401 too, and its cookie is left
/// in place, so the page never learns to log in again.
async fn api_session(
    State(app): State<Arc<App>>,
    Extension(rs): Extension<RequestSession>,
) -> Response {
    let stale = rs.session.as_ref().is_some_and(|s| app.is_stale(s));
    match app.user_of(rs.session.as_ref()) {
        Some(user) if !(stale && app.args.spa_stale_loop_after_restart) => json(&ApiSession {
            username: &user.username,
        }),
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"error\":\"not authenticated\"}",
        )
            .into_response(),
    }
}

#[derive(Serialize)]
struct DebugConfig {
    secret_key_is_default: bool,
    warnings: Vec<&'static str>,
}

async fn debug_config(State(app): State<Arc<App>>) -> Response {
    let mut warnings = Vec::new();
    if app.args.default_secret {
        warnings.push("SECRET_KEY is the default value");
    }
    json(&DebugConfig {
        secret_key_is_default: app.args.default_secret,
        warnings,
    })
}

// ---- small helpers ----

/// The first `session` cookie of the request, if any (empty counts as none).
fn session_cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "session")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Parses `application/x-www-form-urlencoded` (also used for query strings).
/// Deliberately ignores the Content-Type, so a bare `POST /logout` works.
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn csrf_is_valid(app: &App, form: &HashMap<String, String>) -> bool {
    form.get("csrf_token")
        .is_some_and(|token| crypto::csrf_token_is_valid(&app.secret, token))
}

fn csrf_rejected() -> Response {
    (
        StatusCode::BAD_REQUEST,
        "CSRF token missing or incorrect.\n",
    )
        .into_response()
}

/// A JSON response (axum's `Json` needs a feature this crate does not enable).
fn json(value: &impl Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
    }
}

fn redirect(location: &'static str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn set_cookie(response: &mut Response, cookie: &str) {
    // Our cookie values are hex (plus one '.'), so this only fails on a bug.
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn server_error(app: &App, what: &str, error: anyhow::Error) -> Response {
    eprintln!("[worker {}] {what}: {error:#}", app.pid);
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
}
