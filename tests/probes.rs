//! The drop-in probes of `probes/python/` (installed by `tests/targets/install.sh` with
//! `pip install ./probes/python`) inside real Flask, Django and FastAPI apps.
//!
//! Enabled (`SESSCHECK_PROBE=1`): `sesscheck run`, spawning the app with several workers and
//! probing only `/sesscheck/probe`, passes and counts several worker PIDs. Disabled: the path
//! answers 404 like any unknown path. With `SESSCHECK_PROBE_TOKEN`: 403 without the
//! `X-Sesscheck-Token` header, 200 with it.
//!
//! A missing Python dependency FAILS (never skips). The tests run one at a time: each starts a
//! multi-process app on a 2-core machine.

mod common;
use common::{free_port, run_quiet, TempDir};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn targets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/targets")
}

fn require_python(modules: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 cannot import {modules}: run `bash tests/targets/install.sh`"
    );
}

/// One of the test apps with the probe installed, as a shell command run from `cwd`.
struct App {
    name: &'static str,
    modules: &'static str,
    cwd: PathBuf,
    command: String,
    login: &'static str,
}

fn flask() -> App {
    App {
        name: "flask",
        modules: "flask, flask_login, gunicorn, sesscheck_probe.flask",
        cwd: targets().join("flask_signed"),
        command: "exec python3 -m gunicorn -w 3 -b 127.0.0.1:$PORT app:app".into(),
        login: r#"csrf = { page = "/login", field = "csrf_token" }"#,
    }
}

fn django(db_dir: &TempDir) -> App {
    App {
        name: "django",
        modules: "django, gunicorn, sesscheck_probe.django",
        cwd: targets().join("django_app"),
        command: format!(
            "DJANGO_DB={}/db.sqlite3 SLOW_MS=0 WORKERS=3 exec ./serve.sh $PORT",
            db_dir.path().display()
        ),
        login: r#"csrf = { page = "/login", field = "csrfmiddlewaretoken" }"#,
    }
}

fn fastapi() -> App {
    App {
        name: "fastapi",
        modules: "fastapi, uvicorn, multipart, sesscheck_probe.starlette",
        cwd: targets().join("fastapi_app"),
        command: "exec python3 -m uvicorn --workers 3 --host 127.0.0.1 --port $PORT app:app".into(),
        login: "",
    }
}

/// A scenario that spawns `app` with `env` and judges it through the drop-in probe only.
fn scenario(app: &App, port: u16, env: &str, headers: &str) -> String {
    format!(
        r#"name = "probe-{name}"
[target]
url = "http://127.0.0.1:{port}"
spawn = {{ command = "{command}", cwd = "{cwd}", env = {{ {env} }} }}
ready = {{ path = "/sesscheck/probe", timeout = "40s", min_workers = 2 }}
{headers}
[login]
path = "/login"
fields = {{ username = "user{{user}}", password = "demo" }}
success = {{ redirect_to = "/dashboard" }}
{login}
[probe]
path = "/sesscheck/probe"
[load]
users = 6
duration = "3s"
requests = ["/dashboard"]
[expect]
min_distinct_pids = 2
auth_persistence = 1.0
"#,
        name = app.name,
        command = app.command,
        cwd = app.cwd.display(),
        login = app.login,
    )
}

fn run_enabled(app: App, env: &str, headers: &str) {
    require_python(app.modules);
    let dir = TempDir::new(&format!("probe-{}", app.name));
    let port = free_port();
    let out = run_quiet(
        &dir,
        &scenario(&app, port, env, headers),
        Duration::from_secs(90),
    );
    assert_eq!(
        out.code,
        0,
        "{} with the probe on must pass:\n{}",
        app.name,
        out.explain()
    );
    let r = out.report.as_ref().unwrap();
    let pids = r["workers"]["distinct_pids"].as_u64().unwrap();
    assert!(pids >= 2, "{}: {pids} worker PIDs", app.name);
    assert!(
        r["auth"]["authenticated"].as_u64().unwrap() > 0,
        "{}",
        out.explain()
    );
    assert_eq!(r["auth"]["unauthenticated"], 0, "{}", out.explain());
}

#[test]
fn flask_probe_on_passes_over_several_workers() {
    let _g = serial();
    run_enabled(flask(), r#"SESSCHECK_PROBE = "1""#, "");
}

#[test]
fn django_probe_on_passes_over_several_workers() {
    let _g = serial();
    let db = TempDir::new("probe-django-db");
    run_enabled(django(&db), r#"SESSCHECK_PROBE = "1""#, "");
}

#[test]
fn fastapi_probe_with_token_passes_when_sesscheck_sends_it() {
    let _g = serial();
    run_enabled(
        fastapi(),
        r#"SESSCHECK_PROBE = "1", SESSCHECK_PROBE_TOKEN = "probe-token-7""#,
        r#"headers = { "X-Sesscheck-Token" = "probe-token-7" }"#,
    );
}

/// The app started directly (not by sesscheck), stopped with SIGTERM and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(app: &App, port: u16, env: &[(&str, &str)]) -> Running {
    require_python(app.modules);
    let child = Command::new("sh")
        .args(["-c", &app.command])
        .current_dir(&app.cwd)
        .env("PORT", port.to_string())
        .env_remove("SESSCHECK_PROBE")
        .env_remove("SESSCHECK_PROBE_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the app");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(40);
    while get_status(port, "/login", None).is_none() {
        assert!(
            Instant::now() < deadline,
            "{} did not answer /login within 40s",
            app.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    running
}

/// The status of one plain HTTP/1.1 GET on loopback, or None when nothing answers.
fn get_status(port: u16, path: &str, token: Option<&str>) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let token = token
        .map(|t| format!("X-Sesscheck-Token: {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{token}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn check_off_and_token(app: App) {
    let port = free_port();
    {
        let _off = start(&app, port, &[]);
        assert_eq!(
            get_status(port, "/sesscheck/probe", None),
            Some(404),
            "{}: off",
            app.name
        );
    }
    let port = free_port();
    let _on = start(
        &app,
        port,
        &[("SESSCHECK_PROBE", "1"), ("SESSCHECK_PROBE_TOKEN", "t-42")],
    );
    assert_eq!(
        get_status(port, "/sesscheck/probe", None),
        Some(403),
        "{}: no token",
        app.name
    );
    assert_eq!(
        get_status(port, "/sesscheck/probe", Some("t-41")),
        Some(403),
        "{}",
        app.name
    );
    assert_eq!(
        get_status(port, "/sesscheck/probe", Some("t-42")),
        Some(200),
        "{}",
        app.name
    );
}

#[test]
fn flask_probe_off_is_404_and_token_guards_it() {
    let _g = serial();
    check_off_and_token(flask());
}

#[test]
fn django_probe_off_is_404_and_token_guards_it() {
    let _g = serial();
    let db = TempDir::new("probe-django-db");
    check_off_and_token(django(&db));
}

#[test]
fn fastapi_probe_off_is_404_and_token_guards_it() {
    let _g = serial();
    check_off_and_token(fastapi());
}

/// `sesscheck_probe.wsgi:wrap` around an app nobody edited: gunicorn loads the wrapper, every
/// answer says `X-Sesscheck-Worker: host:pid`, and `[probe] worker_header` alone (no debug
/// endpoint) tells the workers apart. One SECRET_KEY: pass over several workers. A key per
/// worker (`flask_random_secret`, no `--preload`): `logout`, naming the workers.
#[test]
fn the_wsgi_wrapper_names_the_workers_of_an_unchanged_app() {
    let _g = serial();
    require_python("flask, flask_login, gunicorn, sesscheck_probe.wsgi");
    let run = |app_dir: &str| {
        let dir = TempDir::new("probe-wsgi");
        let port = free_port();
        let text = format!(
            r#"name = "probe-wsgi"
[target]
url = "http://127.0.0.1:{port}"
spawn = {{ command = "exec python3 -m gunicorn -w 3 -b 127.0.0.1:$PORT 'sesscheck_probe.wsgi:wrap(\"app:app\")'", cwd = "{cwd}", env = {{ SESSCHECK_PROBE = "1" }} }}
ready = {{ path = "/login", timeout = "40s" }}
[login]
path = "/login"
fields = {{ username = "user{{user}}", password = "demo" }}
success = {{ redirect_to = "/dashboard" }}
csrf = {{ page = "/login", field = "csrf_token" }}
[probe]
worker_header = "X-Sesscheck-Worker"
[load]
users = 6
duration = "3s"
requests = ["/dashboard"]
connection = "new"
[expect]
min_distinct_pids = 2
"#,
            cwd = targets().join(app_dir).display(),
        );
        run_quiet(&dir, &text, Duration::from_secs(90))
    };
    let out = run("flask_signed");
    assert_eq!(out.code, 0, "{}", out.explain());
    let r = out.report.as_ref().unwrap();
    let workers: Vec<&String> = r["workers"]["pids"].as_object().unwrap().keys().collect();
    assert!(
        workers.len() >= 2 && workers.iter().all(|w| w.contains(':')),
        "host:pid of several workers: {workers:?}"
    );
    assert_eq!(r["auth"]["probes"], 0, "no debug endpoint was asked");

    let out = run("flask_random_secret");
    assert_eq!(out.code, 1, "{}", out.explain());
    let m = out
        .finding("logout")
        .unwrap_or_else(|| panic!("{}", out.explain()))["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(m.contains("anonymous on ") && m.contains(':'), "{m}");
}
