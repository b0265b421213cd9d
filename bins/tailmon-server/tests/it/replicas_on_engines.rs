//! Issue 20's proof with real engines: two `tailmon-server` replicas
//! (`--store prometheus`, the fleet refresh at its default) over one
//! Prometheus, then one VictoriaMetrics (`tailmon_testkit::Engine`), with
//! clients split between them as a load balancer would split agents. Both
//! replicas list every device with the same history; an alert over the
//! threshold reaches a real Alertmanager from both and is notified once;
//! the engine stopped and started again, and one replica SIGKILLed and
//! started again, lose no report a client got a 2xx for; a device deleted
//! through one replica leaves the other; and two real agents (the agent
//! runtime with the host collector), one per replica, are listed by both.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tailmon_client::{Agent, Client};
use tailmon_collect::HostCollector;
use tailmon_core::{HistoryQuery, OffsetDateTime, Report};
use tailmon_testkit::{
    ALERTMANAGER, Alertmanager, Engine, EngineKind, RunningBinary, assert_no_panic, eventually,
    replica_alerts_toml, webhook_route,
};

use crate::alerts_binary::receiver;
use crate::auth_binary::http;
use crate::server_process::{announced_address, client_of, scratch_dir, start_in};

/// Devices reporting throughout, split between the replicas.
const DEVICES: usize = 6;
/// How often each of them reports.
const INTERVAL: Duration = Duration::from_millis(100);

/// One replica: its folder, its arguments, and the running binary.
struct Replica {
    dir: PathBuf,
    args: Vec<String>,
    process: RunningBinary,
    address: SocketAddr,
}

impl Replica {
    async fn start(dir: PathBuf, args: Vec<String>) -> Self {
        let borrowed: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = start_in(&dir, &borrowed, &[]);
        let address = announced_address(&process).await;
        Self {
            dir,
            args,
            process,
            address,
        }
    }

    /// SIGKILL, then the same binary on the same folder (a new port).
    async fn crash_and_restart(&mut self) {
        self.process.kill();
        let borrowed: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.process = start_in(&self.dir, &borrowed, &[]);
        self.address = announced_address(&self.process).await;
    }

    fn client(&self) -> Client {
        client_of(self.address)
    }

    /// The notifications its `am` channel sent, from `GET /metrics`.
    async fn notifications_sent(&self) -> u64 {
        let (status, _, body) = http(self.address, "GET", "/metrics", &[], "").await;
        assert_eq!(status, 200, "{body}");
        body.lines()
            .filter(|line| {
                line.starts_with("tailmon_notifications_total{")
                    && line.contains("channel=\"am\"")
                    && line.contains("result=\"sent\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// Clients reporting for [`DEVICES`] devices, device `k` to replica
/// `k % 2`, or to the other when that one cannot be reached (as a load
/// balancer fails over). Each report has its own `last_seen`; the ones a
/// replica answered with a 2xx are kept.
struct Senders {
    replicas: Arc<RwLock<[Client; 2]>>,
    acknowledged: Arc<Mutex<Vec<BTreeSet<OffsetDateTime>>>>,
    through: Arc<[AtomicU64; 2]>,
    refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn device(k: usize) -> String {
    format!("node-{k}")
}

impl Senders {
    fn start(replicas: [Client; 2], base: OffsetDateTime) -> Self {
        let replicas = Arc::new(RwLock::new(replicas));
        let acknowledged = Arc::new(Mutex::new(vec![BTreeSet::new(); DEVICES]));
        let through = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let refused = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..DEVICES)
            .map(|k| {
                let (replicas, acknowledged, through, refused, stop) = (
                    replicas.clone(),
                    acknowledged.clone(),
                    through.clone(),
                    refused.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(INTERVAL);
                    let mut n: i64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        ticks.tick().await;
                        n += 1;
                        // Never ahead of the clock: one report per tick.
                        let at = base + time::Duration::milliseconds(100 * n);
                        let mut report = Report::new(device(k), at);
                        report.cpu_usage = 20.0 + k as f64;
                        report.ram_used_mb = 1000 + n as u64;
                        report.ram_total_mb = 4096;
                        for replica in [k % 2, 1 - k % 2] {
                            let client = replicas.read().unwrap()[replica].clone();
                            match client.send(&report).await {
                                Ok(()) => {
                                    acknowledged.lock().unwrap()[k].insert(at);
                                    through[replica].fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Err(e) if e.is_connect() => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            replicas,
            acknowledged,
            through,
            refused,
            stop,
            tasks,
        }
    }

    fn total(&self) -> usize {
        self.acknowledged
            .lock()
            .unwrap()
            .iter()
            .map(BTreeSet::len)
            .sum()
    }

    fn through(&self, replica: usize) -> u64 {
        self.through[replica].load(Ordering::Relaxed)
    }

    /// Waits until `more` reports more than now are acknowledged (by
    /// `replica` when given).
    async fn wait_for_more(&self, more: u64, replica: Option<usize>, what: &str) {
        let count = || match replica {
            Some(r) => self.through(r),
            None => self.total() as u64,
        };
        let from = count();
        eventually(what, async || {
            let now = count();
            if now >= from + more {
                Ok(())
            } else {
                Err(format!("{} acknowledged since", now - from))
            }
        })
        .await;
    }

    async fn finish(self) -> Vec<BTreeSet<OffsetDateTime>> {
        self.stop.store(true, Ordering::Relaxed);
        eprintln!(
            "acknowledged {} (through A {}, B {}), not acknowledged {}",
            self.total(),
            self.through(0),
            self.through(1),
            self.refused.load(Ordering::Relaxed)
        );
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.acknowledged)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// The device ids `client`'s replica lists.
async fn listed_ids(client: &Client) -> Result<BTreeSet<String>, String> {
    Ok(client
        .devices()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|d| d.report.device_id)
        .collect())
}

/// The ids both replicas list, once each lists `expected`.
async fn both_list(replicas: &[&Replica; 2], expected: &BTreeSet<String>, what: &str) {
    for (name, replica) in ["A", "B"].iter().zip(replicas) {
        let client = replica.client();
        eventually(&format!("{what}: {name} lists every device"), async || {
            let listed = listed_ids(&client).await?;
            if listed.is_superset(expected) {
                Ok(())
            } else {
                Err(format!("{listed:?}"))
            }
        })
        .await;
    }
}

/// Waits until both replicas' `am` channel has sent `sent` notifications,
/// then until Alertmanager's receiver got one of `status`.
async fn notified(
    replicas: [&Replica; 2],
    sent: u64,
    notifications: &Mutex<Vec<Value>>,
    status: &str,
    what: &str,
) {
    for (who, replica) in ["A", "B"].iter().zip(replicas) {
        eventually(
            &format!("{what}: {who} notified {status}"),
            async || match replica.notifications_sent().await {
                n if n == sent => Ok(()),
                n => Err(format!("{n} sent")),
            },
        )
        .await;
    }
    eventually(&format!("{what}: the {status} notification"), async || {
        let got = notifications.lock().unwrap().clone();
        got.iter()
            .any(|n| n["status"] == status)
            .then_some(())
            .ok_or_else(|| format!("{got:?}"))
    })
    .await;
}

/// Both replicas' `/readyz` answering `status`.
async fn both_ready(replicas: &[&Replica; 2], status: u16, what: &str) {
    for replica in replicas {
        eventually(what, async || {
            let (got, _, body) = http(replica.address, "GET", "/readyz", &[], "").await;
            if got == status {
                Ok(())
            } else {
                Err(format!("{got} {body}"))
            }
        })
        .await;
    }
}

fn hot(cpu: f64) -> Report {
    let mut report = Report::new("hot-1", OffsetDateTime::now_utc());
    report.cpu_usage = cpu;
    report.ram_used_mb = 1024;
    report.ram_total_mb = 4096;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_each_engine_agree_alert_once_and_lose_nothing_acknowledged() {
    if !Path::new(ALERTMANAGER).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{ALERTMANAGER} is missing; .ci/run installs it"
        );
        eprintln!("skipped: {ALERTMANAGER} is not installed");
        return;
    }
    for kind in EngineKind::ALL {
        let Some(engine) = Engine::start(kind).await else {
            continue;
        };
        one_engine(kind, engine).await;
    }
}

async fn one_engine(kind: EngineKind, mut engine: Engine) {
    let name = kind.name();
    let dir = scratch_dir(&format!("replicas-{name}"));
    let (hook, notifications) = receiver().await;
    std::fs::create_dir_all(dir.join("alertmanager")).unwrap();
    let alertmanager = Alertmanager::start(
        &dir.join("alertmanager"),
        &webhook_route(&format!("http://{hook}/hook")),
    )
    .await;

    // Two replicas, each with its own folder and the same configuration;
    // no --fleet-refresh: the remote store turns it on (2 s).
    let args: Vec<String> = [
        "--store",
        "prometheus",
        "--remote-write-url",
        &engine.remote_write_url(),
        "--query-url",
        &engine.query_url(),
        "--no-local-agent",
        "--config",
        "tailmon.toml",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut replicas = Vec::new();
    for which in ["a", "b"] {
        let folder = dir.join(which);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("tailmon.toml"),
            replica_alerts_toml(alertmanager.url()),
        )
        .unwrap();
        replicas.push(Replica::start(folder, args.clone()).await);
    }
    let b = replicas.pop().unwrap();
    let mut a = replicas.pop().unwrap();
    let base = OffsetDateTime::now_utc().replace_millisecond(0).unwrap() - time::Duration::SECOND;
    let senders = Senders::start([a.client(), b.client()], base);

    // (a) Every device listed by both, whichever replica its reports reach.
    let mut expected: BTreeSet<String> = (0..DEVICES).map(device).collect();
    both_list(&[&a, &b], &expected, name).await;

    // (a') A device deleted through A leaves B's list too, at one of B's
    // refreshes once its report is some seconds old.
    let mut retired = Report::new("retired-1", OffsetDateTime::now_utc());
    retired.ram_total_mb = 1024;
    a.client().send(&retired).await.unwrap();
    let with_retired: BTreeSet<String> = expected
        .iter()
        .cloned()
        .chain(["retired-1".to_owned()])
        .collect();
    both_list(
        &[&a, &b],
        &with_retired,
        &format!("{name}: retired-1 reported"),
    )
    .await;
    assert!(a.client().delete_device("retired-1").await.unwrap());
    let b_client = b.client();
    eventually(&format!("{name}: retired-1 gone from B"), async || {
        let listed = listed_ids(&b_client).await?;
        if listed.contains("retired-1") {
            Err(format!("{listed:?}"))
        } else {
            Ok(())
        }
    })
    .await;

    // (b) Over the threshold, reported to A; B sees it at its refresh. Both
    // tell Alertmanager, which notifies once; back under, reported to B,
    // and once resolved.
    a.client().send(&hot(95.0)).await.unwrap();
    notified([&a, &b], 1, &notifications, "firing", name).await;
    b.client().send(&hot(10.0)).await.unwrap();
    notified([&a, &b], 2, &notifications, "resolved", name).await;
    let got = notifications.lock().unwrap().clone();
    let statuses: Vec<&Value> = got.iter().map(|n| &n["status"]).collect();
    assert_eq!(
        statuses,
        [&Value::from("firing"), &Value::from("resolved")],
        "{name}: one notification each for two replicas' alerts: {got:?}"
    );
    let alerts = got[0]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{name}: {got:?}");
    assert_eq!(alerts[0]["labels"]["alertname"], "cpu-high");
    assert_eq!(alerts[0]["labels"]["device"], "hot-1");
    expected.insert("hot-1".to_owned());

    // (c) The engine stopped (both replicas see it: not ready) and started
    // again on its data; acknowledgements resume (each device has at most
    // one report waiting meanwhile: twice as many are new ones).
    tokio::task::block_in_place(|| engine.stop());
    both_ready(&[&a, &b], 503, &format!("{name}: the engine is down")).await;
    engine.start_again().await;
    both_ready(&[&a, &b], 200, &format!("{name}: the engine is back")).await;
    senders
        .wait_for_more(
            2 * DEVICES as u64,
            None,
            &format!("{name}: reports after the outage"),
        )
        .await;

    // (d) Replica A killed mid-stream (its devices fail over to B), then
    // started again on its folder; acknowledgements through it resume.
    a.crash_and_restart().await;
    senders.replicas.write().unwrap()[0] = a.client();
    both_list(&[&a, &b], &expected, &format!("{name}: after A's restart")).await;
    senders
        .wait_for_more(2, Some(0), &format!("{name}: reports through the new A"))
        .await;
    let acknowledged = senders.finish().await;
    engine.flush().await;

    // Every acknowledged report is in the engine, the same through both.
    let (from, to) = (base, OffsetDateTime::now_utc() + time::Duration::SECOND);
    for (k, acked) in acknowledged.iter().enumerate() {
        assert!(acked.len() > 20, "{name}: {k} acknowledged {}", acked.len());
        let via_a = a
            .client()
            .export(&device(k), Some(from), Some(to))
            .await
            .unwrap();
        let via_b = b
            .client()
            .export(&device(k), Some(from), Some(to))
            .await
            .unwrap();
        let times: BTreeSet<OffsetDateTime> = via_b.iter().map(|r| r.last_seen).collect();
        let lost: Vec<_> = acked.difference(&times).collect();
        assert!(
            lost.is_empty(),
            "{name}: {} of {} acknowledged reports of {} lost: {lost:?}",
            lost.len(),
            acked.len(),
            device(k)
        );
        assert_eq!(
            via_a,
            via_b,
            "{name}: {} differs between replicas",
            device(k)
        );
        let query = HistoryQuery::new(device(k), "ram_used_mb", from, to);
        let history_a = a.client().history(&query).await.unwrap();
        let history_b = b.client().history(&query).await.unwrap();
        assert!(!history_a.points.is_empty(), "{name}: {history_a:?}");
        assert_eq!(history_a, history_b, "{name}: {}", device(k));
    }

    // (e) The agent runtime itself (what `tailmon-agent` runs, with the
    // host collector), one agent per replica: both replicas list both.
    // Last, as the host's own CPU may cross the alert rule's threshold.
    let agents = [(&a, "agent-via-a"), (&b, "agent-via-b")].map(|(replica, id)| {
        let collector = HostCollector::builder().build().expect("sysinfo");
        let agent = Agent::builder(replica.client(), Box::new(collector))
            .device_id(id)
            .interval(Duration::from_millis(500))
            .warmup(Duration::from_millis(200))
            .build();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        (stop, running)
    });
    let agent_ids: BTreeSet<String> = ["agent-via-a", "agent-via-b"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    both_list(&[&a, &b], &agent_ids, &format!("{name}: the agents")).await;
    for (stop, running) in agents {
        let _ = stop.send(());
        running.await.expect("the agent did not panic");
    }

    for replica in [a, b] {
        let mut process = replica.process;
        process.terminate();
        assert_no_panic(&process.finished().await.stderr);
    }
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
