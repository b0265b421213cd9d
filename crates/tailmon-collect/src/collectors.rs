use std::time::{Duration, Instant};

use async_trait::async_trait;
use tailmon_core::Report;

use crate::{CollectError, Collector};

/// How often one failing collector is logged at most.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(300);

/// Several collectors run as one, in order: a failing one is logged (at most
/// once every five minutes each) and skipped, and never fails the others.
///
/// ```
/// use tailmon_collect::{Collectors, HostCollector};
///
/// let collectors = Collectors::new().with(HostCollector::new()?);
/// assert_eq!(collectors.len(), 1);
/// # Ok::<(), tailmon_collect::CollectError>(())
/// ```
#[derive(Default)]
pub struct Collectors {
    members: Vec<Member>,
}

struct Member {
    collector: Box<dyn Collector>,
    last_logged: Option<Instant>,
}

impl std::fmt::Debug for Collectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.members.iter().map(|m| m.collector.name()))
            .finish()
    }
}

impl Collectors {
    /// No collectors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a collector after those already held.
    pub fn with(mut self, collector: impl Collector + 'static) -> Self {
        self.push(Box::new(collector));
        self
    }

    /// Adds a boxed collector after those already held.
    pub fn push(&mut self, collector: Box<dyn Collector>) {
        self.members.push(Member {
            collector,
            last_logged: None,
        });
    }

    /// How many collectors are held.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no collector is held.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[async_trait]
impl Collector for Collectors {
    fn name(&self) -> &str {
        "collectors"
    }

    /// Runs every collector; always succeeds, since a failing member only
    /// leaves its own part out.
    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        for member in &mut self.members {
            if let Err(error) = member.collector.collect(report).await {
                let now = Instant::now();
                let due = member
                    .last_logged
                    .is_none_or(|at| now.duration_since(at) >= FAILURE_LOG_EVERY);
                if due {
                    member.last_logged = Some(now);
                    tracing::warn!(collector = member.collector.name(), %error, "collector failed; its fields are left out");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::OffsetDateTime;

    struct Failing;

    #[async_trait]
    impl Collector for Failing {
        fn name(&self) -> &str {
            "failing"
        }
        async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
            report.os_info = "half-written".into();
            Err(CollectError::Probe {
                probe: "failing",
                message: "no such file".into(),
            })
        }
    }

    struct SetsCpu;

    #[async_trait]
    impl Collector for SetsCpu {
        fn name(&self) -> &str {
            "sets-cpu"
        }
        async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
            report.cpu_usage = 42.0;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_collector_never_fails_the_others() {
        let mut all = Collectors::new().with(Failing).with(SetsCpu).with(Failing);
        let mut report = Report::new("a", OffsetDateTime::now_utc());
        all.collect(&mut report)
            .await
            .expect("composition never fails");
        assert_eq!(report.cpu_usage, 42.0);
        // Logged once per member, then rate-limited.
        assert!(
            all.members
                .iter()
                .filter(|m| m.last_logged.is_some())
                .count()
                == 2
        );
        let first = all.members[0].last_logged;
        all.collect(&mut report)
            .await
            .expect("composition never fails");
        assert_eq!(all.members[0].last_logged, first);
    }
}
