//! The conformance suite (`tailmon_server::store::conformance`) run by every
//! in-tree store, each through `Box<dyn Store>` and `Arc<dyn Store>`, and
//! the checks only the SQLite store has (reopening, sealing, flushing).

use tailmon_server::MemoryStore;
use tailmon_server::store::conformance::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    suite(
        || Box::new(MemoryStore::new()),
        tailmon_server::store::DEFAULT_MEMORY_HISTORY,
    )
    .await;
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use futures_util::StreamExt;
    use tailmon_core::{History, OffsetDateTime, Report, Tier};
    use tailmon_server::store::OrgId;
    use tailmon_server::store::conformance::{
        all_reports, history_query as query, now, report_at as at, suite,
    };
    use tailmon_server::{SqliteStore, Store, StoreError};

    use tailmon_testkit::{Forwarding, StoreHooks};

    use crate::support::report;

    /// A SQLite store in `dir` whose clock stands at the suite's [`now`], so
    /// that it answers from the tiers the suite's times call for.
    fn sqlite_at_now(dir: std::path::PathBuf) -> tailmon_server::store::SqliteStoreBuilder {
        SqliteStore::builder(dir)
            .clock(std::sync::Arc::new(tailmon_server::ManualClock::new(now())))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_conforms() {
        let dirs = crate::support::TestDirs::new("sqlite-conformance");
        suite(
            || Box::new(sqlite_at_now(dirs.fresh()).open().expect("opens")),
            tailmon_server::store::DEFAULT_RAW_RETENTION,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_conforms_with_process_durability() {
        let dirs = crate::support::TestDirs::new("sqlite-conformance-process");
        suite(
            || {
                Box::new(
                    sqlite_at_now(dirs.fresh())
                        .durability(tailmon_server::store::Durability::Process)
                        .open()
                        .expect("opens"),
                )
            },
            tailmon_server::store::DEFAULT_RAW_RETENTION,
        )
        .await;
    }

    /// The SQLite store with a checkpoint after every insert, so that every
    /// check also runs against sealed raw and rollup blocks, not only against
    /// what the store holds in memory before a checkpoint.
    struct CheckpointEveryInsert(SqliteStore);

    #[async_trait::async_trait]
    impl StoreHooks for CheckpointEveryInsert {
        type Inner = SqliteStore;

        fn inner(&self) -> &SqliteStore {
            &self.0
        }

        async fn after_insert(&self) -> Result<(), StoreError> {
            self.0.checkpoint().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_conforms_when_every_insert_is_checkpointed() {
        let dirs = crate::support::TestDirs::new("sqlite-conformance-checkpointed");
        suite(
            || {
                Box::new(Forwarding(CheckpointEveryInsert(
                    sqlite_at_now(dirs.fresh()).open().expect("opens"),
                )))
            },
            tailmon_server::store::DEFAULT_RAW_RETENTION,
        )
        .await;
    }

    /// What a store held before it was closed is all there after it reopens:
    /// latest reports, raw reports (some sealed, some not) and rollups.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_keeps_everything_across_a_reopen() {
        let dirs = crate::support::TestDirs::new("sqlite-reopen");
        let dir = dirs.fresh();
        let start = now().unix_timestamp() - now().unix_timestamp().rem_euclid(60) - 3_600;
        let reports: Vec<Report> = (0..24)
            .map(|i| at_unix("a", start + i * 5, i as f64))
            .collect();
        {
            let store = SqliteStore::open(&dir).unwrap();
            store
                .insert_many(&OrgId::default(), reports[..12].to_vec())
                .await
                .unwrap();
            store.checkpoint().await.unwrap();
            store
                .insert_many(&OrgId::default(), reports[12..].to_vec())
                .await
                .unwrap();
            store
                .insert(&OrgId::default(), at("b", 0, 50.0))
                .await
                .unwrap();
        }
        let store = SqliteStore::open(&dir).unwrap();
        let mut devices = store.devices().await.unwrap();
        devices.sort();
        let default = OrgId::default;
        assert_eq!(
            devices,
            [(default(), "a".to_owned()), (default(), "b".to_owned())]
        );
        assert_eq!(
            store
                .latest_of(&OrgId::default(), "a")
                .await
                .unwrap()
                .map(|r| r.cpu_usage),
            Some(23.0)
        );
        let all: Vec<f64> = store
            .reports(&OrgId::default(), "a", unix(start - 1), unix(start + 200))
            .await
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap().cpu_usage)
            .collect()
            .await;
        assert_eq!(all, (0..24).map(f64::from).collect::<Vec<_>>());
        let base = start - now().unix_timestamp();
        let minutes = store
            .history(
                &OrgId::default(),
                &query("a", "cpu_usage", base, base + 119, 2),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(minutes.tier, Tier::Minute);
        let summary: Vec<(f64, f64, f64)> = minutes
            .points
            .iter()
            .map(|p| (p.avg, p.min, p.max))
            .collect();
        assert_eq!(summary, [(5.5, 0.0, 11.0), (17.5, 12.0, 23.0)]);
        // A report sent again after the reopen is still recognised.
        store
            .insert(&OrgId::default(), reports[3].clone())
            .await
            .unwrap();
        store
            .insert(&OrgId::default(), reports[20].clone())
            .await
            .unwrap();
        let again = store
            .reports(&OrgId::default(), "a", unix(start - 1), unix(start + 200))
            .await
            .unwrap()
            .unwrap()
            .count()
            .await;
        assert_eq!(again, 24);
    }

    fn unix(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn at_unix(device: &str, secs: i64, cpu: f64) -> Report {
        let mut r = report(device, cpu, 10);
        r.last_seen = unix(secs);
        r
    }

    /// A back-fill bigger than a raw window (720 reports) is sealed as it
    /// arrives; everything is still there, once, after a duplicate resend and a
    /// reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_seals_a_large_back_fill_as_it_arrives() {
        let dirs = crate::support::TestDirs::new("sqlite-large-back-fill");
        let dir = dirs.fresh();
        let start = now().unix_timestamp() - 86_400;
        let reports: Vec<Report> = (0..2_000)
            .map(|i| at_unix("b", start + i * 5, (i % 100) as f64))
            .collect();
        {
            let store = SqliteStore::open(&dir).unwrap();
            for chunk in reports.chunks(1000) {
                store
                    .insert_many(&OrgId::default(), chunk.to_vec())
                    .await
                    .unwrap();
            }
            // Sent again, some sealed already and some not: stored once.
            store
                .insert_many(&OrgId::default(), reports[500..1_500].to_vec())
                .await
                .unwrap();
            let stamps = stamps_of(&store, start).await;
            assert_eq!(stamps.len(), 2_000);
            assert!(stamps.windows(2).all(|w| w[0] < w[1]), "in time order");
        }
        let store = SqliteStore::open(&dir).unwrap();
        assert_eq!(stamps_of(&store, start).await.len(), 2_000);
        let base = start - now().unix_timestamp();
        let hour = store
            .history(
                &OrgId::default(),
                &query("b", "cpu_usage", base, base + 9_999, 200),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hour.tier, Tier::Minute);
        // 2,000 reports 5 s apart from the start of a minute: 167 minutes, the
        // first holding the values 0 to 11.
        assert_eq!(hour.points.len(), 167);
        let first = &hour.points[0];
        assert_eq!((first.avg, first.min, first.max), (5.5, 0.0, 11.0));
    }

    /// The timestamps of device "b"'s raw reports from `start` on, as exported.
    async fn stamps_of(store: &SqliteStore, start: i64) -> Vec<i64> {
        store
            .reports(
                &OrgId::default(),
                "b",
                unix(start - 1),
                unix(start + 20_000),
            )
            .await
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap().last_seen.unix_timestamp())
            .collect()
            .await
    }

    /// With `Durability::Disk` a report is answered only once the write-ahead
    /// log is flushed: when the flush fails the insert is refused as
    /// unavailable (503, the agent retries), and the retry after the flush
    /// works again is answered and stored once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_answers_only_after_the_log_is_flushed() {
        let dirs = crate::support::TestDirs::new("sqlite-flush");
        let dir = dirs.fresh();
        let store = SqliteStore::open(&dir).unwrap();
        store
            .insert(&OrgId::default(), at("a", -10, 1.0))
            .await
            .unwrap();
        // The log the store flushes is gone (SQLite writes on into its open,
        // unlinked file): the flush fails.
        let wal = dir.join("tailmon.db-wal");
        std::fs::rename(&wal, dir.join("moved-wal")).unwrap();
        let report = at("a", -5, 2.0);
        match store.insert(&OrgId::default(), report.clone()).await {
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains("flush"), "{message}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The log back in its place: the retry is answered, and stored once.
        std::fs::rename(dir.join("moved-wal"), &wal).unwrap();
        store.insert(&OrgId::default(), report).await.unwrap();
        let stored: Vec<f64> = all_reports(&store, "a", -60, 0)
            .await
            .iter()
            .map(|r| r.cpu_usage)
            .collect();
        assert_eq!(stored, [1.0, 2.0]);
    }

    /// The numbers: a 50-hour-old report (cpu 20) and its retry (99),
    /// before and after retention, before and after a reopen: the minute
    /// bucket reads 20 throughout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_counts_an_old_retry_once_through_retention_and_reopen() {
        let dirs = crate::support::TestDirs::new("sqlite-old-retry");
        let dir = dirs.fresh();
        let old = (now().unix_timestamp() - 50 * 3_600) / 60 * 60 - now().unix_timestamp();
        let minute = || query("a", "cpu_usage", old, old + 59, 1);
        let summary = |h: History| -> Vec<(Tier, f64, f64, f64)> {
            h.points
                .iter()
                .map(|p| (h.tier, p.avg, p.min, p.max))
                .collect()
        };
        let once = [(Tier::Minute, 20.0, 20.0, 20.0)];
        {
            let store = sqlite_at_now(dir.clone()).open().unwrap();
            store
                .insert_many(&OrgId::default(), vec![at("a", old, 20.0), at("a", 0, 5.0)])
                .await
                .unwrap();
            store
                .insert(&OrgId::default(), at("a", old, 99.0))
                .await
                .unwrap();
            assert_eq!(
                summary(
                    store
                        .history(&OrgId::default(), &minute())
                        .await
                        .unwrap()
                        .unwrap()
                ),
                once
            );
            store.apply_retention(now()).await.unwrap();
            store
                .insert(&OrgId::default(), at("a", old, 99.0))
                .await
                .unwrap();
            assert_eq!(
                summary(
                    store
                        .history(&OrgId::default(), &minute())
                        .await
                        .unwrap()
                        .unwrap()
                ),
                once
            );
        }
        let store = sqlite_at_now(dir).open().unwrap();
        store
            .insert(&OrgId::default(), at("a", old, 99.0))
            .await
            .unwrap();
        store.checkpoint().await.unwrap();
        assert_eq!(
            summary(
                store
                    .history(&OrgId::default(), &minute())
                    .await
                    .unwrap()
                    .unwrap()
            ),
            once
        );
    }

    /// A database written by the code before rollup sums carried their rounding
    /// error (commit e2b19af: rollup blocks of format 1), generated by its
    /// `SqliteStore` and kept in `tests/fixtures`: device `fixture-a` reported
    /// 0.1, 0.2, 0.3 in the minute from 1_800_000_000, then 1e15, -1e15, 1e-9
    /// in the next (one `insert_many`, then a checkpoint), then 50 in the third;
    /// `fixture-b` 12.5 once. The store was then dropped, and the file's log
    /// folded in and vacuumed with `sqlite3`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_store_reads_and_extends_a_database_of_the_earlier_format() {
        let dirs = crate::support::TestDirs::new("sqlite-format-1");
        let dir = dirs.fresh();
        std::fs::create_dir_all(&dir).unwrap();
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/rollups-format-1.db"
        );
        std::fs::copy(fixture, dir.join(tailmon_server::store::DATABASE_FILE)).unwrap();
        let t = 1_800_000_000 - now().unix_timestamp();
        let minutes = || query("fixture-a", "cpu_usage", t, t + 179, 3);
        let summary = |h: History| -> Vec<(Tier, i64, f64, f64, f64)> {
            h.points
                .iter()
                .map(|p| {
                    (
                        h.tier,
                        p.at.unix_timestamp() - 1_800_000_000,
                        p.avg,
                        p.min,
                        p.max,
                    )
                })
                .collect()
        };
        {
            let store = sqlite_at_now(dir.clone()).open().unwrap();
            let mut devices = store.devices().await.unwrap();
            devices.sort();
            let default = OrgId::default;
            assert_eq!(
                devices,
                [
                    (default(), "fixture-a".to_owned()),
                    (default(), "fixture-b".to_owned())
                ],
                "every device of a version 2 database is in the default organisation"
            );
            assert_eq!(
                store
                    .latest_of(&OrgId::default(), "fixture-a")
                    .await
                    .unwrap()
                    .map(|r| r.cpu_usage),
                Some(50.0)
            );
            let raw: Vec<f64> = all_reports(&store, "fixture-a", t, t + 200)
                .await
                .iter()
                .map(|r| r.cpu_usage)
                .collect();
            assert_eq!(raw, [0.1, 0.2, 0.3, 1e15, -1e15, 1e-9, 50.0]);
            // The sums as that format stored them: rounded to the decimals of
            // min and max, so the second minute lost its 1e-9 for good.
            assert_eq!(
                summary(
                    store
                        .history(&OrgId::default(), &minutes())
                        .await
                        .unwrap()
                        .unwrap()
                ),
                [
                    (Tier::Minute, 0, 0.6 / 3.0, 0.1, 0.3),
                    (Tier::Minute, 60, 0.0, -1e15, 1e15),
                    (Tier::Minute, 120, 50.0, 50.0, 50.0),
                ]
            );
            // A report into an old block: summed on, written in today's format.
            store
                .insert(&OrgId::default(), at("fixture-a", t + 30, 0.4))
                .await
                .unwrap();
            store.checkpoint().await.unwrap();
        }
        let store = sqlite_at_now(dir).open().unwrap();
        assert_eq!(
            summary(
                store
                    .history(&OrgId::default(), &minutes())
                    .await
                    .unwrap()
                    .unwrap()
            )[0],
            (Tier::Minute, 0, 0.25, 0.1, 0.4)
        );
    }
}
