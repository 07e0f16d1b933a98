//! Each login's `remaining` answers (the session's seconds left, from the probe), folded as they
//! arrive so that a `[lifetime]` run keeps no probe however long it is. The audit in
//! `judge::audit::measure_lifetime` reads it.

use crate::observe::{Observation, RestartWindow, Step};
use std::collections::HashMap;

/// A probe's `remaining` answer: when it ended (µs) and the seconds it said were left.
pub(crate) type Point = (u64, f64);

/// One login's (user, login epoch) `remaining` answers, reduced to what `measure_lifetime`
/// uses: the first and the last, and around each restart the last one before it began and the
/// first one after it was ready.
#[derive(Debug, Clone)]
pub(crate) struct RemainingSeries {
    pub(crate) first: Point,
    pub(crate) last: Point,
    /// Per restart window (same index): (last at or before its start, first at or after ready).
    pub(crate) around: Vec<(Option<Point>, Option<Point>)>,
}

/// Every login's `remaining` series, folded as the probes arrive (in `Digest`), so that a
/// `[lifetime]` run keeps no probe however long it is.
///
/// Exact, not sampled, because restart times are taken under the lock the probes are folded
/// under (see `Recorder`): a probe folded before a restart began ended before it, so at that
/// moment the series' last point is its last one before the restart (a late-folded one can
/// still replace it); and a probe that ended after the restart was ready is folded after the
/// ready time is known.
#[derive(Debug, Clone, Default)]
pub struct RemainingLog {
    pub(crate) series: HashMap<(u32, u32), RemainingSeries>,
}

/// Replace `slot` by `p` when it is unset or `better` says so.
fn keep_if(slot: &mut Option<Point>, p: Point, better: impl Fn(Point, Point) -> bool) {
    if slot.is_none_or(|old| better(p, old)) {
        *slot = Some(p);
    }
}

impl RemainingLog {
    /// Fold in one observation; `restarts` are the windows known when it arrived.
    pub fn add(&mut self, o: &Observation, restarts: &[RestartWindow]) {
        if o.step != Step::Probe || o.authenticated != Some(true) {
            return;
        }
        let Some(left) = o.remaining_s.map(f64::from) else {
            return;
        };
        let p = (o.end_us, left);
        let s = self
            .series
            .entry((o.vu, o.epoch_start))
            .or_insert(RemainingSeries {
                first: p,
                last: p,
                around: Vec::new(),
            });
        // Ties: the earliest folded is first, the latest folded is last (a stable sort by time).
        if p.0 < s.first.0 {
            s.first = p;
        }
        if p.0 >= s.last.0 {
            s.last = p;
        }
        if s.around.len() < restarts.len() {
            s.around.resize(restarts.len(), (None, None));
        }
        for (w, (before, after)) in restarts.iter().zip(s.around.iter_mut()) {
            if p.0 <= w.start_us {
                keep_if(before, p, |new, old| new.0 >= old.0);
            }
            if w.ready_us.is_some_and(|ready| p.0 >= ready) {
                keep_if(after, p, |new, old| new.0 < old.0);
            }
        }
    }

    /// Restart `index` begins now: every point folded so far ended before it.
    pub fn restart_began(&mut self, index: usize) {
        for s in self.series.values_mut() {
            if s.around.len() <= index {
                s.around.resize(index + 1, (None, None));
            }
            let last = s.last;
            keep_if(&mut s.around[index].0, last, |new, old| new.0 >= old.0);
        }
    }
}
