//! The target supervisor: spawns the target, restarts it, stops it. Knows nothing about HTTP.
//!
//! The target runs under a guard (`guard.rs`, sesscheck's own binary) in a process group of
//! its own, so stopping it also stops what it forked (Gunicorn's workers, a `sh -c` wrapper's
//! child, a daemon that left the group), and nothing of it outlives sesscheck, even when
//! sesscheck is killed with SIGKILL. Its stdout and stderr are read line by line: the last
//! lines explain a target that fails to start, and lines matching the SessionInterrupted
//! pattern are server-side evidence for the report.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use regex::Regex;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// How to start the target: a program, its arguments, where, with which environment.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    /// What to call it in messages ("the built-in target", "`gunicorn -w 4 app:app`").
    pub label: String,
    pub stop_timeout: Duration,
    /// A folder of this run's (the built-in target's store) that the guard removes if
    /// sesscheck dies without doing it.
    pub scratch: Option<PathBuf>,
}

/// Lines the target wrote, as evidence. Times are microseconds since the run started.
#[derive(Default)]
pub struct ServerLog {
    /// Lines matching the SessionInterrupted pattern (at most `MAX_KEPT`), with their time.
    pub matches: Vec<(u64, String)>,
    pub match_count: u64,
    /// The last lines of output, to explain a target that died.
    pub tail: VecDeque<String>,
}

const MAX_KEPT: usize = 1000;
const TAIL_LINES: usize = 20;
/// A longer output line is cut into pieces of this size: memory stays bounded.
const MAX_LINE: u64 = 64 * 1024;

/// The next line of output (at most `MAX_LINE` bytes, without its line ending), decoded
/// leniently: a Latin-1 byte must not stop the reading (an unread pipe blocks the target).
/// None at the end of the stream.
async fn next_line<R: AsyncBufRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    match reader.take(MAX_LINE).read_until(b'\n', buf).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(
            String::from_utf8_lossy(buf)
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
    }
}

pub type SharedLog = Arc<Mutex<ServerLog>>;

fn record_line(log: &SharedLog, pattern: &Regex, clock: Instant, line: String) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    if pattern.is_match(&line) {
        log.match_count += 1;
        if log.matches.len() < MAX_KEPT {
            log.matches
                .push((clock.elapsed().as_micros() as u64, line.clone()));
        }
    }
    if log.tail.len() == TAIL_LINES {
        log.tail.pop_front();
    }
    log.tail.push_back(line);
}

pub struct Supervisor {
    spec: SpawnSpec,
    /// The guard, leader of the target's process group.
    child: Option<Child>,
    /// The guard's standard input: nothing is written; its closing (sesscheck gone, or this
    /// supervisor dropped) tells the guard to stop the target.
    lifeline: Option<tokio::process::ChildStdin>,
    pub log: SharedLog,
    pattern: Regex,
    clock: Instant,
    /// Pass our own output through (`--verbose`) instead of only capturing it.
    pub echo: bool,
}

impl Supervisor {
    pub fn new(spec: SpawnSpec, pattern: Regex, clock: Instant, log: SharedLog) -> Supervisor {
        Supervisor {
            spec,
            child: None,
            lifeline: None,
            log,
            pattern,
            clock,
            echo: false,
        }
    }

    /// Start the target under its guard, in a new process group.
    pub fn start(&mut self) -> Result<()> {
        let exe = std::env::current_exe()
            .context("finding the sesscheck executable to guard the target")?;
        let mut cmd = Command::new(exe);
        cmd.arg(crate::process::guard::SUBCOMMAND)
            .arg("--stop-timeout-ms")
            .arg(self.spec.stop_timeout.as_millis().to_string());
        if let Some(dir) = &self.spec.scratch {
            cmd.arg("--remove").arg(dir);
        }
        if let Some(soft) = crate::util::open_files::original_if_raised() {
            cmd.arg("--open-files").arg(soft.to_string());
        }
        cmd.arg("--")
            .arg(&self.spec.program)
            .args(&self.spec.args)
            .envs(&self.spec.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // No kill_on_drop: a SIGKILLed guard could not stop the target. Dropping the
        // lifeline makes it do so.
        if let Some(cwd) = &self.spec.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.spec.label))?;
        self.lifeline = child.stdin.take();
        if let Some(out) = child.stdout.take() {
            self.follow(out);
        }
        if let Some(err) = child.stderr.take() {
            self.follow(err);
        }
        self.child = Some(child);
        Ok(())
    }

    fn follow(&self, stream: impl AsyncRead + Unpin + Send + 'static) {
        let (log, pattern, clock, echo) = (
            self.log.clone(),
            self.pattern.clone(),
            self.clock,
            self.echo,
        );
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            while let Some(line) = next_line(&mut reader, &mut buf).await {
                if echo {
                    eprintln!("[target] {line}");
                }
                record_line(&log, &pattern, clock, line);
            }
        });
    }

    /// If the target already exited, say how (a bad command line, a port in use...).
    pub fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited ({status})", self.spec.label)),
            _ => None,
        }
    }

    /// The target's last output lines, for error messages.
    pub fn tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.tail.iter().map(|l| format!("  | {l}\n")).collect()
    }

    /// SIGTERM to the guard, which stops the whole group (SIGTERM, up to `stop_timeout`, then
    /// SIGKILL) and exits when nothing of the target is left. Should the guard itself not
    /// exit in time, its group is killed.
    pub async fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let lifeline = self.lifeline.take();
        let Some(pid) = child.id() else { return Ok(()) };
        let guard = Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(guard, Signal::SIGTERM);
        let grace = self.spec.stop_timeout + GUARD_GRACE;
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            let _ = killpg(guard, Signal::SIGKILL);
            let _ = child.wait().await;
        }
        drop(lifeline);
        Ok(())
    }
}

/// How long past `stop_timeout` the guard may take to report that the target is gone.
const GUARD_GRACE: Duration = Duration::from_secs(3);

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Last line of defence against orphans (a panic, an early return): closing the
        // lifeline makes the guard stop the target and remove the scratch folder.
        self.lifeline.take();
    }
}

/// "HUP", "SIGHUP", "hup", "1" → SIGHUP.
pub fn parse_signal(name: &str) -> std::result::Result<Signal, String> {
    let upper = name.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| format!("{name:?} is not a signal number"));
    }
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<Signal>()
        .map_err(|_| format!("unknown signal {name:?}; use e.g. \"HUP\", \"TERM\", \"USR2\""))
}

/// Run a restart command (`sh -c`), bounded by `timeout`; non-zero exit is an error.
pub async fn run_command(command: &str, timeout: Duration, cwd: Option<&PathBuf>) -> Result<()> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    if let Some(soft) = crate::util::open_files::original_if_raised() {
        // What the command starts (the app, again) gets the limit on open files it would have
        // without sesscheck, as a target sesscheck spawns does (see the guard).
        // SAFETY: between fork and exec the closure only makes two syscalls (getrlimit,
        // setrlimit); it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || {
                crate::util::open_files::restore(soft).map_err(std::io::Error::from)
            });
        }
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting restart command `{command}`"))?;
    let pid = child.id();
    // Kills the command's whole group if this wait is abandoned (timeout, or the caller's
    // future dropped on Ctrl-C); kill_on_drop alone would only reach `sh`.
    let mut guard = KillGroupOnDrop(pid);
    let waited = tokio::time::timeout(timeout, child.wait_with_output()).await;
    if matches!(waited, Ok(Ok(_))) {
        // It exited by itself: whatever it started in the background is left alone.
        guard.0 = None;
    }
    match waited {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = stderr.lines().rev().take(5).collect();
            let detail = last
                .into_iter()
                .rev()
                .map(|l| format!("\n  | {l}"))
                .collect::<String>();
            bail!(
                "restart command `{command}` failed ({}){detail}",
                out.status
            )
        }
        Ok(Err(e)) => Err(e).with_context(|| format!("waiting for restart command `{command}`")),
        Err(_) => {
            if let Some(pid) = pid {
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            bail!(
                "restart command `{command}` did not finish within {} and was killed",
                humantime::format_duration(timeout)
            )
        }
    }
}

struct KillGroupOnDrop(Option<u32>);

impl Drop for KillGroupOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// Send a signal to the PID in a pidfile (Gunicorn reloads its workers on HUP), once that
/// PID is known to be a live process that is safe to signal (see `check_signal_target`).
pub fn signal_pidfile(sig: Signal, pidfile: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(pidfile).with_context(|| format!("reading pidfile {pidfile}"))?;
    let pid: i32 = text.trim().parse().with_context(|| {
        format!(
            "pidfile {pidfile} does not hold a PID (it holds {:?})",
            text.trim()
        )
    })?;
    check_signal_target(pid).with_context(|| format!("pidfile {pidfile} holds PID {pid}"))?;
    nix::sys::signal::kill(Pid::from_raw(pid), sig)
        .with_context(|| format!("sending {sig} to PID {pid} (from {pidfile})"))?;
    Ok(())
}

/// A PID from a file may be anything. `kill` reads 0 as our own process group, -1 as every
/// process we may signal (as root: all of them) and other negatives as groups; 1 is init.
/// Refused: those, a PID no process has, sesscheck itself and its ancestors (the shell, the
/// CI runner), and any other `sesscheck run`.
pub fn check_signal_target(pid: i32) -> Result<()> {
    if pid <= 1 {
        bail!("refusing to signal PID {pid}: 0 and negative numbers name process groups or every process, 1 is init; a stale or broken pidfile?");
    }
    // EPERM means it exists; the real signal will then say it may not be signalled.
    if let Err(nix::errno::Errno::ESRCH) = nix::sys::signal::kill(Pid::from_raw(pid), None) {
        bail!("no process has PID {pid}: the pidfile is stale (the target is not running?)")
    }
    let mut ancestor = std::process::id() as i32;
    while ancestor > 1 {
        if ancestor == pid {
            bail!("refusing to signal PID {pid}: it is sesscheck itself or one of its parents");
        }
        match crate::process::guard::parent_and_group(ancestor) {
            Some((parent, _)) => ancestor = parent,
            None => break,
        }
    }
    let is_sesscheck_run = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        let own = std::env::current_exe().ok();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        exe.is_some() && exe == own && args.get(1) == Some(&b"run".as_slice())
    });
    if is_sesscheck_run {
        bail!("refusing to signal PID {pid}: it is a `sesscheck run`, not the target");
    }
    Ok(())
}

/// Open `path` for reading if it is a regular file, never blocking on a FIFO.
async fn open_regular(path: &std::path::Path) -> std::io::Result<tokio::fs::File> {
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .await?;
    if !file.metadata().await?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Check `[target] log` before the run: if it exists it must be a regular file.
pub fn check_log_file(path: &std::path::Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => bail!(
            "target.log: {} is not a regular file (a FIFO, a device or a folder); name the log file the target writes",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Follow a log file the target writes (`[target] log`), from its current end.
pub fn follow_file(
    path: PathBuf,
    pattern: Regex,
    clock: Instant,
    log: SharedLog,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        use tokio::io::AsyncSeekExt;
        // The file may appear only once the target starts. It is opened without blocking and
        // must be a regular file: opening a FIFO would wait for a writer forever, and reading
        // a device or a FIFO never ends.
        let file = loop {
            if let Ok(f) = open_regular(&path).await {
                break f;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.cancelled() => return,
            }
        };
        let mut file = file;
        let _ = file.seek(std::io::SeekFrom::End(0)).await;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        loop {
            match next_line(&mut reader, &mut buf).await {
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = stop.cancelled() => return,
                    }
                }
                Some(line) => record_line(&log, &pattern, clock, line.trim_end().to_string()),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
    }

    #[tokio::test]
    async fn restart_command_failures_are_explained() {
        let e = run_command("echo broken >&2; exit 3", Duration::from_secs(5), None)
            .await
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("failed") && msg.contains("broken"), "{msg}");
        let e = run_command("sleep 30", Duration::from_millis(200), None)
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("did not finish"), "{e:#}");
        run_command("true", Duration::from_secs(5), None)
            .await
            .unwrap();
    }
}
