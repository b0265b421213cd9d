//! A latency histogram with fixed buckets, lock-free to observe.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The buckets' upper bounds, in seconds: 100 µs to 10 s.
pub(crate) const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Observations counted into [`LATENCY_BUCKETS`] (each its own bucket, the
/// cumulative counts are made when written), with their sum.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    /// One count per bucket, and one more for those above the last.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// The sum of every observation, in nanoseconds.
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Counts one observation.
    pub(crate) fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let index = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Writes its `_bucket`, `_sum` and `_count` lines (no header).
    pub(crate) fn write(&self, out: &mut String, name: &str) {
        use tailmon_core::exposition::{write_sample, write_sample_u64};
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&counts) {
            cumulative += count;
            write_sample_u64(out, &bucket, &[("le", &bound.to_string())], cumulative);
        }
        let total: u64 = counts.iter().sum();
        write_sample_u64(out, &bucket, &[("le", "+Inf")], total);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        write_sample(out, &format!("{name}_sum"), &[], sum);
        write_sample_u64(out, &format!("{name}_count"), &[], total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_when_written() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut out = String::new();
        h.write(&mut out, "x");
        assert!(out.contains("x_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }
}
