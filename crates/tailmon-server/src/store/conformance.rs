//! The conformance suite every [`Store`] passes, public so that a store
//! written outside this crate can run it too (the model is object_store's
//! `integration` module). Enabled by the `conformance` feature.
//!
//! Each check is an async function that takes a store, does its work and
//! panics (as a test does) when the store answers wrongly; [`suite`] runs
//! them all on fresh stores, through `Box<dyn Store>` and `Arc<dyn Store>`.
//! Every in-tree store runs it: `MemoryStore`, and `SqliteStore` with each
//! durability and with a checkpoint after every insert.
//!
//! A third-party store runs it from its own tests, with
//! `tailmon-server = { version = "0.1", features = ["conformance"] }` among
//! its dev-dependencies:
//!
//! ```
//! use std::time::Duration;
//!
//! use tailmon_server::MemoryStore;
//! use tailmon_server::store::conformance;
//!
//! // `#[tokio::test(flavor = "multi_thread")]` in a test file.
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! async fn my_store_conforms() {
//!     // A fresh, empty store each time; here the in-memory one, which
//!     // keeps an hour of raw reports.
//!     conformance::suite(|| Box::new(MemoryStore::new()), Duration::from_secs(3600)).await;
//! }
//! # fn main() { my_store_conforms() }
//! ```
//!
//! The reports are stamped around a fixed instant ([`now`]), which is what
//! retention is applied as of: a store should not drop reports on its own
//! by the wall clock while the suite runs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tailmon_core::{OffsetDateTime, OrgId, Point, Report, Tier};

use crate::store::{HistoryQuery, Store};

/// What the checks say when the store fails a call outright.
const STORE: &str = "the store answered with an error";

/// The fixed instant the suite's reports are stamped around:
/// 2027-01-15T08:00:00Z.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The organisation every check but
/// [`organisations_never_see_each_other`] works in: the default one.
fn org() -> OrgId {
    OrgId::default()
}

/// A valid report of `device` stamped `offset_secs` from [`now`].
pub fn report_at(device: &str, offset_secs: i64, cpu: f64) -> Report {
    let mut r = Report::new(device, now() + time::Duration::seconds(offset_secs));
    r.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
    r.cpu_usage = cpu;
    r.ram_used_mb = 100;
    r.ram_total_mb = 8192;
    r.received_at = Some(r.last_seen);
    r
}

fn at(device: &str, offset_secs: i64, cpu: f64) -> Report {
    report_at(device, offset_secs, cpu)
}

/// A query of `metric` of `device` from `from` to `to` seconds from [`now`].
pub fn history_query(
    device: &str,
    metric: &str,
    from: i64,
    to: i64,
    max_points: usize,
) -> HistoryQuery {
    HistoryQuery::new(
        device,
        metric,
        now() + time::Duration::seconds(from),
        now() + time::Duration::seconds(to),
    )
    .with_max_points(max_points)
}

/// Every raw report of `device` of the default organisation stamped
/// `from..=to` seconds from [`now`], as the store exports them.
pub async fn all_reports(store: &dyn Store, device: &str, from: i64, to: i64) -> Vec<Report> {
    all_reports_in(store, &org(), device, from, to).await
}

/// Every raw report of `device` of `org` stamped `from..=to` seconds from
/// [`now`], as the store exports them.
pub async fn all_reports_in(
    store: &dyn Store,
    org: &OrgId,
    device: &str,
    from: i64,
    to: i64,
) -> Vec<Report> {
    let stream = store
        .reports(
            org,
            device,
            now() + time::Duration::seconds(from),
            now() + time::Duration::seconds(to),
        )
        .await
        .expect(STORE)
        .expect("the device is known");
    stream.map(|r| r.expect(STORE)).collect().await
}

/// (device id, CPU) of each report, all of the default organisation.
fn ids_and_cpu(reports: Vec<(OrgId, Report)>) -> Vec<(String, f64)> {
    reports
        .into_iter()
        .map(|(o, r)| {
            assert_eq!(o, org());
            (r.device_id, r.cpu_usage)
        })
        .collect()
}

/// `latest` holds one report per device, the newest, sorted by device id;
/// `devices` and `latest_of` agree with it. Needs an empty store.
pub async fn latest_is_per_device_and_sorted(store: &dyn Store) {
    assert!(store.latest().await.expect(STORE).is_empty());
    assert!(store.devices().await.expect(STORE).is_empty());
    store.insert(&org(), at("zeta", 0, 1.0)).await.expect(STORE);
    store
        .insert(&org(), at("alpha", 0, 2.0))
        .await
        .expect(STORE);
    store.insert(&org(), at("zeta", 5, 3.0)).await.expect(STORE);
    let seen = ids_and_cpu(store.latest().await.expect(STORE));
    assert_eq!(seen, [("alpha".to_owned(), 2.0), ("zeta".to_owned(), 3.0)]);
    let mut devices = store.devices().await.expect(STORE);
    devices.sort();
    assert_eq!(
        devices,
        [(org(), "alpha".to_owned()), (org(), "zeta".to_owned())]
    );
    assert_eq!(
        store
            .latest_of(&org(), "zeta")
            .await
            .expect(STORE)
            .map(|r| r.cpu_usage),
        Some(3.0)
    );
    assert_eq!(store.latest_of(&org(), "nobody").await.expect(STORE), None);
}

/// `newest_since` lists the devices whose latest report is stamped at or
/// after its time, each with that report's `last_seen`; `latest_of_many`
/// gives those reports back and leaves out a device the store does not
/// have. Needs an empty store.
pub async fn newest_since_lists_what_changed(store: &dyn Store) {
    let since = |secs: i64| now() + time::Duration::seconds(secs);
    assert!(
        store
            .newest_since(since(-60))
            .await
            .expect(STORE)
            .is_empty()
    );
    store
        .insert_many(&org(), vec![at("a", -30, 1.0), at("a", 0, 2.0)])
        .await
        .expect(STORE);
    store.insert(&org(), at("b", -120, 3.0)).await.expect(STORE);
    let sorted = |mut listed: Vec<(OrgId, String, OffsetDateTime)>| {
        listed.sort_by(|x, y| x.1.cmp(&y.1));
        listed
            .into_iter()
            .map(|(o, d, t)| {
                assert_eq!(o, org());
                // A store may keep milliseconds.
                let late = (t - now()).whole_milliseconds();
                (d, late)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sorted(store.newest_since(since(-60)).await.expect(STORE)),
        [("a".to_owned(), 0)],
        "b's latest is older; a is listed with its latest, not its back-fill"
    );
    let both = store.newest_since(since(-120)).await.expect(STORE);
    assert_eq!(
        sorted(both.clone()),
        [("a".to_owned(), 0), ("b".to_owned(), -120_000)]
    );
    let mut asked = both;
    asked.push((org(), "ghost".to_owned(), now()));
    let mut read = ids_and_cpu(store.latest_of_many(asked).await.expect(STORE));
    read.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(read, [("a".to_owned(), 2.0), ("b".to_owned(), 3.0)]);
}

/// Reports older than the latest are placed by their own time and do not
/// replace it.
pub async fn a_back_filled_report_does_not_become_the_latest(store: &dyn Store) {
    store
        .insert(&org(), at("late", 100, 50.0))
        .await
        .expect(STORE);
    store
        .insert_many(&org(), vec![at("late", 10, 1.0), at("late", 20, 2.0)])
        .await
        .expect(STORE);
    assert_eq!(
        store
            .latest_of(&org(), "late")
            .await
            .expect(STORE)
            .map(|r| r.cpu_usage),
        Some(50.0)
    );
    let cpu: Vec<f64> = all_reports(store, "late", 0, 200)
        .await
        .iter()
        .map(|r| r.cpu_usage)
        .collect();
    assert_eq!(cpu, [1.0, 2.0, 50.0], "placed by their own time");
}

/// A report comes back from `latest_of` and `reports` as it went in.
pub async fn reports_round_trip_unchanged(store: &dyn Store) {
    let mut original = at("round-trip", 0, 12.25);
    original.disks = Some(vec![tailmon_core::Disk {
        mount_point: "/data".into(),
        fs_type: "xfs".into(),
        total_bytes: 1000,
        used_bytes: 250,
        available_bytes: Some(700),
    }]);
    original.custom = Some([("queue.depth".to_owned(), 7.0)].into());
    store.insert(&org(), original.clone()).await.expect(STORE);
    assert_eq!(
        store.latest_of(&org(), "round-trip").await.expect(STORE),
        Some(original.clone())
    );
    assert_eq!(all_reports(store, "round-trip", -1, 1).await, [original]);
}

/// Fifty inserts from concurrent tasks all land. Needs an empty store and a
/// multi-threaded runtime (it spawns tasks).
pub async fn concurrent_inserts_all_land(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.insert(&org(), at(&format!("c{n:02}"), n, 1.0)).await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("insert");
    }
    let ids: Vec<String> = store
        .latest()
        .await
        .expect(STORE)
        .into_iter()
        .map(|(_, r)| r.device_id)
        .collect();
    let expected: Vec<String> = (0..50).map(|n| format!("c{n:02}")).collect();
    assert_eq!(ids, expected);
}

/// A history over few reports comes from the raw tier, in time order, with
/// inclusive bounds; an unknown device gives `None`.
pub async fn raw_history_comes_back_in_order(store: &dyn Store) {
    let reports: Vec<Report> = (0..10)
        .map(|i| at("raw", i * 5, f64::from(i as u8)))
        .collect();
    store.insert_many(&org(), reports).await.expect(STORE);
    let history = store
        .history(&org(), &history_query("raw", "cpu_usage", 0, 45, 1000))
        .await
        .expect(STORE)
        .expect("known");
    assert_eq!(history.tier, Tier::Raw);
    let values: Vec<f64> = history.points.iter().map(|p| p.avg).collect();
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    assert!(
        history
            .points
            .iter()
            .all(|p| p.min == p.avg && p.max == p.avg)
    );
    assert_eq!(history.points[3].at, now() + time::Duration::seconds(15));

    // Bounds are inclusive; a metric the device does not report gives no points.
    let some = store
        .history(&org(), &history_query("raw", "cpu_usage", 10, 20, 1000))
        .await
        .expect(STORE)
        .expect(STORE);
    assert_eq!(some.points.len(), 3);
    let none = store
        .history(
            &org(),
            &history_query("raw", "disk_used_percent:/", 0, 45, 1000),
        )
        .await
        .expect(STORE)
        .expect(STORE);
    assert!(none.points.is_empty());
    assert!(
        store
            .history(&org(), &history_query("nobody", "cpu_usage", 0, 45, 10))
            .await
            .expect(STORE)
            .is_none()
    );
}

/// A history over many reports comes from minute buckets that keep the
/// average, the minimum and the maximum (a spike stays visible).
pub async fn rollups_keep_avg_min_and_max(store: &dyn Store) {
    // Ten minutes at 5 s, starting on a minute boundary: in each minute the
    // values are 0..12 shifted by the minute, with one spike of 100.
    let start = 1_800_000_000 / 60 * 60 + 60 - 1_800_000_000;
    let mut reports = Vec::new();
    for minute in 0..10 {
        for step in 0..12 {
            let value = if step == 7 && minute == 4 {
                100.0
            } else {
                f64::from(minute + step)
            };
            reports.push(at(
                "rolled",
                start + i64::from(minute * 60 + step * 5),
                value,
            ));
        }
    }
    store.insert_many(&org(), reports).await.expect(STORE);
    let history = store
        .history(
            &org(),
            &history_query("rolled", "cpu_usage", start, start + 599, 20),
        )
        .await
        .expect(STORE)
        .expect("known");
    assert_eq!(
        history.tier,
        Tier::Minute,
        "120 reports > 20 points: minute buckets"
    );
    assert_eq!(history.points.len(), 10);
    for (minute, point) in history.points.iter().enumerate() {
        let m = minute as f64;
        let base = now() + time::Duration::seconds(start + 60 * minute as i64);
        let (avg, max) = if minute == 4 {
            ((66.0 + 12.0 * m - (m + 7.0) + 100.0) / 12.0, 100.0)
        } else {
            (m + 5.5, m + 11.0)
        };
        let expected = Point {
            at: base,
            avg,
            min: m,
            max,
        };
        assert_eq!(point.at, expected.at, "minute {minute}");
        assert!(
            (point.avg - expected.avg).abs() < 1e-9,
            "minute {minute}: {point:?} vs {expected:?}"
        );
        assert_eq!(
            (point.min, point.max),
            (expected.min, expected.max),
            "minute {minute}: the spike stays visible"
        );
    }
}

/// `histories` answers each metric as `history` does, point for point, in
/// the order asked (a name asked twice answered twice), from every tier:
/// raw, minute buckets, hour buckets, and a range where one sparse metric
/// has fewer values than the points asked and the others more; an unknown
/// device gives `None`.
pub async fn histories_match_history(store: &dyn Store) {
    // 50 minutes at 5 s, in five batches: per-core values, a disk listed
    // twice under one mount (the first counts), a custom metric in one
    // report of three.
    for batch in 0u32..5 {
        let reports: Vec<Report> = (0..120)
            .map(|i| {
                let step = batch * 120 + i;
                let offset = -3000 + 5 * i64::from(step);
                let mut r = at("many", offset, f64::from(step % 97) + 0.25);
                r.cpu_per_core = Some(vec![f64::from(step % 13), f64::from(step % 7) / 4.0]);
                let disk = |used| tailmon_core::Disk {
                    mount_point: "/".into(),
                    fs_type: "ext4".into(),
                    total_bytes: 1000,
                    used_bytes: used,
                    available_bytes: Some(1000 - used),
                };
                r.disks = Some(vec![disk(u64::from(step % 500)), disk(999)]);
                if step % 3 == 0 {
                    r.custom = Some([("sometimes".to_owned(), f64::from(step))].into());
                }
                r
            })
            .collect();
        store.insert_many(&org(), reports).await.expect(STORE);
    }
    let metrics: Vec<String> = [
        "cpu_usage",
        "cpu_core:0",
        "cpu_core:1",
        "disk_used_percent:/",
        "disk_used_bytes:/",
        "custom:sometimes",
        "ram_used_percent",
        "load_one",
        "cpu_usage",
    ]
    .map(String::from)
    .to_vec();
    // (from, to, max_points, the tier cpu_usage comes from)
    let ranges = [
        (-600, 0, 1000, Tier::Raw),
        (-3000, 0, 100, Tier::Minute),
        (-3000, 0, 10, Tier::Hour),
        (-3000, 0, 400, Tier::Minute),
    ];
    for (from, to, max_points, tier) in ranges {
        let many = store
            .histories(
                &org(),
                "many",
                &metrics,
                now() + time::Duration::seconds(from),
                now() + time::Duration::seconds(to),
                max_points,
            )
            .await
            .expect(STORE)
            .expect("known");
        assert_eq!(many.len(), metrics.len());
        for (metric, got) in metrics.iter().zip(&many) {
            let one = store
                .history(&org(), &history_query("many", metric, from, to, max_points))
                .await
                .expect(STORE)
                .expect("known");
            assert_eq!(
                got, &one,
                "{metric} over {from}..={to}, {max_points} points"
            );
        }
        assert_eq!(many[0].tier, tier, "{from}..={to}, {max_points} points");
        if tier == Tier::Raw {
            // Raw points are the reports' own values, the first of a name.
            let reports = all_reports(store, "many", from, to).await;
            for (metric, got) in metrics.iter().zip(&many) {
                let want: Vec<(OffsetDateTime, f64)> = reports
                    .iter()
                    .filter_map(|r| Some((r.last_seen, tailmon_core::metric::value(r, metric)?)))
                    .collect();
                let got: Vec<(OffsetDateTime, f64)> =
                    got.points.iter().map(|p| (p.at, p.avg)).collect();
                assert_eq!(got, want, "{metric}");
            }
        }
        assert!(!many[0].points.is_empty());
        assert!(many[7].points.is_empty(), "load_one is never reported");
    }
    assert!(
        store
            .histories(
                &org(),
                "nobody",
                &metrics,
                now() - time::Duration::HOUR,
                now(),
                100
            )
            .await
            .expect(STORE)
            .is_none()
    );
}

/// `delete_device` removes a device, its latest report and all its history.
/// Needs an empty store.
pub async fn delete_removes_a_device_and_its_history(store: &dyn Store) {
    store
        .insert_many(&org(), vec![at("gone", 0, 1.0), at("gone", 5, 2.0)])
        .await
        .expect(STORE);
    store
        .insert(&org(), at("stays", 0, 1.0))
        .await
        .expect(STORE);
    assert!(store.delete_device(&org(), "gone").await.expect(STORE));
    assert!(!store.delete_device(&org(), "gone").await.expect(STORE));
    assert_eq!(store.latest_of(&org(), "gone").await.expect(STORE), None);
    assert!(
        store
            .history(&org(), &history_query("gone", "cpu_usage", 0, 10, 10))
            .await
            .expect(STORE)
            .is_none()
    );
    assert!(
        store
            .reports(&org(), "gone", now(), now())
            .await
            .expect(STORE)
            .is_none()
    );
    assert_eq!(
        store.devices().await.expect(STORE),
        [(org(), "stays".to_owned())]
    );
}

/// `apply_retention` drops raw reports older than `raw_keep` (how long the
/// store keeps them) and nothing newer; a device gone silent keeps its
/// latest report.
pub async fn retention_removes_what_is_old_and_nothing_else(store: &dyn Store, raw_keep: Duration) {
    let keep = i64::try_from(raw_keep.as_secs()).expect("raw_keep fits in i64 seconds");
    store
        .insert_many(
            &org(),
            vec![
                at("kept", -keep - 60, 1.0),
                at("kept", -keep + 60, 2.0),
                at("kept", 0, 3.0),
                at("silent", -keep * 3, 9.0),
            ],
        )
        .await
        .expect(STORE);
    store.apply_retention(now()).await.expect(STORE);
    let cpu: Vec<f64> = all_reports(store, "kept", -keep - 120, 10)
        .await
        .iter()
        .map(|r| r.cpu_usage)
        .collect();
    assert_eq!(cpu, [2.0, 3.0]);
    assert_eq!(
        store
            .latest_of(&org(), "kept")
            .await
            .expect(STORE)
            .map(|r| r.cpu_usage),
        Some(3.0)
    );

    // A device gone silent keeps its latest report, however old.
    store.apply_retention(now()).await.expect(STORE);
    assert_eq!(
        store
            .latest_of(&org(), "silent")
            .await
            .expect(STORE)
            .map(|r| r.cpu_usage),
        Some(9.0)
    );
    assert!(
        store
            .devices()
            .await
            .expect(STORE)
            .contains(&(org(), "silent".to_owned()))
    );
}

/// A report sent again (the same device and `last_seen`) is stored once, and
/// counted once in the rollups.
pub async fn a_report_sent_twice_is_stored_once(store: &dyn Store) {
    // One minute of reports valued 0 to 11: the minute's average is 5.5.
    let start = 1_800_000_000 / 60 * 60 + 60 - 1_800_000_000;
    let reports: Vec<Report> = (0..12)
        .map(|i| at("retry", start + i * 5, i as f64))
        .collect();
    store
        .insert_many(&org(), reports.clone())
        .await
        .expect(STORE);
    // The agent did not hear the answer and sends half of them again: were
    // they counted twice, the average would fall to 4.5.
    store
        .insert_many(&org(), reports[..6].to_vec())
        .await
        .expect(STORE);
    store.insert(&org(), reports[0].clone()).await.expect(STORE);
    assert_eq!(
        all_reports(store, "retry", start, start + 59).await.len(),
        12
    );
    let minute = store
        .history(
            &org(),
            &history_query("retry", "cpu_usage", start, start + 59, 1),
        )
        .await
        .expect(STORE)
        .expect(STORE);
    assert_eq!(minute.tier, Tier::Minute);
    assert_eq!(minute.points.len(), 1);
    assert_eq!(
        (
            minute.points[0].avg,
            minute.points[0].min,
            minute.points[0].max
        ),
        (5.5, 0.0, 11.0)
    );
}

/// A back-fill older than what raw retention keeps, retried after retention
/// trimmed its raw copy, is not counted again in the rollups: once retention
/// has run, a report older than its raw cutoff is dropped (it might be
/// counted already), and the insert still succeeds.
pub async fn an_old_retry_after_retention_is_not_counted_twice(
    store: &dyn Store,
    raw_keep: Duration,
) {
    let keep = i64::try_from(raw_keep.as_secs()).expect("raw_keep fits in i64 seconds");
    // Two hours past raw retention, on a minute boundary.
    let old = (now().unix_timestamp() - keep - 7_200) / 60 * 60 - now().unix_timestamp();
    store
        .insert_many(
            &org(),
            vec![at("retry-old", old, 20.0), at("retry-old", 0, 5.0)],
        )
        .await
        .expect(STORE);
    store
        .insert(&org(), at("retry-old", old, 99.0))
        .await
        .expect(STORE);
    let minute = || history_query("retry-old", "cpu_usage", old, old + 59, 1);
    let once = |h: &tailmon_core::History| {
        h.points
            .iter()
            .all(|p| (p.avg, p.min, p.max) == (20.0, 20.0, 20.0))
    };
    let before = store
        .history(&org(), &minute())
        .await
        .expect(STORE)
        .expect(STORE);
    assert!(once(&before), "first arrival wins: {before:?}");
    store.apply_retention(now()).await.expect(STORE);
    let kept = store
        .history(&org(), &minute())
        .await
        .expect(STORE)
        .expect(STORE);
    store
        .insert(&org(), at("retry-old", old, 99.0))
        .await
        .expect(STORE);
    store
        .insert_many(
            &org(),
            vec![at("retry-old", old + 5, 99.0), at("never-seen", old, 1.0)],
        )
        .await
        .expect(STORE);
    let after = store
        .history(&org(), &minute())
        .await
        .expect(STORE)
        .expect(STORE);
    assert_eq!(after, kept, "the retry changed nothing");
    assert!(once(&after), "{after:?}");
    assert!(
        all_reports(store, "retry-old", old - 60, old + 60)
            .await
            .is_empty()
    );
    assert_eq!(
        store.latest_of(&org(), "never-seen").await.expect(STORE),
        None
    );
    // What raw retention still keeps is taken as ever.
    store
        .insert(&org(), at("retry-old", -keep + 60, 7.0))
        .await
        .expect(STORE);
    let cpu: Vec<f64> = all_reports(store, "retry-old", -keep, 10)
        .await
        .iter()
        .map(|r| r.cpu_usage)
        .collect();
    assert_eq!(cpu, [7.0, 5.0]);
}

/// Two organisations with the same device id never see each other's
/// reports: `latest`, `latest_of`, `devices`, `history`, `histories` and
/// `reports` of one answer only with what was inserted into it, a report
/// with the same device and `last_seen` in the other is not a duplicate,
/// deleting the device in one leaves the other's, and retention keeps
/// each one's latest. Needs an empty store; `raw_keep` is how long it
/// keeps raw reports.
pub async fn organisations_never_see_each_other(store: &dyn Store, raw_keep: Duration) {
    let keep = i64::try_from(raw_keep.as_secs()).expect("raw_keep fits in i64 seconds");
    let (acme, globex) = (
        OrgId::new("acme").expect("a valid name"),
        OrgId::new("globex").expect("a valid name"),
    );
    // The same device and times in both, with other values; one device
    // only in globex.
    let acme_reports: Vec<Report> = (0..10).map(|i| at("web-1", i * 5, 10.0)).collect();
    let globex_reports: Vec<Report> = (0..10).map(|i| at("web-1", i * 5, 70.0)).collect();
    store
        .insert_many(&acme, acme_reports.clone())
        .await
        .expect(STORE);
    store
        .insert_many(&globex, globex_reports.clone())
        .await
        .expect(STORE);
    store
        .insert(&globex, at("db-1", 0, 30.0))
        .await
        .expect(STORE);
    // An old report kept only by globex, for retention.
    store
        .insert(&globex, at("web-1", -keep - 60, 99.0))
        .await
        .expect(STORE);

    let latest: Vec<(String, String, f64)> = store
        .latest()
        .await
        .expect(STORE)
        .into_iter()
        .map(|(o, r)| (o.to_string(), r.device_id, r.cpu_usage))
        .collect();
    assert_eq!(
        latest,
        [
            ("acme".to_owned(), "web-1".to_owned(), 10.0),
            ("globex".to_owned(), "db-1".to_owned(), 30.0),
            ("globex".to_owned(), "web-1".to_owned(), 70.0),
        ],
        "sorted by organisation, then device"
    );
    let mut devices = store.devices().await.expect(STORE);
    devices.sort();
    assert_eq!(
        devices,
        [
            (acme.clone(), "web-1".to_owned()),
            (globex.clone(), "db-1".to_owned()),
            (globex.clone(), "web-1".to_owned()),
        ]
    );
    let cpu_of = |org: &OrgId| {
        let org = org.clone();
        async move {
            store
                .latest_of(&org, "web-1")
                .await
                .expect(STORE)
                .map(|r| r.cpu_usage)
        }
    };
    assert_eq!(cpu_of(&acme).await, Some(10.0));
    assert_eq!(cpu_of(&globex).await, Some(70.0));
    assert_eq!(
        cpu_of(&org()).await,
        None,
        "nor in the default organisation"
    );
    assert_eq!(store.latest_of(&acme, "db-1").await.expect(STORE), None);

    // Same device, same times: each organisation's own, none a duplicate.
    assert_eq!(
        all_reports_in(store, &acme, "web-1", 0, 100).await,
        acme_reports
    );
    assert_eq!(
        all_reports_in(store, &globex, "web-1", 0, 100).await,
        globex_reports
    );
    assert!(
        store
            .reports(&acme, "db-1", now(), now())
            .await
            .expect(STORE)
            .is_none()
    );
    let values = |history: Option<tailmon_core::History>| -> Vec<f64> {
        history
            .expect("known")
            .points
            .iter()
            .map(|p| p.avg)
            .collect()
    };
    let query = history_query("web-1", "cpu_usage", 0, 100, 1000);
    assert_eq!(
        values(store.history(&acme, &query).await.expect(STORE)),
        [10.0; 10]
    );
    assert_eq!(
        values(store.history(&globex, &query).await.expect(STORE)),
        [70.0; 10]
    );
    // Rollups too: one minute bucket of each holds its own values only.
    let minute = history_query("web-1", "cpu_usage", 0, 100, 1);
    for (org, value) in [(&acme, 10.0), (&globex, 70.0)] {
        let history = store
            .history(org, &minute)
            .await
            .expect(STORE)
            .expect("known");
        assert_ne!(history.tier, Tier::Raw);
        assert!(
            history
                .points
                .iter()
                .all(|p| (p.avg, p.min, p.max) == (value, value, value)),
            "{org}: {history:?}"
        );
    }
    assert!(
        store
            .history(&acme, &history_query("db-1", "cpu_usage", -10, 10, 10))
            .await
            .expect(STORE)
            .is_none()
    );
    let metrics = ["cpu_usage".to_owned()];
    let (from, to) = (now(), now() + time::Duration::seconds(100));
    let many = store
        .histories(&acme, "web-1", &metrics, from, to, 1000)
        .await
        .expect(STORE)
        .expect("known");
    assert_eq!(
        many[0].points.iter().map(|p| p.avg).collect::<Vec<_>>(),
        [10.0; 10]
    );
    assert!(
        store
            .histories(&acme, "db-1", &metrics, from, to, 1000)
            .await
            .expect(STORE)
            .is_none()
    );

    // Retention drops globex's old report and keeps both latest reports.
    store.apply_retention(now()).await.expect(STORE);
    assert!(
        all_reports_in(store, &globex, "web-1", -keep - 120, -keep)
            .await
            .is_empty()
    );
    assert_eq!(cpu_of(&acme).await, Some(10.0));
    assert_eq!(cpu_of(&globex).await, Some(70.0));
    assert_eq!(
        all_reports_in(store, &acme, "web-1", 0, 100).await.len(),
        10
    );

    // Deleting acme's web-1 leaves globex's, and deleting a device an
    // organisation does not have changes nothing.
    assert!(!store.delete_device(&acme, "db-1").await.expect(STORE));
    assert!(store.delete_device(&acme, "web-1").await.expect(STORE));
    assert!(!store.delete_device(&acme, "web-1").await.expect(STORE));
    assert_eq!(cpu_of(&acme).await, None);
    assert!(
        store
            .reports(&acme, "web-1", now(), now())
            .await
            .expect(STORE)
            .is_none()
    );
    assert_eq!(cpu_of(&globex).await, Some(70.0));
    assert_eq!(
        all_reports_in(store, &globex, "web-1", 0, 100).await,
        globex_reports
    );
    assert_eq!(store.devices().await.expect(STORE).len(), 2);
    // The id is free again in acme, and starts afresh there.
    store
        .insert(&acme, at("web-1", 50, 1.0))
        .await
        .expect(STORE);
    assert_eq!(all_reports_in(store, &acme, "web-1", 0, 100).await.len(), 1);
}

/// Runs every check on fresh, empty stores from `make`, as `Box<dyn Store>`
/// and as `Arc<dyn Store>`. `raw_keep` is how long the store keeps raw
/// reports. Needs a multi-threaded tokio runtime.
pub async fn suite(make: impl Fn() -> Box<dyn Store>, raw_keep: Duration) {
    latest_is_per_device_and_sorted(make().as_ref()).await;
    a_back_filled_report_does_not_become_the_latest(make().as_ref()).await;
    newest_since_lists_what_changed(make().as_ref()).await;
    reports_round_trip_unchanged(make().as_ref()).await;
    concurrent_inserts_all_land(Arc::from(make())).await;
    raw_history_comes_back_in_order(make().as_ref()).await;
    rollups_keep_avg_min_and_max(make().as_ref()).await;
    histories_match_history(make().as_ref()).await;
    a_report_sent_twice_is_stored_once(make().as_ref()).await;
    delete_removes_a_device_and_its_history(make().as_ref()).await;
    retention_removes_what_is_old_and_nothing_else(make().as_ref(), raw_keep).await;
    an_old_retry_after_retention_is_not_counted_twice(make().as_ref(), raw_keep).await;
    organisations_never_see_each_other(make().as_ref(), raw_keep).await;
}
