//! The SQLite store's size and speed at the default tiers:
//! bytes on disk per device per day and per device-year, a 30-day history
//! query, and start-up with a 1 GB database.
//!
//! `cargo bench -p tailmon-benches --bench store`
//! (`TAILMON_BENCH_GB=0` skips the 1 GB start-up case.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tailmon_core::{
    CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, OffsetDateTime, ProcessInfo, Report,
    Temperature,
};
use tailmon_server::{HistoryQuery, SqliteStore, Store};

/// A report as the stock agent sends it from a small server: 2 cores, one
/// disk, one interface, ten top processes.
fn rich(device: &str, at: OffsetDateTime, n: u64) -> Report {
    let wave = (n % 60) as f64;
    let mut r = Report::new(device, at);
    r.os_info = "Debian GNU/Linux 12 (Kernel: 6.1.0-18-amd64)".into();
    r.cpu_usage = 10.0 + wave / 2.0;
    r.ram_used_mb = 3000 + n % 500;
    r.ram_total_mb = 16_000;
    r.cpu_per_core = Some(vec![8.0 + wave / 3.0, 12.0 + wave / 4.0]);
    r.cpu_breakdown = Some(CpuBreakdown {
        user: 7.5,
        system: 2.25,
        iowait: 0.5,
        steal: 0.0,
    });
    r.load_avg = Some(LoadAvg {
        one: 0.42,
        five: 0.38,
        fifteen: 0.31,
    });
    r.swap_used_mb = Some(0);
    r.swap_total_mb = Some(2048);
    r.disks = Some(vec![Disk {
        mount_point: "/".into(),
        fs_type: "ext4".into(),
        total_bytes: 250_000_000_000,
        used_bytes: 120_000_000_000 + n * 4096,
    }]);
    r.disk_io = Some(vec![DiskIo {
        device: "nvme0n1".into(),
        read_bytes_per_sec: 1024.0 * wave,
        write_bytes_per_sec: 20_480.0 + wave,
    }]);
    r.networks = Some(vec![NetworkInterface {
        interface: "eth0".into(),
        rx_bytes_per_sec: Some(3_000.0 + wave * 10.0),
        tx_bytes_per_sec: Some(1_500.0 + wave),
        rx_bytes_total: 9_000_000_000 + n * 3000,
        tx_bytes_total: 4_000_000_000 + n * 1500,
        rx_errors: 0,
        tx_errors: 0,
    }]);
    r.temperatures = Some(vec![Temperature {
        label: "coretemp Package id 0".into(),
        celsius: 45.0 + wave / 10.0,
    }]);
    r.uptime_seconds = Some(1_000_000 + n * 5);
    r.boot_time = Some(OffsetDateTime::UNIX_EPOCH);
    r.process_count = Some(180);
    r.top_processes = Some(
        (0..10u32)
            .map(|i| ProcessInfo {
                pid: 1000 + i,
                name: format!("worker-{i}"),
                cpu_percent: f64::from(i) / 4.0,
                rss_bytes: 50_000_000 - u64::from(i) * 1_000_000,
            })
            .collect(),
    );
    r
}

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

async fn fill(
    store: &SqliteStore,
    device: &str,
    end: OffsetDateTime,
    span: Duration,
    every: Duration,
) -> u64 {
    let count = (span.as_secs() / every.as_secs()) as i64;
    let mut batch = Vec::with_capacity(1000);
    for n in 0..count {
        let at = end - time::Duration::seconds((count - n) * every.as_secs() as i64);
        batch.push(rich(device, at, n as u64));
        if batch.len() == 1000 {
            store
                .insert_many(std::mem::take(&mut batch))
                .await
                .expect("insert");
        }
    }
    store.insert_many(batch).await.expect("insert");
    count as u64
}

fn mb(bytes: f64) -> String {
    format!("{:.2} MB", bytes / 1e6)
}

#[tokio::main]
async fn main() {
    let now = OffsetDateTime::now_utc();
    let every = Duration::from_secs(5);

    // One device, one day at 5 s.
    let day_dir = dir("day");
    let store = SqliteStore::open(&day_dir).expect("open");
    let started = Instant::now();
    let reports = fill(&store, "day", now, Duration::from_secs(86_400), every).await;
    let insert_time = started.elapsed();
    let db = store.path().to_path_buf();
    drop(store);
    let (tables, live) = table_sizes(&db);
    let raw = tables.iter().find(|(n, _)| n == "raw").map_or(0, |t| t.1) as f64;
    let rollups = tables
        .iter()
        .find(|(n, _)| n == "rollups")
        .map_or(0, |t| t.1) as f64;
    let rollup_rows = 1440.0 + 24.0;
    let per_report = raw / reports as f64;
    let per_row = rollups / rollup_rows;
    println!(
        "one device, one day at 5 s: {reports} reports inserted in {:.1} s ({:.0} reports/s in batches of 1,000)",
        insert_time.as_secs_f64(),
        reports as f64 / insert_time.as_secs_f64()
    );
    for (name, bytes) in &tables {
        println!("  {name:<24} {}", mb(*bytes as f64));
    }
    println!("  live database            {}", mb(live as f64));
    println!("  raw: {per_report:.0} B per report; rollup row: {per_row:.0} B");
    let per_day = raw + rollups;
    let year = 2.0 * raw + 30.0 * 1440.0 * per_row + 8760.0 * per_row;
    println!("bytes per device per day (raw + rollups): {}", mb(per_day));
    println!(
        "per device-year, steady state at the default tiers (48 h raw, 30 d minutes, 1 y hours): {}",
        mb(year)
    );
    println!(
        "  of which the year of hour buckets: {}",
        mb(8760.0 * per_row)
    );
    let _ = std::fs::remove_dir_all(&day_dir);

    // 30 days of one device, then a 30-day history query.
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
    store.apply_retention(now).await.expect("retention");
    println!(
        "30 days at 5 s: {month} reports in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let query = HistoryQuery {
        device_id: "month".into(),
        metric: "cpu_usage".into(),
        from: now - time::Duration::days(30),
        to: now,
        max_points: 1000,
    };
    let mut times = Vec::new();
    let mut points = 0;
    for _ in 0..21 {
        let started = Instant::now();
        let history = store
            .history(&query)
            .await
            .expect("history")
            .expect("known");
        times.push(started.elapsed());
        points = history.points.len();
    }
    times.sort();
    println!(
        "30-day history query ({points} points, {:?} tier): median {:.2} ms, max {:.2} ms",
        store.history(&query).await.expect("h").expect("k").tier,
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
            fill(
                &store,
                &format!("big-{device:04}"),
                now,
                Duration::from_secs(2 * 86_400),
                every,
            )
            .await;
            device += 1;
        }
        drop(store);
        // Let the writer thread close and checkpoint.
        std::thread::sleep(Duration::from_millis(500));
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
