//! Open-loop load (`[load] rate`): requests arrive on a fixed schedule, whatever the target does.
//!
//! Closed-loop tabs wait for an answer before sending the next request, so a stalled target
//! also stalls the load and its worst latencies are never measured ("coordinated omission").
//! Here arrival k is *intended* at `k / rate` seconds after the start; it is sent at that time
//! (or as soon as the generator can, if it fell behind) and its latency is counted from the
//! intended time, as wrk2 does. Arrivals go to the users round-robin, each request with its
//! user's own cookie jar; every user logs in first, as in closed-loop runs.

use crate::load::engine::{self, Ctx};
use crate::load::schedule::{due, intended_us, shard_users, Generator, LATE_AFTER_US};
use crate::util::stats::round3;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Log every user in, then send on the schedule until the run ends.
pub async fn run(ctx: Arc<Ctx>) {
    let mut rate = ctx.plan.load.rate.unwrap_or(1.0);
    if let Some((_, n)) = ctx.shard {
        rate /= n as f64;
    }

    // Logins, concurrently (paced by `login_rate` as in closed-loop runs).
    let mut logins = JoinSet::new();
    for vu in shard_users(ctx.plan.load.users, ctx.shard) {
        let ctx = ctx.clone();
        logins.spawn(async move { (vu, engine::open_user(&ctx, vu).await) });
    }
    let mut users = Vec::new();
    while let Some(done) = logins.join_next().await {
        if let Ok((vu, Some(u))) = done {
            users.push((vu, Arc::new(u)));
        }
    }
    users.sort_by_key(|(vu, _)| *vu);
    let users: Vec<Arc<engine::OpenUser>> = users.into_iter().map(|(_, u)| u).collect();

    let start = Instant::now();
    let start_us = ctx.clock.elapsed().as_micros() as u64;
    let mut stats = Generator {
        mode: "open".into(),
        target_rate: rate,
        max_connections: ctx.plan.load.connection_cap().unwrap_or(0),
        ..Default::default()
    };
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut k: u64 = 0;
    let mut max_lag_us = 0u64;
    // Set when an arrival had to wait for a connection, until one goes out on time again: the
    // arrivals behind it were held back by the cap too, each from its own intended time.
    let mut held_back = false;
    'schedule: while !users.is_empty() && !engine::open_done(&ctx) {
        while k < due(rate, start.elapsed().as_micros() as u64) {
            // The cap on requests in flight: wait here, so that under overload the arrivals
            // queue as numbers in the schedule, not as tasks each opening a connection.
            let slot = tokio::select! {
                slot = ctx.http.slot() => slot,
                _ = ctx.stop.cancelled() => break 'schedule,
                _ = tokio::time::sleep_until(ctx.deadline.into()) => break 'schedule,
            };
            let intended = intended_us(rate, k);
            let lag = (start.elapsed().as_micros() as u64).saturating_sub(intended);
            max_lag_us = max_lag_us.max(lag);
            if lag > LATE_AFTER_US {
                stats.late_sends += 1;
            }
            held_back = slot.waited() || (held_back && lag > LATE_AFTER_US);
            let slot = if held_back {
                stats.waited_for_connection += 1;
                slot.queued_for(Duration::from_micros(lag))
            } else {
                slot
            };
            let u = users[(k % users.len() as u64) as usize].clone();
            let n = k / users.len() as u64;
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let mut obs = Vec::with_capacity(1);
                engine::open_arrival(&ctx, &u, n, start_us + intended, slot, &mut obs).await;
                ctx.record(&mut obs);
            });
            k += 1;
        }
        while tasks.try_join_next().is_some() {}
        let next = start + Duration::from_micros(intended_us(rate, k));
        let until = next.min(ctx.deadline);
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = ctx.stop.cancelled() => break,
        }
    }
    let window = start.elapsed().as_secs_f64();
    stats.sent = k;
    stats.achieved_rate = if window > 0.0 {
        round3(k as f64 / window)
    } else {
        0.0
    };
    stats.max_lag_ms = round3(max_lag_us as f64 / 1000.0);
    while tasks.join_next().await.is_some() {}
    *ctx.generator.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
}
