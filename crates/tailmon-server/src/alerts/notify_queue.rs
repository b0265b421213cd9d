//! Notifications on their way: one bounded queue and one sender task per
//! channel, so that a slow or failing channel holds up nobody else. Each
//! notification is tried up to [`MAX_ATTEMPTS`] times with exponential
//! backoff; failures are counted and logged at most once a minute per
//! channel, never fatal.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::alerts::notification::{Notification, Notifier};

/// Notifications a channel may have waiting: 256; more are dropped and counted.
pub const QUEUE_PER_CHANNEL: usize = 256;
/// Tries per notification: 5.
pub const MAX_ATTEMPTS: u32 = 5;
/// The first wait before a retry: 1 s, doubled each time up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between tries: 5 minutes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The longest a single try may take: 30 s.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// At most one failure logged per channel in this time: 60 s.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// What the queue has done, since the server started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryStats {
    /// Delivered.
    pub sent: u64,
    /// Given up on after every try.
    pub failed: u64,
    /// Tries that failed (retried or not).
    pub failed_attempts: u64,
    /// Dropped because the channel's queue was full.
    pub dropped: u64,
    /// Waiting or being sent now.
    pub pending: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    failed_attempts: AtomicU64,
    dropped: AtomicU64,
    pending: AtomicU64,
}

type Job = (Arc<dyn Notifier>, Notification);

/// See the module documentation. Cheap to clone.
#[derive(Clone)]
pub(crate) struct NotifyQueue {
    inner: Arc<QueueInner>,
}

struct QueueInner {
    workers: Mutex<HashMap<String, mpsc::Sender<Job>>>,
    counters: Counters,
    per_channel: Mutex<HashMap<String, DeliveryStats>>,
    first_backoff: Duration,
}

impl NotifyQueue {
    pub(crate) fn new() -> Self {
        Self::with_backoff(FIRST_BACKOFF)
    }

    pub(crate) fn with_backoff(first_backoff: Duration) -> Self {
        Self {
            inner: Arc::new(QueueInner {
                workers: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                per_channel: Mutex::new(HashMap::new()),
                first_backoff,
            }),
        }
    }

    /// Queues `notification` for `channel`; never waits. Needs a tokio
    /// runtime (the channel's task starts on first use).
    pub(crate) fn send(
        &self,
        channel: &str,
        notifier: Arc<dyn Notifier>,
        notification: Notification,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(channel, "no runtime to send a notification on; dropped");
            self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        let sender = workers.entry(channel.to_owned()).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_PER_CHANNEL);
            runtime.spawn(worker(
                channel.to_owned(),
                receiver,
                Arc::downgrade(&self.inner),
            ));
            sender
        });
        self.inner.counters.pending.fetch_add(1, Ordering::Relaxed);
        if sender.try_send((notifier, notification)).is_err() {
            self.inner.counters.pending.fetch_sub(1, Ordering::Relaxed);
            self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.inner.count(channel, |s| s.dropped += 1);
            tracing::warn!(
                channel,
                "the channel's queue is full; a notification was dropped"
            );
        }
    }

    /// The counts of every channel together.
    pub(crate) fn stats(&self) -> DeliveryStats {
        let c = &self.inner.counters;
        DeliveryStats {
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            pending: c.pending.load(Ordering::Relaxed),
        }
    }

    /// The counts of one channel.
    pub(crate) fn channel_stats(&self, channel: &str) -> DeliveryStats {
        self.inner
            .per_channel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }
}

impl QueueInner {
    fn count(&self, channel: &str, change: impl FnOnce(&mut DeliveryStats)) {
        let mut all = self.per_channel.lock().unwrap_or_else(|p| p.into_inner());
        change(all.entry(channel.to_owned()).or_default());
    }
}

/// Sends one channel's notifications in order, retrying each; ends when the
/// queue is dropped.
async fn worker(
    channel: String,
    mut jobs: mpsc::Receiver<Job>,
    queue: std::sync::Weak<QueueInner>,
) {
    let mut last_log: Option<tokio::time::Instant> = None;
    let mut unlogged: u64 = 0;
    while let Some((notifier, notification)) = jobs.recv().await {
        let Some(first_backoff) = queue.upgrade().map(|q| q.first_backoff) else {
            return;
        };
        let mut backoff = first_backoff;
        let mut delivered = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let error = match tokio::time::timeout(SEND_TIMEOUT, notifier.send(&notification)).await
            {
                Ok(Ok(())) => {
                    delivered = true;
                    break;
                }
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {}s", SEND_TIMEOUT.as_secs()),
            };
            if let Some(q) = queue.upgrade() {
                q.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                q.count(&channel, |s| s.failed_attempts += 1);
            }
            let now = tokio::time::Instant::now();
            if last_log.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
                tracing::warn!(
                    channel,
                    attempt,
                    alert = %notification.alert_id,
                    %error,
                    failures_not_logged = unlogged,
                    "a notification could not be delivered"
                );
                last_log = Some(now);
                unlogged = 0;
            } else {
                unlogged += 1;
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        let Some(q) = queue.upgrade() else { return };
        q.counters.pending.fetch_sub(1, Ordering::Relaxed);
        if delivered {
            q.counters.sent.fetch_add(1, Ordering::Relaxed);
            q.count(&channel, |s| s.sent += 1);
        } else {
            q.counters.failed.fetch_add(1, Ordering::Relaxed);
            q.count(&channel, |s| s.failed += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use async_trait::async_trait;

    use super::*;
    use crate::alerts::notification::{NotificationKind, NotifyError, Severity};

    struct Flaky {
        failures_left: AtomicU32,
        sent: AtomicU32,
    }

    #[async_trait]
    impl Notifier for Flaky {
        async fn send(&self, _: &Notification) -> Result<(), NotifyError> {
            if self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(NotifyError::Unreachable("down".into()));
            }
            self.sent.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn notification() -> Notification {
        let at = tailmon_core::OffsetDateTime::UNIX_EPOCH;
        Notification {
            kind: NotificationKind::Test,
            alert_id: "a".into(),
            rule: "r".into(),
            severity: Severity::Warning,
            device_id: "d".into(),
            org: tailmon_core::OrgId::default(),
            metric: "cpu_usage".into(),
            value: Some(1.0),
            op: ">".into(),
            threshold: 0.0,
            since: at,
            at,
            url: "http://localhost/".into(),
            top_processes: None,
            summary: "s".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_channel_is_retried_with_backoff_then_counted() {
        let queue = NotifyQueue::new();
        let flaky = Arc::new(Flaky {
            failures_left: AtomicU32::new(2),
            sent: AtomicU32::new(0),
        });
        queue.send("a", flaky.clone(), notification());
        let started = tokio::time::Instant::now();
        while queue.stats().pending > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // 1 s, then 2 s of backoff before the third try succeeded.
        assert!(started.elapsed() >= Duration::from_secs(3));
        assert_eq!(flaky.sent.load(Ordering::SeqCst), 1);
        let stats = queue.channel_stats("a");
        assert_eq!((stats.sent, stats.failed_attempts, stats.failed), (1, 2, 0));

        let dead = Arc::new(Flaky {
            failures_left: AtomicU32::new(u32::MAX),
            sent: AtomicU32::new(0),
        });
        queue.send("b", dead, notification());
        while queue.stats().pending > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let stats = queue.channel_stats("b");
        assert_eq!((stats.sent, stats.failed_attempts, stats.failed), (0, 5, 1));
    }
}
