//! The agent runtime (`tailmon-client`'s `Agent`, which the `tailmon-agent`
//! binary runs) reporting to the real server binary through each fault an
//! agent meets: a server restart, refused connections, answers later than
//! it waits, `503` answers, and a server name that does not resolve. Each
//! report carries its collection number, so the history shows that every
//! report collected arrived exactly once, within the queue's bound; beyond
//! it, that the oldest were dropped and counted.
//!
//! The faults other than the restart come from [`FaultProxy`] between the
//! agent and the server. DNS cannot be mended mid-run in this process (the
//! client takes no test resolver), so the DNS test here is the operator's
//! fix: an agent with a queue directory and a server name that does not
//! resolve, stopped, and started again with the right URL. The agent
//! binary's `tests/it/dns_failure.rs` mends DNS under a running agent, in a
//! mount namespace with its own `/etc/hosts`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tailmon_client::{Agent, AgentStatus, Client, Drops};
use tailmon_collect::{CollectError, Collector};
use tailmon_core::Report;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::agent_through_a_crash::{start_server, status_where};
use crate::fault_proxy::{Fault, FaultProxy};
use crate::server_binary::stop_cleanly;
use crate::server_process::{client_of, scratch_dir};

const INTERVAL: Duration = Duration::from_millis(200);
/// How long the agent waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Reports collected during each outage.
const OUTAGE_REPORTS: u64 = 10;

/// Numbers each report it fills (in `ram_used_mb`): 0, 1, 2, … across the
/// agents that share it.
struct NumberingCollector {
    next: Arc<AtomicU64>,
}

#[async_trait]
impl Collector for NumberingCollector {
    fn name(&self) -> &str {
        "numbering"
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        report.os_info = "Fault test".into();
        report.cpu_usage = 1.0;
        report.ram_total_mb = u64::MAX / 2;
        report.ram_used_mb = self.next.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// An agent running on the test's runtime.
struct RunningAgent {
    status: watch::Receiver<AgentStatus>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningAgent {
    /// An agent reporting as `device` to `url` every [`INTERVAL`], retrying
    /// after at most 1 s, with a queue of `capacity` (in memory, or in
    /// `queue_dir`), numbering its reports with `numbers`.
    fn start(
        device: &str,
        url: &str,
        numbers: &Arc<AtomicU64>,
        capacity: usize,
        queue_dir: Option<&Path>,
    ) -> Self {
        let client = Client::builder(url)
            .timeout(TIMEOUT)
            .build()
            .expect("valid URL");
        let collector = NumberingCollector {
            next: numbers.clone(),
        };
        let mut builder = Agent::builder(client, Box::new(collector))
            .device_id(device)
            .interval(INTERVAL)
            .warmup(INTERVAL)
            .retry_base(INTERVAL)
            .max_backoff(Duration::from_secs(1))
            .queue_capacity(capacity);
        if let Some(dir) = queue_dir {
            builder = builder.queue_dir(dir).expect("a queue directory");
        }
        let agent = builder.build();
        let status = agent.status();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        Self { status, stop, task }
    }

    async fn status_where(&self, what: &str, test: impl Fn(&AgentStatus) -> bool) -> AgentStatus {
        status_where(&self.status, what, test).await
    }

    /// Waits until `count` reports are collected from now on while
    /// deliveries fail, and returns the status then.
    async fn through_outage(&self, numbers: &AtomicU64, count: u64) -> AgentStatus {
        let from = numbers.load(Ordering::SeqCst);
        self.status_where("failing deliveries", |s| s.consecutive_failures >= 1)
            .await;
        let outage = self
            .status_where("reports collected in the outage", |s| {
                numbers.load(Ordering::SeqCst) >= from + count && s.consecutive_failures >= 1
            })
            .await;
        assert!(outage.queued >= 1, "reports kept: {outage:?}");
        outage
    }

    /// Waits until the queue is drained and two more reports went straight
    /// through.
    async fn recovered(&self, outage: &AgentStatus) -> AgentStatus {
        let drained = self
            .status_where("the queue drained", |s| {
                s.queued == 0 && s.consecutive_failures == 0 && s.sent > outage.sent
            })
            .await;
        self.status_where("reports flowing again", |s| s.sent >= drained.sent + 2)
            .await
    }

    /// Stops the agent, and returns its last status.
    async fn stop(self) -> AgentStatus {
        self.stop.send(()).expect("agent running");
        self.task.await.expect("the agent did not panic");
        *self.status.borrow()
    }
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The numbers of `device`'s stored reports, in time order.
async fn stored_numbers(server_port: u16, device: &str) -> Vec<u64> {
    let client = client_of(([127, 0, 0, 1], server_port).into());
    let history = client.export(device, None, None).await.expect("export");
    assert!(
        history.iter().map(|r| r.last_seen).is_sorted(),
        "in time order"
    );
    history.iter().map(|r| r.ram_used_mb).collect()
}

/// Every report collected before the agent's last status arrived exactly
/// once, in order; the one it may have been sending when stopped may have
/// arrived too.
fn assert_each_once(stored: &[u64], last: &AgentStatus, collected: u64) {
    let n = stored.len() as u64;
    assert!(
        stored.iter().copied().eq(0..n),
        "each report once, in order: {stored:?}"
    );
    assert!(
        (last.sent..=last.sent + 1).contains(&n) && n <= collected,
        "{n} stored of {collected} collected; {last:?}"
    );
    assert_eq!(last.drops, Drops::default(), "{last:?}");
}

/// A server on a fixed port, a proxy in front of it, and an agent
/// reporting through the proxy; `fault` for an outage of
/// [`OUTAGE_REPORTS`] reports, then none; each report arrives once. Returns
/// how many reports the server had stored by the end of the outage that
/// the agent still held, unacknowledged.
async fn through_proxy_fault(test: &str, fault: Fault) -> u64 {
    let dir = scratch_dir(test);
    let port = free_port();
    let server = start_server(&dir, port).await;
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into()).await;
    let numbers = Arc::new(AtomicU64::new(0));
    let url = format!("http://{}/api/metrics", proxy.addr);
    let agent = RunningAgent::start(test, &url, &numbers, 10_000, None);
    agent.status_where("reports flowing", |s| s.sent >= 3).await;

    proxy.set(fault);
    let outage = agent.through_outage(&numbers, OUTAGE_REPORTS).await;
    let stored_unacknowledged =
        (stored_numbers(port, test).await.len() as u64).saturating_sub(agent.status.borrow().sent);
    proxy.set(Fault::None);
    agent.recovered(&outage).await;
    let last = agent.stop().await;

    let stored = stored_numbers(port, test).await;
    assert_each_once(&stored, &last, numbers.load(Ordering::SeqCst));
    eprintln!(
        "{test}: {} stored, {} queued during the outage ({stored_unacknowledged} of them stored already), {} failed attempts",
        stored.len(),
        outage.queued,
        last.failed
    );
    stop_cleanly(server).await;
    stored_unacknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_through_refused_connections_loses_nothing() {
    let stored_unacknowledged = through_proxy_fault("faults-refused", Fault::Refused).await;
    assert_eq!(stored_unacknowledged, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_through_answers_later_than_its_timeout_stores_each_report_once() {
    // The server stores each report, but the agent gives up waiting and
    // sends it again: the server's duplicate rule keeps one.
    let stored_unacknowledged = through_proxy_fault(
        "faults-slow",
        Fault::SlowAnswers(TIMEOUT + Duration::from_secs(1)),
    )
    .await;
    assert!(
        stored_unacknowledged >= 1,
        "reports the agent sends again were stored already: {stored_unacknowledged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_through_503_answers_loses_nothing() {
    let stored_unacknowledged = through_proxy_fault("faults-503", Fault::Unavailable).await;
    assert_eq!(stored_unacknowledged, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_through_a_server_restart_loses_nothing() {
    let test = "faults-restart";
    let dir = scratch_dir(test);
    let port = free_port();
    let server = start_server(&dir, port).await;
    let numbers = Arc::new(AtomicU64::new(0));
    let url = format!("http://127.0.0.1:{port}/api/metrics");
    let agent = RunningAgent::start(test, &url, &numbers, 10_000, None);
    agent.status_where("reports flowing", |s| s.sent >= 3).await;

    stop_cleanly(server).await;
    let outage = agent.through_outage(&numbers, OUTAGE_REPORTS).await;
    let server = start_server(&dir, port).await;
    agent.recovered(&outage).await;
    let last = agent.stop().await;

    let stored = stored_numbers(port, test).await;
    assert_each_once(&stored, &last, numbers.load(Ordering::SeqCst));
    stop_cleanly(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_through_an_outage_beyond_its_queue_drops_the_oldest_counted() {
    let test = "faults-beyond-bound";
    const CAPACITY: usize = 5;
    let dir = scratch_dir(test);
    let port = free_port();
    let server = start_server(&dir, port).await;
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into()).await;
    let numbers = Arc::new(AtomicU64::new(0));
    let url = format!("http://{}/api/metrics", proxy.addr);
    let agent = RunningAgent::start(test, &url, &numbers, CAPACITY, None);
    agent.status_where("reports flowing", |s| s.sent >= 3).await;

    proxy.set(Fault::Refused);
    let outage = agent.through_outage(&numbers, 3 * CAPACITY as u64).await;
    assert_eq!(outage.queued, CAPACITY, "{outage:?}");
    proxy.set(Fault::None);
    agent.recovered(&outage).await;
    let last = agent.stop().await;

    let stored = stored_numbers(port, test).await;
    let dropped = last.drops.queue_full;
    assert!(dropped >= 2 * CAPACITY as u64, "{last:?}");
    assert_eq!(
        (last.dropped, last.drops.total()),
        (dropped, dropped),
        "{last:?}"
    );
    // The oldest of the outage went: one run of `dropped` numbers is
    // missing, the rest arrived once each, in order.
    let gap = stored
        .windows(2)
        .position(|pair| pair[1] != pair[0] + 1)
        .expect("a gap where the drops were");
    let mut expected: Vec<u64> = (0..=stored[gap]).collect();
    let resumed = stored[gap] + 1 + dropped;
    expected.extend(resumed..resumed + (stored.len() - gap - 1) as u64);
    assert_eq!(stored, expected, "{dropped} dropped: {last:?}");
    assert!(
        (last.sent..=last.sent + 1).contains(&(stored.len() as u64)),
        "{last:?}"
    );
    stop_cleanly(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_with_a_name_that_does_not_resolve_keeps_its_reports_for_the_fixed_url() {
    let test = "faults-dns";
    let dir = scratch_dir(test);
    let port = free_port();
    let server = start_server(&dir, port).await;
    let numbers = Arc::new(AtomicU64::new(0));
    let queue_dir = dir.join("queue");

    // A name that never resolves (`.invalid` is reserved for that).
    let wrong = format!("http://tailmon.invalid:{port}/api/metrics");
    let agent = RunningAgent::start(test, &wrong, &numbers, 10_000, Some(&queue_dir));
    let outage = agent.through_outage(&numbers, OUTAGE_REPORTS).await;
    assert_eq!(outage.sent, 0, "{outage:?}");
    let before_fix = agent.stop().await;
    let collected_before_fix = numbers.load(Ordering::SeqCst);

    // The operator fixes the URL and starts the agent again.
    let right = format!("http://127.0.0.1:{port}/api/metrics");
    let agent = RunningAgent::start(test, &right, &numbers, 10_000, Some(&queue_dir));
    agent
        .status_where("the queue of the first run delivered", |s| {
            s.queued == 0 && s.sent >= collected_before_fix + 2
        })
        .await;
    let last = agent.stop().await;
    let stored = stored_numbers(port, test).await;
    assert_each_once(&stored, &last, numbers.load(Ordering::SeqCst));
    eprintln!(
        "{test}: {} queued on disk under the wrong name ({} collected), all delivered after the fix",
        before_fix.queued, collected_before_fix
    );
    stop_cleanly(server).await;
}
