//! A database of schema version 2, written before organisations by commit
//! e53a6ea and left as a crash leaves it (`tests/fixtures/store-v2-inbox/`:
//! sealed blocks, rollups, and reports still in the inbox), opens as
//! version 3 with everything in the default organisation: each report,
//! latest report and history, before and after a reopen, and a second
//! organisation may then use the same device ids without seeing them.

use std::sync::Arc;

use futures_util::StreamExt;
use tailmon_core::{OffsetDateTime, Report, Tier};
use tailmon_server::store::{HistoryQuery, OrgId};
use tailmon_server::{ManualClock, SqliteStore, Store};

use crate::support::TestDirs;

/// The fixture's folder.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v2-inbox");

/// The instant the fixture's reports are stamped around.
const T: i64 = 1_800_000_000;

/// A report as the fixture's program built it.
fn at(device: &str, secs: i64, cpu: f64) -> Report {
    let mut r = Report::new(device, time(secs));
    r.os_info = "Debian GNU/Linux 12 (Kernel: 6.1.0)".into();
    r.cpu_usage = cpu;
    r.ram_used_mb = 1024 + secs.unsigned_abs() % 512;
    r.ram_total_mb = 8192;
    r.received_at = Some(r.last_seen);
    r
}

fn time(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(T + secs).unwrap()
}

/// Every report the fixture's program sent, by device.
fn sent() -> (Vec<Report>, Vec<Report>) {
    let mut a: Vec<Report> = (0..60)
        .map(|i| at("v2-a", -600 + i * 10, (i % 17) as f64 + 0.5))
        .collect();
    a.extend((0..12).map(|i| at("v2-a", i * 10, 40.0 + i as f64)));
    let b = (0..5)
        .map(|i| at("v2-b", -50 + i * 10, 3.25 * i as f64))
        .collect();
    (a, b)
}

async fn exported(store: &SqliteStore, org: &OrgId, device: &str) -> Option<Vec<Report>> {
    let stream = store
        .reports(org, device, time(-3_600), time(3_600))
        .await
        .unwrap()?;
    Some(stream.map(|r| r.unwrap()).collect().await)
}

/// What the store holds in the default organisation is exactly what the
/// fixture's program sent.
async fn holds_everything(store: &SqliteStore) {
    let default = OrgId::default();
    let (a, b) = sent();
    let mut devices = store.devices().await.unwrap();
    devices.retain(|(org, _)| org == &default);
    devices.sort();
    assert_eq!(
        devices,
        [
            (default.clone(), "v2-a".to_owned()),
            (default.clone(), "v2-b".to_owned())
        ]
    );
    let mut latest = store.latest().await.unwrap();
    latest.retain(|(org, _)| org == &default);
    assert_eq!(
        latest,
        [
            (default.clone(), a[a.len() - 1].clone()),
            (default.clone(), b[b.len() - 1].clone())
        ]
    );
    assert_eq!(
        store.latest_of(&default, "v2-b").await.unwrap().as_ref(),
        b.last()
    );
    assert_eq!(exported(store, &default, "v2-a").await, Some(a.clone()));
    assert_eq!(exported(store, &default, "v2-b").await, Some(b));
    // Raw history: the sealed block and the replayed inbox together.
    let raw = store
        .history(
            &default,
            &HistoryQuery::new("v2-a", "cpu_usage", time(-600), time(110)),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.tier, Tier::Raw);
    let values: Vec<f64> = raw.points.iter().map(|p| p.avg).collect();
    let want: Vec<f64> = a.iter().map(|r| r.cpu_usage).collect();
    assert_eq!(values, want);
    // Minute rollups: the checkpointed minutes and the replayed ones.
    let minutes = store
        .history(
            &default,
            &HistoryQuery::new("v2-a", "cpu_usage", time(-600), time(119)).with_max_points(12),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(minutes.tier, Tier::Minute);
    assert_eq!(minutes.points.len(), 12);
    for (minute, point) in minutes.points.iter().enumerate() {
        let start = -600 + 60 * minute as i64;
        let inside: Vec<f64> = a
            .iter()
            .filter(|r| (time(start)..time(start + 60)).contains(&r.last_seen))
            .map(|r| r.cpu_usage)
            .collect();
        let avg = inside.iter().sum::<f64>() / inside.len() as f64;
        assert_eq!(point.at, time(start));
        assert!((point.avg - avg).abs() < 1e-9, "minute {minute}: {point:?}");
        assert_eq!(
            (point.min, point.max),
            (
                inside.iter().copied().fold(f64::INFINITY, f64::min),
                inside.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            )
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_database_opens_with_everything_in_the_default_organisation() {
    let dirs = TestDirs::new("database-v2");
    let dir = dirs.fresh();
    std::fs::create_dir_all(&dir).unwrap();
    // A copy: opening migrates it.
    std::fs::copy(
        format!("{FIXTURE}/tailmon.db"),
        dir.join(tailmon_server::store::DATABASE_FILE),
    )
    .unwrap();
    let open = || {
        SqliteStore::builder(&dir)
            .clock(Arc::new(ManualClock::new(time(0))))
            .open()
            .unwrap()
    };
    let acme = OrgId::new("acme").unwrap();
    {
        let store = open();
        // Ready: the schema version it reads is the one it writes.
        store.ready().await.unwrap();
        holds_everything(&store).await;
        // Names are unique per organisation now: acme gets its own v2-a.
        assert_eq!(store.latest_of(&acme, "v2-a").await.unwrap(), None);
        assert_eq!(exported(&store, &acme, "v2-a").await, None);
        store.insert(&acme, at("v2-a", 200, 99.0)).await.unwrap();
        holds_everything(&store).await;
        store.checkpoint().await.unwrap();
    }
    // Reopened (version 3 now, nothing to move): the same, and acme's own.
    let store = open();
    store.ready().await.unwrap();
    holds_everything(&store).await;
    assert_eq!(store.devices().await.unwrap().len(), 3);
    assert_eq!(
        exported(&store, &acme, "v2-a").await,
        Some(vec![at("v2-a", 200, 99.0)])
    );
}
