//! Latency statistics shared by the digest, the event stream and the report: one histogram
//! shape (1 µs to 1 hour, 3 significant digits) and the millisecond rounding every figure uses.

use hdrhistogram::Histogram;

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs to 1 hour at 3 significant digits: exact enough for p99 and small in memory.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

pub fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    round3(h.value_at_quantile(q) as f64 / 1000.0)
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
