use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// How often one kind of trouble with one plugin, or with one textfile, is
/// logged at most: 5 min, as for collectors.
pub const PLUGIN_LOG_EVERY: Duration = Duration::from_secs(300);

/// Lets a line about one thing (a key such as `postgres:failed`) through at
/// most once per period.
#[derive(Debug)]
pub(crate) struct LogEvery {
    every: Duration,
    last: HashMap<String, Instant>,
}

impl LogEvery {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last: HashMap::new(),
        }
    }

    /// Whether a line about `key` may be written now; if so, the period
    /// starts again.
    pub(crate) fn allow(&mut self, key: &str, now: Instant) -> bool {
        match self.last.get_mut(key) {
            Some(last) if now.saturating_duration_since(*last) < self.every => false,
            Some(last) => {
                *last = now;
                true
            }
            None => {
                self.last.insert(key.to_owned(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_period_per_key() {
        let start = Instant::now();
        let mut log = LogEvery::new(PLUGIN_LOG_EVERY);
        assert!(log.allow("a:failed", start));
        assert!(log.allow("b:failed", start));
        assert!(log.allow("a:cut", start));
        assert!(!log.allow("a:failed", start + Duration::from_secs(299)));
        assert!(log.allow("a:failed", start + Duration::from_secs(300)));
    }
}
