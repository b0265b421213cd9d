//! The SQLite store seals each device's reports into blocks on its own,
//! device by device, `seal_after` once its first report waits, with no
//! checkpoint asked; until then they stay in the inbox table (not in
//! memory), and a query sees every report before and after.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use tailmon_core::{OffsetDateTime, OrgId, Report};
use tailmon_server::{SqliteStore, Store};
use tailmon_testkit::eventually;

const DEVICES: [&str; 2] = ["seal-a", "seal-b"];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tailmon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Rows in the inbox and raw blocks, read from the file beside the store.
fn rows(dir: &Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(dir.join("tailmon.db")).unwrap();
    let count = |table: &str| {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    (count("inbox"), count("raw_blocks"))
}

/// Three reports of each device, ten seconds apart, ending now.
async fn report_all(store: &SqliteStore, now: OffsetDateTime) {
    for device in DEVICES {
        let reports: Vec<Report> = (0..3)
            .map(|i| {
                let mut report = Report::new(device, now - time::Duration::seconds(10 * (2 - i)));
                report.cpu_usage = 10.0 * i as f64;
                report.ram_used_mb = 100;
                report.ram_total_mb = 1_000;
                report
            })
            .collect();
        store.insert_many(&OrgId::default(), reports).await.unwrap();
    }
}

/// How many reports of each device a query gives.
async fn stored(store: &SqliteStore, now: OffsetDateTime) -> Vec<usize> {
    let mut counts = Vec::new();
    for device in DEVICES {
        let stream = store
            .reports(
                &OrgId::default(),
                device,
                now - time::Duration::minutes(5),
                now,
            )
            .await
            .unwrap()
            .expect("a known device");
        counts.push(stream.count().await);
    }
    counts
}

#[tokio::test]
async fn reports_wait_in_the_inbox_until_they_are_due() {
    let dir = scratch("sealing-waits");
    let store = SqliteStore::open(&dir).unwrap();
    let now = OffsetDateTime::now_utc();
    report_all(&store, now).await;
    // Ten minutes by default: nothing is sealed yet, everything is read.
    assert_eq!(rows(&dir), (6, 0));
    assert_eq!(stored(&store, now).await, [3, 3]);
    let latest = store
        .latest_of(&OrgId::default(), DEVICES[0])
        .await
        .unwrap()
        .expect("latest");
    assert_eq!(latest.cpu_usage, 20.0, "the newest report, from the inbox");
    drop(store);
    // Dropped: sealed at close.
    assert_eq!(rows(&dir), (0, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn due_reports_are_sealed_device_by_device_with_no_checkpoint_asked() {
    let dir = scratch("sealing-due");
    let store = SqliteStore::builder(&dir)
        .seal_after(Duration::ZERO)
        .open()
        .unwrap();
    let now = OffsetDateTime::now_utc();
    report_all(&store, now).await;
    eventually(
        "every device's reports sealed into one block each",
        async || match rows(&dir) {
            (0, 2) => Ok(()),
            other => Err(format!("(inbox, raw blocks) = {other:?}")),
        },
    )
    .await;
    assert_eq!(stored(&store, now).await, [3, 3], "nothing lost in sealing");
    let latest = store
        .latest_of(&OrgId::default(), DEVICES[1])
        .await
        .unwrap()
        .expect("latest");
    assert_eq!(latest.cpu_usage, 20.0, "the newest report, from the table");
    // A retry of a sealed report is still stored once.
    report_all(&store, now).await;
    assert_eq!(stored(&store, now).await, [3, 3]);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
