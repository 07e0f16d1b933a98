//! The built-in demo target: a small multi-process web app with real logins,
//! cookies and a debug endpoint, so sesscheck can run without any other server
//! and tests can switch each session fault on and off. It imports nothing of the checker
//! (`tests/layers.rs` holds it to that): it could be a crate of its own.
//!
//! Layout:
//! - `mod.rs`     command-line options and the entry point
//! - `master.rs`  the parent process: state dir, spawning/supervising workers, signals
//! - `worker.rs`  one worker process: the HTTP server
//! - `app.rs`     what every handler of a worker sees (arguments, boot generation, store)
//! - `routes.rs`  the HTTP routes and the session layer (where the faults live)
//! - `state_dir.rs` boot counter, secret and session directory on disk
//! - `store.rs`   the session stores (files, in-memory, signed cookies)
//! - `listen.rs`  binding the port (SO_REUSEPORT)
//! - `crypto.rs`  random ids, hex, HMAC helpers, CSRF tokens
//! - `pages.rs`   the HTML bodies

mod app;
mod crypto;
mod listen;
mod master;
mod pages;
mod routes;
mod state_dir;
mod store;
mod worker;

use std::path::PathBuf;

/// Where sessions live, and therefore which session bug the target shows.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// One JSON file per session in the state dir, shared by all workers and
    /// kept across restarts: the healthy case.
    Shared,
    /// Each worker keeps its own sessions in memory: a login only "sticks"
    /// on the worker that created it, and everything is lost on restart.
    Memory,
    /// Signed-cookie sessions, but every worker signs with its own random key,
    /// so other workers reject the cookie.
    SecretPerWorker,
    /// Like `shared`, but the master deletes all sessions at start-up
    /// (not on a SIGHUP reload, which keeps the store like a real reload would).
    WipeOnRestart,
}

impl StoreMode {
    /// The name reported as `session_backend` by `/debug/session`.
    pub fn name(self) -> &'static str {
        match self {
            StoreMode::Shared => "shared",
            StoreMode::Memory => "memory",
            StoreMode::SecretPerWorker => "secret-per-worker",
            StoreMode::WipeOnRestart => "wipe-on-restart",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (every worker binds it with SO_REUSEPORT).
    #[arg(long, default_value_t = 8765)]
    pub port: u16,

    /// Number of worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Where sessions live; each store but `shared` shows a session bug.
    #[arg(long, value_enum, default_value_t = StoreMode::Shared)]
    pub store: StoreMode,

    /// Directory for the shared session store, the boot counter and the secret.
    /// Default: $TMPDIR (or /tmp) + /sesscheck-target-<port>.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,

    /// Write the master's PID to this file (removed again on shutdown).
    #[arg(long)]
    pub pidfile: Option<PathBuf>,

    /// The password that every user logs in with.
    #[arg(long, default_value = "demo")]
    pub password: String,

    /// POST /notes needs Django's AJAX CSRF: an `X-CSRFToken` header equal to the
    /// `csrftoken` cookie, which the login page sets (else 403).
    #[arg(long)]
    pub notes_csrf: bool,

    /// Only this account may log in, with its own password (repeatable; replaces --password).
    #[arg(long = "account", value_name = "USER:PASSWORD")]
    pub accounts: Vec<String>,

    /// Reject POST /login and POST /logout without a valid CSRF token (400).
    #[arg(long)]
    pub require_csrf: bool,

    /// Use the well-known default secret key (reported by /debug/config).
    #[arg(long)]
    pub default_secret: bool,

    /// Sleep this many milliseconds in every request except /health.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,

    /// Sleep this many milliseconds more in POST /login, as a slow password hash does.
    #[arg(long, default_value_t = 0)]
    pub login_latency_ms: u64,

    /// After a restart (any boot but the state dir's first), POST /login answers 503 for this
    /// many milliseconds after the worker starts, while pages are served: an app up before its
    /// database or auth backend is.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub login_unavailable_after_restart_ms: u64,

    /// Serve at most this many logins per second per worker; the others answer 429 Too Many
    /// Requests, as Flask-Limiter or django-ratelimit do (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub login_limit: u32,

    /// The login form posts to this path instead of /login, and only there (as pgAdmin's
    /// /login page posts to /authenticate/login); anonymous visitors are still sent to /login.
    #[arg(long, value_name = "PATH")]
    pub login_action: Option<String>,

    /// The login page sends a user who is logged in on to /app, as many Flask apps do
    /// (`if current_user.is_authenticated: return redirect(...)`) and Django's LoginView with
    /// `redirect_authenticated_user`.
    #[arg(long)]
    pub login_redirects_logged_in: bool,

    /// The login page keeps its CSRF token only in a script's JSON (`"csrfToken": "..."`), not
    /// in a hidden input, as pages rendered by JavaScript do.
    #[arg(long)]
    pub csrf_in_script: bool,

    /// Save the session at the end of every request, Django-style: a session
    /// deleted meanwhile gives a 400, and a cookie for a missing session gets a
    /// fresh anonymous session cookie.
    #[arg(long)]
    pub race: bool,

    /// Like --race, but the 400 page names the SessionInterrupted error.
    #[arg(long)]
    pub race_verbose: bool,

    /// Sessions from an earlier boot generation bounce between / and /login.
    #[arg(long)]
    pub redirect_loop_after_restart: bool,

    /// Requests carrying a session from an earlier boot generation never get an answer.
    #[arg(long)]
    pub hang_after_restart: bool,

    /// `GET /api/session` answers 401 to a session from an earlier boot generation, without
    /// clearing its cookie or redirecting: the `/app` page keeps polling and spins forever.
    #[arg(long)]
    pub spa_stale_loop_after_restart: bool,

    /// A new login of a user deletes that user's other sessions.
    #[arg(long)]
    pub single_session: bool,

    /// Answer a failed login with 200 and the form again (as Django's LoginView does) instead
    /// of a redirect to /login?error=1.
    #[arg(long)]
    pub login_error_page: bool,

    /// The login page and the login answer 500 "no such table", like an app whose database
    /// was never migrated: a setup mistake, not a session bug.
    #[arg(long)]
    pub no_tables: bool,

    /// Keep the pre-login session id at login (session fixation).
    #[arg(long)]
    pub no_rotate: bool,

    /// Logout only clears the cookie; the server-side session stays valid.
    #[arg(long)]
    pub no_revoke: bool,

    /// Send the session cookie without HttpOnly and SameSite.
    #[arg(long)]
    pub insecure_cookies: bool,

    /// Session lifetime in seconds (default: a browser-session cookie that never expires server-side).
    #[arg(long, value_name = "SECS")]
    pub session_lifetime: Option<u64>,

    /// Each authenticated request extends the session and re-sends the cookie
    /// (needs --session-lifetime).
    #[arg(long, requires = "session_lifetime")]
    pub sliding: bool,

    /// Internal: run as a worker process (set by the master when it re-executes itself).
    #[arg(long, hide = true)]
    pub worker_child: bool,

    /// Internal: the boot generation this worker belongs to.
    #[arg(long, hide = true, default_value_t = 0)]
    pub boot_generation: u64,

    /// Internal: the PID of the master, so a worker can notice it was orphaned at birth.
    #[arg(long, hide = true)]
    pub master_pid: Option<i32>,
}

impl TargetArgs {
    /// `--race-verbose` implies `--race`.
    pub fn race_enabled(&self) -> bool {
        self.race || self.race_verbose
    }

    /// The state dir, with the documented default filled in.
    pub fn resolved_state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("sesscheck-target-{}", self.port)))
    }
}

/// Entry point for `sesscheck target`: either the master or (hidden) a worker.
pub fn run(args: TargetArgs) -> anyhow::Result<()> {
    if args.worker_child {
        worker::run(args)
    } else {
        master::run(args)
    }
}
