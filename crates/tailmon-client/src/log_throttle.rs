use std::time::Duration;

use tokio::time::Instant;

/// Lets a recurring log line through at most once per period, counting the
/// occurrences it held back so the next line can say how many.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// At most one line per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(held back since the last line)` when a line may be written now;
    /// `None` (and one more held back) otherwise.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_counting_the_rest() {
        let start = Instant::now();
        let mut throttle = LogThrottle::new(Duration::from_secs(60));
        assert_eq!(throttle.allow(start), Some(0));
        assert_eq!(throttle.allow(start + Duration::from_secs(1)), None);
        assert_eq!(throttle.allow(start + Duration::from_secs(59)), None);
        assert_eq!(throttle.allow(start + Duration::from_secs(60)), Some(2));
        assert_eq!(throttle.allow(start + Duration::from_secs(61)), None);
    }
}
