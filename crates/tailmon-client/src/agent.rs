use std::future::Future;
use std::time::Duration;

use tailmon_collect::{Collector, Collectors};
use tailmon_core::{OffsetDateTime, Report};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::{Client, full_jitter};

/// How often the agent reports: 5 s, as the original Tailmon agent did.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The first retry waits up to this long: 1 s.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// No retry waits longer than this: 60 s.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The wait before the first collection, so that CPU usage covers a real
/// sample window: 1 s.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(1);

/// What the agent has done so far; watch it with [`Agent::status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentStatus {
    /// Reports the server acknowledged.
    pub sent: u64,
    /// Sends that failed.
    pub failed: u64,
    /// Sends that failed since the last success.
    pub consecutive_failures: u32,
}

/// Collects a report every interval and sends it; on failure retries with
/// exponential backoff and full jitter, and returns to the normal cadence
/// after a success.
pub struct Agent {
    client: Client,
    collector: Collectors,
    device_id: String,
    interval: Duration,
    warmup: Duration,
    retry_base: Duration,
    max_backoff: Duration,
    status: watch::Sender<AgentStatus>,
}

/// Builds an [`Agent`]; every setting has a documented default.
#[must_use]
pub struct AgentBuilder {
    agent: Agent,
}

impl Agent {
    /// A builder for an agent sending through `client` what `collector` finds.
    /// A failing collector is logged at most once every five minutes.
    pub fn builder(client: Client, collector: Box<dyn Collector>) -> AgentBuilder {
        let mut collectors = Collectors::new();
        collectors.push(collector);
        AgentBuilder {
            agent: Agent {
                client,
                collector: collectors,
                device_id: tailmon_collect::default_device_id(),
                interval: DEFAULT_INTERVAL,
                warmup: DEFAULT_WARMUP,
                retry_base: DEFAULT_RETRY_BASE,
                max_backoff: DEFAULT_MAX_BACKOFF,
                status: watch::Sender::new(AgentStatus::default()),
            },
        }
    }

    /// A live view of what the agent has sent and failed to send.
    pub fn status(&self) -> watch::Receiver<AgentStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` completes; a send under way is abandoned then.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut next = Instant::now() + self.warmup;
        loop {
            tokio::select! {
                () = sleep_until(next) => {}
                () = &mut shutdown => break,
            }
            let started = Instant::now();
            let report = self.collect().await;
            let outcome = tokio::select! {
                outcome = self.client.send(&report) => outcome,
                () = &mut shutdown => break,
            };
            next = match outcome {
                Ok(()) => {
                    self.status.send_modify(|s| {
                        s.sent += 1;
                        s.consecutive_failures = 0;
                    });
                    started + self.interval
                }
                Err(error) if error.is_retryable() => {
                    self.status.send_modify(|s| {
                        s.failed += 1;
                        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                    });
                    let attempt = self.status.borrow().consecutive_failures;
                    let delay =
                        full_jitter(attempt, self.retry_base, self.max_backoff, fastrand::f64());
                    tracing::warn!(%error, attempt, retry_in_ms = delay.as_millis() as u64, "report not delivered; retrying");
                    Instant::now() + delay
                }
                Err(error) => {
                    // The server refuses this report as such: retrying it is
                    // pointless, so keep the normal cadence and say why.
                    self.status.send_modify(|s| s.failed += 1);
                    tracing::error!(%error, "server refused the report");
                    started + self.interval
                }
            };
        }
        tracing::info!("agent stopped");
    }

    async fn collect(&mut self) -> Report {
        let mut report = Report::new(self.device_id.clone(), OffsetDateTime::now_utc());
        // Collectors logs (rate-limited) and skips a failing member.
        let _ = self.collector.collect(&mut report).await;
        report
    }
}

impl AgentBuilder {
    /// The id to report under. Defaults to [`tailmon_collect::default_device_id`].
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.agent.device_id = id.into();
        self
    }

    /// Time between reports. Defaults to [`DEFAULT_INTERVAL`].
    pub fn interval(mut self, interval: Duration) -> Self {
        self.agent.interval = interval;
        self
    }

    /// Wait before the first collection. Defaults to [`DEFAULT_WARMUP`].
    pub fn warmup(mut self, warmup: Duration) -> Self {
        self.agent.warmup = warmup;
        self
    }

    /// Ceiling of the first retry's delay; it doubles each failure. Defaults to [`DEFAULT_RETRY_BASE`].
    pub fn retry_base(mut self, base: Duration) -> Self {
        self.agent.retry_base = base;
        self
    }

    /// Longest delay between retries. Defaults to [`DEFAULT_MAX_BACKOFF`].
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.agent.max_backoff = cap;
        self
    }

    /// The agent, ready to [`run`](Agent::run).
    pub fn build(self) -> Agent {
        self.agent
    }
}
