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
        let accounts = schedule::shard_users(ctx.plan.load.users, ctx.shard);
        // As many threads as the client has pools for (`run::lanes`: never more than users).
        let lanes = ctx.http.lanes().clamp(1, accounts.len().max(1));
        // Lane 0 runs on this thread (beside the restarts and the progress line); each other
        // lane on a thread and runtime of its own. Nothing is handed between lanes: a user, its
        // tabs and the connections it uses stay on one thread, as wrk keeps its connections to
        // one thread each.
        let others: Vec<_> = (1..lanes)
            .map(|lane| lane_thread(ctx.clone(), lane, deal(&accounts, lanes, lane)))
            .collect();
        run_accounts(ctx.clone(), deal(&accounts, lanes, 0)).await;
        for done in others {
            // Err: the lane's thread could not start or panicked; what it recorded is kept.
            let _ = done.await;
        }
    }
    cap.abort();
}

/// Lane `lane`'s share of `accounts` of `lanes`: every `lanes`-th, so that each lane gets as
/// many users as the others (give or take one), and the first users (the browser checks') are
/// spread too.
fn deal(accounts: &[usize], lanes: usize, lane: usize) -> Vec<usize> {
    accounts.iter().copied().skip(lane).step_by(lanes).collect()
}

/// Run these accounts' users to the end on the current runtime.
async fn run_accounts(ctx: Arc<Ctx>, accounts: Vec<usize>) {
    let mut tasks = JoinSet::new();
    for account in accounts {
        tasks.spawn(engine::account_task(ctx.clone(), account));
    }
    // A panicking task is a bug in sesscheck; what the others recorded is kept.
    while tasks.join_next().await.is_some() {}
}

/// A thread with its own single-threaded runtime running `accounts`; the receiver answers
/// when it is done (its runtime dropped, with the connections it opened).
fn lane_thread(
    ctx: Arc<Ctx>,
    lane: usize,
    accounts: Vec<usize>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name(format!("sesscheck/{lane}"))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!(
                        "sesscheck: load thread {lane} has no runtime ({e}); its users run not"
                    );
                    return;
                }
            };
            crate::http::client::enter_lane(lane);
            runtime.block_on(run_accounts(ctx, accounts));
            drop(runtime);
            let _ = done.send(());
        });
    if let Err(e) = started {
        eprintln!("sesscheck: cannot start load thread {lane}: {e}");
    }
    finished
}

/// How long after `max_duration` the stop token ends what the request timeouts did not.
const CAP_GRACE: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    use super::deal;

    #[test]
    fn every_account_goes_to_exactly_one_lane() {
        let accounts: Vec<usize> = (0..11).collect();
        let lanes: Vec<Vec<usize>> = (0..3).map(|l| deal(&accounts, 3, l)).collect();
        assert_eq!(lanes[0], vec![0, 3, 6, 9]);
        assert_eq!(lanes[1], vec![1, 4, 7, 10]);
        assert_eq!(lanes[2], vec![2, 5, 8]);
        let mut all: Vec<usize> = lanes.concat();
        all.sort_unstable();
        assert_eq!(all, accounts);
        // A shard's accounts are not 0..n: dealt the same way.
        assert_eq!(deal(&[1, 3, 5], 2, 1), vec![3]);
    }
}
