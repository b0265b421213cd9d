//! Counting refusals the operator should know of (logins turned away,
//! stalled clients dropped), with at most one log line a period.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often one kind of refusal is logged at most: once a minute.
pub(crate) const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// A count of one kind of refusal, and the throttle of its log line.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    every: Duration,
    total: AtomicU64,
    /// When the last line was let through, and refusals counted since.
    line: Mutex<(Option<Instant>, u64)>,
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self::every(REFUSAL_LOG_EVERY)
    }
}

impl RefusalLog {
    /// At most one line per `every`.
    pub(crate) fn every(every: Duration) -> Self {
        Self {
            every,
            total: AtomicU64::new(0),
            line: Mutex::new((None, 0)),
        }
    }

    /// Counts one refusal at `now`. `Some(n)` when a line may be written:
    /// `n` refusals since the last line, this one included.
    pub(crate) fn count_at(&self, now: Instant) -> Option<u64> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut line = self.line.lock().unwrap_or_else(PoisonError::into_inner);
        line.1 += 1;
        if line
            .0
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            return None;
        }
        line.0 = Some(now);
        Some(std::mem::take(&mut line.1))
    }

    /// [`count_at`](Self::count_at) now.
    pub(crate) fn count(&self) -> Option<u64> {
        self.count_at(Instant::now())
    }

    /// Refusals counted since the start.
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_period_carrying_the_count_since_the_last() {
        let log = RefusalLog::every(Duration::from_secs(60));
        let start = Instant::now();
        assert_eq!(log.count_at(start), Some(1));
        assert_eq!(log.count_at(start + Duration::from_secs(1)), None);
        assert_eq!(log.count_at(start + Duration::from_secs(59)), None);
        assert_eq!(log.count_at(start + Duration::from_secs(60)), Some(3));
        assert_eq!(log.count_at(start + Duration::from_secs(61)), None);
        assert_eq!(log.total(), 5);
    }
}
