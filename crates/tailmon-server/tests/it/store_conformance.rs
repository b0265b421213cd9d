//! One conformance suite for every [`Store`]; each implementation runs it
//! through `Arc<dyn Store>` and `Box<dyn Store>`.

use std::sync::Arc;

use tailmon_server::{MemoryStore, Store};

use crate::support::report;

async fn latest_is_per_device_and_sorted(store: &dyn Store) {
    assert!(store.latest().await.expect("latest").is_empty());
    assert!(store.devices().await.expect("devices").is_empty());
    store.insert(report("zeta", 1.0, 10)).await.expect("insert");
    store
        .insert(report("alpha", 2.0, 20))
        .await
        .expect("insert");
    store.insert(report("zeta", 3.0, 30)).await.expect("insert");
    let latest = store.latest().await.expect("latest");
    let seen: Vec<(&str, f64, u64)> = latest
        .iter()
        .map(|r| (r.device_id.as_str(), r.cpu_usage, r.ram_used_mb))
        .collect();
    assert_eq!(seen, [("alpha", 2.0, 20), ("zeta", 3.0, 30)]);
    let mut devices = store.devices().await.expect("devices");
    devices.sort();
    assert_eq!(devices, ["alpha", "zeta"]);
}

async fn reports_round_trip_unchanged(store: &dyn Store) {
    let mut original = report("round-trip", 12.25, 1234);
    original.received_at = Some(original.last_seen);
    store.insert(original.clone()).await.expect("insert");
    let latest = store.latest().await.expect("latest");
    assert_eq!(
        latest.iter().find(|r| r.device_id == "round-trip"),
        Some(&original)
    );
}

async fn concurrent_inserts_all_land(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.insert(report(&format!("c{n:02}"), 1.0, 1)).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("insert");
    }
    let ids: Vec<String> = store
        .latest()
        .await
        .expect("latest")
        .into_iter()
        .map(|r| r.device_id)
        .collect();
    let expected: Vec<String> = (0..50).map(|n| format!("c{n:02}")).collect();
    assert_eq!(ids, expected);
}

/// Runs every check on fresh stores from `make`, as `Box<dyn Store>` and as `Arc<dyn Store>`.
async fn suite(make: impl Fn() -> Box<dyn Store>) {
    latest_is_per_device_and_sorted(make().as_ref()).await;
    reports_round_trip_unchanged(make().as_ref()).await;
    concurrent_inserts_all_land(Arc::from(make())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    suite(|| Box::new(MemoryStore::new())).await;
}
