//! The load's schedule, as plain numbers: which users a shard runs, when open-loop arrival k
//! is due, and what the open-loop generator reports. No I/O, so all of it is unit-tested.

/// A send later than this behind its intended time counts as late. Tokio's timer has a 1 ms
/// resolution, so anything below that is the timer, not the generator falling behind.
pub const LATE_AFTER_US: u64 = 2_000;

/// Intended send time of arrival `k`, in µs after the schedule's start. Computed from `k`
/// (not accumulated), so the schedule does not drift however long it runs.
pub fn intended_us(rate: f64, k: u64) -> u64 {
    (k as f64 * 1e6 / rate).round() as u64
}

/// How many arrivals are due `elapsed_us` after the start (arrival 0 is due at once).
pub fn due(rate: f64, elapsed_us: u64) -> u64 {
    let mut n = (elapsed_us as f64 * rate / 1e6).floor() as u64 + 1;
    // Guard against floating-point rounding at the boundaries: due ⇔ intended <= elapsed.
    while n > 0 && intended_us(rate, n - 1) > elapsed_us {
        n -= 1;
    }
    while intended_us(rate, n) <= elapsed_us {
        n += 1;
    }
    n
}

/// The users this process runs: all of them, or those of shard I/N (index ≡ I mod N, 1-based).
pub fn shard_users(users: usize, shard: Option<(usize, usize)>) -> Vec<usize> {
    match shard {
        None => (0..users).collect(),
        Some((i, n)) => (0..users).filter(|vu| vu % n == i - 1).collect(),
    }
}

/// Parse `I/N` (1-based, 1 <= I <= N).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s:?}: expected I/N, e.g. 1/4"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("--shard {s:?}: I is not a number"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("--shard {s:?}: N is not a number"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("--shard {s:?}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

/// What an open-loop generator did: did it keep up with its schedule?
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default, PartialEq)]
pub struct Generator {
    /// "open" (constant arrival rate).
    pub mode: String,
    /// Requests/s the schedule asked for.
    pub target_rate: f64,
    /// Requests/s actually sent over the sending window.
    pub achieved_rate: f64,
    /// Requests sent.
    #[serde(default)]
    pub sent: u64,
    /// Sends more than 2 ms behind their intended time (the generator fell behind).
    pub late_sends: u64,
    /// The largest delay between an intended and an actual send.
    pub max_lag_ms: f64,
    /// The cap on requests in flight (`[load] max_connections`, or the open loop's default).
    #[serde(default)]
    pub max_connections: usize,
    /// Arrivals held back because all `max_connections` were in flight: the target answered
    /// slower than the rate needs. Their latency counts from the intended time, wait included.
    #[serde(default)]
    pub waited_for_connection: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_evenly_spaced_and_does_not_drift() {
        let times: Vec<u64> = (0..5).map(|k| intended_us(2000.0, k)).collect();
        assert_eq!(times, vec![0, 500, 1000, 1500, 2000]);
        // One hour at 3 req/s: computed from k, so no accumulated rounding error.
        assert_eq!(intended_us(3.0, 3 * 3600), 3_600_000_000);
        assert_eq!(intended_us(3.0, 1), 333_333);
        assert_eq!(intended_us(3.0, 2), 666_667);
    }

    #[test]
    fn due_counts_arrivals_whose_time_has_come() {
        assert_eq!(due(2000.0, 0), 1);
        assert_eq!(due(2000.0, 499), 1);
        assert_eq!(due(2000.0, 500), 2);
        assert_eq!(due(2000.0, 1_000_000), 2001);
        assert_eq!(due(3.0, 333_332), 1);
        assert_eq!(due(3.0, 333_333), 2);
        for &rate in &[1.0, 3.0, 7.5, 200.0, 2000.0, 123_456.0] {
            for t in (0..3_000_000).step_by(9_973) {
                let n = due(rate, t);
                assert!(intended_us(rate, n - 1) <= t && intended_us(rate, n) > t);
            }
        }
        // A rate of 200 for 3 s is 600 arrivals (plus the one at t = 0).
        assert_eq!(due(200.0, 3_000_000), 601);
    }

    #[test]
    fn shards_partition_the_users() {
        assert_eq!(shard_users(5, None), vec![0, 1, 2, 3, 4]);
        assert_eq!(shard_users(5, Some((1, 2))), vec![0, 2, 4]);
        assert_eq!(shard_users(5, Some((2, 2))), vec![1, 3]);
        let mut all: Vec<usize> = (1..=3)
            .flat_map(|i| shard_users(10, Some((i, 3))))
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn shard_syntax_is_validated() {
        assert_eq!(parse_shard("1/2"), Ok((1, 2)));
        assert_eq!(parse_shard("3/3"), Ok((3, 3)));
        assert!(parse_shard("0/2").is_err());
        assert!(parse_shard("3/2").is_err());
        assert!(parse_shard("1/0").is_err());
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/b").is_err());
    }
}
