//! Safe by default (issue 14): sesscheck talks only to the target's origin, never signals a
//! process it has not verified, leaves no process behind however it ends, never writes a
//! secret in any encoding, and keeps its bounds. Each test runs the real binary against a real
//! loopback server; "another host" is 127.0.0.2, or an address inside a private network
//! namespace (`unshare -n`) from which nothing can leave the machine.
mod harness;

use harness::*;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

fn assert_code(o: &Outcome, code: i32) {
    assert!(!o.timed_out, "sesscheck hung and was killed: {o:?}");
    assert_eq!(o.code, Some(code), "{o:?}");
}

/// Every file a run wrote into its report folder, and what it printed, as one text.
fn everything_written(dir: &TempDir, o: &Outcome) -> String {
    let mut all = format!("{}\n{}\n", o.stdout, o.stderr);
    if let Ok(entries) = std::fs::read_dir(dir.reports()) {
        for e in entries.flatten() {
            all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
    }
    all
}

/// A listener on 127.0.0.2 that counts connections and keeps the request heads it got.
struct OtherHost {
    port: u16,
    connections: Arc<AtomicU64>,
    heads: Arc<Mutex<Vec<String>>>,
}

fn other_host() -> OtherHost {
    let listener = TcpListener::bind("127.0.0.2:0").expect("binding 127.0.0.2");
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let connections = Arc::new(AtomicU64::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (c, h) = (connections.clone(), heads.clone());
    std::thread::spawn(move || {
        let end = Instant::now() + SERVER_LIFETIME;
        while Instant::now() < end {
            match listener.accept() {
                Ok((mut s, _)) => {
                    c.fetch_add(1, Ordering::SeqCst);
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut buf = [0u8; 8192];
                    let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
                    h.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                    respond(&mut s, "200 OK", &[], b"elsewhere");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    OtherHost {
        port,
        connections,
        heads,
    }
}

/// A target whose pages redirect to `location`; it sets a session cookie on every answer.
fn redirecting_target(location: String) -> u16 {
    serve(move |path, _, s| match path {
        "/health" => respond(s, "200 OK", &[], b"ok"),
        _ => respond(
            s,
            "302 Found",
            &[
                &format!("Location: {location}"),
                "Set-Cookie: sid=SessCookie-7f3a9; Path=/",
            ],
            b"",
        ),
    })
}

fn with_credentials(port: u16, extra_target: &str) -> String {
    format!(
        r#"
name = "offsite"
[target]
url = "http://127.0.0.1:{port}"
ready = {{ path = "/health", timeout = "5s" }}
headers = {{ Authorization = "Bearer tok-Sup3rSecret", X-Api-Key = "key-Sup3rSecret" }}
{extra_target}
[probe]
path = ""
[load]
users = 2
duration = "2s"
requests = ["/dashboard"]
loading_timeout = "2s"
"#
    )
}

#[test]
fn a_redirect_to_another_host_is_recorded_and_not_followed() {
    let other = other_host();
    let port = redirecting_target(format!("http://127.0.0.2:{}/steal?token=abc", other.port));
    let dir = TempDir::new("offsite");
    let o = run_scenario(&dir, &with_credentials(port, ""), LIMIT);
    assert_code(&o, 1);
    assert_eq!(
        other.connections.load(Ordering::SeqCst),
        0,
        "sesscheck connected to 127.0.0.2: {:?}",
        other.heads.lock().unwrap()
    );
    let r = report(&dir);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "http_error")
        .unwrap_or_else(|| panic!("no http_error: {r}"));
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("off the target's origin"),
        "{f}"
    );
    assert_eq!(f["example"]["failure"]["kind"], "off_origin", "{f}");
    let detail = f["example"]["failure"]["detail"].as_str().unwrap();
    assert!(detail.contains("302 to http://127.0.0.2:"), "{detail}");
    assert!(
        !detail.contains("token=abc"),
        "the query is not kept: {detail}"
    );
    let all = everything_written(&dir, &o);
    assert!(!all.contains("Sup3rSecret"), "{all}");
}

#[test]
fn an_allowed_host_gets_the_redirect_but_no_credentials_or_cookies() {
    let other = other_host();
    let port = redirecting_target(format!("http://127.0.0.2:{}/sso", other.port));
    let dir = TempDir::new("allowed");
    let allow = format!("allow_hosts = [\"127.0.0.2:{}\"]", other.port);
    let o = run_scenario(&dir, &with_credentials(port, &allow), LIMIT);
    assert_code(&o, 0);
    let heads = other.heads.lock().unwrap();
    assert!(!heads.is_empty(), "the allowed host was never asked");
    for head in heads.iter() {
        let lower = head.to_ascii_lowercase();
        assert!(head.starts_with("GET /sso "), "{head}");
        for leak in [
            "authorization",
            "x-api-key",
            "cookie:",
            "sup3rsecret",
            "sesscookie",
        ] {
            assert!(
                !lower.contains(leak),
                "{leak} went to the other host: {head}"
            );
        }
    }
}

/// In a private network namespace (nothing can leave it), a `Location` to a public address
/// is not even tried: the request is an `off_origin` failure, not a failed connection.
#[test]
fn a_redirect_to_a_public_address_is_not_tried() {
    let dir = TempDir::new("netns");
    let port = 18_080;
    let server = dir.path().join("server.py");
    std::fs::write(
        &server,
        r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
        else:
            self.send_response(302); self.send_header("Location", "http://10.1.2.3/x"); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#,
    )
    .unwrap();
    let scenario =
        dir.scenario(&with_credentials(port, "").replace("duration = \"2s\"", "duration = \"1s\""));
    let script = format!(
        "ip link set lo up && (timeout 30 python3 {} {port} &) && exec {} run {} --report-dir {} --quiet",
        server.display(),
        bin(),
        scenario.display(),
        dir.reports().display()
    );
    let child = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs as root");
    let o = wait(child, LIMIT);
    assert_code(&o, 1);
    let r = report(&dir);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "http_error")
        .unwrap_or_else(|| panic!("no http_error: {r}"));
    assert_eq!(f["example"]["failure"]["kind"], "off_origin", "{f}");
    assert!(
        f["example"]["failure"]["detail"]
            .as_str()
            .unwrap()
            .contains("10.1.2.3"),
        "{f}"
    );
}

fn validate_text(dir: &TempDir, text: &str) -> Outcome {
    let path = dir.scenario(text);
    wait(
        spawn(&["validate", path.to_str().unwrap()]),
        Duration::from_secs(20),
    )
}

const BASE: &str = r#"
name = "v"
[target]
url = "http://127.0.0.1:18081"
[load]
duration = "1s"
"#;

#[test]
fn paths_that_name_another_host_and_unsafe_settings_are_refused_at_validation() {
    let dir = TempDir::new("validate");
    let cases: &[(&str, &str, &str)] = &[
        ("[load]\nrequests = [\"//127.0.0.2:81/x\"]", "[load]", "load.requests"),
        ("[load]\nrequests = [\"/\\\\127.0.0.2/x\"]", "[load]", "load.requests"),
        ("[login]\npath = \"//127.0.0.2/login\"\nfields = { username = \"u\", password = \"p\" }", "", "login.path"),
        ("[login]\nfields = { username = \"u\" }\ncsrf = { page = \"http://127.0.0.2/form\" }", "", "login.csrf.page"),
        ("[probe]\npath = \"//127.0.0.2/debug\"", "", "probe.path"),
        ("[target.ready]\npath = \"//127.0.0.2/health\"", "", "target.ready.path"),
        ("[logout]\nmethod = \"PSOT\"", "", "logout.method"),
        ("[target.headers]\n\"Bad Header\" = \"x\"", "", "target.headers.Bad Header"),
        ("[load]\nmax_duration = \"0s\"", "[load]", "load.max_duration"),
        ("[load]\nmax_redirects = 300", "[load]", "load.max_redirects"),
    ];
    for (addition, replaces, field) in cases {
        let text = if replaces.is_empty() {
            format!("{BASE}{addition}\n")
        } else {
            BASE.replacen(replaces, addition, 1)
        };
        let o = validate_text(&dir, &text);
        assert_eq!(o.code, Some(2), "{field} was accepted:\n{text}\n{o:?}");
        assert!(o.stderr.contains(field), "{field} not named: {}", o.stderr);
        assert!(
            o.stderr.contains("scenario.toml:"),
            "no file:line: {}",
            o.stderr
        );
    }
    // The same scenario with a plain path passes: what is refused above is the path's form.
    let ok = validate_text(
        &dir,
        &BASE.replacen("[load]", "[load]\nrequests = [\"/x//y\"]", 1),
    );
    assert_eq!(ok.code, Some(0), "{ok:?}");
}

/// A target that answers every page and is restarted by a signal to the PID in `pidfile`.
fn signal_scenario(port: u16, pidfile: &Path) -> String {
    format!(
        r#"
name = "pidfile"
[target]
url = "http://127.0.0.1:{port}"
ready = {{ path = "/health", timeout = "5s" }}
[probe]
path = ""
[load]
users = 1
duration = "3s"
requests = ["/dashboard"]
[restart]
at = "500ms"
method = {{ signal = "CONT", pidfile = "{}" }}
"#,
        pidfile.display()
    )
}

#[test]
fn a_pidfile_cannot_make_sesscheck_signal_what_is_not_the_target() {
    let port = serve(|_, _, s| respond(s, "200 OK", &[], b"ok"));
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid as i64
    };
    let ours = std::process::id() as i64; // the test: an ancestor of `sesscheck run`
    for (pid, words) in [
        (-1, "refusing to signal PID -1"),
        (0, "refusing to signal PID 0"),
        (1, "refusing to signal PID 1"),
        (dead, "no process has PID"),
        (ours, "sesscheck itself or one of its parents"),
    ] {
        let dir = TempDir::new("pidfile");
        let pidfile = dir.path().join("app.pid");
        std::fs::write(&pidfile, format!("{pid}\n")).unwrap();
        let o = run_scenario(&dir, &signal_scenario(port, &pidfile), LIMIT);
        assert_code(&o, 3);
        assert!(o.stderr.contains(words), "pid {pid}: {}", o.stderr);
    }
}

/// A scenario that spawns `command` (a Python server on $PORT) and runs for `duration`.
fn spawn_scenario(port: u16, command: &str, duration: &str) -> String {
    format!(
        r#"
name = "orphans"
[target]
url = "http://127.0.0.1:{port}"
spawn = {{ command = '{command}' }}
ready = {{ path = "/", timeout = "10s" }}
stop_timeout = "3s"
[probe]
path = ""
[load]
users = 1
duration = "{duration}"
requests = ["/"]
"#
    )
}

/// A real HTTP server on $PORT whose command line carries `dir` (named after a marker), so
/// that what is left of it can be found.
fn python_server(dir: &TempDir) -> String {
    format!(
        "python3 -m http.server $PORT --bind 127.0.0.1 --directory {}",
        dir.path().display()
    )
}

fn wait_until_gone(needle: &str, within: Duration) -> Vec<(u32, String)> {
    let end = Instant::now() + within;
    loop {
        let left = command_lines_containing(needle);
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_daemon_the_spawn_command_leaves_behind_is_stopped() {
    for (tag, wrapper) in [("bg", ""), ("setsid", "setsid ")] {
        let served = TempDir::new(&format!("daemon-{tag}"));
        let marker = served.path().display().to_string();
        let _reaper = Reaper(vec![marker.clone()]);
        let port = free_port();
        // The command starts the server in the background and exits at once.
        let command = format!(
            "{wrapper}{} >/dev/null 2>&1 & exit 0",
            python_server(&served)
        );
        let dir = TempDir::new("daemon");
        let o = run_scenario(&dir, &spawn_scenario(port, &command, "1s"), LIMIT);
        assert_code(&o, 0);
        let left = wait_until_gone(&marker, Duration::from_secs(5));
        assert!(left.is_empty(), "{tag}: left behind: {left:?}");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{tag}: port still served"
        );
    }
}

fn wait_for_port(port: u16, within: Duration) {
    let end = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run dirs of the sesscheck process `pid` (the built-in target's store).
fn scratch_dirs_of(pid: u32) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("sesscheck-run-{pid}-")))
        })
        .collect()
}

#[test]
fn sigkill_of_sesscheck_leaves_no_target_and_no_scratch_folder() {
    // The built-in target (several processes) and a spawned command.
    let served = TempDir::new("sigkill-served");
    let marker = served.path().display().to_string();
    let _reaper = Reaper(vec![marker.clone()]);
    let builtin_port = free_port();
    let builtin = format!(
        r#"
name = "sigkill"
[target]
url = "http://127.0.0.1:{builtin_port}"
spawn = {{ builtin = {{ workers = 2, store = "shared" }} }}
[load]
users = 2
duration = "60s"
think_time = "50ms"
"#
    );
    let command_port = free_port();
    let command = spawn_scenario(command_port, &python_server(&served), "60s");
    for (port, text) in [(builtin_port, builtin), (command_port, command)] {
        let dir = TempDir::new("sigkill");
        let path = dir.scenario(&text);
        let mut child = spawn_run(&dir, &path);
        wait_for_port(port, Duration::from_secs(20));
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(800));
        let scratch = scratch_dirs_of(pid);
        child.kill().unwrap(); // SIGKILL: sesscheck runs no code of its own after this
        child.wait().unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while (TcpStream::connect(("127.0.0.1", port)).is_ok()
            || !processes_with_port(port).is_empty())
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            processes_with_port(port).is_empty(),
            "{:?}",
            processes_with_port(port)
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still served"
        );
        assert!(wait_until_gone(&marker, Duration::from_secs(5)).is_empty());
        for d in scratch {
            assert!(!d.exists(), "{} left behind", d.display());
        }
    }
}

/// The login answer sets a session cookie; the page redirects to a malformed `Location` that
/// echoes everything the request carried; the probe answers the cookie as text.
fn echoing_target(basic_seen: Arc<Mutex<Vec<String>>>) -> u16 {
    let last_login = Arc::new(Mutex::new(String::new()));
    serve(move |path, head, s| {
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default()
        };
        basic_seen.lock().unwrap().push(header("authorization"));
        match path {
            "/health" => respond(s, "200 OK", &[], b"ok"),
            "/login" => {
                let body = head.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
                *last_login.lock().unwrap() = body;
                respond(
                    s,
                    "302 Found",
                    &[
                        "Location: /dashboard",
                        "Set-Cookie: sid=CookieVal-93f1c2; Path=/",
                    ],
                    b"",
                )
            }
            // Good JSON to the check before the load (no cookie yet), then the cookie as text.
            "/debug/session" if header("cookie").is_empty() => respond(s, "200 OK", &[], PROBE_OK),
            "/debug/session" => respond(s, "200 OK", &[], header("cookie").as_bytes()),
            _ => {
                let echo = format!(
                    "Location: http://[echo/{}|{}|{}|{}",
                    header("cookie"),
                    header("x-password"),
                    header("authorization"),
                    last_login.lock().unwrap()
                );
                respond(s, "302 Found", &[&echo], b"")
            }
        }
    })
}

#[test]
fn no_secret_reaches_any_output_in_any_form() {
    let basic_seen = Arc::new(Mutex::new(Vec::new()));
    let port = echoing_target(basic_seen.clone());
    let text = format!(
        r#"
name = "secrets"
[target]
url = "http://admin:UrlPw-S3cr3t@127.0.0.1:{port}"
ready = {{ path = "/health", timeout = "5s" }}
headers = {{ X-Password = "HdrPw-4711" }}
[login]
path = "/login"
fields = {{ username = "user{{user}}", pin = "Pin&{{user}}!" }}
success = {{ redirect_to = "/dashboard" }}
[probe]
path = "/debug/session"
[load]
users = 3
duration = "1s"
requests = ["/dashboard"]
"#
    );
    let dir = TempDir::new("secrets");
    let o = run_scenario(&dir, &text, LIMIT);
    assert_code(&o, 1);
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("admin:UrlPw-S3cr3t");
    assert!(
        basic_seen
            .lock()
            .unwrap()
            .iter()
            .any(|h| *h == format!("Basic {basic}")),
        "the URL's credentials were not sent as Basic auth"
    );
    let all = everything_written(&dir, &o);
    // The echo reached the outputs (so the redaction below was put to work)...
    assert!(all.contains("[REDACTED]"), "{all}");
    assert!(all.contains("http://127.0.0.1:"), "{all}");
    // ...and no form of any secret did.
    for leak in [
        "UrlPw-S3cr3t",
        "admin:",
        basic.as_str(),
        "CookieVal-93f1c2",
        "HdrPw-4711",
        "Pin&1!",
        "Pin%261%21",
        "Pin%262%21",
        "Pin&amp;3!",
    ] {
        assert!(!all.contains(leak), "{leak} was written:\n{all}");
    }
}

fn quick_target() -> u16 {
    serve(|path, _, s| match path {
        "/health" => respond(s, "200 OK", &[], b"ok"),
        _ => respond(s, "200 OK", &[], PROBE_OK),
    })
}

fn load_scenario(port: u16, load: &str) -> String {
    format!(
        r#"
name = "bounds"
[target]
url = "http://127.0.0.1:{port}"
ready = {{ path = "/health", timeout = "5s" }}
[probe]
path = ""
[load]
users = 2
requests = ["/dashboard"]
{load}
"#
    )
}

#[test]
fn max_duration_ends_think_time_and_requests_in_flight() {
    let port = quick_target();
    let dir = TempDir::new("think");
    let o = run_scenario(
        &dir,
        &load_scenario(
            port,
            "duration = \"2s\"\nmax_duration = \"3s\"\nthink_time = \"20s\"",
        ),
        LIMIT,
    );
    assert_code(&o, 0);
    assert!(o.elapsed < Duration::from_secs(10), "ran {:?}", o.elapsed);

    let stalled = serve(|path, _, s| match path {
        "/health" => respond(s, "200 OK", &[], b"ok"),
        _ => {
            let _ = s.flush();
            std::thread::sleep(Duration::from_secs(40));
        }
    });
    let dir = TempDir::new("stalled");
    let o = run_scenario(
        &dir,
        &load_scenario(
            stalled,
            "duration = \"2s\"\nmax_duration = \"3s\"\nloading_timeout = \"1h\"",
        ),
        LIMIT,
    );
    assert_code(&o, 1);
    assert!(o.elapsed < Duration::from_secs(12), "ran {:?}", o.elapsed);
    assert!(finding_kinds(&report(&dir)).contains(&"infinite_loading".to_string()));
}

#[test]
fn a_run_that_sends_no_load_is_not_a_pass() {
    // Every login takes longer than the whole load: no page is ever asked for.
    let slow_login = serve(|path, _, s| match path {
        "/health" => respond(s, "200 OK", &[], b"ok"),
        "/login" => {
            std::thread::sleep(Duration::from_secs(3));
            respond(s, "302 Found", &["Location: /dashboard"], b"")
        }
        _ => respond(s, "200 OK", &[], b"page"),
    });
    let dir = TempDir::new("noload");
    let text = load_scenario(slow_login, "duration = \"1s\"\nloading_timeout = \"5s\"")
        + "[login]\nfields = { username = \"u\" }\n";
    let o = run_scenario(&dir, &text, LIMIT);
    assert_code(&o, 3);
    assert!(
        o.stderr.contains("no load request was sent"),
        "{}",
        o.stderr
    );
    assert_eq!(report(&dir)["verdict"], "fail");

    // A shard without users.
    let port = quick_target();
    let dir = TempDir::new("shard");
    let path = dir.scenario(&load_scenario(port, "duration = \"1s\""));
    let o = wait(
        spawn(&[
            "run",
            path.to_str().unwrap(),
            "--shard",
            "5/10",
            "--report-dir",
            dir.reports().to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_code(&o, 2);
    assert!(
        o.stderr.contains("--shard 5/10 has no users"),
        "{}",
        o.stderr
    );
}

#[test]
fn merge_refuses_a_histogram_that_claims_more_than_it_holds() {
    let port = quick_target();
    let dir = TempDir::new("merge");
    let o = run_scenario(&dir, &load_scenario(port, "duration = \"1s\""), LIMIT);
    assert_code(&o, 0);
    let mut r = report(&dir);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    // The deflated V2 header: cookie, then the compressed length, which now claims 512 MiB.
    let mut bytes = b64
        .decode(r["histograms"]["overall"].as_str().unwrap())
        .unwrap();
    bytes[4..8].copy_from_slice(&(512u32 << 20).to_be_bytes());
    r["histograms"]["overall"] = b64.encode(&bytes).into();
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, r.to_string()).unwrap();
    let o = wait(
        spawn(&["merge", tampered.to_str().unwrap()]),
        Duration::from_secs(20),
    );
    assert_code(&o, 2);
    assert!(o.stderr.contains("histogram"), "{}", o.stderr);
    assert!(o.peak_rss_kb < 100_000, "peak RSS {} kB", o.peak_rss_kb);
}

#[test]
fn a_fifo_as_the_target_log_is_refused() {
    let port = quick_target();
    let dir = TempDir::new("fifo");
    let fifo = dir.path().join("app.log");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let text = load_scenario(port, "duration = \"1s\"").replacen(
        "[probe]",
        &format!("log = \"{}\"\n[probe]", fifo.display()),
        1,
    );
    let o = run_scenario(&dir, &text, Duration::from_secs(20));
    assert_code(&o, 2);
    assert!(o.stderr.contains("not a regular file"), "{}", o.stderr);
}

#[test]
fn reports_are_never_overwritten_and_an_unwritable_folder_is_found_first() {
    let port = quick_target();
    let dir = TempDir::new("names");
    let path = dir.scenario(&load_scenario(port, "duration = \"1s\""));
    let reports = dir.reports();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            spawn(&[
                "run",
                path.to_str().unwrap(),
                "--report-dir",
                reports.to_str().unwrap(),
                "--quiet",
            ])
        })
        .collect();
    for run in runs {
        assert_code(&wait(run, LIMIT), 0);
    }
    let json = std::fs::read_dir(&reports)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(json, 3, "runs in the same second overwrote each other");

    // A file where the folder should be: refused before any load, exit 2.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let o = wait(
        spawn(&[
            "run",
            path.to_str().unwrap(),
            "--report-dir",
            file.to_str().unwrap(),
        ]),
        LIMIT,
    );
    assert_code(&o, 2);
    assert!(o.stderr.contains("--report-dir"), "{}", o.stderr);
    assert!(o.elapsed < Duration::from_secs(5), "{:?}", o.elapsed);

    // The folder goes away during the run: the summary and the verdict's exit code remain.
    let gone = dir.path().join("gone");
    let child = spawn(&[
        "run",
        path.to_str().unwrap(),
        "--report-dir",
        gone.to_str().unwrap(),
        "--duration",
        "2s",
    ]);
    // sesscheck checks the folder (creating it) before the load; then it goes away.
    let end = Instant::now() + Duration::from_secs(15);
    while !gone.is_dir() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_dir_all(&gone).unwrap();
    std::fs::write(&gone, "now a file").unwrap();
    let o = wait(child, LIMIT);
    assert_code(&o, 0);
    assert!(
        o.stderr.contains("the report was not written"),
        "{}",
        o.stderr
    );
    assert!(o.stdout.contains("PASS"), "no summary: {}", o.stdout);
}

#[test]
fn a_probe_pid_that_is_no_pid_is_a_bad_probe_answer() {
    for (body, shown) in [
        (
            &br#"{"worker":{"pid":12.5},"authenticated":true}"#[..],
            "12.5",
        ),
        (br#"{"worker":{"pid":-3},"authenticated":true}"#, "-3"),
    ] {
        let body = body.to_vec();
        let port = serve(move |path, _, s| match path {
            "/health" => respond(s, "200 OK", &[], b"ok"),
            _ => respond(s, "200 OK", &[], &body),
        });
        let dir = TempDir::new("badpid");
        let text = load_scenario(port, "duration = \"1s\"")
            .replace("[probe]\npath = \"\"", "[probe]\npath = \"/debug/session\"");
        // The probe is asked once before the load: an answer that is no PID stops the run there
        // (exit 3), saying what it got, instead of being dropped silently.
        let o = run_scenario(&dir, &text, LIMIT);
        assert_code(&o, 3);
        assert!(
            o.stderr
                .contains(&format!("has {shown} at /worker/pid, which is no PID")),
            "{}",
            o.stderr
        );
    }
}

#[test]
fn a_second_interrupt_quits_at_once_and_the_target_still_goes() {
    let served = TempDir::new("twice-served");
    let marker = served.path().display().to_string();
    let _reaper = Reaper(vec![marker.clone()]);
    let port = free_port();
    // A target that ignores SIGTERM: the graceful stop waits its whole stop_timeout.
    let command = format!("trap \"\" TERM; exec {}", python_server(&served));
    let dir = TempDir::new("twice");
    let text = spawn_scenario(port, &command, "60s")
        .replace("stop_timeout = \"3s\"", "stop_timeout = \"8s\"");
    let path = dir.scenario(&text);
    let child = spawn_run(&dir, &path);
    wait_for_port(port, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let second = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let o = wait(child, LIMIT);
    assert_code(&o, 130);
    assert!(
        second.elapsed() < Duration::from_secs(4),
        "{:?}",
        second.elapsed()
    );
    assert!(o.stderr.contains("interrupted twice"), "{}", o.stderr);
    // The guard still stops the target (SIGKILL once its stop_timeout is over).
    let left = wait_until_gone(&marker, Duration::from_secs(15));
    assert!(left.is_empty(), "left behind: {left:?}");
}
