//! One worker process: binds the shared port and serves the app until SIGTERM.
use super::app::App;
use super::routes;
use super::{listen, TargetArgs};
use anyhow::Context;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// After SIGTERM, in-flight requests get this long to finish (a hung
/// `--hang-after-restart` request would otherwise keep the worker alive).
const GRACEFUL_STOP: Duration = Duration::from_secs(2);

pub fn run(args: TargetArgs) -> anyhow::Result<()> {
    die_with_master(args.master_pid)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the worker's async runtime")?;
    runtime.block_on(serve(args))
}

/// Asks the kernel to send us SIGTERM when the master dies, so workers never
/// outlive it. If the master died before we got here, we were already
/// re-parented and the request would never fire: notice that and quit.
fn die_with_master(master_pid: Option<i32>) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("setting the parent-death signal")?;
    if let Some(master_pid) = master_pid {
        let parent = std::os::unix::process::parent_id() as i32;
        anyhow::ensure!(
            parent == master_pid,
            "the master (pid {master_pid}) is already gone"
        );
    }
    Ok(())
}

async fn serve(args: TargetArgs) -> anyhow::Result<()> {
    let address = listen::resolve(&args.host, args.port)?;
    let router = routes::router(Arc::new(App::new(args)?));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(stop_on_sigterm(stop_tx));

    // Bind last. With SO_REUSEPORT the kernel gives this socket its share of new connections
    // the moment it is bound, and they wait in this worker's own queue (no other worker can
    // take them) until it accepts: whatever is slow at start (reading the state dir, building
    // the router, first-touch page faults on a loaded machine) happens before, so a starting
    // worker never holds connections it cannot serve yet.
    let listener = tokio::net::TcpListener::from_std(listen::bind(address, true)?)
        .context("registering the listener")?;
    tell_master_we_are_listening()?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
        .context("serving HTTP")
}

/// The master waits for one line on our stdout before it counts us as up.
fn tell_master_we_are_listening() -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening")
        .and_then(|()| stdout.flush())
        .context("telling the master")
}

/// SIGTERM: stop accepting, let in-flight requests finish, but not forever.
async fn stop_on_sigterm(stop: tokio::sync::oneshot::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut sigterm) = signal(SignalKind::terminate()) else {
        return; // cannot happen on Linux; the master falls back to SIGKILL
    };
    sigterm.recv().await;
    let _ = stop.send(());
    tokio::time::sleep(GRACEFUL_STOP).await;
    std::process::exit(0);
}
