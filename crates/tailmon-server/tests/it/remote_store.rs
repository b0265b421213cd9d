//! The remote store against real engines: Debian's Prometheus and
//! VictoriaMetrics, started by the test on free loopback ports
//! (`tailmon_testkit::Engine`). Every test runs against both.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tailmon_core::{
    CpuBreakdown, Disk, DiskIo, HistoryQuery, LoadAvg, NetworkInterface, OffsetDateTime, OrgId,
    ProcessInfo, Report, Temperature, Tier,
};
use tailmon_server::store::{RemoteStore, RemoteStoreBuilder};
use tailmon_server::{Store, StoreError};
use tailmon_testkit::{Engine, EngineKind, eventually};

/// An engine and a store over it.
struct Rig {
    engine: Engine,
    store: Arc<RemoteStore>,
}

impl Rig {
    async fn start(kind: EngineKind) -> Option<Rig> {
        let engine = Engine::start(kind).await?;
        let store = Arc::new(
            RemoteStoreBuilder::new(engine.remote_write_url(), engine.query_url())
                .build()
                .unwrap(),
        );
        Some(Rig { engine, store })
    }

    /// Inserts and makes the samples searchable at once.
    async fn insert(&self, org: &OrgId, reports: Vec<Report>) {
        self.store.insert_many(org, reports).await.unwrap();
        self.engine.flush().await;
    }

    async fn reports(
        &self,
        org: &OrgId,
        device: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Vec<Report> {
        let stream = self
            .store
            .reports(org, device, from, to)
            .await
            .unwrap()
            .expect("a known device");
        stream.map(|r| r.unwrap()).collect().await
    }
}

/// A whole second some minutes ago (well within what every engine takes),
/// the same for every call.
fn base() -> OffsetDateTime {
    static BASE: std::sync::OnceLock<OffsetDateTime> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        now - time::Duration::minutes(30)
    })
}

fn org() -> OrgId {
    OrgId::default()
}

fn report(device: &str, at: OffsetDateTime, cpu: f64) -> Report {
    let mut r = Report::new(device, at);
    r.os_info = "Debian 12 (Kernel: 6.1.0)".into();
    r.cpu_usage = cpu;
    r.ram_used_mb = 100;
    r.ram_total_mb = 8192;
    r.received_at = Some(at + time::Duration::milliseconds(250));
    r
}

/// A report with every field the mapping keeps set, its lists in the order
/// the store gives them back (by key).
fn full_report(device: &str, at: OffsetDateTime) -> Report {
    let mut r = report(device, at + time::Duration::milliseconds(123), 37.25);
    r.agent_instance = Some("f00d-1".into());
    r.ram_used_mb = 3000;
    r.ram_total_mb = 16_000;
    r.cpu_per_core = Some(vec![10.5, 20.25, 0.0, 99.75]);
    r.cpu_breakdown = Some(CpuBreakdown {
        user: 20.5,
        system: 5.25,
        iowait: 1.0,
        steal: 0.125,
    });
    r.load_avg = Some(LoadAvg {
        one: 0.5,
        five: 0.75,
        fifteen: 1.25,
    });
    r.swap_used_mb = Some(12);
    r.swap_total_mb = Some(2048);
    r.disks = Some(vec![
        Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 100_000_000_000,
            used_bytes: 25_000_000_000,
            available_bytes: Some(70_000_000_000),
        },
        Disk {
            mount_point: "/boot".into(),
            fs_type: "vfat".into(),
            total_bytes: 500_000_000,
            used_bytes: 100_000_000,
            available_bytes: None,
        },
    ]);
    r.disk_io = Some(vec![DiskIo {
        device: "nvme0n1".into(),
        read_bytes_per_sec: 1024.5,
        write_bytes_per_sec: 2048.0,
    }]);
    r.networks = Some(vec![
        NetworkInterface {
            interface: "eth0".into(),
            rx_bytes_per_sec: Some(1500.5),
            tx_bytes_per_sec: None,
            rx_bytes_total: 123_456_789,
            tx_bytes_total: 987_654_321,
            rx_errors: 2,
            tx_errors: 0,
        },
        NetworkInterface {
            interface: "wg0".into(),
            rx_bytes_per_sec: Some(10.0),
            tx_bytes_per_sec: Some(20.0),
            rx_bytes_total: 1,
            tx_bytes_total: 2,
            rx_errors: 0,
            tx_errors: 3,
        },
    ]);
    r.temperatures = Some(vec![Temperature {
        label: "coretemp \"Package\" id 0".into(),
        celsius: 55.5,
    }]);
    r.uptime_seconds = Some(86_400);
    r.boot_time = Some(at - time::Duration::days(1));
    r.process_count = Some(321);
    r.custom = Some([("queue.depth".to_owned(), 7.0), ("temp-2".to_owned(), -3.5)].into());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_report_round_trips_field_by_field() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let original = full_report("web-1", base());
        let mut sent = original.clone();
        sent.top_processes = Some(vec![ProcessInfo {
            pid: 42,
            name: "postgres".into(),
            cpu_percent: 12.0,
            rss_bytes: 1 << 30,
        }]);
        rig.insert(&org(), vec![sent]).await;
        let back = rig
            .store
            .latest_of(&org(), "web-1")
            .await
            .unwrap()
            .expect("stored");
        // Field by field, so that a failure names the field.
        assert_eq!(back.device_id, original.device_id, "{kind:?}");
        assert_eq!(back.os_info, original.os_info, "{kind:?}");
        assert_eq!(back.agent_instance, original.agent_instance, "{kind:?}");
        assert_eq!(back.cpu_usage, original.cpu_usage, "{kind:?}");
        assert_eq!(back.ram_used_mb, original.ram_used_mb, "{kind:?}");
        assert_eq!(back.ram_total_mb, original.ram_total_mb, "{kind:?}");
        assert_eq!(back.last_seen, original.last_seen, "{kind:?}");
        assert_eq!(back.received_at, original.received_at, "{kind:?}");
        assert_eq!(back.cpu_per_core, original.cpu_per_core, "{kind:?}");
        assert_eq!(back.cpu_breakdown, original.cpu_breakdown, "{kind:?}");
        assert_eq!(back.load_avg, original.load_avg, "{kind:?}");
        assert_eq!(back.swap_used_mb, original.swap_used_mb, "{kind:?}");
        assert_eq!(back.swap_total_mb, original.swap_total_mb, "{kind:?}");
        assert_eq!(back.disks, original.disks, "{kind:?}");
        assert_eq!(back.disk_io, original.disk_io, "{kind:?}");
        assert_eq!(back.networks, original.networks, "{kind:?}");
        assert_eq!(back.temperatures, original.temperatures, "{kind:?}");
        assert_eq!(back.uptime_seconds, original.uptime_seconds, "{kind:?}");
        assert_eq!(back.boot_time, original.boot_time, "{kind:?}");
        assert_eq!(back.process_count, original.process_count, "{kind:?}");
        assert_eq!(back.custom, original.custom, "{kind:?}");
        // Not kept: the top processes.
        assert_eq!(back.top_processes, None, "{kind:?}");
        assert_eq!(back, original, "{kind:?}");

        let from = base() - time::Duration::minutes(1);
        let to = base() + time::Duration::minutes(1);
        assert_eq!(
            rig.reports(&org(), "web-1", from, to).await,
            std::slice::from_ref(&original),
            "{kind:?}"
        );
        assert_eq!(
            rig.store.latest().await.unwrap(),
            [(org(), original.clone())],
            "{kind:?}"
        );
        assert_eq!(
            rig.store.devices().await.unwrap(),
            [(org(), "web-1".to_owned())],
            "{kind:?}"
        );
        assert_eq!(
            rig.store.latest_of(&org(), "web-2").await.unwrap(),
            None,
            "{kind:?}"
        );
        assert!(
            rig.store
                .reports(&org(), "web-2", from, to)
                .await
                .unwrap()
                .is_none()
        );
        rig.store.ready().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_filled_reports_land_in_place_and_history_reads_them() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let t = base();
        let at = |s: i64| t + time::Duration::seconds(s);
        // The newest first, then older ones back-filled in any order.
        rig.insert(&org(), vec![report("db", at(600), 60.0)]).await;
        rig.insert(
            &org(),
            vec![report("db", at(0), 10.0), report("db", at(300), 30.0)],
        )
        .await;
        rig.insert(&org(), vec![report("db", at(120), 20.0)]).await;
        let latest = rig.store.latest_of(&org(), "db").await.unwrap().unwrap();
        assert_eq!(
            (latest.last_seen, latest.cpu_usage),
            (at(600), 60.0),
            "{kind:?}"
        );
        let cpu: Vec<f64> = rig
            .reports(&org(), "db", at(0), at(600))
            .await
            .iter()
            .map(|r| r.cpu_usage)
            .collect();
        assert_eq!(cpu, [10.0, 20.0, 30.0, 60.0], "{kind:?}");
        // Inclusive bounds.
        assert_eq!(
            rig.reports(&org(), "db", at(120), at(300)).await.len(),
            2,
            "{kind:?}"
        );
        // Read in one-minute chunks (only those holding reports are read),
        // and over all time: the same reports.
        let chunked =
            RemoteStoreBuilder::new(rig.engine.remote_write_url(), rig.engine.query_url())
                .chunk(Duration::from_secs(60))
                .build()
                .unwrap();
        let far = OffsetDateTime::UNIX_EPOCH;
        let far_ahead = OffsetDateTime::now_utc() + time::Duration::days(3650);
        for store in [&chunked, rig.store.as_ref()] {
            let all: Vec<f64> = store
                .reports(&org(), "db", far, far_ahead)
                .await
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap().cpu_usage)
                .collect()
                .await;
            assert_eq!(all, [10.0, 20.0, 30.0, 60.0], "{kind:?}");
        }

        let raw = rig
            .store
            .history(
                &org(),
                &HistoryQuery::new("db", "cpu_usage", at(0), at(600)),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(raw.tier, Tier::Raw, "{kind:?}");
        let points: Vec<(OffsetDateTime, f64)> = raw.points.iter().map(|p| (p.at, p.avg)).collect();
        assert_eq!(
            points,
            [
                (at(0), 10.0),
                (at(120), 20.0),
                (at(300), 30.0),
                (at(600), 60.0)
            ],
            "{kind:?}"
        );
        // Fewer points asked than there are reports: buckets (hours, as
        // ten minutes hold more minutes than 3), over whole buckets.
        let buckets = rig
            .store
            .history(
                &org(),
                &HistoryQuery::new("db", "cpu_usage", at(0), at(600)).with_max_points(3),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buckets.tier, Tier::Hour, "{kind:?}");
        let min = buckets
            .points
            .iter()
            .map(|p| p.min)
            .fold(f64::INFINITY, f64::min);
        let max = buckets
            .points
            .iter()
            .map(|p| p.max)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((min, max), (10.0, 60.0), "{kind:?}");
        let histories = rig
            .store
            .histories(
                &org(),
                "db",
                &["cpu_usage".to_owned(), "ram_used_mb".to_owned()],
                at(0),
                at(600),
                100,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(histories[0], raw, "{kind:?}");
        assert_eq!(histories[1].points.len(), 4, "{kind:?}");
        assert!(
            rig.store
                .history(
                    &org(),
                    &HistoryQuery::new("nope", "cpu_usage", at(0), at(600))
                )
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_sent_twice_is_stored_once() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let r = report("twice", base(), 5.0);
        rig.insert(&org(), vec![r.clone()]).await;
        // The same report again, alone and within a batch with a new one.
        rig.insert(&org(), vec![r.clone()]).await;
        let next = report("twice", base() + time::Duration::seconds(10), 6.0);
        rig.insert(&org(), vec![r.clone(), next.clone()]).await;
        let all = rig
            .reports(
                &org(),
                "twice",
                base() - time::Duration::minutes(1),
                base() + time::Duration::minutes(1),
            )
            .await;
        assert_eq!(all, [r.clone(), next], "{kind:?}");

        // Another report with the same time but other values: one of the
        // two is kept, whole (which one depends on the engine:
        // docs/remote-store.md).
        let mut rival = r.clone();
        rival.cpu_usage = 99.0;
        rig.insert(&org(), vec![rival.clone()]).await;
        let at_r = rig.reports(&org(), "twice", r.last_seen, r.last_seen).await;
        assert!(at_r == [r.clone()] || at_r == [rival], "{kind:?}: {at_r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisations_are_kept_apart_and_deletion_touches_one() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let acme = OrgId::new("acme").unwrap();
        let globex = OrgId::new("globex").unwrap();
        rig.insert(&acme, vec![report("web-1", base(), 11.0)]).await;
        rig.insert(&globex, vec![report("web-1", base(), 22.0)])
            .await;
        rig.insert(&globex, vec![report("web-2", base(), 33.0)])
            .await;
        let cpu = |org: OrgId| {
            let store = rig.store.clone();
            async move {
                store
                    .latest_of(&org, "web-1")
                    .await
                    .unwrap()
                    .map(|r| r.cpu_usage)
            }
        };
        assert_eq!(cpu(acme.clone()).await, Some(11.0), "{kind:?}");
        assert_eq!(cpu(globex.clone()).await, Some(22.0), "{kind:?}");
        let latest: Vec<(String, String)> = rig
            .store
            .latest()
            .await
            .unwrap()
            .into_iter()
            .map(|(o, r)| (o.as_str().to_owned(), r.device_id))
            .collect();
        assert_eq!(
            latest,
            [("acme", "web-1"), ("globex", "web-1"), ("globex", "web-2")]
                .map(|(o, d)| (o.to_owned(), d.to_owned())),
            "{kind:?}"
        );

        assert!(
            rig.store.delete_device(&acme, "web-1").await.unwrap(),
            "{kind:?}"
        );
        assert!(
            !rig.store.delete_device(&acme, "web-1").await.unwrap(),
            "{kind:?}"
        );
        assert_eq!(cpu(acme.clone()).await, None, "{kind:?}");
        assert_eq!(cpu(globex.clone()).await, Some(22.0), "{kind:?}");
        assert_eq!(rig.store.devices().await.unwrap().len(), 2, "{kind:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_share_requests_and_all_land() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let mut tasks = Vec::new();
        for n in 0..50 {
            let store = rig.store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .insert(&org(), report(&format!("c{n:02}"), base(), f64::from(n)))
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        rig.engine.flush().await;
        let latest = rig.store.latest().await.unwrap();
        let ids: Vec<String> = latest.iter().map(|(_, r)| r.device_id.clone()).collect();
        let expected: Vec<String> = (0..50).map(|n| format!("c{n:02}")).collect();
        assert_eq!(ids, expected, "{kind:?}");
        assert!(
            latest
                .iter()
                .enumerate()
                .all(|(n, (_, r))| r.cpu_usage == n as f64)
        );
    }
}

/// `latest` reads devices whose newest reports are close in time with one
/// query: ids that a pattern would confuse (`db.1`, `dbx1`), the same id in
/// two organisations and a device whose newest report is far older than the
/// others each get their own newest report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_tells_close_devices_apart() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let acme = OrgId::new("acme").unwrap();
        let ms = |n: i64| base() + time::Duration::milliseconds(n);
        // Older reports first, then the newest, 0 to 3 ms apart.
        rig.insert(
            &org(),
            vec![report("db.1", ms(-500), 1.0), report("db.1", ms(0), 10.0)],
        )
        .await;
        rig.insert(
            &org(),
            vec![report("dbx1", ms(-900), 2.0), report("dbx1", ms(1), 20.0)],
        )
        .await;
        rig.insert(&acme, vec![report("db.1", ms(3), 30.0)]).await;
        rig.insert(&org(), vec![report("old", ms(-3_600_000), 40.0)])
            .await;
        let latest: Vec<(String, String, f64, OffsetDateTime)> = rig
            .store
            .latest()
            .await
            .unwrap()
            .into_iter()
            .map(|(o, r)| (o.as_str().to_owned(), r.device_id, r.cpu_usage, r.last_seen))
            .collect();
        let default = org().as_str().to_owned();
        let mut expected = vec![
            ("acme".to_owned(), "db.1".to_owned(), 30.0, ms(3)),
            (default.clone(), "db.1".to_owned(), 10.0, ms(0)),
            (default.clone(), "dbx1".to_owned(), 20.0, ms(1)),
            (default, "old".to_owned(), 40.0, ms(-3_600_000)),
        ];
        expected.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        assert_eq!(latest, expected, "{kind:?}");
    }
}

/// What a fleet refresh reads: `newest_since` lists the devices with a
/// report in the recent window only (one number each), and
/// `latest_of_many` reads their latest reports, as `latest` has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recent_devices_and_their_latest_reports_are_read_alone() {
    for kind in EngineKind::ALL {
        let Some(rig) = Rig::start(kind).await else {
            continue;
        };
        let acme = OrgId::new("acme").unwrap();
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let fresh = |device: &str, secs: i64, cpu: f64| {
            report(device, now - time::Duration::seconds(secs), cpu)
        };
        rig.insert(
            &org(),
            vec![fresh("web-1", 12, 1.0), fresh("web-1", 2, 2.0)],
        )
        .await;
        rig.insert(&acme, vec![fresh("web-1", 1, 3.0)]).await;
        rig.insert(&org(), vec![report("quiet", base(), 4.0)]).await;
        let mut recent = rig
            .store
            .newest_since(now - time::Duration::minutes(10))
            .await
            .unwrap();
        recent.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let seen: Vec<(&str, &str, OffsetDateTime)> = recent
            .iter()
            .map(|(o, d, t)| (o.as_str(), d.as_str(), *t))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("acme", "web-1", now - time::Duration::seconds(1)),
                ("default", "web-1", now - time::Duration::seconds(2)),
            ],
            "{kind:?}: the quiet device's report is older than the window"
        );
        let mut read = rig.store.latest_of_many(recent).await.unwrap();
        read.sort_by(|a, b| a.0.cmp(&b.0));
        let mut latest = rig.store.latest().await.unwrap();
        latest.retain(|(_, r)| r.device_id == "web-1");
        assert_eq!(read, latest, "{kind:?}");
        assert_eq!(
            read.iter().map(|(_, r)| r.cpu_usage).collect::<Vec<_>>(),
            [3.0, 2.0],
            "{kind:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_engine_refuses_is_a_backend_error() {
    for kind in EngineKind::ALL {
        let Some(engine) = Engine::start(kind).await else {
            continue;
        };
        // A path the engine does not serve: 4xx, not retried.
        let store = RemoteStoreBuilder::new(
            format!("{}/api/v1/nowhere", engine.query_url()),
            engine.query_url(),
        )
        .build()
        .unwrap();
        let error = store
            .insert(&org(), report("x", base(), 1.0))
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::Backend(_)), "{kind:?}: {error}");
        assert_eq!(store.write_counts().2, 0, "{kind:?}: not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_outage_is_unavailable_then_nothing_acknowledged_is_lost() {
    for kind in EngineKind::ALL {
        let Some(mut rig) = Rig::start(kind).await else {
            continue;
        };
        let before = report("outage", base(), 1.0);
        rig.insert(&org(), vec![before.clone()]).await;
        rig.engine.stop();

        // A short deadline: the insert fails with Unavailable (503).
        let hasty = RemoteStoreBuilder::new(rig.engine.remote_write_url(), rig.engine.query_url())
            .write_deadline(Duration::from_millis(300))
            .build()
            .unwrap();
        let error = hasty
            .insert(
                &org(),
                report("outage", base() + time::Duration::seconds(5), 2.0),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::Unavailable(_)),
            "{kind:?}: {error}"
        );
        assert!(hasty.write_counts().2 >= 1, "{kind:?}: retried first");

        // A long deadline and a queue of one: the first insert waits in the
        // writer (retrying), one more in the queue, the rest are refused at
        // once.
        let patient = Arc::new(
            RemoteStoreBuilder::new(rig.engine.remote_write_url(), rig.engine.query_url())
                .write_deadline(Duration::from_secs(120))
                .queue(1)
                .build()
                .unwrap(),
        );
        let insert = |n: i64| {
            let store = patient.clone();
            let r = report(
                "outage",
                base() + time::Duration::seconds(10 + n),
                10.0 + n as f64,
            );
            (
                r.clone(),
                tokio::spawn(async move { store.insert(&org(), r).await }),
            )
        };
        let first = insert(0);
        eventually("the writer retries the first insert", async || {
            if patient.write_counts().2 >= 1 {
                Ok(())
            } else {
                Err("no retry yet".to_owned())
            }
        })
        .await;
        let others: Vec<_> = (1..4).map(insert).collect();
        eventually("two of three are refused at once", async || {
            match others.iter().filter(|(_, task)| task.is_finished()).count() {
                2 => Ok(()),
                n => Err(format!("{n} finished")),
            }
        })
        .await;
        rig.engine.start_again().await;
        let mut acknowledged = vec![before];
        let mut refused = 0;
        for (r, task) in std::iter::once(first).chain(others) {
            match task.await.unwrap() {
                Ok(()) => acknowledged.push(r),
                Err(StoreError::Unavailable(message)) => {
                    assert!(message.contains("queue is full"), "{kind:?}: {message}");
                    refused += 1;
                }
                Err(e) => panic!("{kind:?}: {e}"),
            }
        }
        assert_eq!(refused, 2, "{kind:?}: a queue of one holds one");
        assert_eq!(acknowledged.len(), 3, "{kind:?}: the waiting two landed");
        rig.engine.flush().await;
        let stored = rig
            .reports(
                &org(),
                "outage",
                base() - time::Duration::minutes(1),
                base() + time::Duration::minutes(1),
            )
            .await;
        for r in &acknowledged {
            assert!(stored.contains(r), "{kind:?}: lost {r:?}");
        }
    }
}

/// The conformance suite's checks that hold for an engine
/// (docs/remote-store.md lists the exceptions: retention is the engine's),
/// each on a fresh Prometheus. The suite stamps its reports in 2027: the
/// store looks that far ahead here. VictoriaMetrics drops samples more than
/// two days ahead of its clock, so it runs the other tests of this file
/// only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_checks_hold_on_prometheus() {
    use tailmon_server::store::conformance as check;

    async fn fresh() -> Option<(Engine, RemoteStore)> {
        let engine = Engine::start(EngineKind::Prometheus).await?;
        let store = RemoteStoreBuilder::new(engine.remote_write_url(), engine.query_url())
            .future(Duration::from_secs(800 * 24 * 3600))
            .build()
            .unwrap();
        Some((engine, store))
    }
    let Some((_engine, store)) = fresh().await else {
        return;
    };
    check::latest_is_per_device_and_sorted(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::a_back_filled_report_does_not_become_the_latest(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::newest_since_lists_what_changed(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::reports_round_trip_unchanged(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::concurrent_inserts_all_land(Arc::new(store)).await;
    let (_engine, store) = fresh().await.unwrap();
    check::raw_history_comes_back_in_order(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::rollups_keep_avg_min_and_max(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::histories_match_history(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::a_report_sent_twice_is_stored_once(&store).await;
    let (_engine, store) = fresh().await.unwrap();
    check::delete_removes_a_device_and_its_history(&store).await;
}

/// A read of many devices' latest reports keeps as many queries in flight
/// as the store is told: a stand-in engine holds the first queries until
/// that many were in flight at once (or two seconds), and notes the most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_of_many_devices_keep_the_read_concurrency() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    const CONCURRENCY: usize = 6;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (now, top) = (in_flight.clone(), most.clone());
    let router = axum::Router::new().route(
        "/api/v1/query",
        axum::routing::get(move || {
            let (now, top) = (now.clone(), top.clone());
            async move {
                let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                top.fetch_max(at_once, Ordering::SeqCst);
                let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                while top.load(Ordering::SeqCst) < CONCURRENCY
                    && tokio::time::Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                now.fetch_sub(1, Ordering::SeqCst);
                (
                    [("content-type", "application/json")],
                    r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let store = RemoteStoreBuilder::new(format!("{url}/api/v1/write"), url)
        .read_concurrency(CONCURRENCY)
        .build()
        .unwrap();
    // Devices a minute apart: one query each.
    let devices: Vec<(OrgId, String, OffsetDateTime)> = (0..3 * CONCURRENCY as i64)
        .map(|k| {
            (
                org(),
                format!("dev-{k}"),
                base() - time::Duration::minutes(k),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    assert!(store.latest_of_many(devices).await.unwrap().is_empty());
    assert_eq!(most.load(Ordering::SeqCst), CONCURRENCY);
    // None held to its deadline.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A stand-in remote-write receiver answering the statuses it is given in
/// turn (then 204), counting the requests: how the store maps each answer.
async fn scripted_receiver(
    answers: Vec<(u16, &'static str)>,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use axum::http::StatusCode;
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let router = axum::Router::new().route(
        "/api/v1/write",
        axum::routing::post(move |body: axum::body::Bytes| {
            let answers = answers.clone();
            let hits = counted.clone();
            async move {
                assert!(!body.is_empty(), "a request carries its samples");
                hits.fetch_add(1, Ordering::SeqCst);
                let (status, message) = answers.lock().unwrap().pop_front().unwrap_or((204, ""));
                (StatusCode::from_u16(status).unwrap(), message)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_of_the_engine_is_mapped() {
    use std::sync::atomic::Ordering;
    let store_for = |url: &str, deadline_ms: u64| {
        RemoteStoreBuilder::new(format!("{url}/api/v1/write"), url)
            .write_deadline(Duration::from_millis(deadline_ms))
            .build()
            .unwrap()
    };
    let insert = |store: RemoteStore| async move {
        let result = store.insert(&org(), report("x", base(), 1.0)).await;
        (result, store.write_counts())
    };

    // 503 and 429 are retried; the 204 after them acknowledges.
    let (url, hits) = scripted_receiver(vec![(503, "busy"), (429, "slow down")]).await;
    let (result, (_, _, retried)) = insert(store_for(&url, 60_000)).await;
    result.unwrap();
    assert_eq!((hits.load(Ordering::SeqCst), retried), (3, 2));

    // 5xx until the deadline: Unavailable.
    let (url, hits) = scripted_receiver(vec![(503, "busy"); 1000]).await;
    let (result, _) = insert(store_for(&url, 1500)).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(hits.load(Ordering::SeqCst) >= 2);

    // A 400 for a sample the engine holds already: stored, not retried.
    let (url, hits) = scripted_receiver(vec![(
        400,
        "duplicate sample for timestamp; series: {__name__=\"tailmon_load1\"}",
    )])
    .await;
    let (result, (dropped, refused, retried)) = insert(store_for(&url, 60_000)).await;
    result.unwrap();
    assert_eq!(
        (hits.load(Ordering::SeqCst), dropped, refused, retried),
        (1, 1, 0, 0)
    );

    // Any other 4xx: a backend error with the engine's message, not retried.
    let (url, hits) = scripted_receiver(vec![(400, "invalid label name \"x y\"")]).await;
    let (result, (_, refused, retried)) = insert(store_for(&url, 60_000)).await;
    let error = result.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error}");
    assert!(error.to_string().contains("invalid label name"), "{error}");
    assert_eq!((hits.load(Ordering::SeqCst), refused, retried), (1, 1, 0));
}

/// With a tenant header, every request names its tenant: an organisation's
/// writes and reads its id, the index write and the reads across
/// organisations the index tenant. A stand-in engine records the header of
/// each request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_header_names_each_requests_tenant() {
    use std::sync::Mutex;

    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = |path: &'static str| {
        let seen = seen.clone();
        move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let tenant = headers
                    .get("X-Scope-OrgID")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("(none)")
                    .to_owned();
                seen.lock().unwrap().push((path.to_owned(), tenant));
                (
                    [("content-type", "application/json")],
                    r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                )
            }
        }
    };
    let router = axum::Router::new()
        .route("/api/v1/write", axum::routing::post(record("write")))
        .route("/api/v1/query", axum::routing::get(record("query")));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let store = RemoteStoreBuilder::new(format!("{url}/api/v1/write"), url)
        .tenant_header("X-Scope-OrgID")
        .build()
        .unwrap();
    let acme = OrgId::new("acme").unwrap();
    store
        .insert(&acme, report("web-1", base(), 1.0))
        .await
        .unwrap();
    // Not among the recent samples, then not in the whole lookback: two
    // queries of the organisation's tenant.
    assert_eq!(store.latest_of(&acme, "web-1").await.unwrap(), None);
    assert_eq!(store.devices().await.unwrap(), []);
    assert_eq!(store.newest_since(base()).await.unwrap(), []);
    let seen = seen.lock().unwrap().clone();
    let pairs: Vec<(&str, &str)> = seen.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    assert_eq!(
        pairs,
        [
            ("write", "acme"),
            ("write", "tailmon-index"),
            ("query", "acme"),
            ("query", "acme"),
            ("query", "tailmon-index"),
            ("query", "tailmon-index"),
        ]
    );
}

/// A tenant-header store over engines that ignore the header (Prometheus,
/// VictoriaMetrics single) keeps its index beside the data and still
/// answers as it should: the index's samples are the data's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_header_store_reads_back_what_it_wrote() {
    for kind in EngineKind::ALL {
        let Some(engine) = Engine::start(kind).await else {
            continue;
        };
        let store = RemoteStoreBuilder::new(engine.remote_write_url(), engine.query_url())
            .tenant_header("X-Scope-OrgID")
            .build()
            .unwrap();
        let acme = OrgId::new("acme").unwrap();
        let globex = OrgId::new("globex").unwrap();
        store
            .insert(&acme, report("web-1", base(), 11.0))
            .await
            .unwrap();
        store
            .insert_many(
                &globex,
                vec![report("web-1", base(), 22.0), report("db-1", base(), 33.0)],
            )
            .await
            .unwrap();
        engine.flush().await;
        let latest: Vec<(String, String, f64)> = store
            .latest()
            .await
            .unwrap()
            .into_iter()
            .map(|(o, r)| (o.as_str().to_owned(), r.device_id, r.cpu_usage))
            .collect();
        assert_eq!(
            latest,
            [
                ("acme", "web-1", 11.0),
                ("globex", "db-1", 33.0),
                ("globex", "web-1", 22.0)
            ]
            .map(|(o, d, c)| (o.to_owned(), d.to_owned(), c)),
            "{kind:?}"
        );
        assert!(
            store.delete_device(&acme, "web-1").await.unwrap(),
            "{kind:?}"
        );
        assert_eq!(store.devices().await.unwrap().len(), 2, "{kind:?}");
        assert_eq!(
            store.latest_of(&acme, "web-1").await.unwrap(),
            None,
            "{kind:?}"
        );
    }
}
