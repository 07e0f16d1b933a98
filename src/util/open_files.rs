//! This process's limit on open files. Every connection to the target is one, so a run of 2,000
//! users holds 2,000 sockets at once, while the usual soft limit is 1,024. Past the limit a
//! connect fails with "Too many open files", which the run would count against the target, as
//! if the app had refused the connection. So `run` raises the soft limit to the hard one at
//! start (as Go's runtime does for every program), and refuses a load that cannot fit under
//! it, before it sends anything.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Files a run holds open besides its connections to the target: the runtime's own (epoll,
/// eventfds), the reports and the event stream being written, a spawned target's pipes and
/// its guard, a restart command's, a browser's.
pub const SPARE: u64 = 64;

/// The limits of this process, after `raise`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The limit in force now.
    pub soft: u64,
    /// What it can be raised to without privileges.
    pub hard: u64,
    /// The soft limit before sesscheck raised it: what a target it spawns gets back, so that
    /// the app runs with the limits it would have without sesscheck.
    pub original: u64,
}

impl OpenFiles {
    /// How many connections fit beside the spare files.
    pub fn connections(&self) -> u64 {
        self.soft.saturating_sub(SPARE)
    }
}

/// The limits as the first `raise` found and left them.
static RAISED: std::sync::OnceLock<Option<OpenFiles>> = std::sync::OnceLock::new();

/// Raise the soft limit to the hard one (once per process; later calls say what the first
/// did). None where the limits cannot be read.
pub fn raise() -> Option<OpenFiles> {
    *RAISED.get_or_init(|| {
        let (original, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        let soft = if original < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            hard
        } else {
            original
        };
        Some(OpenFiles {
            soft,
            hard,
            original,
        })
    })
}

/// The soft limit from before `raise`, if it raised it: what a spawned target should get.
pub fn original_if_raised() -> Option<u64> {
    RAISED
        .get()
        .copied()
        .flatten()
        .filter(|f| f.original != f.soft)
        .map(|f| f.original)
}

/// Set the soft limit back to `soft` (the guard does, before it starts the target).
pub fn restore(soft: u64) -> nix::Result<()> {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit_and_leaves_the_spare_files() {
        let limits = raise().expect("RLIMIT_NOFILE is readable on Linux");
        assert_eq!(limits.soft, limits.hard);
        assert!(limits.original <= limits.soft);
        assert_eq!(limits.connections(), limits.soft - SPARE);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, limits.soft);
    }
}
