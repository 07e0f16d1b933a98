//! Smoke tests for `sesscheck target`: spawn the real binary on a free
//! loopback port and talk to it over fresh connections, handling the
//! `session` cookie by hand.
mod common;
use common::{free_port, TempDir};
use reqwest::{header, Client, Response, StatusCode};
use serde_json::Value;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DJANGO_400: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Bad Request (400)</title>\n</head>\n<body>\n  <h1>Bad Request (400)</h1><p></p>\n</body>\n</html>\n";

/// A running target; stopped (SIGTERM, then SIGKILL) when dropped.
struct Target {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    dir: PathBuf,
}

impl Target {
    /// Starts `sesscheck target` with `args` on a free port and waits for /health.
    async fn start(dir: &Path, args: &[&str]) -> Target {
        let mut target = Target {
            child: None,
            port: free_port(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: dir.to_owned(),
        };
        target.launch().await;
        target
    }

    async fn launch(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sesscheck"))
            .arg("target")
            .args(["--port", &self.port.to_string()])
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--pidfile")
            .arg(self.pidfile())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawning sesscheck target");
        self.child = Some(child);
        self.wait_healthy().await;
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.join("target.pid")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.join("target.stderr")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) {
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("target exited early ({status}): {}", self.stderr());
            }
            if let Ok(response) = client.get(format!("{}/health", self.base())).send().await {
                if response.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("target not healthy after 15 s: {}", self.stderr());
    }

    /// SIGTERM the master and wait for it (SIGKILL after 8 s).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("target did not stop within 8 s of SIGTERM");
    }

    /// Stop and start again with the same port, options and state dir.
    async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            for _ in 0..300 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// No connection reuse (each request may land on another worker), no redirects.
fn client() -> Client {
    Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The value of the `session` cookie set by a response, if any.
fn set_session_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("session="))
        .map(|v| v.split(';').next().unwrap_or("").to_owned())
}

fn location(response: &Response) -> &str {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn post_form(client: &Client, url: String, cookie: Option<&str>, body: &str) -> Response {
    let mut request = client
        .post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("session={cookie}"));
    }
    request.send().await.unwrap()
}

async fn get(client: &Client, url: String, cookie: Option<&str>) -> Response {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("session={cookie}"));
    }
    request.send().await.unwrap()
}

/// Logs in and returns the session cookie.
async fn login(target: &Target, username: &str) -> String {
    let body = format!("username={username}&password=demo");
    let response = post_form(&client(), format!("{}/login", target.base()), None, &body).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/dashboard");
    set_session_cookie(&response).expect("login sets a session cookie")
}

async fn debug_session(target: &Target, cookie: Option<&str>) -> Value {
    let response = get(
        &client(),
        format!("{}/debug/session", target.base()),
        cookie,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

/// `probes` fresh-connection /debug/session calls: (authenticated, anonymous).
async fn probe(target: &Target, cookie: &str, probes: usize) -> (usize, usize) {
    let mut authenticated = 0;
    for _ in 0..probes {
        if debug_session(target, Some(cookie)).await["authenticated"] == Value::Bool(true) {
            authenticated += 1;
        }
    }
    (authenticated, probes - authenticated)
}

#[tokio::test]
async fn four_workers_share_new_connections() {
    let dir = TempDir::new("spread");
    let target = Target::start(&dir.0, &["--workers", "4"]).await;
    let mut pids = HashSet::new();
    for _ in 0..40 {
        let session = debug_session(&target, None).await;
        pids.insert(session["worker"]["pid"].as_u64().unwrap());
    }
    assert!(pids.len() >= 2, "only saw pids {pids:?}");
}

#[tokio::test]
async fn endpoints_have_the_documented_shapes() {
    let dir = TempDir::new("shapes");
    let target = Target::start(
        &dir.0,
        &["--workers", "2", "--require-csrf", "--default-secret"],
    )
    .await;
    let client = client();
    let base = target.base();

    let health = get(&client, format!("{base}/health"), None).await;
    assert_eq!(health.text().await.unwrap(), "ok");
    let anonymous = get(&client, format!("{base}/dashboard"), None).await;
    assert_eq!(
        (anonymous.status(), location(&anonymous)),
        (StatusCode::FOUND, "/login")
    );
    let missing = get(&client, format!("{base}/nope"), None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let config: Value = serde_json::from_str(
        &get(&client, format!("{base}/debug/config"), None)
            .await
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["secret_key_is_default"], Value::Bool(true));
    assert_eq!(config["warnings"][0], "SECRET_KEY is the default value");

    // CSRF: no token -> 400; a token from any worker's form -> accepted.
    let no_token = post_form(
        &client,
        format!("{base}/login"),
        None,
        "username=u&password=demo",
    );
    assert_eq!(no_token.await.status(), StatusCode::BAD_REQUEST);
    let form = get(&client, format!("{base}/login"), None)
        .await
        .text()
        .await
        .unwrap();
    let token = form
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next();
    let body = format!(
        "csrf_token={}&username=user1&password=wrong",
        token.unwrap()
    );
    let wrong = post_form(&client, format!("{base}/login"), None, &body).await;
    assert_eq!(location(&wrong), "/login?error=1");
    assert_eq!(set_session_cookie(&wrong), None);
    let body = body.replace("wrong", "demo");
    let ok = post_form(&client, format!("{base}/login"), None, &body).await;
    assert_eq!(location(&ok), "/dashboard");
    let cookie = set_session_cookie(&ok).unwrap();
    let session = debug_session(&target, Some(&cookie)).await;
    assert_eq!(session["current_user"]["username"], "user1");
    assert_eq!(session["session_backend"], "shared");
}

#[tokio::test]
async fn shared_store_survives_workers_and_restart() {
    let dir = TempDir::new("shared");
    let mut target = Target::start(&dir.0, &["--workers", "4"]).await;
    let cookie = login(&target, "user1").await;
    assert_eq!(probe(&target, &cookie, 20).await, (20, 0));
    let boot_before = debug_session(&target, None).await["boot"].as_u64().unwrap();

    target.stop();
    assert!(!target.pidfile().exists(), "pidfile removed on shutdown");
    target.launch().await;
    assert_eq!(probe(&target, &cookie, 20).await, (20, 0));
    let boot_after = debug_session(&target, None).await["boot"].as_u64().unwrap();
    assert_eq!(boot_after, boot_before + 1);
}

#[tokio::test]
async fn memory_store_forgets_sessions_on_other_workers() {
    let dir = TempDir::new("memory");
    let target = Target::start(&dir.0, &["--workers", "4", "--store", "memory"]).await;
    let cookie = login(&target, "user1").await;
    let (_, anonymous) = probe(&target, &cookie, 40).await;
    assert!(anonymous > 0, "every probe landed on the login worker?");
}

#[tokio::test]
async fn secret_per_worker_rejects_other_workers_cookies() {
    let dir = TempDir::new("secret");
    let target = Target::start(&dir.0, &["--workers", "4", "--store", "secret-per-worker"]).await;
    let cookie = login(&target, "user1").await;
    let (_, anonymous) = probe(&target, &cookie, 40).await;
    assert!(anonymous > 0, "every probe landed on the login worker?");
}

/// Starts a slow /dashboard, logs out the same session while it is in
/// flight, and returns the /dashboard response.
async fn dashboard_during_logout(target: &Target) -> Response {
    let cookie = login(target, "user1").await;
    let url = format!("{}/dashboard", target.base());
    let slow_cookie = cookie.clone();
    let slow = tokio::spawn(async move { get(&client(), url, Some(&slow_cookie)).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logout = post_form(
        &client(),
        format!("{}/logout", target.base()),
        Some(&cookie),
        "",
    )
    .await;
    assert_eq!(location(&logout), "/login");
    slow.await.unwrap()
}

#[tokio::test]
async fn race_gives_django_400_on_concurrent_logout() {
    let dir = TempDir::new("race");
    let target = Target::start(&dir.0, &["--workers", "2", "--race", "--latency-ms", "300"]).await;
    let response = dashboard_during_logout(&target).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(response.text().await.unwrap(), DJANGO_400);
    assert!(target
        .stderr()
        .contains("SessionInterrupted: The request's session was deleted"));

    // A cookie for a session that is gone gets a new anonymous session.
    let gone = get(
        &client(),
        format!("{}/login", target.base()),
        Some(&"ab".repeat(16)),
    )
    .await;
    assert!(set_session_cookie(&gone).is_some_and(|c| !c.is_empty()));
}

#[tokio::test]
async fn without_race_a_concurrent_logout_is_harmless() {
    let dir = TempDir::new("norace");
    let target = Target::start(&dir.0, &["--workers", "2", "--latency-ms", "300"]).await;
    let response = dashboard_during_logout(&target).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn hang_after_restart_never_answers_old_cookies() {
    let dir = TempDir::new("hang");
    let mut target = Target::start(&dir.0, &["--workers", "2", "--hang-after-restart"]).await;
    let cookie = login(&target, "user1").await;
    assert_eq!(probe(&target, &cookie, 2).await, (2, 0));
    target.restart().await;

    let impatient = Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let error = impatient
        .get(format!("{}/dashboard", target.base()))
        .header(header::COOKIE, format!("session={cookie}"))
        .send()
        .await
        .expect_err("a pre-restart cookie must get no answer");
    assert!(error.is_timeout(), "{error}");
    // Fresh visitors are fine.
    let fresh = login(&target, "user2").await;
    assert_eq!(probe(&target, &fresh, 2).await, (2, 0));
}

#[tokio::test]
async fn login_and_logout_bugs_are_observable() {
    let dir = TempDir::new("bugs");
    let flags = [
        "--workers",
        "2",
        "--no-rotate",
        "--no-revoke",
        "--single-session",
    ];
    let target = Target::start(&dir.0, &flags).await;
    let base = target.base();
    let client = client();

    // --no-rotate: the pre-login session id survives the login (fixation).
    let form = get(&client, format!("{base}/login"), None).await;
    let pre_login = set_session_cookie(&form).expect("pre-login session cookie");
    let body = "username=user1&password=demo";
    let logged_in = post_form(&client, format!("{base}/login"), Some(&pre_login), body).await;
    assert_eq!(
        set_session_cookie(&logged_in).as_deref(),
        Some(pre_login.as_str())
    );

    // --no-revoke: after logout the old cookie still works.
    let logout = post_form(&client, format!("{base}/logout"), Some(&pre_login), "").await;
    assert_eq!(set_session_cookie(&logout).as_deref(), Some(""));
    assert_eq!(probe(&target, &pre_login, 2).await, (2, 0));

    // --single-session: a new login of user1 ends the old session.
    let second = login(&target, "user1").await;
    assert_eq!(probe(&target, &pre_login, 2).await, (0, 2));
    assert_eq!(probe(&target, &second, 2).await, (2, 0));
}

#[tokio::test]
async fn reload_makes_sessions_stale_and_loops_redirects() {
    let dir = TempDir::new("loop");
    let flags = ["--workers", "2", "--redirect-loop-after-restart"];
    let target = Target::start(&dir.0, &flags).await;
    let base = target.base();
    let cookie = login(&target, "user1").await;
    let boot = debug_session(&target, None).await["boot"].as_u64().unwrap();

    // SIGHUP: new workers, new boot generation, sessions kept (shared store).
    let master: i32 = std::fs::read_to_string(target.pidfile())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hup = nix::sys::signal::Signal::SIGHUP;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(master), hup).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // While the old workers close their listeners, a new connection can land in a closing
    // socket's queue and be reset (SO_REUSEPORT): during the reload that is no answer yet.
    let boot_now = || async {
        let response = client()
            .get(format!("{base}/debug/session"))
            .send()
            .await
            .ok()?;
        let body: Value = serde_json::from_str(&response.text().await.ok()?).ok()?;
        body["boot"].as_u64()
    };
    while boot_now().await.is_none_or(|now| now == boot) {
        assert!(
            Instant::now() < deadline,
            "no new boot generation after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the old workers time to stop before we rely on every connection.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = client();
    let dashboard = get(&client, format!("{base}/dashboard"), Some(&cookie)).await;
    assert_eq!(location(&dashboard), "/login");
    let login_page = get(&client, format!("{base}/login"), Some(&cookie)).await;
    assert_eq!(location(&login_page), "/");
    assert_eq!(probe(&target, &cookie, 4).await, (0, 4));
}

#[tokio::test]
async fn sliding_sessions_resend_the_cookie() {
    let dir = TempDir::new("sliding");
    let flags = ["--workers", "2", "--session-lifetime", "60", "--sliding"];
    let target = Target::start(&dir.0, &flags).await;
    let cookie = login(&target, "user1").await;
    let dashboard = get(
        &client(),
        format!("{}/dashboard", target.base()),
        Some(&cookie),
    )
    .await;
    let set_cookie = dashboard
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(set_cookie.contains("Max-Age=60"), "{set_cookie}");
    let expires_in = debug_session(&target, Some(&cookie)).await["expires_in"]
        .as_u64()
        .unwrap();
    assert!((55..=60).contains(&expires_in), "{expires_in}");
}
