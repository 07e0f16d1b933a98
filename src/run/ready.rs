//! Readiness: the target answers, its port is free before a spawn, the probe answers a PID,
//! and every worker the scenario waits for has answered.

use super::outcome::unreachable;
use super::spawn::SharedSupervisor;
use crate::http::client::OneOff;
use crate::load::engine;
use crate::scenario::{Scenario, Spawn};
use anyhow::{anyhow, Context, Result};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;

/// Each readiness poll gets this long; the scenario's `ready.timeout` bounds them all.
const READY_POLL_TIMEOUT: Duration = Duration::from_secs(2);

/// Poll the ready path until it answers below 500. Fails fast if the spawned target died.
/// Returns the deadline of the whole wait (`ready.timeout`), for `wait_workers`.
pub(super) async fn wait_ready(
    sc: &Scenario,
    base: &Url,
    sup: &SharedSupervisor,
    stop: &CancellationToken,
) -> Result<Instant> {
    let url = base
        .join(&sc.target.ready.path)
        .context("target.ready.path")?;
    let client = OneOff::for_target(READY_POLL_TIMEOUT, &sc.lowered.http)?;
    let deadline = Instant::now() + sc.target.ready.timeout.0;
    let mut last;
    loop {
        if stop.is_cancelled() {
            return Err(anyhow!("stopped while waiting for the target"));
        }
        if let Some(sup) = sup.lock().await.as_mut() {
            if let Some(how) = sup.exited() {
                return Err(unreachable(format!(
                    "{how} before it was ready at {url}; its last output:\n{}",
                    sup.tail()
                )));
            }
        }
        match client.get(&url, 0).await {
            Ok(r) if r.status < 500 => return Ok(deadline),
            Ok(r) => last = format!("HTTP {}", r.status),
            Err(e) => {
                last = e.to_string();
                // Waiting does not fix a certificate: say so now, not after ready.timeout.
                if base.scheme() == "https" && last.contains("certificate") {
                    return Err(unreachable(format!(
                        "the TLS certificate of {url} was refused ({last}); for a self-signed test certificate set `insecure_tls = true` under [target]"
                    )));
                }
            }
        }
        if Instant::now() >= deadline {
            let tail = match sup.lock().await.as_ref() {
                Some(s) => format!("; its last output:\n{}", s.tail()),
                None => String::new(),
            };
            return Err(unreachable(format!(
                "target not ready at {url} after {} ({last}){tail}",
                humantime::format_duration(sc.target.ready.timeout.0)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why `wait_workers` waits: before the load a missing worker ends the run (exit 3); after a
/// restart it is only reported (no "all workers" time).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WorkersWait {
    Required,
    AfterRestart,
}

/// How often the wait for workers says what it has seen so far.
pub(super) const WORKERS_PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// Poll the probe (or, with only `[probe] worker_header`, the ready path) over new
/// connections until `ready_workers()` distinct workers answered, so the load does not start
/// while only the first worker is up. Says every few seconds what it has seen; at the deadline
/// it is exit 3 before the load, and an `Err` (reported) after a restart.
pub(super) async fn wait_workers(
    sc: &Scenario,
    base: &Url,
    deadline: Instant,
    why: WorkersWait,
) -> Result<()> {
    let want = sc.ready_workers();
    if want <= 1 {
        return Ok(());
    }
    let client = OneOff::for_target(READY_POLL_TIMEOUT, &sc.lowered.http)?;
    let path = if sc.probe.path.is_empty() {
        &sc.target.ready.path
    } else {
        &sc.probe.path
    };
    let url = base.join(path).context("probe.path")?;
    let spec = crate::observe::worker::WorkerSpec::of(&sc.probe);
    let reader = engine::ProbeReader::new(spec.clone(), "", None);
    let started = Instant::now();
    let mut next_word = started + WORKERS_PROGRESS_EVERY;
    let mut workers = std::collections::BTreeSet::new();
    let seen = |workers: &std::collections::BTreeSet<crate::observe::worker::WorkerId>| {
        format!(
            "waiting for {want} workers (ready.min_workers), seen {} ({}{}) after {:.0} s",
            workers.len(),
            // Plain PIDs are said to be PIDs; other identities speak for themselves.
            if workers
                .iter()
                .all(|w| w.to_string().bytes().all(|b| b.is_ascii_digit()))
                && !workers.is_empty()
            {
                "pid "
            } else {
                ""
            },
            workers
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            started.elapsed().as_secs_f64()
        )
    };
    while workers.len() < want {
        if Instant::now() >= deadline {
            let message = format!(
                "{}; ready.timeout ({}) is over: start more workers or lower [target] ready.min_workers",
                seen(&workers),
                humantime::format_duration(sc.target.ready.timeout.0)
            );
            return match why {
                WorkersWait::Required => Err(unreachable(message)),
                WorkersWait::AfterRestart => {
                    eprintln!("sesscheck: after the restart: {message}");
                    Err(anyhow!(message))
                }
            };
        }
        if let Ok(r) = client.get(&url, sc.load.max_body_bytes).await {
            let served_by = spec
                .header
                .as_ref()
                .and_then(|h| r.headers.get(h.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(crate::observe::worker::WorkerId::intern);
            let worker = if sc.probe.path.is_empty() {
                served_by
            } else {
                reader.read(&r.body, served_by).ok().and_then(|a| a.worker)
            };
            workers.extend(worker);
        }
        if Instant::now() >= next_word && workers.len() < want {
            eprintln!("sesscheck: {}", seen(&workers));
            next_word += WORKERS_PROGRESS_EVERY;
        }
        if workers.len() < want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Ask the probe once, anonymously, before the load: a path that is not the JSON debug endpoint
/// (a 404, a redirect, an HTML page) would otherwise be half the load and count as nothing.
pub(super) async fn check_probe(sc: &Scenario, base: &Url) -> Result<()> {
    if !sc.probe.is_configured() {
        return Ok(());
    }
    let path = &sc.probe.path;
    let url = base.join(path).context("probe.path")?;
    let client = OneOff::for_target(READY_POLL_TIMEOUT, &sc.lowered.http)?;
    let fix = "set [probe] path to the app's JSON debug endpoint (see README \"Point it at your app\"), or remove [probe] to run without one";
    let answer = client
        .get(&url, sc.load.max_body_bytes)
        .await
        .map_err(|e| unreachable(format!("the probe {url} did not answer ({e})")))?;
    let got = match (answer.status, &answer.location) {
        (200..=299, _) => {
            let spec = crate::observe::worker::WorkerSpec::of(&sc.probe);
            let served_by = spec
                .header
                .as_ref()
                .and_then(|h| answer.headers.get(h.as_str()))
                .and_then(|v| v.to_str().ok())
                .map(crate::observe::worker::WorkerId::intern);
            let reader = engine::ProbeReader::new(spec, &sc.probe.authenticated, None);
            match reader.read(&answer.body, served_by) {
                Ok(_) => return Ok(()),
                Err(why) => why,
            }
        }
        // An API that answers anonymous visitors 401/403 is read as anonymous by the load too.
        (401 | 403, _) => return Ok(()),
        (s @ 300..=399, Some(loc)) => format!("HTTP {s}, a redirect to {loc}"),
        (s, _) => format!("HTTP {s}"),
    };
    Err(unreachable(format!(
        "the probe {path} is not a JSON debug endpoint: asked before the load (without a login), it answered {got}; {fix}"
    )))
}

/// The quick start must work where the scenario's port is taken: a target sesscheck spawns
/// itself (the built-in one, or a command that listens on `$PORT`) moves to a free port, and
/// says so. A target not spawned, or a port given with `--url`, stays where it is.
pub(super) async fn move_off_a_taken_port(sc: &mut Scenario) {
    let relocatable = match &sc.target.spawn {
        Some(Spawn::Builtin(_)) => true,
        Some(Spawn::Command(c)) => c.command.contains("$PORT") || c.command.contains("${PORT}"),
        None => false,
    };
    let mut url = sc.lowered.target.clone();
    if !relocatable || ensure_port_free(&url).await.is_ok() {
        return;
    }
    let host = url.host_str().unwrap_or("127.0.0.1").to_string();
    let free = std::net::TcpListener::bind((host.trim_matches(|c| c == '[' || c == ']'), 0))
        .and_then(|l| l.local_addr());
    let (Ok(free), Some(taken)) = (free, url.port_or_known_default()) else {
        return;
    };
    if url.set_port(Some(free.port())).is_ok() {
        eprintln!(
            "sesscheck: port {taken} is taken; the target sesscheck spawns runs on port {} instead ({url})",
            free.port()
        );
        sc.target.url = url.as_str().trim_end_matches('/').to_string();
        sc.lowered.target = url;
    }
}

/// Refuse to spawn onto a port something else already serves: we would test that instead.
pub(super) async fn ensure_port_free(base: &Url) -> Result<()> {
    let host = base
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let port = base.port_or_known_default().unwrap_or(80);
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
        return Err(unreachable(format!(
            "something is already listening on {host}:{port}; sesscheck would test it instead of the target it spawns. Stop it, or pick another port with --url"
        )));
    }
    Ok(())
}
