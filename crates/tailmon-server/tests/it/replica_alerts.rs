//! Alerts once with two replicas: both evaluate every rule and send the
//! same alert to a real Alertmanager (Debian's `prometheus-alertmanager`),
//! which de-duplicates them as it does Prometheus HA pairs' alerts: its
//! receiver (a webhook the test runs) gets one notification of the firing
//! and one of the resolution.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use serde_json::Value;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::{ConfigFile, MemoryStore, Server, ServerBuilder, Store};
use tailmon_testkit::{ALERTMANAGER, Alertmanager, eventually, replica_alerts_toml, webhook_route};

use crate::alert_channels::{have, scratch_dir};

/// Alertmanager's webhook notifications, as received.
#[derive(Clone, Default)]
struct Hook {
    received: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    async fn start() -> (Self, String) {
        let hook = Self::default();
        async fn record(State(hook): State<Hook>, body: Bytes) {
            let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            hook.received.lock().unwrap().push(value);
        }
        let app = Router::new()
            .route("/hook", axum::routing::post(record))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, format!("http://{addr}/hook"))
    }

    fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

/// A replica over `store` whose `cpu-high` rule (CPU above 80 %, no hold)
/// notifies Alertmanager at `alertmanager`.
fn replica(store: &Arc<dyn Store>, alertmanager: &str) -> (Server, Router) {
    let file = ConfigFile::from_toml(&replica_alerts_toml(alertmanager)).unwrap();
    let server = ServerBuilder::new()
        .open_access()
        .store(store.clone())
        .alerts(file.alerts)
        .build()
        .unwrap();
    let router = server.router();
    (server, router)
}

fn sample(cpu: f64) -> Report {
    let mut report = Report::new("web-1", OffsetDateTime::now_utc());
    report.cpu_usage = cpu;
    report.ram_used_mb = 1024;
    report.ram_total_mb = 4096;
    report
}

/// Waits until `replica`'s Alertmanager channel has delivered `sent`.
async fn delivered(replica: &Server, name: &str, sent: u64) {
    eventually(&format!("{name} delivered {sent}"), async || {
        let stats = replica.alerts().stats().delivery;
        if stats.sent == sent && stats.pending == 0 {
            Ok(())
        } else {
            Err(format!("{stats:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn two_replicas_make_one_notification_through_alertmanager() {
    if !have(
        "prometheus-alertmanager",
        Path::new(ALERTMANAGER).exists(),
        "apt-get install prometheus-alertmanager",
    ) {
        return;
    }
    let (hook, hook_url) = Hook::start().await;
    let dir = scratch_dir("replica-alerts");
    let alertmanager = Alertmanager::start(&dir, &webhook_route(&hook_url)).await;
    let base = alertmanager.url().to_owned();

    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (a, _a_router) = replica(&store, &base);
    let (b, _b_router) = replica(&store, &base);
    // B has read the (empty) fleet before the report.
    b.ingest().refresh_fleet().await.unwrap();

    // Over the threshold, reported to A; B sees it at its refresh. Each
    // fires and tells Alertmanager.
    a.ingest().ingest(sample(95.0)).await.unwrap();
    b.ingest().refresh_fleet().await.unwrap();
    delivered(&a, "A", 1).await;
    delivered(&b, "B", 1).await;
    let firing = eventually("the firing notification", async || {
        let received = hook.received();
        received
            .iter()
            .find(|n| n["status"] == "firing")
            .cloned()
            .ok_or_else(|| format!("{received:?}"))
    })
    .await;
    let alerts = firing["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "one alert of two replicas: {firing}");
    assert_eq!(alerts[0]["labels"]["alertname"], "cpu-high");
    assert_eq!(alerts[0]["labels"]["device"], "web-1");
    assert_eq!(alerts[0]["labels"]["metric"], "cpu_usage");
    assert_eq!(alerts[0]["labels"]["severity"], "critical");
    assert_eq!(
        alerts[0]["annotations"]["url"],
        "https://tailmon.example.com/device.html?id=web-1"
    );

    // Back under: both resolve, and Alertmanager tells once.
    a.ingest().ingest(sample(10.0)).await.unwrap();
    b.ingest().refresh_fleet().await.unwrap();
    delivered(&a, "A", 2).await;
    delivered(&b, "B", 2).await;
    eventually("the resolved notification", async || {
        let received = hook.received();
        if received.iter().any(|n| n["status"] == "resolved") {
            Ok(())
        } else {
            Err(format!("{received:?}"))
        }
    })
    .await;
    let statuses: Vec<Value> = hook
        .received()
        .iter()
        .map(|n| n["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![Value::from("firing"), Value::from("resolved")],
        "one notification each, for two replicas' alerts: {:?}",
        hook.received()
    );
    drop(alertmanager);
    let _ = std::fs::remove_dir_all(&dir);
}
