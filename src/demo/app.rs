//! What every request handler of a demo worker can see: its arguments, boot generation and
//! session store.

use super::state_dir;
use super::store::{FileStore, MemoryStore, Session, SessionStore, SignedCookieStore, User};
use super::{StoreMode, TargetArgs};

/// What every request handler of this worker can see.
pub struct App {
    pub args: TargetArgs,
    /// Boot generation this worker was started in.
    pub boot: u64,
    pub pid: u32,
    /// The secret CSRF tokens are signed with: shared by all workers, except with
    /// `--store secret-per-worker`, where it is this worker's own (as SECRET_KEY signs both a
    /// Flask/Django app's cookies and its CSRF tokens).
    pub secret: Vec<u8>,
    pub store: SessionStore,
    /// When this worker started (`--login-unavailable-after-restart-ms` counts from it).
    pub started: std::time::Instant,
    /// `--login-limit`: when the current window opened, and the logins it served.
    login_window: std::sync::Mutex<(Option<std::time::Instant>, u32)>,
}

impl App {
    /// How the login page is built (`--login-action`, `--csrf-in-script`).
    pub fn form_shape(&self) -> crate::demo::pages::FormShape<'_> {
        crate::demo::pages::FormShape {
            action: self.args.login_action.as_deref().unwrap_or("/login"),
            token_in_script: self.args.csrf_in_script,
        }
    }

    pub fn new(args: TargetArgs) -> anyhow::Result<App> {
        let state_dir = args.resolved_state_dir();
        let mut secret = state_dir::read_secret(&state_dir, args.default_secret)?;
        let store = match args.store {
            StoreMode::Shared | StoreMode::WipeOnRestart => SessionStore::Files(FileStore {
                dir: state_dir::sessions_dir(&state_dir),
            }),
            StoreMode::Memory => SessionStore::Memory(MemoryStore::default()),
            StoreMode::SecretPerWorker => {
                let store = SignedCookieStore::with_random_key();
                secret = store.key.clone();
                SessionStore::SignedCookies(store)
            }
        };
        Ok(App {
            secret,
            boot: args.boot_generation,
            pid: std::process::id(),
            store,
            args,
            started: std::time::Instant::now(),
            login_window: std::sync::Mutex::new((None, 0)),
        })
    }

    /// `--login-unavailable-after-restart-ms`: is this a restarted worker still warming up?
    /// Boot 1 is the state dir's first start, so the logins before the first restart work.
    pub fn logins_unavailable(&self) -> bool {
        let window = std::time::Duration::from_millis(self.args.login_unavailable_after_restart_ms);
        self.boot > 1 && self.started.elapsed() < window
    }

    /// `--login-limit`: may one more login be served? A fixed-window limiter: a window opens at
    /// the first login after the last one closed and lasts a second, so a burst of logins is
    /// counted in one window wherever it falls.
    pub fn login_within_limit(&self) -> bool {
        let limit = self.args.login_limit;
        if limit == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        let mut window = self.login_window.lock().unwrap_or_else(|e| e.into_inner());
        let (opened, served) = &mut *window;
        if opened.is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(1)) {
            *opened = Some(now);
            *served = 0;
        }
        *served += 1;
        *served <= limit
    }

    /// A session from an earlier boot generation (before the last restart or reload).
    pub fn is_stale(&self, session: &Session) -> bool {
        session.boot < self.boot
    }

    /// The logged-in user of a session, if it counts as logged in here.
    pub fn user_of<'s>(&self, session: Option<&'s Session>) -> Option<&'s User> {
        let session = session?;
        if self.args.redirect_loop_after_restart && self.is_stale(session) {
            return None;
        }
        session.user.as_ref()
    }

    pub fn new_session(&self, user: Option<User>) -> Session {
        Session::new(user, self.boot, self.args.session_lifetime)
    }

    /// The `Set-Cookie` value for a session cookie.
    pub fn session_cookie(&self, value: &str) -> String {
        let mut cookie = format!("session={value}; Path=/");
        if !self.args.insecure_cookies {
            cookie.push_str("; HttpOnly; SameSite=Lax");
        }
        if let Some(secs) = self.args.session_lifetime {
            cookie.push_str(&format!("; Max-Age={secs}"));
        }
        cookie
    }
}
