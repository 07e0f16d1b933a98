//! `[browser]`: a real headless Chromium opens the scenario's pages with a virtual user's
//! cookies, before and after a restart, and records whether each page *settles*: the user's
//! view of "infinite loading" (a page whose JavaScript polls a session endpoint forever while
//! every HTTP request taken alone looks fine).
//!
//! This module drives the browser and returns typed results ([`Check`]); it knows nothing of
//! detectors or report formats. `load::browser_users` decides when to call it. May import
//! `process` (Chromium runs under the guard) and nothing else of the crate.

mod chrome;
mod watch;

pub use chrome::Chromium;

use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// The executables looked for on PATH when `[browser] executable` is not set, in this order.
pub const EXECUTABLES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// A page counts as quiet once no request was in flight for this long.
pub const QUIET: Duration = Duration::from_millis(500);

/// Find the first of `names` that is an executable file on `PATH`.
pub fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

/// True for an existing regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What one check looks at, the same for every user and phase.
#[derive(Debug, Clone)]
pub struct Plan {
    pub executable: PathBuf,
    pub base: Url,
    pub pages: Vec<String>,
    pub settle_timeout: Duration,
    /// CSS: the page is settled once this exists.
    pub ready_selector: Option<String>,
    /// CSS: a spinner; the page is settled once it is gone.
    pub busy_selector: Option<String>,
}

/// A cookie of a virtual user's jar, as the browser context gets it (host-only on the target).
#[derive(Clone)]
pub struct JarCookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub secure: bool,
    pub http_only: bool,
}

// Never print a cookie's value.
impl std::fmt::Debug for JarCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JarCookie({} path={})", self.name, self.path)
    }
}

/// When a check ran, relative to the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    BeforeRestart,
    AfterRestart,
    /// No `[restart]`: once, in the middle of the run.
    MidRun,
}

impl When {
    pub fn label(self) -> &'static str {
        match self {
            When::BeforeRestart => "before_restart",
            When::AfterRestart => "after_restart",
            When::MidRun => "mid_run",
        }
    }
}

/// One virtual user's browser check: a fresh context with its cookies, each page in turn.
#[derive(Debug, Clone)]
pub struct Check {
    pub when: When,
    pub vu: usize,
    /// Run time (s) when the check began.
    pub at_s: f64,
    /// How many cookies the user's jar gave the context.
    pub cookies: usize,
    pub pages: Vec<PageVisit>,
    /// The context could not be set up (the pages were then not opened).
    pub error: Option<String>,
}

/// Requests of one page with the same method, path and answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestGroup {
    pub method: String,
    /// The path (and query) on the target; the whole URL for other origins.
    pub path: String,
    /// The HTTP status, or None when the request failed (no answer).
    pub status: Option<u16>,
    pub count: u64,
}

/// What one page did while it was watched.
#[derive(Debug, Clone)]
pub struct PageVisit {
    pub path: String,
    pub settled: bool,
    /// Time from the navigation to settled, or how long it was watched when it did not settle.
    pub elapsed_ms: f64,
    pub load_event: bool,
    pub final_url: String,
    /// Requests the page made, largest groups first.
    pub requests: Vec<RequestGroup>,
    /// Requests still in flight when the watch ended.
    pub in_flight: usize,
    /// Main-frame navigations after the first (a JavaScript redirect loop shows here).
    pub navigations: Vec<String>,
    /// Distinct console errors and uncaught exceptions, with how often each came.
    pub console_errors: Vec<(String, u64)>,
    /// `busy_selector` still matched at the end.
    pub busy_shown: bool,
    /// `ready_selector` matched at the end.
    pub ready_found: bool,
    /// PNG of the page when it did not settle.
    pub screenshot_png: Option<Vec<u8>>,
    /// The watch was cut short by Ctrl-C: not a verdict on the page.
    pub interrupted: bool,
    /// The selectors that kept a page from settling, as sentences: "spinner `.loading` still
    /// shown", "ready selector `#user` never appeared".
    pub selectors_unmet: Vec<String>,
}

impl PageVisit {
    /// The most repeated request group: what a page that does not settle keeps doing.
    pub fn busiest(&self) -> Option<&RequestGroup> {
        self.requests.iter().max_by_key(|g| g.count)
    }
}

/// Group requests by (method, path, status), largest first; ties keep the first-seen order.
pub fn group_requests(seen: &[(String, String, Option<u16>)]) -> Vec<RequestGroup> {
    let mut groups: Vec<RequestGroup> = Vec::new();
    for (method, path, status) in seen {
        match groups
            .iter_mut()
            .find(|g| &g.method == method && &g.path == path && &g.status == status)
        {
            Some(g) => g.count += 1,
            None => groups.push(RequestGroup {
                method: method.clone(),
                path: path.clone(),
                status: *status,
                count: 1,
            }),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.count));
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_group_by_method_path_and_status() {
        let r = |p: &str, s: Option<u16>| ("GET".to_string(), p.to_string(), s);
        let seen = vec![
            r("/app", Some(200)),
            r("/api/session", Some(401)),
            r("/api/session", Some(401)),
            r("/api/session", None),
            r("/api/session", Some(401)),
        ];
        let g = group_requests(&seen);
        assert_eq!(g.len(), 3);
        assert_eq!(
            (g[0].path.as_str(), g[0].status, g[0].count),
            ("/api/session", Some(401), 3)
        );
        assert_eq!(g[1].count, 1);
        assert_eq!(g[2].status, None);
    }

    #[test]
    fn path_lookup_finds_only_executables() {
        let dir = std::env::temp_dir().join(format!("sesscheck-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("not-a-browser");
        std::fs::write(&plain, "").unwrap();
        assert!(!is_executable(&plain));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(is_executable(&plain));
        assert!(!is_executable(&dir));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
