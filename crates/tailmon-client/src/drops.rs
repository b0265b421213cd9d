//! Reports the agent gave up on, counted by reason, and the log line that
//! says so at most once a minute.

use std::time::Duration;

use tokio::time::Instant;

/// Reports the agent gave up on, by reason, since it started; part of
/// [`AgentStatus`](crate::AgentStatus). Each is a report collected that will
/// never reach the server. Reports still queued when the agent stops are not
/// counted here: the agent logs how many at its stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Drops {
    /// The delivery queue was full: its oldest report made room for the
    /// newest. See [`AgentBuilder::queue_capacity`](crate::AgentBuilder::queue_capacity).
    pub queue_full: u64,
    /// The server refused the report itself, so sending it again would not
    /// help: it answered `POST /api/metrics` with 422 (or 400 or 413 with a
    /// Tailmon error body naming the problem), or named the report among
    /// the `rejected` of a batch answer.
    pub refused: u64,
    /// The report could not be encoded as JSON.
    pub unencodable: u64,
    /// The queue directory could not write the report, or read it back
    /// (disk full, an I/O error). See
    /// [`AgentBuilder::queue_dir`](crate::AgentBuilder::queue_dir).
    pub unwritable: u64,
}

impl Drops {
    /// All reports dropped, whatever the reason.
    pub fn total(&self) -> u64 {
        self.queue_full + self.refused + self.unencodable + self.unwritable
    }

    /// The drops counted here and not in `earlier`.
    fn since(&self, earlier: &Drops) -> Drops {
        Drops {
            queue_full: self.queue_full.saturating_sub(earlier.queue_full),
            refused: self.refused.saturating_sub(earlier.refused),
            unencodable: self.unencodable.saturating_sub(earlier.unencodable),
            unwritable: self.unwritable.saturating_sub(earlier.unwritable),
        }
    }
}

/// Writes the "reports dropped" line: at once for the first drop, then at
/// most once per period, each line counting the reports dropped since the
/// previous one, by reason. Drops left unsaid when the period ends are said
/// at the next [`DropLog::tell`] (the agent calls it at every collection)
/// or at [`DropLog::flush`].
#[derive(Debug)]
pub(crate) struct DropLog {
    every: Duration,
    last_line: Option<Instant>,
    /// The drops the lines so far have told.
    told: Drops,
}

impl DropLog {
    /// At most one line per `every`.
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last_line: None,
            told: Drops::default(),
        }
    }

    /// Writes a line for the drops in `drops` not told yet, if the period
    /// allows one now; `last_refusal` is the server's reason for the latest
    /// refused report. Returns the drops the line told, if it wrote one.
    pub(crate) fn tell(
        &mut self,
        drops: Drops,
        last_refusal: Option<&str>,
        now: Instant,
    ) -> Option<Drops> {
        if self
            .last_line
            .is_some_and(|last| now.saturating_duration_since(last) < self.every)
        {
            return None;
        }
        self.flush(drops, last_refusal, now)
    }

    /// The drops the lines so far have told.
    #[cfg(test)]
    pub(crate) fn told(&self) -> Drops {
        self.told
    }

    /// As [`tell`](Self::tell), whatever the period: for the agent's stop.
    pub(crate) fn flush(
        &mut self,
        drops: Drops,
        last_refusal: Option<&str>,
        now: Instant,
    ) -> Option<Drops> {
        let new = drops.since(&self.told);
        if new.total() == 0 {
            return None;
        }
        self.last_line = Some(now);
        self.told = drops;
        tracing::warn!(
            dropped = new.total(),
            queue_full = new.queue_full,
            refused = new.refused,
            unencodable = new.unencodable,
            unwritable = new.unwritable,
            dropped_since_start = drops.total(),
            last_refusal,
            period_s = self.every.as_secs(),
            "reports dropped, never to be delivered (counts since the last such line)"
        );
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drops(queue_full: u64, refused: u64) -> Drops {
        Drops {
            queue_full,
            refused,
            unencodable: 0,
            unwritable: 0,
        }
    }

    #[test]
    fn first_drop_is_told_at_once_then_once_a_period_with_the_report_counts() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        let mut log = DropLog::new(minute);
        assert_eq!(log.tell(drops(0, 0), None, start), None, "nothing to tell");
        assert_eq!(log.tell(drops(0, 1), None, start), Some(drops(0, 1)));
        // 21 more refused and 5 overflowed within the minute: held back...
        let held = drops(5, 22);
        assert_eq!(log.tell(held, None, start + Duration::from_secs(1)), None);
        assert_eq!(log.tell(held, None, start + Duration::from_secs(59)), None);
        // ...and told, as reports, once the minute is over.
        assert_eq!(log.tell(held, None, start + minute), Some(drops(5, 21)));
        assert_eq!(log.tell(held, None, start + 3 * minute), None, "all told");
    }

    #[test]
    fn flush_tells_what_is_left_whatever_the_period() {
        let start = Instant::now();
        let mut log = DropLog::new(Duration::from_secs(60));
        log.tell(drops(1, 0), None, start);
        assert_eq!(
            log.flush(drops(3, 0), None, start + Duration::from_secs(1)),
            Some(drops(2, 0))
        );
        assert_eq!(log.flush(drops(3, 0), None, start), None);
    }

    #[test]
    fn total_adds_every_reason() {
        let all = Drops {
            queue_full: 1,
            refused: 2,
            unencodable: 3,
            unwritable: 4,
        };
        assert_eq!(all.total(), 10);
        assert_eq!(
            all.since(&drops(1, 1)),
            drops(0, 1).with_unencodable(3).with_unwritable(4)
        );
    }

    impl Drops {
        fn with_unencodable(mut self, n: u64) -> Self {
            self.unencodable = n;
            self
        }
        fn with_unwritable(mut self, n: u64) -> Self {
            self.unwritable = n;
            self
        }
    }
}
