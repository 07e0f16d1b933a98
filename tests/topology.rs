//! Several replicas behind a load balancer, all on loopback, as in a container deployment:
//! three Gunicorn replicas of a real Flask app (`tests/targets/flask_signed`, signed-cookie
//! sessions, the drop-in probe on), each in its **own PID namespace** (`unshare --pid --fork
//! --mount-proc`), so their worker PIDs collide (1, 2, 3 in every replica), behind a real nginx
//! that names the replica that answered in an `X-Served-By` header.
//!
//! - shared `SECRET_KEY`: pass, every replica:worker counted apart although the PIDs collide;
//! - `web-3` with its own `SECRET_KEY`: `logout`, naming web-3;
//! - the header alone (no probe at all): the replicas are still told apart.
//!
//! Needs root (PID namespaces), nginx (`.ci/run` installs it) and the Python targets
//! (`tests/targets/install.sh`). A missing dependency FAILS the test.

mod common;
use common::{free_port, run_quiet, sesscheck, TempDir};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

const REPLICAS: [&str; 3] = ["web-1", "web-2", "web-3"];
const WORKERS_PER_REPLICA: usize = 2;

/// A child process, killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // unshare runs with --kill-child: its death takes the namespace's PID 1 (Gunicorn's
        // master) with it, and PID 1's death ends every process in the namespace.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx's master, stopped with SIGTERM so that it stops its workers first: a SIGKILLed
/// master left its workers running and listening after every test run. Killed if it has not
/// gone within 5 s.
struct Nginx(Proc);

impl Drop for Nginx {
    fn drop(&mut self) {
        let child = &mut (self.0).0;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

struct Topology {
    /// nginx's port: what sesscheck talks to.
    port: u16,
    _replicas: Vec<Proc>,
    _nginx: Nginx,
    _dir: TempDir,
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 40s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start the replicas (`secret_of(replica)` is its SECRET_KEY) and nginx in front of them.
fn start(secret_of: impl Fn(&str) -> &'static str) -> Topology {
    let nginx_ok = Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status();
    assert!(
        nginx_ok.is_ok_and(|s| s.success()),
        "nginx is not installed: `bash .ci/run` installs it (apt-get install nginx-light)"
    );
    let dir = TempDir::new("topology");
    let app_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/targets/flask_signed");
    let mut replicas = Vec::new();
    let mut upstreams = String::new();
    let mut names = String::new();
    for name in REPLICAS {
        let port = free_port();
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .args([
                "python3",
                "-m",
                "gunicorn",
                "-w",
                &WORKERS_PER_REPLICA.to_string(),
            ])
            .args(["-b", &format!("127.0.0.1:{port}"), "app:app"])
            .current_dir(&app_dir)
            .env("SECRET_KEY", secret_of(name))
            .env("SESSCHECK_PROBE", "1")
            .env_remove("SESSCHECK_PROBE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) to start a replica");
        replicas.push(Proc(child));
        upstreams.push_str(&format!("    server 127.0.0.1:{port};\n"));
        names.push_str(&format!("    \"127.0.0.1:{port}\" {name};\n"));
        wait_listening(port, name);
    }
    // `$upstream_addr` is the replica's address; the map turns it into its name.
    let names = format!("  map $upstream_addr $replica {{\n{names}    default unknown;\n  }}\n");
    let (port, nginx) = nginx_over(&dir, &names, upstreams.trim_end(), "X-Served-By $replica");
    Topology {
        port,
        _replicas: replicas,
        _nginx: nginx,
        _dir: dir,
    }
}

fn scenario(port: u16, probe: &str) -> String {
    // Without a probe, `auth_persistence` (a share of probes) has nothing to judge.
    let expect = if probe.contains("path = \"\"") {
        "max_logouts = 0"
    } else {
        "auth_persistence = 1.0"
    };
    format!(
        r#"name = "topology"
[target]
url = "http://127.0.0.1:{port}"
ready = {{ path = "/login", timeout = "30s" }}
[login]
path = "/login"
fields = {{ username = "user{{user}}", password = "demo" }}
success = {{ redirect_to = "/dashboard" }}
csrf = {{ page = "/login", field = "csrf_token" }}
[probe]
worker_header = "X-Served-By"
{probe}
[load]
users = 8
duration = "3s"
requests = ["/dashboard"]
[expect]
{expect}
"#
    )
}

fn run(topology: &Topology, probe: &str) -> common::Outcome {
    let dir = TempDir::new("topology-run");
    run_quiet(
        &dir,
        &scenario(topology.port, probe),
        Duration::from_secs(60),
    )
}

fn workers(out: &common::Outcome) -> BTreeSet<String> {
    out.report.as_ref().unwrap()["workers"]["pids"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// The secret of each replica: one for all, but web-3 has its own.
fn web_3_has_its_own_key(replica: &str) -> &'static str {
    if replica == "web-3" {
        "web-3-own-key"
    } else {
        "one-key-for-all"
    }
}

/// The `logout` finding's message of a run (`probe` as in `run`) where web-3 has its own key.
fn logout_message_with_web_3_apart(probe: &str) -> String {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = start(web_3_has_its_own_key);
    let out = run(&t, probe);
    assert_eq!(out.code, 1, "{}", out.explain());
    let f = out
        .finding("logout")
        .unwrap_or_else(|| panic!("{}", out.explain()));
    f["message"].as_str().unwrap().to_string()
}

const PROBE_PID: &str = "path = \"/sesscheck/probe\"\npid = \"/worker/pid\"";

#[test]
fn shared_secret_passes_and_counts_every_replica_worker_apart() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = start(|_| "one-key-for-all");
    let out = run(&t, PROBE_PID);
    assert_eq!(out.code, 0, "{}", out.explain());
    let seen = workers(&out);
    // Every identity is replica:pid, from all three replicas...
    let replicas: BTreeSet<&str> = seen.iter().filter_map(|w| w.split(':').next()).collect();
    assert_eq!(replicas, REPLICAS.into_iter().collect(), "{seen:?}");
    // ...and the PIDs alone collide (PID namespaces): fewer PIDs than identities.
    let pids: BTreeSet<&str> = seen.iter().filter_map(|w| w.split(':').nth(1)).collect();
    assert!(
        pids.len() < seen.len(),
        "PIDs should collide across replicas: {seen:?}"
    );
    assert_eq!(
        out.report.as_ref().unwrap()["workers"]["distinct_pids"],
        seen.len(),
        "{seen:?}"
    );
    // Nothing is left listening once the topology is gone (nginx's workers outlived a
    // SIGKILLed master before).
    let port = t.port;
    drop(t);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on nginx's port {port}"
    );
}

#[test]
fn a_replica_with_its_own_secret_key_is_named_in_the_logout_finding() {
    let msg = &logout_message_with_web_3_apart(PROBE_PID);
    assert!(msg.contains("anonymous on web-3"), "{msg}");
    assert!(msg.contains("web-3 disagrees with every other"), "{msg}");
    assert!(
        msg.contains("share the session store and SECRET_KEY"),
        "{msg}"
    );
    assert!(
        !msg.contains("logged in via web-1, anonymous on web-2"),
        "{msg}"
    );
}

#[test]
fn the_header_alone_tells_replicas_apart_without_a_probe() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let t = start(|_| "one-key-for-all");
    let out = run(&t, "path = \"\"");
    assert_eq!(out.code, 0, "{}", out.explain());
    let seen = workers(&out);
    assert_eq!(
        seen,
        REPLICAS.iter().map(|s| s.to_string()).collect(),
        "{}",
        out.explain()
    );
    let r = out.report.as_ref().unwrap();
    assert_eq!(r["auth"]["probes"], 0, "no probe was sent");
}

/// Found on pgAdmin behind nginx: with the header alone, a page that a replica answered with
/// a redirect to the login page was put down to the replica that served the login page after
/// it, so the finding named the wrong one (or none at all, with one user). The replica that
/// sent the user to the login page is the one that did not know the session.
#[test]
fn the_header_alone_names_the_replica_that_sent_the_user_to_the_login_page() {
    let msg = &logout_message_with_web_3_apart("path = \"\"");
    assert!(msg.contains("anonymous on web-3"), "{msg}");
    // web-1 and web-2 share their key: neither rejects the other's sessions.
    assert!(
        !msg.contains("logged in via web-1, anonymous on web-2")
            && !msg.contains("logged in via web-2, anonymous on web-1"),
        "{msg}"
    );
    assert!(msg.contains("web-3 disagrees with every other"), "{msg}");
}

/// The built-in target on `port` (one worker, a store and secret in `state`), for nginx to
/// balance: two of them with their own `state` are two replicas with a secret each.
fn builtin_replica(port: u16, state: &std::path::Path, args: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_sesscheck"))
        .args(["target", "--port", &port.to_string(), "--workers", "1"])
        .args(["--store", "shared", "--state-dir"])
        .arg(state)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the built-in target");
    let replica = Proc(child);
    wait_listening(port, "the built-in target");
    replica
}

/// nginx on a port of its own, round-robin over `servers` (nginx `server` lines), adding the
/// header `add_header` names (`X-Upstream $upstream_addr`, as the README suggests) to every
/// answer; `http` goes into its `http` block (a `map`).
fn nginx_over(dir: &TempDir, http: &str, servers: &str, add_header: &str) -> (u16, Nginx) {
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        r#"worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
{http}  upstream app {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_next_upstream error timeout non_idempotent;
      add_header {add_header} always;
    }}
  }}
}}
"#
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let nginx = Command::new("nginx")
        .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log")])
        .args(["-c", conf_path.to_str().unwrap(), "-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nginx (`bash .ci/run` installs it)");
    let nginx = Nginx(Proc(nginx));
    wait_listening(port, "nginx");
    (port, nginx)
}

/// nginx's `$upstream_addr`, which the README suggests as the worker header, lists every
/// server nginx tried: `127.0.0.1:DEAD, 127.0.0.1:LIVE` after a failover. One live replica
/// behind an upstream whose first server is down (never marked failed, so every other request
/// fails over): one worker, so `min_distinct_pids = 2` fails. Before, the failover's list
/// counted as a second worker and the check passed (found on Calibre-Web: "3 distinct workers"
/// of two replicas).
#[test]
fn a_failover_list_in_upstream_addr_is_the_server_that_answered() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new("failover");
    let live = free_port();
    let dead = free_port();
    let _target = builtin_replica(live, &dir.path().join("state"), &[]);
    let (port, _nginx) = nginx_over(
        &dir,
        "",
        &format!("    server 127.0.0.1:{dead} max_fails=0;\n    server 127.0.0.1:{live};"),
        "X-Upstream $upstream_addr",
    );

    let scenario = format!(
        r#"name = "failover"
[target]
url = "http://127.0.0.1:{port}"
ready = {{ path = "/health", timeout = "20s" }}
[login]
path = "/login"
fields = {{ username = "user{{user}}", password = "demo" }}
[probe]
worker_header = "X-Upstream"
[load]
users = 4
duration = "2s"
requests = ["/dashboard"]
think_time = "20ms"
[expect]
min_distinct_pids = 2
"#
    );
    let out = run_quiet(&dir, &scenario, Duration::from_secs(60));
    assert_eq!(out.code, 1, "{}", out.explain());
    assert_eq!(
        workers(&out),
        BTreeSet::from([format!("127.0.0.1:{live}")]),
        "{}",
        out.explain()
    );
    let failed: Vec<&str> = out.report.as_ref().unwrap()["expectations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(failed, ["min_distinct_pids"], "{}", out.explain());
}

/// `sesscheck init` on two replicas with a secret each behind a round-robin nginx: the login
/// page and the login reach different replicas, and the good password's login is refused (the
/// CSRF token). init said "check the password" (Calibre-Web trial); it now names the two
/// replicas. With one secret for both, the login is learned as usual.
#[test]
fn init_names_the_replicas_a_refused_login_went_between() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let init = |shared: bool| {
        let dir = TempDir::new("init-replicas");
        let (a, b) = (free_port(), free_port());
        let state = |name: &str| dir.path().join(if shared { "state" } else { name });
        let _replicas = [
            builtin_replica(a, &state("a"), &["--require-csrf"]),
            builtin_replica(b, &state("b"), &["--require-csrf"]),
        ];
        let (port, _nginx) = nginx_over(
            &dir,
            "",
            &format!("    server 127.0.0.1:{a};\n    server 127.0.0.1:{b};"),
            "X-Upstream $upstream_addr",
        );
        let file = dir.path().join("app.toml");
        let rd = dir.reports();
        let out = sesscheck(
            &[
                "init",
                &format!("http://127.0.0.1:{port}"),
                "--user",
                "user1",
                "-o",
                file.to_str().unwrap(),
            ],
            &[("SESSCHECK_PASSWORD", "demo")],
            &rd,
            Duration::from_secs(60),
        );
        assert_eq!(out.code, 0, "{}", out.explain());
        std::fs::read_to_string(&file).unwrap()
    };
    let apart = init(false);
    assert!(
        apart.contains("but its login page came from 127.0.0.1:")
            && apart.contains("so the password may be right")
            && apart.contains("but its login page and POST reached different workers")
            && !apart.contains("# A good login answered"),
        "{apart}"
    );
    let together = init(true);
    assert!(!together.contains("login page came from"), "{together}");
    assert!(together.contains("success = "), "{together}");
}
