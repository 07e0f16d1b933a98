//! The master (parent) process: prepares the state dir, starts the workers by
//! re-executing this binary, restarts workers that die, reloads on SIGHUP and
//! stops everything on SIGTERM/SIGINT. It serves no HTTP itself.
use super::{listen, state_dir, StoreMode, TargetArgs};
use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::signal::unix::{signal, Signal as SignalStream, SignalKind};
use tokio::sync::mpsc;

/// How long a new worker may take to bind the port.
const WORKER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping workers get after SIGTERM before SIGKILL.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// A worker that dies sooner than this after starting is restarted only after
/// a pause of the same length, so a crash loop does not spin the CPU.
const CRASH_LOOP_BRAKE: Duration = Duration::from_secs(1);

pub fn run(args: TargetArgs) -> anyhow::Result<()> {
    // One thread on purpose: the parent-death signal of a worker fires when
    // the *thread* that spawned it exits, so all spawning must happen on the
    // main thread, which lives as long as the master.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the master's async runtime")?;
    runtime.block_on(async {
        let signals = Signals::register()?;
        let mut master = Master::new(args)?;
        let outcome = master.start_and_supervise(signals).await;
        master.stop_all_workers().await;
        master.remove_pidfile();
        outcome
    })
}

struct Signals {
    terminate: SignalStream,
    interrupt: SignalStream,
    hangup: SignalStream,
}

impl Signals {
    /// Registered before any worker exists, so a signal during start-up is
    /// queued rather than killing the master with workers left behind.
    fn register() -> anyhow::Result<Signals> {
        let listen_for = |kind| signal(kind).context("installing a signal handler");
        Ok(Signals {
            terminate: listen_for(SignalKind::terminate())?,
            interrupt: listen_for(SignalKind::interrupt())?,
            hangup: listen_for(SignalKind::hangup())?,
        })
    }
}

/// A running worker process.
#[derive(Clone, Copy)]
struct Worker {
    pid: u32,
    started: Instant,
}

/// Reported by the task that waits for a worker process to end.
struct WorkerExit {
    id: u64,
    pid: u32,
    status: std::io::Result<ExitStatus>,
}

struct Master {
    args: TargetArgs,
    address: SocketAddr,
    state_dir: PathBuf,
    boot: u64,
    /// Workers that should be running; one that exits is replaced.
    workers: HashMap<u64, Worker>,
    /// Workers we asked to stop (reload or shutdown); their exit is expected.
    retiring: HashMap<u64, Worker>,
    next_worker_id: u64,
    exits_tx: mpsc::UnboundedSender<WorkerExit>,
    exits_rx: mpsc::UnboundedReceiver<WorkerExit>,
    pidfile_written: bool,
}

enum Event {
    Stop,
    Reload,
    WorkerExited(WorkerExit),
}

impl Master {
    fn new(args: TargetArgs) -> anyhow::Result<Master> {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        Ok(Master {
            address: listen::resolve(&args.host, args.port)?,
            state_dir: args.resolved_state_dir(),
            boot: 0,
            workers: HashMap::new(),
            retiring: HashMap::new(),
            next_worker_id: 0,
            exits_tx,
            exits_rx,
            pidfile_written: false,
            args,
        })
    }

    async fn start_and_supervise(&mut self, mut signals: Signals) -> anyhow::Result<()> {
        self.prepare_state()?;
        listen::check_port_is_free(self.address)?;
        for _ in 0..self.args.workers {
            let (id, worker) = self.spawn_worker().await?;
            self.workers.insert(id, worker);
        }
        self.write_pidfile()?;
        eprintln!(
            "sesscheck target: {} workers on http://{} (store={})",
            self.args.workers,
            self.address,
            self.args.store.name()
        );

        loop {
            match self.next_event(&mut signals).await {
                Event::Stop => return Ok(()),
                Event::Reload => {
                    if let Err(e) = self.reload().await {
                        eprintln!(
                            "sesscheck target: reload failed, keeping the old workers: {e:#}"
                        );
                    }
                }
                Event::WorkerExited(exit) => self.on_worker_exit(exit).await?,
            }
        }
    }

    async fn next_event(&mut self, signals: &mut Signals) -> Event {
        tokio::select! {
            _ = signals.terminate.recv() => Event::Stop,
            _ = signals.interrupt.recv() => Event::Stop,
            _ = signals.hangup.recv() => Event::Reload,
            Some(exit) = self.exits_rx.recv() => Event::WorkerExited(exit),
        }
    }

    /// State dir, secret, a new boot generation, and for `wipe-on-restart`
    /// the deliberate loss of every session.
    fn prepare_state(&mut self) -> anyhow::Result<()> {
        state_dir::prepare(&self.state_dir)?;
        state_dir::ensure_secret(&self.state_dir)?;
        self.boot = state_dir::next_boot_generation(&self.state_dir)?;
        if self.args.store == StoreMode::WipeOnRestart {
            state_dir::wipe_sessions(&self.state_dir)?;
        }
        Ok(())
    }

    /// Starts one worker and waits until it is listening.
    async fn spawn_worker(&mut self) -> anyhow::Result<(u64, Worker)> {
        let exe = std::env::current_exe().context("finding our own executable")?;
        let mut child = tokio::process::Command::new(exe)
            // The worker parses the very same options the master got...
            .args(std::env::args_os().skip(1))
            // ...plus what only the master knows.
            .arg("--worker-child")
            .args(["--boot-generation", &self.boot.to_string()])
            .args(["--master-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Own process group: Ctrl-C in a terminal reaches only the master,
            // which then stops the workers in order.
            .process_group(0)
            .spawn()
            .context("starting a worker process")?;
        let pid = child.id().context("a worker exited immediately")?;
        let ready = child
            .stdout
            .take()
            .context("worker stdout was not captured")?;

        let id = self.next_worker_id;
        self.next_worker_id += 1;
        let exits = self.exits_tx.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = exits.send(WorkerExit { id, pid, status });
        });

        let mut lines = BufReader::new(ready).lines();
        match tokio::time::timeout(WORKER_START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) if line == "listening" => Ok((
                id,
                Worker {
                    pid,
                    started: Instant::now(),
                },
            )),
            Ok(_) => anyhow::bail!("worker pid {pid} exited before it was listening"),
            Err(_) => {
                send_signal(pid, Signal::SIGKILL);
                anyhow::bail!("worker pid {pid} was not listening after {WORKER_START_TIMEOUT:?}")
            }
        }
    }

    async fn on_worker_exit(&mut self, exit: WorkerExit) -> anyhow::Result<()> {
        if self.retiring.remove(&exit.id).is_some() {
            return Ok(()); // we asked it to stop
        }
        let Some(worker) = self.workers.remove(&exit.id) else {
            return Ok(()); // died during start-up; already reported there
        };
        let status = match exit.status {
            Ok(status) => status.to_string(),
            Err(e) => format!("unknown status: {e}"),
        };
        eprintln!(
            "sesscheck target: worker pid {} exited ({status}); starting a new one",
            exit.pid
        );
        if worker.started.elapsed() < CRASH_LOOP_BRAKE {
            tokio::time::sleep(CRASH_LOOP_BRAKE).await;
        }
        let (id, worker) = self.spawn_worker().await?;
        self.workers.insert(id, worker);
        Ok(())
    }

    /// SIGHUP, Gunicorn-style: new boot generation, start a full set of new
    /// workers, and only then stop the old ones.
    async fn reload(&mut self) -> anyhow::Result<()> {
        self.boot = state_dir::next_boot_generation(&self.state_dir)?;
        let mut started = Vec::new();
        for _ in 0..self.args.workers {
            match self.spawn_worker().await {
                Ok(new) => started.push(new),
                Err(e) => {
                    for (id, worker) in started {
                        self.retire(id, worker);
                    }
                    return Err(e);
                }
            }
        }
        let old: Vec<(u64, Worker)> = self.workers.drain().collect();
        self.workers.extend(started);
        for (id, worker) in old {
            self.retire(id, worker);
        }
        eprintln!(
            "sesscheck target: reloaded, {} new workers (boot {})",
            self.args.workers, self.boot
        );
        Ok(())
    }

    /// Asks a worker to stop; its exit will not be treated as a crash.
    fn retire(&mut self, id: u64, worker: Worker) {
        send_signal(worker.pid, Signal::SIGTERM);
        self.retiring.insert(id, worker);
    }

    /// SIGTERM to every worker, wait up to [`WORKER_STOP_TIMEOUT`], then SIGKILL.
    async fn stop_all_workers(&mut self) {
        let workers: Vec<(u64, Worker)> = self.workers.drain().collect();
        for (id, worker) in workers {
            self.retire(id, worker);
        }
        self.wait_for_retiring(WORKER_STOP_TIMEOUT).await;
        for worker in self.retiring.values() {
            eprintln!(
                "sesscheck target: worker pid {} did not stop; killing it",
                worker.pid
            );
            send_signal(worker.pid, Signal::SIGKILL);
        }
        self.wait_for_retiring(Duration::from_secs(1)).await;
    }

    async fn wait_for_retiring(&mut self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.retiring.is_empty() {
            match tokio::time::timeout_at(deadline, self.exits_rx.recv()).await {
                Ok(Some(exit)) => {
                    self.retiring.remove(&exit.id);
                }
                _ => return,
            }
        }
    }

    fn write_pidfile(&mut self) -> anyhow::Result<()> {
        if let Some(path) = &self.args.pidfile {
            std::fs::write(path, format!("{}\n", std::process::id()))
                .with_context(|| format!("writing pidfile {}", path.display()))?;
            self.pidfile_written = true;
        }
        Ok(())
    }

    fn remove_pidfile(&self) {
        if let (true, Some(path)) = (self.pidfile_written, &self.args.pidfile) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Sends a signal to a worker; one that is already gone is fine.
fn send_signal(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}
