//! How many reports the agent's next batch carries: halved when the server
//! refuses a batch as a whole, and never grown back to a size it refused.

use std::time::Duration;

use tokio::time::Instant;

/// How long a refused size is remembered: 1 h. The server's limit may be
/// raised meanwhile (or the refusal was a report's fault), so after that the
/// agent tries larger batches again, which costs a few refusals an hour at
/// worst.
pub(crate) const REFUSED_SIZE_KEPT_FOR: Duration = Duration::from_secs(3600);

/// The batch size the agent uses, and the largest it may grow back to.
///
/// A batch the server refuses as a whole (413 too large, or another 4xx
/// that blames the batch) halves the size, and the size refused becomes a
/// ceiling: an accepted batch doubles the size, but only up to one less than
/// the smallest size refused, for [`REFUSED_SIZE_KEPT_FOR`]. So after a
/// handful of refusals the size settles on one the server takes, rather
/// than doubling straight back into a refusal. A size of 1 means single
/// reports through `POST /api/metrics`.
#[derive(Debug)]
pub(crate) struct BatchSize {
    max: usize,
    size: usize,
    /// The largest size not refused, and since when.
    ceiling: Option<(usize, Instant)>,
}

impl BatchSize {
    /// Starting at, and never above, `max`.
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            size: max,
            ceiling: None,
        }
    }

    /// The most reports the next batch may carry.
    pub(crate) fn get(&mut self, now: Instant) -> usize {
        if self
            .ceiling
            .is_some_and(|(_, since)| now.saturating_duration_since(since) >= REFUSED_SIZE_KEPT_FOR)
        {
            self.ceiling = None;
        }
        self.size
    }

    /// The server refused a batch of `len` reports as a whole.
    pub(crate) fn refused(&mut self, len: usize, now: Instant) {
        let below = len.saturating_sub(1).max(1);
        let ceiling = self.ceiling.map_or(below, |(c, _)| c.min(below));
        self.ceiling = Some((ceiling, now));
        self.size = (len / 2).clamp(1, ceiling);
    }

    /// A batch of `len` reports timed out: smaller ones, lest the same one
    /// time out forever; the size may grow back.
    pub(crate) fn timed_out(&mut self, len: usize) {
        self.size = (len / 2).max(1);
    }

    /// The server took what it was sent: grow, up to the ceiling.
    pub(crate) fn accepted(&mut self) {
        let ceiling = self.ceiling.map_or(self.max, |(c, _)| c);
        self.size = self.size.saturating_mul(2).min(ceiling).min(self.max);
    }

    /// The server refused a single report by name: the batches it refused
    /// as a whole may have been refused for that report, so forget the
    /// sizes refused.
    pub(crate) fn forget_refusals(&mut self) {
        self.ceiling = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes sent for `reports` queued, against a server taking batches
    /// of up to `limit`.
    fn sizes_sent(reports: usize, limit: usize, max: usize) -> Vec<usize> {
        let now = Instant::now();
        let mut size = BatchSize::new(max);
        let (mut left, mut sent) = (reports, Vec::new());
        while left > 0 {
            let len = size.get(now).min(left);
            sent.push(len);
            if len > limit {
                size.refused(len, now);
            } else {
                left -= len;
                size.accepted();
            }
        }
        sent
    }

    #[test]
    fn settles_on_a_size_the_server_takes() {
        let sent = sizes_sent(200, 10, 1000);
        // 200 and 100 refused, then 50, 25, 12: 6 fits and grows to 10, and stays there.
        assert_eq!(&sent[..8], [200, 100, 50, 25, 12, 6, 11, 5]);
        let refused_late = sent[8..].iter().filter(|&&n| n > 10).count();
        assert_eq!(refused_late, 0, "no refusal once settled: {sent:?}");
        assert!(sent[9..sent.len() - 1].iter().all(|&n| n == 10), "{sent:?}");
    }

    #[test]
    fn refusing_every_batch_ends_in_single_reports() {
        let sent = sizes_sent(53, 1, 1000);
        // Halved down to one; one attempt at two; then one by one.
        assert_eq!(&sent[..8], [53, 26, 13, 6, 3, 1, 2, 1]);
        assert!(sent[8..].iter().all(|&n| n == 1), "{sent:?}");
        assert_eq!(sent.len(), 6 + 53);
    }

    #[test]
    fn refused_size_is_forgotten_after_an_hour_or_a_culprit() {
        let now = Instant::now();
        let mut size = BatchSize::new(1000);
        size.refused(4, now);
        size.accepted();
        assert_eq!(size.get(now), 3);
        size.accepted();
        assert_eq!(size.get(now + Duration::from_secs(60)), 3, "remembered");
        assert_eq!(size.get(now + REFUSED_SIZE_KEPT_FOR), 3);
        size.accepted();
        assert_eq!(size.get(now + REFUSED_SIZE_KEPT_FOR), 6, "grows again");

        size.refused(6, now);
        size.forget_refusals();
        size.accepted();
        size.accepted();
        assert_eq!(size.get(now), 12);
    }

    #[test]
    fn a_timeout_halves_without_a_ceiling() {
        let now = Instant::now();
        let mut size = BatchSize::new(1000);
        size.timed_out(1000);
        assert_eq!(size.get(now), 500);
        size.accepted();
        assert_eq!(size.get(now), 1000);
        size.timed_out(1);
        assert_eq!(size.get(now), 1);
    }
}
