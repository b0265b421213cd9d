use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tailmon_collect::{Collector, Collectors};
use tailmon_core::{OffsetDateTime, Report};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::delivery::Delivery;
use crate::delivery_queue::DeliveryQueue;
use crate::queue_dir::{QueueDir, QueueDirError};
use crate::{Client, Drops};

/// How often the agent reports: 5 s, as the original Tailmon agent did.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// The first retry waits up to this long: 1 s.
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_secs(1);
/// No retry waits longer than this, unless the server asks for longer with
/// `Retry-After`: 8 s. So queued reports flow again within 8 s of the
/// server's return (plus the request), and a server that is down sees one
/// attempt every 4 s on average from each agent, less than the agent's
/// normal cadence at the 5 s [`DEFAULT_INTERVAL`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(8);
/// The wait before the first collection, so that CPU usage covers a real
/// sample window: 1 s.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(1);

/// How much history the delivery queue holds by default: 24 h of reports at
/// the agent's interval, so 17,280 reports at the 5 s [`DEFAULT_INTERVAL`].
/// See [`AgentBuilder::queue_capacity`].
pub const DEFAULT_QUEUE_SPAN: Duration = Duration::from_secs(24 * 3600);

/// What the agent has done so far; watch it with [`Agent::status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgentStatus {
    /// Reports the server acknowledged.
    pub sent: u64,
    /// Requests that failed, plus reports the server refused.
    pub failed: u64,
    /// Requests that failed since the last success.
    pub consecutive_failures: u32,
    /// Reports collected but not delivered yet, waiting in the delivery queue.
    pub queued: usize,
    /// Reports dropped for any reason, never to be delivered: `drops.total()`.
    pub dropped: u64,
    /// Reports dropped, by reason.
    pub drops: Drops,
}

/// Collects a report every interval and delivers it, keeping what the server
/// could not take in a bounded queue and back-filling it once the server
/// answers again.
///
/// The agent runs on two clocks. The collection clock ticks every interval,
/// always, even while the server is down, so that the history it back-fills
/// has no gap. The delivery clock runs on the same cadence while the server
/// answers, and falls back to exponential backoff with full jitter after a
/// failure (capped at [`DEFAULT_MAX_BACKOFF`], but never shorter than the
/// server's `Retry-After`, itself capped at 5 minutes), returning to normal
/// after a success.
///
/// While nothing is queued, each report goes straight to `POST /api/metrics`.
/// A report not delivered joins the queue, and so does every report
/// collected while the queue is not empty. Once a request may start again,
/// the queue is sent oldest first, in batches of up to
/// [`tailmon_core::MAX_BATCH_REPORTS`] through `POST /api/v1/reports`, one
/// after the other until it is empty or a request fails. Each report
/// carries its own `last_seen`, so back-filled ones land where they belong.
///
/// Reports are kept whatever the failure, unless the server refuses that
/// very report: no connection, a timeout, 429, 5xx; 401 and 403 (the token
/// is at fault, not the reports: each refusal is logged as an error at most
/// once a minute, never with the token); 404, 405 and any other 4xx that
/// does not blame the report (a proxy's page during a deploy); and a 2xx
/// batch answer the agent cannot read (sending again is safe: the server
/// drops duplicates by device and time). A batch refused as a whole (413,
/// 422…) is split in halves, down to single reports, and the agent
/// remembers the size the server took rather than growing back into a
/// refusal. A server is taken to have no batch endpoint (the original
/// Tailmon) only when a batch gets 404 or 405 and a single report to
/// `POST /api/metrics` is then stored; the queue then goes one by one for an
/// hour.
///
/// A report is dropped only when the server refuses it by name (422, or 400
/// or 413 with a Tailmon error body, to `POST /api/metrics`; or listed as
/// refused in a batch answer), or when the queue is full: then the oldest
/// queued report makes room. Drops are counted by reason in
/// [`AgentStatus::drops`], and a warning says how many reports were dropped,
/// and why, at once for the first drop and then at most once a minute. When
/// the queue is empty again after an outage, a line says so, with how many
/// queued reports were sent and how many were dropped meanwhile.
///
/// The queue holds [`DEFAULT_QUEUE_SPAN`] of reports unless told otherwise.
/// Queued reports leave out `top_processes` (a point-in-time list worthless
/// hours later) and are kept as their JSON, about 0.8 to 2 KiB each for a
/// host report.
///
/// By default the queue lives in memory: reports still queued when the agent
/// stops are lost (the stop's log line says how many). With a
/// [queue directory](AgentBuilder::queue_dir) they are kept on disk, survive
/// a restart, a crash or a reboot, and go once the agent runs again.
pub struct Agent {
    client: Client,
    collector: Collectors,
    device_id: String,
    interval: Duration,
    warmup: Duration,
    retry_base: Duration,
    max_backoff: Duration,
    queue_capacity: Option<usize>,
    queue_dir: Option<QueueDir>,
    status: watch::Sender<AgentStatus>,
    /// The latest report collected, for [`Agent::latest_report`].
    latest: watch::Sender<Option<Arc<Report>>>,
    /// Drawn at start and sent with every report (see [`new_agent_instance`]).
    instance: String,
}

/// A fresh random agent instance id (16 hex digits) for
/// [`Report::agent_instance`]: an agent draws one at start, so the server
/// can tell two agents reporting under one device id from one that
/// restarted. [`Agent`] does this by itself.
pub fn new_agent_instance() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// Builds an [`Agent`]; every setting has a documented default.
#[must_use]
pub struct AgentBuilder {
    agent: Agent,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("client", &self.client)
            .field("collector", &self.collector)
            .field("device_id", &self.device_id)
            .field("interval", &self.interval)
            .field("warmup", &self.warmup)
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_dir", &self.queue_dir.as_ref().map(QueueDir::dir))
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AgentBuilder").field(&self.agent).finish()
    }
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
                queue_capacity: None,
                queue_dir: None,
                status: watch::Sender::new(AgentStatus::default()),
                latest: watch::Sender::new(None),
                instance: new_agent_instance(),
            },
        }
    }

    /// A live view of what the agent has sent, failed to send and queued.
    pub fn status(&self) -> watch::Receiver<AgentStatus> {
        self.status.subscribe()
    }

    /// The latest report collected (delivered or not), for a local reader
    /// such as the agent's Prometheus endpoint; `None` before the first.
    pub fn latest_report(&self) -> watch::Receiver<Option<Arc<Report>>> {
        self.latest.subscribe()
    }

    /// Runs until `shutdown` completes, then stops at once: a request under
    /// way is abandoned, and the reports still queued are lost, unless they
    /// are kept in a [queue directory](AgentBuilder::queue_dir).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Agent {
            client,
            mut collector,
            device_id,
            interval,
            warmup,
            retry_base,
            max_backoff,
            queue_capacity,
            queue_dir,
            status,
            latest,
            instance,
        } = self;
        let capacity = queue_capacity.unwrap_or_else(|| default_queue_capacity(interval));
        let queue = match queue_dir {
            Some(dir) => {
                let queue = DeliveryQueue::on_disk(dir, capacity);
                if !queue.is_empty() || queue.dropped() > 0 {
                    tracing::info!(
                        queued = queue.len(),
                        dropped_for_capacity = queue.dropped(),
                        "reports kept in the queue directory from an earlier run will be delivered"
                    );
                }
                queue
            }
            None => DeliveryQueue::new(capacity),
        };
        let mut delivery = Delivery::new(client, queue, retry_base, max_backoff, status);
        tokio::pin!(shutdown);
        let mut next_collection = Instant::now() + warmup;
        loop {
            let next_attempt = delivery.next_attempt();
            let queued_to_start = delivery.has_queued_to_start();
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                // The collection clock: every interval, whatever the server does.
                () = sleep_until(next_collection) => {
                    next_collection = following_tick(next_collection, interval, Instant::now());
                    let mut report = collect(&mut collector, &device_id).await;
                    report.agent_instance = Some(instance.clone());
                    if latest.receiver_count() > 0 {
                        latest.send_replace(Some(Arc::new(report.clone())));
                    }
                    delivery.offer(report, Instant::now());
                }
                outcome = delivery.sent() => delivery.finish(outcome, Instant::now()),
                // The delivery clock: queued reports go once any backoff is over.
                () = sleep_until(next_attempt), if queued_to_start => {
                    delivery.start_queued(Instant::now());
                }
            }
        }
        delivery.stop();
    }
}

/// The queue capacity that holds [`DEFAULT_QUEUE_SPAN`] at `interval`; at least 1.
fn default_queue_capacity(interval: Duration) -> usize {
    let reports = DEFAULT_QUEUE_SPAN.as_nanos() / interval.as_nanos().max(1);
    usize::try_from(reports).unwrap_or(usize::MAX).max(1)
}

/// The collection after the one scheduled at `scheduled`: one interval on,
/// keeping the cadence; if that is already past (the host slept, or the
/// collection took longer than an interval), one interval from `now`.
fn following_tick(scheduled: Instant, interval: Duration, now: Instant) -> Instant {
    let next = scheduled + interval;
    if next > now { next } else { now + interval }
}

async fn collect(collector: &mut Collectors, device_id: &str) -> Report {
    let mut report = Report::new(device_id, OffsetDateTime::now_utc());
    // Collectors logs (rate-limited) and skips a failing member.
    let _ = collector.collect(&mut report).await;
    report
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

    /// Longest delay between retries, unless the server's `Retry-After`
    /// asks for longer. Defaults to [`DEFAULT_MAX_BACKOFF`]; a longer cap
    /// spares a server that is down but delays the back-fill by up to the
    /// cap once it is back.
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.agent.max_backoff = cap;
        self
    }

    /// Most reports kept for later delivery while the server cannot take
    /// them; when full, the oldest is dropped and counted in
    /// [`Drops::queue_full`]. 0 keeps none. Defaults to
    /// [`DEFAULT_QUEUE_SPAN`] divided by the [`interval`](Self::interval):
    /// 17,280 reports at 5 s. Each costs about 0.8 to 2 KiB of memory while
    /// queued.
    pub fn queue_capacity(mut self, reports: usize) -> Self {
        self.agent.queue_capacity = Some(reports);
        self
    }

    /// Keeps the delivery queue in the directory `dir` (created if need
    /// be) rather than in memory: reports not delivered yet survive the
    /// agent's stop, its crash and its host's reboot, and go at its next
    /// start, oldest first. Same bound as in memory
    /// ([`queue_capacity`](Self::queue_capacity)); on disk, each report
    /// takes its JSON plus 8 bytes, in segment files of about 1 MiB, and
    /// memory 24 bytes. Each report queued is synced to disk (one
    /// `fdatasync` per interval during an outage; none while reports go
    /// straight through), and a record torn by a crash is cut off at the
    /// next start. Off by default: the memory queue keeps the agent
    /// smallest.
    ///
    /// Opens the directory at once, and locks it, so one agent only uses it.
    pub fn queue_dir(mut self, dir: impl AsRef<std::path::Path>) -> Result<Self, QueueDirError> {
        self.agent.queue_dir = Some(QueueDir::open(dir.as_ref())?);
        Ok(self)
    }

    /// The agent, ready to [`run`](Agent::run).
    pub fn build(self) -> Agent {
        self.agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_queue_holds_a_day_at_the_interval() {
        assert_eq!(default_queue_capacity(DEFAULT_INTERVAL), 17_280);
        assert_eq!(default_queue_capacity(Duration::from_secs(60)), 1_440);
        assert_eq!(default_queue_capacity(Duration::from_millis(200)), 432_000);
        assert_eq!(default_queue_capacity(Duration::from_secs(86_400 * 2)), 1);
        assert!(
            default_queue_capacity(Duration::ZERO) >= 1,
            "no division by zero"
        );
    }

    struct Fixed;

    #[async_trait::async_trait]
    impl tailmon_collect::Collector for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        async fn collect(
            &mut self,
            report: &mut Report,
        ) -> Result<(), tailmon_collect::CollectError> {
            report.ram_used_mb = 1;
            report.ram_total_mb = 2;
            Ok(())
        }
    }

    /// The `agent_instance` of every report the server received.
    fn instances(server: &crate::scripted_server::ScriptedServer) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for request in server.received() {
            let reports: Vec<Report> = serde_json::from_slice(&request.body)
                .or_else(|_| serde_json::from_slice(&request.body).map(|r| vec![r]))
                .expect("reports");
            out.extend(reports.into_iter().map(|r| r.agent_instance));
        }
        out
    }

    #[tokio::test]
    async fn every_report_carries_the_instance_drawn_at_start() {
        let server = crate::scripted_server::ScriptedServer::start(|_, body| {
            let len = serde_json::from_slice::<Vec<serde_json::Value>>(body).map_or(1, |v| v.len());
            (200, format!(r#"{{"accepted":{len},"rejected":[]}}"#))
        })
        .await;
        let client = Client::builder(&server.url).build().expect("client");
        let agent = Agent::builder(client, Box::new(Fixed))
            .device_id("d")
            .interval(Duration::from_millis(20))
            .warmup(Duration::ZERO)
            .build();
        let drawn = agent.instance.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(agent.run(async {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(20);
        while instances(&server).len() < 3 {
            assert!(Instant::now() < deadline, "three reports within 20 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        running.await.expect("agent stopped");
        let seen = instances(&server);
        assert!(
            seen.iter().all(|i| i.as_deref() == Some(drawn.as_str())),
            "{seen:?}"
        );
        assert_eq!(drawn.len(), 16);
        assert_ne!(drawn, new_agent_instance(), "each agent draws its own");
    }

    #[test]
    fn collection_keeps_its_cadence_and_skips_missed_ticks() {
        let start = Instant::now();
        let interval = Duration::from_secs(5);
        // Woken a little late: the next tick stays on the grid.
        let next = following_tick(start, interval, start + Duration::from_millis(300));
        assert_eq!(next, start + interval);
        // Woken after several ticks went by (a suspended host): no burst.
        let late = start + Duration::from_secs(17);
        assert_eq!(following_tick(start, interval, late), late + interval);
    }
}
