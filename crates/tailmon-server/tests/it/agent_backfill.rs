//! No report lost across a server outage: the real agent runtime keeps what
//! it could not deliver and back-fills it, oldest first, once the server
//! answers again: through `POST /api/v1/reports`, or one by one through
//! `POST /api/metrics` for a server that predates the batch endpoint.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tailmon_server::store::OrgId;

use async_trait::async_trait;
use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use futures_util::StreamExt;
use tailmon_client::{Agent, AgentStatus, Client};
use tailmon_collect::{CollectError, Collector};
use tailmon_core::{OffsetDateTime, ProcessInfo, Report};
use tailmon_server::{MemoryStore, ServerBuilder, Store};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::support::within;

const INTERVAL: Duration = Duration::from_millis(100);
const DEVICE: &str = "backfill-host";

/// Valid figures, a sequence number (`custom.seq`) counting collections
/// from 0, and a list of processes: deterministic, unlike the host.
struct Numbered {
    next: u64,
}

#[async_trait]
impl Collector for Numbered {
    fn name(&self) -> &str {
        "numbered"
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        report.os_info = "Test OS 1.0 (Kernel: 6.1.0)".into();
        report.cpu_usage = 5.0;
        report.ram_used_mb = 1024;
        report.ram_total_mb = 4096;
        report.custom = Some(BTreeMap::from([("seq".to_owned(), self.next as f64)]));
        report.top_processes = Some(vec![ProcessInfo {
            pid: 1,
            name: "init".into(),
            cpu_percent: 0.1,
            rss_bytes: 1 << 20,
        }]);
        self.next += 1;
        Ok(())
    }
}

fn seq(report: &Report) -> u64 {
    report
        .custom
        .as_ref()
        .and_then(|c| c.get("seq"))
        .copied()
        .unwrap() as u64
}

/// The real agent on a tiny interval, sending to `addr`.
struct RunningAgent {
    status: watch::Receiver<AgentStatus>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningAgent {
    fn start(addr: SocketAddr) -> Self {
        let client = Client::builder(format!("http://{addr}/api/metrics"))
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let agent = Agent::builder(client, Box::new(Numbered { next: 0 }))
            .device_id(DEVICE)
            .interval(INTERVAL)
            .warmup(INTERVAL)
            .retry_base(Duration::from_millis(20))
            .max_backoff(Duration::from_millis(100))
            .build();
        let status = agent.status();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        Self { status, stop, task }
    }

    async fn wait_for(&mut self, what: impl FnMut(&AgentStatus) -> bool) -> AgentStatus {
        *within(self.status.wait_for(what))
            .await
            .expect("agent alive")
    }

    /// Stops the agent and returns its last status.
    async fn stop(self) -> AgentStatus {
        self.stop.send(()).unwrap();
        within(self.task).await.expect("agent task did not panic");
        *self.status.borrow()
    }
}

/// Requests a server answered, as `(method, path)`.
type RequestLog = Arc<Mutex<Vec<(Method, String)>>>;

/// A Tailmon server on `listener` over `store`, until [`stop`](Self::stop),
/// noting each request in `requests`.
struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Serving {
    fn start(listener: TcpListener, store: &Arc<MemoryStore>, requests: &RequestLog) -> Self {
        let server = ServerBuilder::new()
            .open_access()
            .store(store.clone())
            .build()
            .unwrap();
        let requests = requests.clone();
        let router = server.router().layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let requests = requests.clone();
                async move {
                    let seen = (request.method().clone(), request.uri().path().to_owned());
                    requests.lock().unwrap().push(seen);
                    next.run(request).await
                }
            },
        ));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Self { stop, task }
    }

    /// Stops accepting, finishes the requests under way and frees the port.
    async fn stop(self) {
        self.stop.send(()).unwrap();
        within(self.task).await.unwrap().expect("served");
    }
}

/// A loopback address nobody listens on (yet).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback")
}

/// Measures how long this process's threads are held off the CPU: a thread
/// that sleeps 5 ms at a time and notes the longest it overslept.
struct StallMeter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Duration>,
}

impl StallMeter {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let step = Duration::from_millis(5);
            let mut longest = Duration::ZERO;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let before = std::time::Instant::now();
                std::thread::sleep(step);
                longest = longest.max(before.elapsed().saturating_sub(step));
            }
            longest
        });
        Self { stop, thread }
    }

    /// The longest stall seen since the start.
    fn stop(self) -> Duration {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("stall meter")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_backfills_an_outage_without_gap_or_duplicate() {
    let store = Arc::new(MemoryStore::new());
    let requests = RequestLog::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Serving::start(listener, &store, &requests);
    let stalls = StallMeter::start();
    let mut agent = RunningAgent::start(addr);

    // Up: reports go straight through, one by one.
    agent.wait_for(|s| s.sent >= 3).await;

    // Down for a while: the agent keeps collecting on its interval, queueing.
    server.stop().await;
    let down_since = OffsetDateTime::now_utc();
    let during = agent.wait_for(|s| s.queued >= 8).await;
    assert!(during.consecutive_failures >= 1, "{during:?}");
    assert_eq!(during.dropped, 0);

    // Up again, a new server on the same port with the same store.
    let listener = TcpListener::bind(addr).await.expect("rebind the same port");
    let up_again = OffsetDateTime::now_utc();
    let server = Serving::start(listener, &store, &requests);
    let drained = agent
        .wait_for(|s| s.queued == 0 && s.consecutive_failures == 0)
        .await;
    assert!(drained.sent >= 3 + 8, "{drained:?}");
    let last = agent.stop().await;
    let stall = stalls.stop();
    server.stop().await;

    let reports: Vec<Report> = store
        .reports(
            &OrgId::default(),
            DEVICE,
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap()
        .expect("device known")
        .map(|r| r.unwrap())
        .collect()
        .await;

    // Every report collected was stored exactly once: the sequence numbers
    // run from 0 without a hole (a send abandoned at shutdown can only miss
    // the very last ones), and no sample time repeats.
    let seqs: Vec<u64> = reports.iter().map(seq).collect();
    let expected: Vec<u64> = (0..reports.len() as u64).collect();
    assert_eq!(seqs, expected, "stored in time order, each once, none lost");
    let mut times: Vec<OffsetDateTime> = reports.iter().map(|r| r.last_seen).collect();
    times.dedup();
    assert_eq!(times.len(), reports.len(), "no duplicate last_seen");
    assert!(
        (last.sent..=last.sent + 1).contains(&(reports.len() as u64)),
        "{} stored, {last:?}",
        reports.len()
    );
    assert_eq!(last.dropped, 0);

    // The history has no gap: consecutive samples are at most two intervals
    // apart, beside the longest stall this process had (a busy machine may
    // hold every thread of it for a while, the agent's included).
    let max_gap = time::Duration::try_from(2 * INTERVAL + stall).unwrap();
    for pair in reports.windows(2) {
        let gap = pair[1].last_seen - pair[0].last_seen;
        assert!(
            gap <= max_gap,
            "gap of {gap} between seq {} and {}",
            seq(&pair[0]),
            seq(&pair[1])
        );
    }

    // The outage is covered, by back-filled reports: those lose their
    // point-in-time process list; those sent straight away keep it.
    let in_outage: Vec<&Report> = reports
        .iter()
        .filter(|r| r.last_seen > down_since && r.last_seen < up_again)
        .collect();
    assert!(in_outage.len() >= 8, "{} in the outage", in_outage.len());
    assert!(in_outage.iter().all(|r| r.top_processes.is_none()));
    assert!(reports[..3].iter().all(|r| r.top_processes.is_some()));
    assert!(in_outage.iter().all(|r| r.received_at.is_some()));

    // The back-fill went through the batch endpoint, not report by report.
    let requests = requests.lock().unwrap();
    let count = |path: &str| {
        requests
            .iter()
            .filter(|(method, p)| method == Method::POST && p == path)
            .count()
    };
    let (batches, singles) = (count("/api/v1/reports"), count("/api/metrics"));
    assert!(batches >= 1, "{requests:?}");
    assert!(
        singles + in_outage.len() <= reports.len() + 1,
        "{singles} single sends for {} reports",
        reports.len()
    );
}

/// What an old server received.
#[derive(Default)]
struct OldServerLog {
    reports: Vec<Report>,
    /// Requests to anything but `POST /api/metrics`.
    others: Vec<(Method, String)>,
}

/// The original Tailmon's ingest alone: `POST /api/metrics`, nothing else.
/// With `batch_get_only`, `/api/v1/reports` exists for GET only, so a POST
/// there is answered 405 rather than 404.
async fn old_server(
    listener: TcpListener,
    batch_get_only: bool,
) -> (Arc<Mutex<OldServerLog>>, oneshot::Sender<()>) {
    let log = Arc::new(Mutex::new(OldServerLog::default()));
    let ingest = {
        let log = log.clone();
        move |Json(report): Json<Report>| async move {
            log.lock().unwrap().reports.push(report);
            StatusCode::OK
        }
    };
    let fallback = {
        let log = log.clone();
        move |method: Method, uri: Uri| async move {
            log.lock()
                .unwrap()
                .others
                .push((method, uri.path().to_owned()));
            StatusCode::NOT_FOUND
        }
    };
    let mut router = axum::Router::new().route("/api/metrics", axum::routing::post(ingest));
    if batch_get_only {
        router = router.route(
            "/api/v1/reports",
            axum::routing::get(|| async { "nothing" }).fallback({
                let log = log.clone();
                move |method: Method, uri: Uri| async move {
                    log.lock()
                        .unwrap()
                        .others
                        .push((method, uri.path().to_owned()));
                    StatusCode::METHOD_NOT_ALLOWED
                }
            }),
        );
    }
    let router = router.fallback(fallback);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    (log, stop)
}

async fn drains_into_an_old_server(batch_get_only: bool) {
    let addr = free_addr();
    let mut agent = RunningAgent::start(addr);
    let queued = agent.wait_for(|s| s.queued >= 5).await;

    let listener = TcpListener::bind(addr)
        .await
        .expect("bind the agent's port");
    let (log, stop_server) = old_server(listener, batch_get_only).await;
    let drained = agent
        .wait_for(|s| s.queued == 0 && s.consecutive_failures == 0)
        .await;
    assert!(drained.sent >= queued.queued as u64, "{drained:?}");
    let last = agent.stop().await;
    let _ = stop_server.send(());

    let log = log.lock().unwrap();
    // The batch endpoint was tried once; its absence is remembered.
    assert_eq!(
        log.others,
        [(Method::POST, "/api/v1/reports".to_owned())],
        "one probe of the batch endpoint"
    );
    // Then the queue went one by one, oldest first, none lost, none twice.
    let seqs: Vec<u64> = log.reports.iter().map(seq).collect();
    let expected: Vec<u64> = (0..log.reports.len() as u64).collect();
    assert_eq!(seqs, expected);
    assert!(log.reports.len() as u64 >= last.sent, "{last:?}");
    assert!(log.reports.len() >= queued.queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_drains_its_queue_one_by_one_into_a_server_without_batches() {
    drains_into_an_old_server(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_takes_405_on_the_batch_endpoint_as_no_batches() {
    drains_into_an_old_server(true).await;
}
