//! `sesscheck init URL`: against the demo target and real Flask and Django apps it writes a
//! scenario that `validate` accepts and that then passes `sesscheck run`; against a page with
//! no login form it says so (exit 2).
mod common;

use common::*;

/// `sesscheck ARGS` with a time limit (init writes no reports).
fn sc(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Outcome {
    sesscheck(
        args,
        env,
        std::path::Path::new("/nonexistent-sesscheck-init"),
        limit,
    )
}
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The Python apps start three Gunicorn workers each: one at a time on 2 cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn targets() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/targets")
}

/// A server process (its own group), stopped with its group on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

fn start(program: &str, args: &[&str], cwd: PathBuf, env: &[(&str, String)], port: u16) -> Running {
    use std::os::unix::process::CommandExt;
    let child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting the app");
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{program} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Gunicorn answers with its first worker; the others follow.
    std::thread::sleep(Duration::from_millis(1500));
    running
}

/// `init` then `run` (3 s) of what it wrote; returns the scenario text.
/// The Flask test app (`tests/targets/flask_signed`) under Gunicorn with `workers`, on a free
/// port, with these environment variables.
fn flask_signed(workers: u16, env: &[(&str, &str)]) -> (u16, Running) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let workers = workers.to_string();
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let app = start(
        "python3",
        &["-m", "gunicorn", "-w", &workers, "-b", &bind, "app:app"],
        targets().join("flask_signed"),
        &env,
        port,
    );
    (port, app)
}

fn init_then_run(port: u16, user: &str, password: &str, extra_env: &[(&str, &str)]) -> String {
    let dir = TempDir::new("init");
    let file = dir.path().join("app.toml");
    let url = format!("http://127.0.0.1:{port}");
    let mut env = vec![("SESSCHECK_PASSWORD", password)];
    env.extend_from_slice(extra_env);
    let o = sc(
        &["init", &url, "--user", user, "-o", file.to_str().unwrap()],
        &env,
        Duration::from_secs(60),
    );
    assert_eq!(o.code, 0, "init: {}", o.stderr);
    // The next step it names needs the password too (validate reads the environment).
    assert!(
        o.stderr.contains("with SESSCHECK_PASSWORD set"),
        "{}",
        o.stderr
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let o = sc(
        &["validate", file.to_str().unwrap()],
        &env,
        Duration::from_secs(20),
    );
    assert_eq!(o.code, 0, "validate: {}\n{text}", o.stderr);
    let reports = dir.reports();
    let o = sc(
        &[
            "run",
            file.to_str().unwrap(),
            "--users",
            "4",
            "--duration",
            "3s",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &env,
        Duration::from_secs(90),
    );
    assert_eq!(
        o.code, 0,
        "run of the written scenario:\n{text}\n{}\n{}",
        o.stdout, o.stderr
    );
    assert!(
        !text.contains(password),
        "the password was written:\n{text}"
    );
    text
}

#[test]
fn init_against_the_demo_target_writes_a_scenario_that_passes() {
    let port = free_port();
    let _target = start(
        env!("CARGO_BIN_EXE_sesscheck"),
        &[
            "target",
            "--port",
            &port.to_string(),
            "--workers",
            "3",
            "--store",
            "shared",
        ],
        PathBuf::from("."),
        &[],
        port,
    );
    let text = init_then_run(port, "alice", "demo", &[]);
    for want in [
        "path = \"/login\"",
        "csrf = { page = \"/login\", field = \"csrf_token\" }",
        "success = { redirect_to = \"/dashboard\" }",
        "path = \"/debug/session\"",
        "pid = \"/worker/pid\"",
        "requests = [\"/dashboard\"]",
        "\"${SESSCHECK_PASSWORD}\"",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // Without the variable, the scenario is refused, naming it (it used to log in with an
    // empty password, `${SESSCHECK_PASSWORD:-}`).
    let dir = TempDir::new("init-noenv");
    let file = dir.path().join("app.toml");
    std::fs::write(&file, &text).unwrap();
    let o = sc(
        &["validate", file.to_str().unwrap()],
        &[],
        Duration::from_secs(20),
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("SESSCHECK_PASSWORD is not set"),
        "{}",
        o.stderr
    );
}

#[test]
fn init_against_flask_with_the_drop_in_probe() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (port, _app) = flask_signed(3, &[("SESSCHECK_PROBE", "1")]);
    let text = init_then_run(port, "alice", "demo", &[]);
    assert!(text.contains("path = \"/sesscheck/probe\""), "{text}");
    assert!(text.contains("worker = \"/worker/id\""), "{text}");
    assert!(text.contains("field = \"csrf_token\""), "{text}");
}

/// A login that lands on a public home page (as Flask-AppBuilder's does): that page cannot
/// show a logout, so init loads the pages it links to that need a login, and not its logout
/// link, asset or public page (before, it wrote `requests = ["/"]`, and a per-worker key went
/// unseen by the page checks).
#[test]
fn init_loads_the_linked_pages_that_need_a_login_when_the_landing_page_is_public() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (port, _app) = flask_signed(2, &[("LANDING_HOME", "1")]);
    let text = init_then_run(port, "alice", "demo", &[]);
    assert!(text.contains("success = { redirect_to = \"/\" }"), "{text}");
    assert!(text.contains("requests = [\"/dashboard\"]"), "{text}");
}

#[test]
fn init_against_django_finds_the_csrf_field_and_cookie() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TempDir::new("init-django");
    let port = free_port();
    let _app = start(
        "sh",
        &["-c", "SLOW_MS=0 WORKERS=3 exec ./serve.sh $PORT"],
        targets().join("django_app"),
        &[("DJANGO_DB", format!("{}/db.sqlite3", db.path().display()))],
        port,
    );
    let text = init_then_run(port, "bob", "demo", &[]);
    assert!(text.contains("field = \"csrfmiddlewaretoken\""), "{text}");
    assert!(text.contains("the cookie csrftoken"), "{text}");
    assert!(
        text.contains("success = { redirect_to = \"/dashboard\" }"),
        "{text}"
    );
}

#[test]
fn a_page_without_a_login_form_is_exit_2_saying_so() {
    // Bound on a kernel-picked port and held: no window for another process to take it.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let end = Instant::now() + Duration::from_secs(30);
        listener.set_nonblocking(true).unwrap();
        while Instant::now() < end {
            if let Ok((mut s, _)) = listener.accept() {
                let _ = s.set_nonblocking(false);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let body =
                    "<html><body><form action=\"/search\"><input name=q></form></body></html>";
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let o = sc(
        &["init", &format!("http://127.0.0.1:{port}")],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("no login form"), "{}", o.stderr);
    assert!(o.stderr.contains("--login"), "{}", o.stderr);
    // Pages that answered without a form: perhaps rendered by JavaScript (pgAdmin's is), and
    // each place named once (pgAdmin's trial saw "/login, /login").
    assert!(o.stderr.contains("JavaScript renders"), "{}", o.stderr);
    let tried = o
        .stderr
        .split("(tried ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let places: Vec<&str> = tried.split(", ").collect();
    let mut unique = places.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(places.len(), unique.len(), "{tried}");
    // Given a login page: no advice to give one.
    let o = sc(
        &[
            "init",
            &format!("http://127.0.0.1:{port}"),
            "--login",
            "/signin",
        ],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("/signin") && !o.stderr.contains("give the login page"),
        "{}",
        o.stderr
    );
    // Nothing listens: exit 3.
    let o = sc(
        &["init", &format!("http://127.0.0.1:{}", free_port())],
        &[],
        Duration::from_secs(30),
    );
    assert_eq!(o.code, 3, "{}", o.stderr);
}
