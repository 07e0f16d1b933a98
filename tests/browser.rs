//! `[browser]`: a real headless Chromium (Debian's /usr/bin/chromium, installed by .ci/run)
//! opens a polling single-page app with virtual users' cookies before and after a restart, on
//! the built-in demo target and on a real Flask-Login app. Every run is a few seconds long.
mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BROKEN: &str = "scenarios/browser-restart-broken.toml";
const HEALTHY: &str = "scenarios/browser-restart.toml";

/// One browser test at a time. Each starts Chromium, a target and a load with a restart whose
/// timing the assertions depend on; seven of them side by side on a 2-core machine made
/// Chromium start late enough that a check missed its restart (the load ended first).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static WARM: std::sync::Once = std::sync::Once::new();
    let one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    WARM.call_once(warm_chromium);
    one
}

/// On a fresh machine Chromium's first start reads its files from disk and took 11-17 s, longer
/// than a test's whole load (the before-restart check then came after the load had ended, and
/// the restart never ran). Start it once, headless on a blank page, before the first test.
fn warm_chromium() {
    for exe in ["chromium", "chromium-browser", "google-chrome"] {
        let started = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--dump-dom",
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = started else { continue };
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
}

fn browser_checks(out: &Outcome) -> Vec<Value> {
    out.report.as_ref().expect("a report")["browser"]["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn pages_settled(out: &Outcome, when: &str) -> Vec<bool> {
    browser_checks(out)
        .iter()
        .filter(|c| c["when"] == when)
        .flat_map(|c| c["pages"].as_array().cloned().unwrap_or_default())
        .map(|p| p["settled"] == true)
        .collect()
}

#[test]
fn stale_cookie_loop_after_restart_is_infinite_loading_from_the_browser() {
    let _one = one_at_a_time();
    let (out, _dir) = run_edited(BROKEN, &[], &[], &[]);
    // The HTTP-level detectors see nothing: only the browser does.
    assert_exit_and_kinds(&out, 1, &["infinite_loading"]);
    let f = out.finding("infinite_loading").unwrap();
    assert_eq!(f["example"]["source"], "browser", "{f}");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("/app did not settle"), "{msg}");
    assert!(msg.contains("after the restart"), "{msg}");
    assert!(
        regex_like_401_count(msg),
        "the message counts the 401s: {msg}"
    );
    assert!(msg.contains("spinner `.loading` still shown"), "{msg}");
    assert_eq!(pages_settled(&out, "before_restart"), vec![true, true]);
    assert_eq!(pages_settled(&out, "after_restart"), vec![false, false]);
    // The stuck page's screenshot is in the report, a real PNG.
    let checks = browser_checks(&out);
    let stuck = checks
        .iter()
        .find(|c| c["when"] == "after_restart")
        .unwrap();
    let png = stuck["pages"][0]["screenshot_png"].as_str().unwrap();
    assert!(png.starts_with("iVBORw0KGgo"), "not a base64 PNG");
    // JUnit names the stuck page.
    let junit = out
        .files
        .iter()
        .find(|(p, _)| p.to_string_lossy().ends_with(".junit.xml"))
        .map(|(_, t)| t.clone())
        .unwrap();
    assert!(
        junit.contains("browser: /app after_restart"),
        "no JUnit case for the page"
    );
    assert!(
        junit.contains("2 of 2 page loads did not settle"),
        "{junit}"
    );
    // No cookie value in any output (the jar's session cookie went into the browser).
    for (path, text) in &out.files {
        assert!(
            !text.contains("session="),
            "{} shows a cookie",
            path.display()
        );
    }
}

/// "GET /api/session answered 401 ×N" with N > 1.
fn regex_like_401_count(msg: &str) -> bool {
    msg.split("GET /api/session answered 401 ×")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .is_some_and(|n| n > 1)
}

#[test]
fn healthy_spa_settles_on_both_sides_of_the_restart() {
    let _one = one_at_a_time();
    let (out, _dir) = run_edited(HEALTHY, &[], &[], &[]);
    assert_exit_and_kinds(&out, 0, &[]);
    assert_eq!(pages_settled(&out, "before_restart"), vec![true, true]);
    assert_eq!(pages_settled(&out, "after_restart"), vec![true, true]);
    for c in browser_checks(&out) {
        assert_eq!(c["cookies"], 1, "the user's session cookie was loaded: {c}");
        let p = &c["pages"][0];
        assert!(
            p["screenshot_png"].is_null(),
            "settled pages take no screenshot"
        );
        assert_eq!(p["ready_found"], true, "{p}");
    }
}

#[test]
fn a_page_that_never_settles_is_reported_once() {
    let _one = one_at_a_time();
    // The ready selector never appears: the page is stuck before and after the restart.
    let (out, _dir) = run_edited(
        HEALTHY,
        &[
            (
                "ready_selector = \"#user\"",
                "ready_selector = \"#never-there\"",
            ),
            ("settle_timeout = \"5s\"", "settle_timeout = \"2s\""),
        ],
        &[],
        &[],
    );
    assert_exit_and_kinds(&out, 1, &["infinite_loading"]);
    let f = out.finding("infinite_loading").unwrap();
    assert_eq!(f["count"], 4, "4 page loads, one finding: {f}");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("before the restart either"), "{msg}");
    assert!(
        msg.contains("ready selector `#never-there` never appeared"),
        "{msg}"
    );
    assert!(
        !msg.contains("favicon"),
        "a single request is not what a page kept doing: {msg}"
    );
}

#[test]
fn missing_chromium_is_exit_2_naming_the_key_and_the_package() {
    let _one = one_at_a_time();
    let dir = TempDir::new("browser-missing");
    let text = std::fs::read_to_string(HEALTHY).unwrap().replace(
        "# executable = \"/usr/bin/chromium\"",
        "executable = \"/nonexistent/chromium\"",
    );
    let path = write_scenario(&dir, "missing.toml", &text);
    let out = validate(&path, &[]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(out.stderr.contains("browser.executable"), "{}", out.stderr);
    assert!(
        out.stderr.contains("apt-get install chromium"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("missing.toml:"),
        "names the file: {}",
        out.stderr
    );

    // No executable key and none on PATH.
    let out = validate(HEALTHY, &[("PATH", "/nonexistent")]);
    assert_eq!(out.code, 2, "{}", out.explain());
    assert!(
        out.stderr.contains("no browser found on PATH"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("chromium"), "{}", out.stderr);
}

/// Live processes whose command line holds this sesscheck's browser profile.
fn browsers_of(pid: u32) -> Vec<u32> {
    let needle = format!("sesscheck-chromium-{pid}-");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(&needle) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn ctrl_c_during_a_browser_check_exits_130_with_report_and_no_browser_left() {
    let _one = one_at_a_time();
    let dir = TempDir::new("browser-ctrl-c");
    let port = free_port();
    // A page that never settles within the run, so the check is surely running.
    let text = std::fs::read_to_string(HEALTHY)
        .unwrap()
        .replace(
            "ready_selector = \"#user\"",
            "ready_selector = \"#never-there\"",
        )
        .replace("settle_timeout = \"5s\"", "settle_timeout = \"60s\"")
        .replace("duration = \"8s\"", "duration = \"60s\"")
        .replace("at = \"3s\"", "at = \"50s\"");
    let path = write_scenario(&dir, "ctrl-c.toml", &text);
    let reports = dir.reports();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(["run", &path, "--url", &url, "--quiet", "--report-dir"])
        .arg(&reports)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let up = Instant::now();
    while browsers_of(pid).is_empty() && up.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!browsers_of(pid).is_empty(), "no browser started");
    // Let the check get into the page.
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("sesscheck did not exit within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let json = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a report was written");
    let rep: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(rep["interrupted"], true);
    // A page cut short by Ctrl-C is no verdict on the page.
    let kinds: Vec<&str> = rep["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"infinite_loading"), "{kinds:?}");
    let gone = Instant::now();
    while !browsers_of(pid).is_empty() && gone.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        browsers_of(pid),
        Vec::<u32>::new(),
        "browser processes left"
    );
    let profiles: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("sesscheck-chromium-{pid}-"))
        })
        .collect();
    assert!(profiles.is_empty(), "browser profile left behind");
}

/// The same polling page behind Flask-Login under Gunicorn, sessions per process or shared.
fn flask_spa(store: &str) -> Outcome {
    let dir = TempDir::new(&format!("flask-spa-{store}"));
    let targets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets/flask_spa");
    let text = format!(
        r##"
name = "flask-spa-{store}"
[target]
url = "http://127.0.0.1:1"
spawn = {{ command = "exec python3 -m gunicorn -w 1 -b 127.0.0.1:$PORT app:app", cwd = "{}", env = {{ SPA_STORE = "{store}" }} }}
ready = {{ path = "/debug/session", timeout = "30s" }}
[login]
fields = {{ username = "user{{user}}", password = "demo" }}
success = {{ redirect_to = "/dashboard" }}
csrf = {{ page = "/login", field = "csrf_token" }}
[probe]
path = "/debug/session"
[load]
users = 2
duration = "8s"
requests = ["/dashboard"]
think_time = "50ms"
[restart]
at = "3s"
method = "supervisor"
[browser]
pages = ["/app"]
settle_timeout = "4s"
busy_selector = ".loading"
ready_selector = "#user"
"##,
        targets.display()
    );
    let path = write_scenario(&dir, "flask-spa.toml", &text);
    let (out, _run) = run_scenario(&path, &[], &[]);
    out
}

#[test]
fn flask_login_per_process_sessions_spin_forever_after_the_restart() {
    let _one = one_at_a_time();
    let out = flask_spa("process");
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("infinite_loading")
        .unwrap_or_else(|| panic!("{}", out.explain()));
    assert_eq!(f["example"]["source"], "browser", "{f}");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("after the restart"), "{msg}");
    assert!(regex_like_401_count(msg), "{msg}");
    assert_eq!(pages_settled(&out, "before_restart"), vec![true, true]);
}

#[test]
fn flask_login_shared_sessions_recover_after_the_restart() {
    let _one = one_at_a_time();
    let out = flask_spa("shared");
    assert_exit_and_kinds(&out, 0, &[]);
    assert_eq!(pages_settled(&out, "after_restart"), vec![true, true]);
}
