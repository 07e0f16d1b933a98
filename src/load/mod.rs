//! The load: virtual users (closed loop or open loop at a rate), their logins, tabs, probes and
//! write requests, browser users, shards, and the progress line. Everything it sees goes to the
//! digest as observations. May import `http`, `observe`, `scenario`, `browser`, `util`; never
//! `judge`, `report` or `run`.

pub mod browser_users;
pub mod engine;
pub mod login_check;
pub mod openloop;
pub mod progress;
pub mod schedule;
pub mod write;

use engine::Ctx;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Run all users to the end; every observation goes to `ctx.recorder`.
pub async fn run(ctx: Arc<Ctx>) {
    // `max_duration` is a hard cap. Requests still in flight at it time out then (and are
    // recorded as such: see `Http::set_hard_deadline`); a moment later the run's stop token
    // ends whatever else still runs.
    let cap = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until((ctx.hard_deadline + CAP_GRACE).into()).await;
            ctx.stop.cancel();
        })
    };
    if ctx.plan.load.rate.is_some() {
        openloop::run(ctx).await;
    } else {
        let mut accounts = JoinSet::new();
        for account in schedule::shard_users(ctx.plan.load.users, ctx.shard) {
            accounts.spawn(engine::account_task(ctx.clone(), account));
        }
        // A panicking task is a bug in sesscheck; what the others recorded is kept.
        while accounts.join_next().await.is_some() {}
    }
    cap.abort();
}

/// How long after `max_duration` the stop token ends what the request timeouts did not.
const CAP_GRACE: Duration = Duration::from_millis(250);
