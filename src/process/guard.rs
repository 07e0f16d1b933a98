//! The guard: a small process between sesscheck and a target it spawns, so that no target
//! outlives sesscheck, however sesscheck ends (a panic, a second Ctrl-C, `kill -9`).
//!
//! sesscheck starts `sesscheck __guard ... -- PROGRAM ARGS` as the leader of a new process
//! group; the guard starts the target in that group and becomes a *child subreaper*, so that
//! whatever the target forks and abandons (a daemon that double-forks, even one that calls
//! `setsid` to leave the group) is re-parented to the guard instead of to init. The guard's
//! standard input is a pipe from sesscheck that carries nothing: the kernel closes it when
//! sesscheck dies, for any reason, and then the guard stops everything and removes the run's
//! scratch folder. The guard itself lives exactly as long as something it guards does: it
//! exits, with the target's exit status, once the target and all it left behind are gone, so
//! sesscheck still sees "the target exited" when a command fails to start.
//!
//! Stopping (SIGTERM from sesscheck, or the pipe closing): SIGTERM to the target's group and to
//! every process re-parented to the guard, up to `--stop-timeout` for them to go, then
//! SIGKILL. Knows nothing of HTTP; runs no async runtime.

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{self, kill, killpg, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, getpid, Pid};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The hidden subcommand's name.
pub const SUBCOMMAND: &str = "__guard";

/// How often the guard looks at its children, the lifeline and its signals.
const TICK: Duration = Duration::from_millis(50);

/// What the guard is told: what to run, how long a stop may take, and what to remove if
/// sesscheck dies.
#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    /// Milliseconds the target gets to exit after SIGTERM before SIGKILL.
    #[arg(long, default_value_t = 10_000)]
    pub stop_timeout_ms: u64,
    /// A folder to remove when sesscheck is gone (the run's scratch folder).
    #[arg(long)]
    pub remove: Option<PathBuf>,
    /// The soft limit on open files to start the target with: the one sesscheck had before it
    /// raised its own, so that the app runs as it would without sesscheck.
    #[arg(long)]
    pub open_files: Option<u64>,
    /// The target's program and arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

static TERM: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: nix::libc::c_int) {
    TERM.store(true, Ordering::SeqCst);
}

/// Run the guard; returns the exit code to leave with.
pub fn run(args: GuardArgs) -> Result<u8> {
    nix::sys::prctl::set_child_subreaper(true).context("becoming a child subreaper")?;
    let action = SigAction::new(
        SigHandler::Handler(on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic.
        unsafe { signal::sigaction(sig, &action) }.context("installing signal handlers")?;
    }
    let (program, rest) = args
        .command
        .split_first()
        .context("no target command given")?;
    if let Some(soft) = args.open_files {
        crate::util::open_files::restore(soft).context("restoring the limit on open files")?;
    }
    let leader = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let leader = Pid::from_raw(leader.id() as i32);
    let stop_timeout = Duration::from_millis(args.stop_timeout_ms);
    let mut leader_status: Option<u8> = None;
    loop {
        if lifeline_cut() {
            stop_all(stop_timeout);
            if let Some(dir) = &args.remove {
                let _ = std::fs::remove_dir_all(dir);
            }
            return Ok(leader_status.unwrap_or(1));
        }
        if TERM.load(Ordering::SeqCst) {
            stop_all(stop_timeout);
            return Ok(leader_status.unwrap_or(0));
        }
        match reap(leader, &mut leader_status) {
            // Nothing left to guard: leave as the target left.
            Reaped::NoChildren => return Ok(leader_status.unwrap_or(0)),
            Reaped::Some => {}
        }
    }
}

enum Reaped {
    Some,
    NoChildren,
}

/// Reap every child that exited (the target, and orphans re-parented to us), noting the
/// target's status; waits up to one `TICK` when none did.
fn reap(leader: Pid, leader_status: &mut Option<u8>) -> Reaped {
    let mut reaped_any = false;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => break,
            Ok(WaitStatus::Exited(pid, code)) => {
                reaped_any = true;
                if pid == leader {
                    *leader_status = Some(code as u8);
                }
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                reaped_any = true;
                if pid == leader {
                    *leader_status = Some(128u8.wrapping_add(sig as u8));
                }
            }
            Ok(_) => reaped_any = true,
            Err(Errno::EINTR) => continue,
            Err(_) => return Reaped::NoChildren, // ECHILD: nobody left
        }
    }
    if !reaped_any {
        std::thread::sleep(TICK);
    }
    Reaped::Some
}

/// Has sesscheck gone? Its end of our standard input closes when it dies, however it dies.
fn lifeline_cut() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => {
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                return true;
            }
            // Readable: sesscheck never writes, so this is the end of the stream.
            let mut byte = [0u8; 1];
            matches!(nix::unistd::read(stdin.as_fd(), &mut byte), Ok(0) | Err(_))
        }
        Err(Errno::EINTR) => false,
        Err(_) => true,
    }
}

/// SIGTERM to everything we guard, up to `timeout` for it to exit, then SIGKILL.
fn stop_all(timeout: Duration) {
    signal_all(Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    let mut ignored = None;
    while Instant::now() < deadline {
        if let Reaped::NoChildren = reap(Pid::from_raw(0), &mut ignored) {
            return;
        }
        // Orphans re-parented since the first round get theirs too.
        signal_all(Signal::SIGTERM);
    }
    // Killed processes' children are re-parented to us in turn: a few rounds reach them all.
    for _ in 0..20 {
        signal_all(Signal::SIGKILL);
        if let Reaped::NoChildren = reap(Pid::from_raw(0), &mut ignored) {
            return;
        }
    }
}

/// Send `sig` to every process of our group but us (the target and what it forked) and to
/// every child of ours outside it (daemons that left the group with `setsid`, re-parented to
/// us), with their own groups. Never to ourselves: SIGKILL cannot be caught.
fn signal_all(sig: Signal) {
    let (me, group) = (getpid().as_raw(), getpgrp().as_raw());
    for (pid, parent, pgrp) in processes() {
        if pid == me {
            continue;
        }
        if pgrp == group {
            let _ = kill(Pid::from_raw(pid), sig);
        } else if parent == me {
            let _ = kill(Pid::from_raw(pid), sig);
            if pgrp > 1 && pgrp != group {
                let _ = killpg(Pid::from_raw(pgrp), sig);
            }
        }
    }
}

/// Every process as (pid, parent, process group), from /proc.
fn processes() -> Vec<(i32, i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (parent, group) = parent_and_group(pid)?;
            Some((pid, parent, group))
        })
        .collect()
}

/// A process's parent and process group, from /proc/PID/stat ("PID (comm) STATE PPID PGRP
/// ..."; comm may hold spaces and parentheses, so the fields are counted after its last ')').
pub fn parent_and_group(pid: i32) -> Option<(i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace().skip(1);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}
