//! Progress while a run is under way, on stderr: a live bar on a terminal, plain periodic
//! lines in CI logs (where a redrawn bar would turn into thousands of lines).

use crate::load::engine::{Ctx, Progress};
use indicatif::{ProgressBar, ProgressFinish, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Report progress until the task is aborted (the caller aborts it when the load ends).
pub async fn show(ctx: Arc<Ctx>) {
    if std::io::stderr().is_terminal() {
        live_bar(ctx).await
    } else {
        plain_lines(ctx).await
    }
}

/// The counters as one line's worth of text.
fn counters(p: &Progress) -> String {
    let pids = p.pids.lock().map(|s| s.len()).unwrap_or(0);
    format!(
        "requests {} | errors {} | anonymous {} | logins ok {} | distinct workers {}",
        p.requests.load(Ordering::Relaxed),
        p.errors.load(Ordering::Relaxed),
        p.anonymous.load(Ordering::Relaxed),
        p.logins.load(Ordering::Relaxed),
        pids
    )
}

/// The counters that matter most while watching, short enough for an 80-column terminal.
/// Logins among them: while the users log in (seconds, with a slow password hash) the
/// request count stands at 0, and only this one moves.
fn short_counters(p: &Progress) -> String {
    let pids = p.pids.lock().map(|s| s.len()).unwrap_or(0);
    format!(
        "{} req | {} logins ok | {} err | {} anon | {} workers",
        p.requests.load(Ordering::Relaxed),
        p.logins.load(Ordering::Relaxed),
        p.errors.load(Ordering::Relaxed),
        p.anonymous.load(Ordering::Relaxed),
        pids
    )
}

fn remaining_s(ctx: &Ctx) -> u64 {
    ctx.deadline
        .saturating_duration_since(Instant::now())
        .as_secs()
}

async fn live_bar(ctx: Arc<Ctx>) {
    let total = ctx.deadline.saturating_duration_since(ctx.clock);
    // Cleared when dropped (the task is aborted), so the summary table starts on a clean line.
    let bar = ProgressBar::new(total.as_millis() as u64).with_finish(ProgressFinish::AndClear);
    if let Ok(style) = ProgressStyle::with_template(
        // wide_msg: the counters are cut to the terminal's width rather than wrapping.
        "{spinner:.green} {elapsed:>4} [{bar:20.cyan/blue}] ~{prefix}s left | {wide_msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        bar.set_position(ctx.clock.elapsed().as_millis() as u64);
        bar.set_prefix(remaining_s(&ctx).to_string());
        bar.set_message(short_counters(&ctx.progress));
    }
}

/// A plain progress line every 2 s.
async fn plain_lines(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!(
            "[{:>5.1}s] {} | ~{}s left",
            ctx.clock.elapsed().as_secs_f64(),
            counters(&ctx.progress),
            remaining_s(&ctx)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_line_shows_logins_while_no_request_ran_yet() {
        let p = Progress::default();
        p.logins.store(12, Ordering::Relaxed);
        assert_eq!(
            short_counters(&p),
            "0 req | 12 logins ok | 0 err | 0 anon | 0 workers"
        );
    }
}
