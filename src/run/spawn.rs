//! How the scenario's target is spawned: the command, its directory and the scratch dir.

use crate::process::supervisor::{SpawnSpec, Supervisor};
use crate::scenario::{Scenario, Spawn};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;
use url::Url;

pub(super) fn scenario_dir(sc: &Scenario) -> Option<PathBuf> {
    sc.source.parent().map(|p| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    })
}

/// Paths in a scenario are relative to the scenario file's folder.
pub(super) fn resolve(sc: &Scenario, path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        return p;
    }
    scenario_dir(sc).map(|d| d.join(&p)).unwrap_or(p)
}

/// A private folder for this run (the built-in target's shared store), removed at the end.
pub(super) fn scratch_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("sesscheck-run-{}-{nanos}", std::process::id()))
}

pub(super) fn spawn_spec(
    sc: &Scenario,
    base: &Url,
    scratch: &std::path::Path,
) -> Result<Option<SpawnSpec>> {
    let port = base.port_or_known_default().unwrap_or(80).to_string();
    let stop_timeout = sc.target.stop_timeout.0;
    Ok(match &sc.target.spawn {
        None => None,
        Some(Spawn::Builtin(b)) => {
            let exe = std::env::current_exe()
                .context("finding the sesscheck executable to start the built-in target")?;
            let mut args = crate::scenario::builtin_args(b, base)?;
            args.push("--state-dir".into());
            args.push(scratch.join("target").to_string_lossy().into_owned());
            Some(SpawnSpec {
                program: exe.to_string_lossy().into_owned(),
                label: format!("built-in target ({} workers, store={})", b.workers, b.store),
                args,
                cwd: None,
                env: Default::default(),
                stop_timeout,
                scratch: Some(scratch.to_path_buf()),
            })
        }
        Some(Spawn::Command(c)) => {
            let mut env = c.env.clone();
            env.entry("PORT".into()).or_insert(port);
            Some(SpawnSpec {
                program: "sh".into(),
                args: vec!["-c".into(), c.command.clone()],
                cwd: Some(
                    c.cwd
                        .as_deref()
                        .map(|d| resolve(sc, d))
                        .unwrap_or_else(|| scenario_dir(sc).unwrap_or_else(|| ".".into())),
                ),
                env,
                label: format!("`{}`", c.command),
                stop_timeout,
                scratch: None,
            })
        }
    })
}

/// The supervisor, shared by the run and the restart task.
pub(super) type SharedSupervisor = Arc<tokio::sync::Mutex<Option<Supervisor>>>;
