//! The state directory shared by the master and its workers:
//! `boot` (boot generation counter), `secret` (master secret) and `sessions/`.
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The well-known secret used with `--default-secret` (like a framework's
/// shipped example key that nobody changed).
pub const DEFAULT_SECRET: &str = "sesscheck-insecure-default-secret-key";

pub fn sessions_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sessions")
}

/// Writes a file atomically: write a temporary file next to it, then rename,
/// so a concurrent reader sees either the old or the new content, never half.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        super::crypto::random_id()
    ));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates the state dir and its `sessions/` subdirectory, private to the
/// owner: session ids are as good as passwords, and the default is in /tmp.
pub fn prepare(state_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let sessions = sessions_dir(state_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sessions)
        .with_context(|| format!("creating state dir {}", sessions.display()))
}

/// Increments and returns the boot generation stored in `<state-dir>/boot`.
pub fn next_boot_generation(state_dir: &Path) -> anyhow::Result<u64> {
    let path = state_dir.join("boot");
    let previous = match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or(0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let next = previous + 1;
    write_atomically(&path, format!("{next}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(next)
}

/// Makes sure `<state-dir>/secret` exists (random, created once, kept across
/// restarts so CSRF tokens stay valid), readable only by the owner.
pub fn ensure_secret(state_dir: &Path) -> anyhow::Result<()> {
    let path = state_dir.join("secret");
    if path.exists() {
        return Ok(());
    }
    let secret = super::crypto::to_hex(&rand::random::<[u8; 32]>());
    write_atomically(&path, secret.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting permissions of {}", path.display()))
}

/// The master secret as the workers use it (for CSRF tokens).
pub fn read_secret(state_dir: &Path, use_default: bool) -> anyhow::Result<Vec<u8>> {
    if use_default {
        return Ok(DEFAULT_SECRET.as_bytes().to_vec());
    }
    let path = state_dir.join("secret");
    let secret = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(secret)
}

/// Deletes every stored session (for `--store wipe-on-restart`).
pub fn wipe_sessions(state_dir: &Path) -> anyhow::Result<()> {
    let dir = sessions_dir(state_dir);
    let entries = std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries.flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    Ok(())
}
