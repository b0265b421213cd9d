//! Rates from monotonically increasing counters.

/// Whole units per second between two readings of a counter `elapsed_secs` apart;
/// `None` when there is no real interval or the counter went backwards (a
/// reset), rather than a false zero or a huge spike.
pub(crate) fn per_second(now: u64, before: u64, elapsed_secs: f64) -> Option<f64> {
    (elapsed_secs > 0.0 && now >= before).then(|| round_rate((now - before) as f64 / elapsed_secs))
}

/// A rate rounded to a whole unit per second: the counters count whole
/// bytes, and fractions of one byte per second are timer noise.
pub(crate) fn round_rate(rate: f64) -> f64 {
    rate.round()
}

#[cfg(test)]
mod tests {
    use super::per_second;

    #[test]
    fn rates_and_resets() {
        assert_eq!(per_second(1500, 500, 2.0), Some(500.0));
        assert_eq!(per_second(500, 500, 2.0), Some(0.0));
        assert_eq!(per_second(1000, 0, 3.0), Some(333.0), "whole units");
        assert_eq!(per_second(100, 500, 2.0), None, "counter reset");
        assert_eq!(per_second(1500, 500, 0.0), None, "no interval");
    }
}
