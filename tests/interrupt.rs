//! Ctrl-C / SIGTERM during a run that spawned the built-in target: exit 130 within seconds,
//! a report marked interrupted, and no process of the target left behind.
mod harness;

use harness::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

fn interrupt_with(signal: Signal) {
    let port = free_port();
    let dir = TempDir::new(&format!("interrupt-{signal}"));
    let _reaper = Reaper(vec![format!("--port {port} ")]);
    let s = dir.scenario(&format!(
        r#"
name = "interrupt"
[target]
url = "http://127.0.0.1:{port}"
spawn = {{ builtin = {{ workers = 2, store = "shared" }} }}
ready = {{ path = "/health", timeout = "15s" }}
stop_timeout = "3s"
[login]
fields = {{ username = "user{{user}}", password = "demo" }}
success = {{ redirect_to = "/dashboard" }}
csrf = {{ page = "/login", field = "csrf_token" }}
[load]
users = 4
duration = "60s"
requests = ["/dashboard", "/"]
think_time = "20ms"
"#
    ));
    let child = spawn_run(&dir, &s);
    let pid = child.id();
    // Wait until the target is up (its processes carry the port), then ~2 s of load.
    let up = Instant::now();
    while processes_with_port(port).is_empty() && up.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !processes_with_port(port).is_empty(),
        "target never started"
    );
    std::thread::sleep(Duration::from_secs(2));
    let sent = Instant::now();
    kill(Pid::from_raw(pid as i32), signal).unwrap();
    let o = wait(child, Duration::from_secs(30));
    let took = sent.elapsed();
    assert!(!o.timed_out, "{o:?}");
    assert_eq!(o.code, Some(130), "{o:?}");
    assert!(took < Duration::from_secs(8), "exit took {took:?}");
    let rep = report(&dir);
    assert_eq!(rep["interrupted"], true, "{rep}");
    assert_eq!(
        rep["verdict"], "fail",
        "an interrupted run is never a pass: {rep}"
    );
    assert!(rep["requests"]["total"].as_u64().unwrap_or(0) > 0, "{rep}");
    // The other formats fail it too: JUnit with a failing case (a CI page counting failures
    // showed it green: failures="0"), Markdown saying why.
    let written = |ext: &str| {
        let path = std::fs::read_dir(dir.reports())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(ext))
            .unwrap_or_else(|| panic!("no {ext} report"));
        std::fs::read_to_string(path).unwrap()
    };
    let junit = written(".junit.xml");
    assert!(
        junit.contains("type=\"interrupted\"") && !junit.contains("errors=\"0\""),
        "{junit}"
    );
    assert!(
        written(".md").contains("**Verdict: FAIL** (interrupted before the load ended;"),
        "markdown"
    );
    // No orphan: nothing with `--port <port>` in its command line survives (give the
    // kernel a moment to reap).
    let gone = Instant::now();
    while !processes_with_port(port).is_empty() && gone.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_with_port(port).is_empty(),
        "orphans: {:?}",
        processes_with_port(port)
    );
}

#[test]
fn sigint_exits_130_with_report_and_no_orphans() {
    interrupt_with(Signal::SIGINT);
}

#[test]
fn sigterm_exits_130_with_report_and_no_orphans() {
    interrupt_with(Signal::SIGTERM);
}

/// Ctrl-C while a restart command hangs must not wait for the command's timeout, and must
/// not leave the command behind.
#[test]
fn sigint_during_a_hanging_restart_command_exits_promptly() {
    let port = free_port();
    let dir = TempDir::new("interrupt-restart");
    let marker = format!("sesscheck_hang_{port}");
    let _reaper = Reaper(vec![format!("--port {port} "), marker.clone()]);
    let s = dir.scenario(&format!(
        r#"
name = "interrupt-restart"
[target]
url = "http://127.0.0.1:{port}"
spawn = {{ builtin = {{ workers = 2, store = "shared" }} }}
ready = {{ path = "/health", timeout = "15s" }}
stop_timeout = "3s"
[load]
users = 2
duration = "60s"
requests = ["/health"]
think_time = "20ms"
[restart]
at = "500ms"
method = {{ command = "sleep 45; echo {marker}", timeout = "50s" }}
"#
    ));
    let child = spawn_run(&dir, &s);
    let pid = child.id();
    // Wait until the restart command runs, then interrupt.
    let up = Instant::now();
    while command_lines_containing(&marker).is_empty() && up.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !command_lines_containing(&marker).is_empty(),
        "restart command never ran"
    );
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).unwrap();
    let o = wait(child, Duration::from_secs(40));
    assert!(!o.timed_out, "{o:?}");
    assert_eq!(o.code, Some(130), "{o:?}");
    assert!(
        o.elapsed < Duration::from_secs(8),
        "exit took {:?}",
        o.elapsed
    );
    assert_eq!(report(&dir)["interrupted"], true);
    let gone = Instant::now();
    while (!processes_with_port(port).is_empty() || !command_lines_containing(&marker).is_empty())
        && gone.elapsed() < Duration::from_secs(3)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_with_port(port).is_empty(),
        "{:?}",
        processes_with_port(port)
    );
    assert!(
        command_lines_containing(&marker).is_empty(),
        "restart command left behind: {:?}",
        command_lines_containing(&marker)
    );
}

/// Ctrl-C while waiting for a target that never becomes ready: exit 130, report written.
#[test]
fn sigint_while_waiting_for_the_target_exits_130() {
    let port = serve(|_, _, s| {
        let _ = s;
        std::thread::sleep(Duration::from_secs(20));
    });
    let dir = TempDir::new("interrupt-ready");
    let s = dir.scenario(&format!(
        "name = \"w\"\n[target]\nurl = \"http://127.0.0.1:{port}\"\nready = {{ path = \"/health\", timeout = \"30s\" }}\n[load]\nduration = \"5s\"\n"
    ));
    let child = spawn_run(&dir, &s);
    std::thread::sleep(Duration::from_millis(1500));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert!(!o.timed_out, "{o:?}");
    assert_eq!(o.code, Some(130), "{o:?}");
    assert!(
        o.elapsed < Duration::from_secs(5),
        "exit took {:?}",
        o.elapsed
    );
    assert_eq!(report(&dir)["interrupted"], true);
}
