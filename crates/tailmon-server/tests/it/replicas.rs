//! Several servers over one store, as replicas over one shared engine are:
//! what one receives or deletes reaches the others' readers at their fleet
//! refresh, without being stored or counted twice; an acknowledged report
//! survives the end of the replica that took it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::{
    BuildError, Clock, FleetRefresh, ManualClock, MemoryStore, Server, ServerBuilder, Store,
};
use tailmon_testkit::{Forwarding, StoreHooks, eventually};

use crate::support::{TestDirs, call, get, json, post_json};

/// One replica: open access, on `clock`, over the shared `store`.
fn replica(store: &Arc<dyn Store>, clock: &Arc<ManualClock>) -> (Server, Router) {
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .unwrap();
    let router = server.router();
    (server, router)
}

fn sample(device_id: &str, at: OffsetDateTime, cpu: f64) -> Report {
    let mut report = Report::new(device_id, at);
    report.cpu_usage = cpu;
    report.ram_used_mb = 1024;
    report.ram_total_mb = 4096;
    report
}

async fn post(router: &Router, report: &Report) {
    let (status, body) = call(
        router,
        post_json("/api/metrics", serde_json::to_vec(report).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

/// `GET /api/v1/devices`' ids and CPU figures.
async fn listed(router: &Router) -> Vec<(String, f64)> {
    let (status, body) = call(router, get("/api/v1/devices")).await;
    assert_eq!(status, StatusCode::OK);
    let page = json(&body);
    page.as_array()
        .unwrap_or_else(|| panic!("a device list: {page}"))
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_owned(),
                d["cpu_usage"].as_f64().unwrap(),
            )
        })
        .collect()
}

async fn text(router: &Router, path: &str) -> String {
    let (status, body) = call(router, get(path)).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    String::from_utf8(body).unwrap()
}

/// The value of an unlabelled sample in `GET /metrics`.
fn sample_value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} in {exposition}"))
        .trim()
        .parse()
        .unwrap()
}

/// The store the replicas share: SQLite in a fresh directory (the memory
/// store without the `sqlite` feature).
#[cfg(feature = "sqlite")]
fn sqlite(dirs: &TestDirs, clock: &Arc<ManualClock>) -> Arc<dyn Store> {
    use tailmon_server::SqliteStore;
    use tailmon_server::store::Durability;
    Arc::new(
        SqliteStore::builder(dirs.fresh())
            .clock(clock.clone())
            .durability(Durability::Process)
            .open()
            .unwrap(),
    )
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(_dirs: &TestDirs, _clock: &Arc<ManualClock>) -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

#[tokio::test]
async fn a_report_to_one_replica_reaches_the_others_readers_at_its_refresh() {
    let dirs = TestDirs::new("replicas_refresh");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let store = sqlite(&dirs, &clock);
    let (_a, a) = replica(&store, &clock);
    let (b_server, b) = replica(&store, &clock);
    // B has read the fleet (empty) before A's report.
    assert!(listed(&b).await.is_empty());

    let t0 = clock.now();
    post(&a, &sample("web-1", t0, 42.0)).await;
    assert!(listed(&b).await.is_empty(), "not before B's refresh");
    assert_eq!(
        counts(b_server.ingest().refresh_fleet().await.unwrap()),
        (1, 0)
    );
    assert_eq!(listed(&b).await, vec![("web-1".to_owned(), 42.0)]);
    let all: Value = json(&call(&b, get("/api/all_metrics")).await.1);
    assert_eq!(all[0]["device_id"], "web-1");
    assert_eq!(all[0]["cpu_usage"], 42.0);
    let (status, _) = call(&b, get("/api/v1/devices/web-1/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let exposition = text(&b, "/metrics").await;
    assert!(
        exposition.contains("device_id=\"web-1\""),
        "B's /metrics shows A's device: {exposition}"
    );
    // Received once, by A; B neither stored it again nor counted it.
    assert_eq!(
        sample_value(&exposition, "tailmon_reports_received_total"),
        0.0
    );
    assert_eq!(
        sample_value(&exposition, "tailmon_fleet_refreshes_total{result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        sample_value(&exposition, "tailmon_fleet_refresh_reports_total"),
        1.0
    );
    let exposition = text(&a, "/metrics").await;
    assert_eq!(
        sample_value(&exposition, "tailmon_reports_received_total"),
        1.0
    );
    assert_eq!(
        sample_value(&exposition, "tailmon_fleet_refresh_reports_total"),
        0.0
    );
    let stored: Vec<_> = futures_util::StreamExt::collect(
        store
            .reports(
                &Default::default(),
                "web-1",
                t0 - time::Duration::MINUTE,
                t0 + time::Duration::MINUTE,
            )
            .await
            .unwrap()
            .expect("web-1 is stored"),
    )
    .await;
    assert_eq!(stored.len(), 1, "stored once");
    assert_eq!(
        counts(b_server.ingest().refresh_fleet().await.unwrap()),
        (0, 0),
        "nothing new"
    );

    // A newer report replaces the latest; an older one does not.
    clock.advance(Duration::from_secs(5));
    post(&a, &sample("web-1", clock.now(), 55.0)).await;
    post(&b, &sample("db-1", clock.now(), 7.0)).await;
    assert_eq!(
        counts(b_server.ingest().refresh_fleet().await.unwrap()),
        (1, 0)
    );
    assert_eq!(
        listed(&b).await,
        vec![("db-1".to_owned(), 7.0), ("web-1".to_owned(), 55.0)]
    );

    // Deleted through A: gone from A at once, and from B at its first
    // refresh once web-1's last report is some seconds old (an engine makes
    // a report searchable a moment after taking it: until then, a device
    // missing from what was read may be one just reported).
    let delete = Request::delete("/api/v1/devices/web-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&a, delete).await.0, StatusCode::NO_CONTENT);
    assert_eq!(listed(&b).await.len(), 2, "until B's refresh");
    assert_eq!(
        counts(b_server.ingest().refresh_fleet().await.unwrap()),
        (0, 0),
        "heard of too lately to be taken for deleted"
    );
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        counts(b_server.ingest().refresh_fleet().await.unwrap()),
        (0, 1)
    );
    assert_eq!(listed(&b).await, vec![("db-1".to_owned(), 7.0)]);
    assert_eq!(
        call(&b, get("/api/v1/devices/web-1/metrics")).await.0,
        StatusCode::NOT_FOUND
    );
    // `/metrics` is made again at most once a second while the fleet changes.
    eventually("web-1 gone from B's /metrics", async || {
        let exposition = text(&b, "/metrics").await;
        if exposition.contains("device_id=\"web-1\"") {
            Err(exposition)
        } else {
            Ok(())
        }
    })
    .await;
    let exposition = text(&b, "/metrics").await;
    assert_eq!(
        sample_value(&exposition, "tailmon_fleet_refresh_removed_total"),
        1.0
    );
}

#[tokio::test]
async fn the_live_stream_of_a_replica_tells_of_the_others_reports_and_deletions() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (a_server, _a) = replica(&store, &clock);
    let (b_server, b) = replica(&store, &clock);
    assert!(listed(&b).await.is_empty());
    let response = tower::ServiceExt::oneshot(b.clone(), get("/api/v1/live"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(Ok(chunk)) = body.next().await {
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk));
            }
        })
    };
    a_server
        .ingest()
        .ingest(sample("web-1", clock.now(), 3.0))
        .await
        .unwrap();
    b_server.ingest().refresh_fleet().await.unwrap();
    eventually("B's live stream tells of web-1", async || {
        let seen = seen.lock().unwrap().clone();
        if seen.contains("\"device_id\":\"web-1\"") {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    a_server.ingest().delete_device("web-1").await.unwrap();
    clock.advance(Duration::from_secs(5));
    b_server.ingest().refresh_fleet().await.unwrap();
    eventually("B's live stream tells of the deletion", async || {
        let seen = seen.lock().unwrap().clone();
        if seen.contains("event: deleted") {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    reader.abort();
}

/// A store that, once armed, holds every `latest` answer until released:
/// the test acts while a refresh holds what it read.
struct HeldRead {
    inner: MemoryStore,
    /// `latest` fails while set.
    failing: std::sync::atomic::AtomicBool,
    armed: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl StoreHooks for HeldRead {
    type Inner = MemoryStore;
    fn inner(&self) -> &MemoryStore {
        &self.inner
    }
    async fn before_latest(&self) -> Result<(), tailmon_server::StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tailmon_server::StoreError::Unavailable(
                "the engine is down".into(),
            ));
        }
        Ok(())
    }
    async fn after_latest(&self) -> Result<(), tailmon_server::StoreError> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        Ok(())
    }
}

#[tokio::test]
async fn what_changes_here_while_a_refresh_reads_the_store_is_not_undone_by_it() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let held = Arc::new(Forwarding(HeldRead {
        inner: MemoryStore::new(),
        failing: false.into(),
        armed: false.into(),
        reached: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    }));
    let store: Arc<dyn Store> = held.clone();
    // No router yet: its background tasks (the alert engine's first read
    // of the store) would read the store too.
    let b_server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(store.clone())
        .build()
        .unwrap();
    let ingest = b_server.ingest().clone();
    let t0 = clock.now();
    ingest.ingest(sample("old", t0, 1.0)).await.unwrap();

    held.0
        .armed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let refreshing = {
        let ingest = ingest.clone();
        tokio::spawn(async move { ingest.refresh_fleet().await })
    };
    held.0.reached.notified().await;
    // The refresh holds a store with "old" and without "new": meanwhile
    // "new" is reported here and "old" deleted here.
    ingest.ingest(sample("new", t0, 2.0)).await.unwrap();
    assert!(ingest.delete_device("old").await.unwrap());
    held.0.release.notify_one();
    let outcome = refreshing.await.unwrap().unwrap();
    assert_eq!(counts(outcome), (0, 0), "{outcome:?}");
    let b = b_server.router();
    assert_eq!(
        listed(&b).await,
        vec![("new".to_owned(), 2.0)],
        "new kept, old not brought back"
    );
    // The next refresh reads them as they are.
    assert_eq!(counts(ingest.refresh_fleet().await.unwrap()), (0, 0));
    assert_eq!(listed(&b).await, vec![("new".to_owned(), 2.0)]);

    // A store that cannot be read: the refresh fails, changes nothing,
    // and is counted.
    held.0
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(ingest.refresh_fleet().await.is_err());
    assert_eq!(listed(&b).await, vec![("new".to_owned(), 2.0)]);
    let exposition = text(&b, "/metrics").await;
    assert_eq!(
        sample_value(
            &exposition,
            "tailmon_fleet_refreshes_total{result=\"failed\"}"
        ),
        1.0
    );
    assert_eq!(
        sample_value(&exposition, "tailmon_fleet_refreshes_total{result=\"ok\"}"),
        2.0
    );
}

/// A store that notes the devices each `latest_of_many` is asked for.
struct NotesReads {
    inner: MemoryStore,
    asked: Mutex<Vec<Vec<String>>>,
}

#[async_trait::async_trait]
impl StoreHooks for NotesReads {
    type Inner = MemoryStore;
    fn inner(&self) -> &MemoryStore {
        &self.inner
    }
    async fn before_latest_of_many(
        &self,
        devices: &[(tailmon_core::OrgId, String, OffsetDateTime)],
    ) -> Result<(), tailmon_server::StoreError> {
        let mut ids: Vec<String> = devices.iter().map(|d| d.1.clone()).collect();
        ids.sort();
        self.asked.lock().unwrap().push(ids);
        Ok(())
    }
}

/// A refresh reads the reports of the devices that changed only; a device
/// deleted elsewhere after a silence longer than the refresh window leaves
/// at the next sweep of the whole device list.
#[tokio::test]
async fn a_refresh_reads_what_changed_and_sweeps_for_long_silent_deletions() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let notes = Arc::new(Forwarding(NotesReads {
        inner: MemoryStore::new(),
        asked: Mutex::new(Vec::new()),
    }));
    let store: Arc<dyn Store> = notes.clone();
    let (a_server, _a) = replica(&store, &clock);
    let (b_server, b) = replica(&store, &clock);
    assert!(listed(&b).await.is_empty());
    let asked = || std::mem::take(&mut *notes.0.asked.lock().unwrap());
    let (a, b_ingest) = (a_server.ingest(), b_server.ingest());
    for (id, cpu) in [("dev-1", 1.0), ("dev-2", 2.0), ("dev-3", 3.0)] {
        a.ingest(sample(id, clock.now(), cpu)).await.unwrap();
    }
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (3, 0));
    assert_eq!(asked(), vec![vec!["dev-1", "dev-2", "dev-3"]]);
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (0, 0));
    assert!(asked().is_empty(), "nothing newer: no report read");

    clock.advance(Duration::from_secs(5));
    a.ingest(sample("dev-2", clock.now(), 20.0)).await.unwrap();
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (1, 0));
    assert_eq!(asked(), vec![vec!["dev-2"]], "only the one that changed");
    assert_eq!(
        listed(&b).await,
        vec![
            ("dev-1".to_owned(), 1.0),
            ("dev-2".to_owned(), 20.0),
            ("dev-3".to_owned(), 3.0)
        ]
    );

    // A report stamped well before it is stored (a clock 45 s slow) is
    // older than what a refresh reads after another: the next refresh that
    // looks further back brings it.
    a.ingest(sample("slow", clock.now() - Duration::from_secs(45), 5.0))
        .await
        .unwrap();
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (0, 0));
    clock.advance(
        tailmon_server::FLEET_WIDEN_EVERY
            .try_into()
            .expect("a positive period"),
    );
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (1, 0));
    assert_eq!(asked(), vec![vec!["slow"]]);

    // Silent for longer than the window: still listed by the store, so
    // kept; deleted elsewhere, gone at the next sweep, not before.
    clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (0, 0));
    assert!(a.delete_device("dev-3").await.unwrap());
    assert_eq!(
        counts(b_ingest.refresh_fleet().await.unwrap()),
        (0, 0),
        "the device list is read once a sweep period only"
    );
    clock.advance(
        tailmon_server::FLEET_SWEEP_EVERY
            .try_into()
            .expect("a positive period"),
    );
    assert_eq!(counts(b_ingest.refresh_fleet().await.unwrap()), (0, 1));
    assert_eq!(listed(&b).await.len(), 3, "dev-1, dev-2 and slow");
    assert!(asked().is_empty());
}

/// The refresh task itself, on tokio's paused clock: nothing before the
/// period, the other replica's report at it.
#[tokio::test(start_paused = true)]
async fn a_replica_refreshes_its_fleet_every_period() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (a_server, _a) = replica(&store, &clock);
    let b_server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(store.clone())
        .fleet_refresh(Duration::from_secs(5))
        .build()
        .unwrap();
    let b = b_server.router();
    assert!(listed(&b).await.is_empty());
    a_server
        .ingest()
        .ingest(sample("web-1", clock.now(), 3.0))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(4)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(listed(&b).await.is_empty(), "not before the period");
    tokio::time::advance(Duration::from_secs(1)).await;
    eventually("B refreshed", async || {
        let devices = listed(&b).await;
        if devices.len() == 1 {
            Ok(())
        } else {
            Err(format!("{devices:?}"))
        }
    })
    .await;
}

#[test]
fn a_refresh_shorter_than_the_minimum_is_refused() {
    let refused = ServerBuilder::new()
        .fleet_refresh(Duration::from_millis(50))
        .build();
    assert!(
        matches!(
            refused,
            Err(BuildError::InvalidSetting {
                setting: "fleet_refresh",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(
        ServerBuilder::new()
            .fleet_refresh(tailmon_server::limits::MIN_FLEET_REFRESH)
            .build()
            .is_ok()
    );
}

/// A replica that ends abruptly (its task aborted mid-stream, the server
/// dropped) loses none of the reports it acknowledged: the other replica
/// answers for them from the shared store. In process: two
/// `tailmon-server` processes cannot share one SQLite file (the store locks
/// it); with a remote engine the lead's two-replica test does it with
/// processes.
#[tokio::test]
async fn an_acknowledged_report_outlives_the_replica_that_took_it() {
    let dirs = TestDirs::new("replicas_killed");
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let store = sqlite(&dirs, &clock);
    let (b_server, b) = replica(&store, &clock);
    assert!(listed(&b).await.is_empty());
    let (a_server, a) = replica(&store, &clock);
    let t0 = clock.now() - time::Duration::minutes(10);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let enough = Arc::new(tokio::sync::Notify::new());
    let sending = {
        let acknowledged = acknowledged.clone();
        let enough = enough.clone();
        tokio::spawn(async move {
            for second in 0.. {
                let at = t0 + time::Duration::seconds(second);
                let mut report = sample("web-1", at, 1.0);
                report.cpu_usage = (second % 100) as f64;
                let (status, _) = call(
                    &a,
                    post_json("/api/metrics", serde_json::to_vec(&report).unwrap()),
                )
                .await;
                if status == StatusCode::OK {
                    let mut acknowledged = acknowledged.lock().unwrap();
                    acknowledged.push(at);
                    if acknowledged.len() == 50 {
                        enough.notify_one();
                    }
                }
                // A store that answers at once (the in-memory one, without
                // the sqlite feature) never makes this loop wait: let the
                // test's own task run on this one-thread runtime.
                tokio::task::yield_now().await;
            }
        })
    };
    enough.notified().await;
    sending.abort();
    let _ = sending.await;
    drop(a_server);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 50);

    b_server.ingest().refresh_fleet().await.unwrap();
    let from = t0.unix_timestamp() - 1;
    let (status, body) = call(
        &b,
        get(&format!(
            "/api/v1/devices/web-1/export?format=json&from={from}"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let exported: Vec<Report> = serde_json::from_slice(&body).unwrap();
    let exported: std::collections::HashSet<OffsetDateTime> =
        exported.iter().map(|r| r.last_seen).collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|at| !exported.contains(at))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let newest = acknowledged.iter().max().unwrap();
    let (_, body) = call(&b, get("/api/v1/devices")).await;
    let summaries: Vec<tailmon_core::DeviceSummary> = serde_json::from_slice(&body).unwrap();
    assert_eq!(summaries.len(), 1);
    assert!(
        summaries[0].report.last_seen >= *newest,
        "B's latest is the newest acknowledged or one stored after it"
    );
}

/// What a refresh did: (offered, removed).
fn counts(outcome: FleetRefresh) -> (usize, usize) {
    (outcome.offered, outcome.removed)
}
