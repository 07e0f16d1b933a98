//! Each user's successful logins, indexed for "the user's last login before t".

use crate::observe::{Observation, Step};
use std::collections::HashMap;

/// The latest of sorted times `t` that is at most `limit`.
pub(crate) fn last_at_or_before(sorted: &[u64], limit: u64) -> Option<u64> {
    match sorted.partition_point(|&t| t <= limit) {
        0 => None,
        n => Some(sorted[n - 1]),
    }
}

/// Each user's successful logins (end times, in order), to find "the user's last login
/// before t" by binary search.
pub(crate) struct LoginEnds(HashMap<u32, Vec<u64>>);

impl LoginEnds {
    pub(crate) fn of(obs: &[Observation]) -> LoginEnds {
        let mut ends: HashMap<u32, Vec<u64>> = HashMap::new();
        for o in obs
            .iter()
            .filter(|o| o.step == Step::Login && o.authenticated == Some(true))
        {
            ends.entry(o.vu).or_default().push(o.end_us);
        }
        for v in ends.values_mut() {
            v.sort_unstable();
        }
        LoginEnds(ends)
    }

    /// When `vu`'s last login before `t_us` ended (0: none).
    pub(crate) fn last_by(&self, vu: u32, t_us: u64) -> u64 {
        self.0
            .get(&vu)
            .and_then(|v| last_at_or_before(v, t_us))
            .unwrap_or(0)
    }
}
