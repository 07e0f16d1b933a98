//! Processes sesscheck starts and stops: the guard that outlives nothing (a spawned target and
//! its daemons end with sesscheck, even on SIGKILL) and the supervisor that starts, restarts and
//! signals the target. Imports nothing of the crate but itself.

pub mod guard;
pub mod supervisor;
