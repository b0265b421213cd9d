//! The SQLite store's size and speed at the default tiers:
//! bytes on disk per device per day and per device-year, a 30-day history
//! query, and start-up with a 1 GB database.
//!
//! `cargo bench -p tailmon-benches --bench store`
//! (`TAILMON_BENCH_GB=0` skips the 1 GB start-up case.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tailmon_benches::simulated_host::SimulatedHost;
use tailmon_core::{OffsetDateTime, OrgId};
use tailmon_server::store::HistoryQuery;
use tailmon_server::{SqliteStore, Store};

/// Reports between checkpoints: the store checkpoints every 10 minutes,
/// which is 120 reports at 5 s.
const CHECKPOINT_REPORTS: usize = 120;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tailmon-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Bytes of each table, and the live size of the file, read with SQLite's dbstat.
fn table_sizes(db: &Path) -> (Vec<(String, u64)>, u64) {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let mut stmt = conn
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .expect("dbstat");
    let tables = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect();
    let live: i64 = conn
        .query_row("SELECT (SELECT page_count FROM pragma_page_count) - (SELECT freelist_count FROM pragma_freelist_count)", [], |r| r.get(0))
        .expect("count");
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page");
    (tables, (live * page) as u64)
}

/// Sends `span` of a simulated host's reports ending at `end`, 10 minutes
/// at a time with a checkpoint after each, as a live server stores them.
async fn fill(
    store: &SqliteStore,
    device: &str,
    end: OffsetDateTime,
    span: Duration,
    every: Duration,
) -> u64 {
    fill_in_batches(store, device, end, span, every, CHECKPOINT_REPORTS, true).await
}

/// Sends `span` of a simulated host's reports ending at `end` in batches of
/// `batch_size`, with a checkpoint after each when `checkpoint` is set.
async fn fill_in_batches(
    store: &SqliteStore,
    device: &str,
    end: OffsetDateTime,
    span: Duration,
    every: Duration,
    batch_size: usize,
    checkpoint: bool,
) -> u64 {
    let mut host = SimulatedHost::new(device, 7);
    let count = (span.as_secs() / every.as_secs()) as i64;
    let mut batch = Vec::with_capacity(batch_size);
    for n in 0..count {
        let at = end - time::Duration::seconds((count - n) * every.as_secs() as i64);
        batch.push(host.next(at));
        if batch.len() == batch_size {
            store
                .insert_many(&OrgId::default(), std::mem::take(&mut batch))
                .await
                .expect("insert");
            if checkpoint {
                store.checkpoint().await.expect("checkpoint");
            }
        }
    }
    store
        .insert_many(&OrgId::default(), batch)
        .await
        .expect("insert");
    store.checkpoint().await.expect("checkpoint");
    count as u64
}

/// Payload bytes of the rollup blocks of one tier (1 minute, 2 hour).
fn tier_payload(db: &Path, tier: u8) -> f64 {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(
        "SELECT COALESCE(SUM(length(data)), 0) FROM rollup_blocks WHERE tier = ?1",
        [tier],
        |r| r.get::<_, i64>(0),
    )
    .expect("payload") as f64
}

fn mb(bytes: f64) -> String {
    format!("{:.2} MB", bytes / 1e6)
}

#[tokio::main]
async fn main() {
    let now = OffsetDateTime::now_utc();
    let every = Duration::from_secs(5);

    // One device, 30 days at 5 s, then retention: what the default tiers
    // hold of it (48 h raw, 30 days of minutes, hours so far).
    let month_dir = dir("month");
    let store = SqliteStore::open(&month_dir).expect("open");
    let started = Instant::now();
    let month = fill(
        &store,
        "month",
        now,
        Duration::from_secs(30 * 86_400),
        every,
    )
    .await;
    let fill_time = started.elapsed();
    store.apply_retention(now).await.expect("retention");
    println!(
        "one device, 30 days at 5 s: {month} reports stored in {:.1} s ({:.0} reports/s, checkpoint every {CHECKPOINT_REPORTS})",
        fill_time.as_secs_f64(),
        month as f64 / fill_time.as_secs_f64()
    );
    let db = store.path().to_path_buf();
    let (tables, live) = table_sizes(&db);
    for (name, bytes) in &tables {
        println!("  {name:<24} {}", mb(*bytes as f64));
    }
    println!("  live database            {}", mb(live as f64));
    let bytes_of = |name: &str| {
        tables
            .iter()
            .filter(|(n, _)| n == name)
            .map(|t| t.1 as f64)
            .sum::<f64>()
    };
    let raw = bytes_of("raw_blocks") + bytes_of("raw_blocks_by_device");
    let rollups = bytes_of("rollup_blocks");
    let (minute_payload, hour_payload) = (tier_payload(&db, 1), tier_payload(&db, 2));
    let minute = rollups * minute_payload / (minute_payload + hour_payload).max(1.0);
    let hour = rollups - minute;
    let raw_per_day = raw / 2.0;
    let minute_per_day = minute / 30.0;
    let hour_per_day = hour / 30.0;
    println!(
        "  raw: {:.0} B per report; per day: raw {}, minute buckets {}, hour buckets {}",
        raw_per_day / 17_280.0,
        mb(raw_per_day),
        mb(minute_per_day),
        mb(hour_per_day)
    );
    println!(
        "bytes per device per day (raw + rollups): {}",
        mb(raw_per_day + minute_per_day + hour_per_day)
    );
    let year = 2.0 * raw_per_day + 30.0 * minute_per_day + 365.0 * hour_per_day;
    println!(
        "per device-year, steady state at the default tiers (48 h raw + 30 d minutes + 1 y hours): {}",
        mb(year)
    );
    println!(
        "  of which: raw {}, minutes {}, hours {}",
        mb(2.0 * raw_per_day),
        mb(30.0 * minute_per_day),
        mb(365.0 * hour_per_day)
    );

    // A 30-day history query on that device.
    let query = HistoryQuery::new("month", "cpu_usage", now - time::Duration::days(30), now)
        .with_max_points(1000);
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..21 {
        let started = Instant::now();
        let history = store
            .history(&OrgId::default(), &query)
            .await
            .expect("history")
            .expect("known");
        times.push(started.elapsed());
        points = history.points.len();
    }
    times.sort();
    println!(
        "30-day history query ({points} points, {:?} tier): median {:.2} ms, max {:.2} ms",
        store
            .history(&OrgId::default(), &query)
            .await
            .expect("h")
            .expect("k")
            .tier,
        times[10].as_secs_f64() * 1e3,
        times[20].as_secs_f64() * 1e3
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&month_dir);

    // Start-up with a 1 GB database.
    let gb: u64 = std::env::var("TAILMON_BENCH_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    if gb > 0 {
        let big_dir = dir("big");
        let store = SqliteStore::open(&big_dir).expect("open");
        let db = store.path().to_path_buf();
        let mut device = 0;
        let started = Instant::now();
        while std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) < gb * 1_000_000_000 {
            // A back-fill's batches of 1,000: the fastest way to a big file.
            fill_in_batches(
                &store,
                &format!("big-{device:04}"),
                now,
                Duration::from_secs(2 * 86_400),
                every,
                1000,
                false,
            )
            .await;
            store.checkpoint().await.expect("checkpoint");
            device += 1;
        }
        drop(store);
        let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
        println!(
            "built a {} database of {device} devices in {:.0} s",
            mb(size as f64),
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let store = SqliteStore::open(&big_dir).expect("reopen");
        let latest = store.latest().await.expect("latest");
        println!(
            "start-up with it: open and first answer ({} devices) in {:.1} ms",
            latest.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&big_dir);
    }
}
