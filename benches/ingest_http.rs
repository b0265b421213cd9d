//! End-to-end ingest over real HTTP on loopback: reports per second that one
//! server takes with the SQLite store, the in-memory store, and a bare axum
//! handler that only reads the body (the ceiling), in the same run. Two more
//! cases give the floor of a durable store: [`LogStore`], which only appends
//! each report's JSON from one writer thread before answering, with and
//! without `fdatasync`. Each round also prints the CPU time the whole process
//! (load generator included) spent per report.
//!
//! `cargo bench -p tailmon-benches --bench ingest_http`
//! (`TAILMON_BENCH_SECS=10` per case by default, `TAILMON_BENCH_CONNECTIONS=32`,
//! `TAILMON_BENCH_ROUNDS=3`,
//! `TAILMON_BENCH_CASES=alone,bare,memory,fsync,process,logsync,log` to run only
//! some cases.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tailmon_benches::log_store::LogStore;
use tailmon_benches::simulated_host::SimulatedHost;
use tailmon_core::{OffsetDateTime, OrgId};
use tailmon_server::store::Durability;
use tailmon_server::{MemoryStore, ServerBuilder, SqliteStore, Store};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Serves the stock server, open to all and unthrottled, over `store`.
async fn serve_store(store: Arc<dyn Store>) -> SocketAddr {
    serve(
        ServerBuilder::new()
            .open_access()
            .rate_limit_per_address(None)
            .store(store)
            .build()
            .expect("server")
            .router(),
    )
    .await
}

/// Posts full reports of `devices` simulated hosts from `connections`
/// clients for `secs`; returns acknowledged reports per second.
async fn load(addr: SocketAddr, connections: u64, secs: u64, devices: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let client = tailmon_client::Client::builder(format!("http://{addr}"))
                .build()
                .expect("client");
            // This connection's share of the hosts.
            let mut hosts: Vec<SimulatedHost> = (c..devices)
                .step_by(connections as usize)
                .map(|d| SimulatedHost::new(&format!("load-{d:05}"), d))
                .collect();
            let mut n = 0;
            while Instant::now() < deadline && !hosts.is_empty() {
                let which = n % hosts.len();
                let report = hosts[which].next(OffsetDateTime::now_utc());
                if client.send(&report).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / secs as f64
}

/// What a store itself costs a report, without HTTP: `rounds` reports of
/// each of `devices` simulated hosts, given in batches of one report per
/// host (the most reports a commit can group), then a checkpoint when the
/// store has one. Returns wall-clock and CPU microseconds a report.
async fn store_alone(
    store: &dyn Store,
    sqlite: Option<&SqliteStore>,
    devices: u64,
    rounds: usize,
) -> (f64, Option<f64>) {
    let mut hosts: Vec<SimulatedHost> = (0..devices)
        .map(|d| SimulatedHost::new(&format!("alone-{d:05}"), d))
        .collect();
    let start = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let batches: Vec<Vec<tailmon_core::Report>> = (0..rounds)
        .map(|n| {
            let at = start + time::Duration::seconds(5 * n as i64);
            hosts.iter_mut().map(|h| h.next(at)).collect()
        })
        .collect();
    let reports = (rounds as u64 * devices) as f64;
    let cpu0 = cpu_ticks();
    let started = Instant::now();
    for batch in batches {
        store
            .insert_many(&OrgId::default(), batch)
            .await
            .expect("insert");
    }
    if let Some(store) = sqlite {
        store.checkpoint().await.expect("checkpoint");
    }
    let wall = started.elapsed().as_secs_f64() * 1e6 / reports;
    (wall, cpu_micros_since(cpu0, reports))
}

/// CPU microseconds a report since `before` (from [`cpu_ticks`]).
fn cpu_micros_since(before: Option<u64>, reports: f64) -> Option<f64> {
    Some(cpu_ticks()?.checked_sub(before?)? as f64 * 10_000.0 / reports)
}

/// The CPU time (user and system) this process has used, in clock ticks
/// of 10 ms, from `/proc/self/stat`; `None` where there is no such file.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields 14 and 15 (utime, stime), counted after the parenthesised name.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn main() {
    let secs = env("TAILMON_BENCH_SECS", 10);
    let connections = env("TAILMON_BENCH_CONNECTIONS", 32);
    let rounds = env("TAILMON_BENCH_ROUNDS", 3).max(1);
    let devices = 1000;
    // A comma-separated subset of the cases (for profiling).
    let cases = std::env::var("TAILMON_BENCH_CASES")
        .unwrap_or_else(|_| "alone,bare,memory,fsync,process,logsync,log".into());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bare = serve(Router::new().route(
            "/api/metrics",
            post(|body: Bytes| async move { body.len().to_string() }),
        ))
        .await;
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let memory = serve_store(memory).await;
        let dir = std::env::temp_dir().join(format!("tailmon-bench-{}", std::process::id()));
        let disk_store = Arc::new(SqliteStore::open(dir.join("disk")).expect("sqlite"));
        let disk = serve_store(disk_store.clone()).await;
        let process_store = Arc::new(
            SqliteStore::builder(dir.join("process"))
                .durability(Durability::Process)
                .open()
                .expect("sqlite"),
        );
        let process = serve_store(process_store.clone()).await;
        let log_sync = LogStore::create(&dir.join("log-sync"), true).expect("log");
        let log_sync = serve_store(Arc::new(log_sync)).await;
        let log = LogStore::create(&dir.join("log"), false).expect("log");
        let log = serve_store(Arc::new(log)).await;

        if cases.split(',').any(|c| c == "alone") {
            println!("each store alone, {devices} devices, 30 batches of one report a device:");
            let alone = dir.join("alone");
            let memory = MemoryStore::new();
            let fsync = SqliteStore::open(alone.join("fsync")).expect("sqlite");
            let process = SqliteStore::builder(alone.join("process"))
                .durability(Durability::Process)
                .open()
                .expect("sqlite");
            let log_sync = LogStore::create(&alone.join("log-sync"), true).expect("log");
            let log = LogStore::create(&alone.join("log"), false).expect("log");
            for (name, store, sqlite) in [
                ("in-memory store", &memory as &dyn Store, None),
                ("SQLite, fsync", &fsync, Some(&fsync)),
                ("SQLite, process", &process, Some(&process)),
                ("log floor, fsync", &log_sync, None),
                ("log floor", &log, None),
            ] {
                let (wall, cpu) = store_alone(store, sqlite, devices, 30).await;
                let cpu = cpu.map_or(String::new(), |cpu| format!(", {cpu:.1} µs CPU"));
                println!("  {name:<18} {wall:>6.1} µs a report{cpu}");
            }
        }
        println!(
            "{connections} connections, {devices} devices, {secs} s per case, {rounds} rounds"
        );
        // The cases take turns, round after round, so that a slow spell of
        // the machine falls on all of them; each case's median is reported.
        let mut rates: Vec<(&str, Vec<f64>)> = Vec::new();
        for round in 1..=rounds {
            for (case, addr, store) in [
                ("bare", bare, None),
                ("memory", memory, None),
                ("fsync", disk, Some(&disk_store)),
                ("process", process, Some(&process_store)),
                ("logsync", log_sync, None),
                ("log", log, None),
            ] {
                if !cases.split(',').any(|c| c == case) {
                    continue;
                }
                let cpu0 = cpu_ticks();
                let mut rate = load(addr, connections, secs, devices).await;
                let sent = rate * secs as f64;
                if let Some(store) = store {
                    // The reports the run acknowledged are sealed into blocks
                    // at the next checkpoint: its time counts against the run.
                    let started = Instant::now();
                    store.checkpoint().await.expect("checkpoint");
                    let sealing = started.elapsed().as_secs_f64();
                    rate *= secs as f64 / (secs as f64 + sealing);
                }
                // Load generator and server alike: every thread of the process.
                let cpu = cpu_micros_since(cpu0, sent)
                    .map_or(String::new(), |cpu| format!("{cpu:>6.1} µs CPU a report"));
                println!("round {round}: {case:<8} {rate:>9.0} reports/s  {cpu}");
                match rates.iter_mut().find(|(c, _)| *c == case) {
                    Some((_, runs)) => runs.push(rate),
                    None => rates.push((case, vec![rate])),
                }
            }
        }
        let median = |case: &str| {
            rates
                .iter()
                .find(|(c, _)| *c == case)
                .map_or(f64::NAN, |(_, runs)| {
                    let mut runs = runs.clone();
                    runs.sort_by(f64::total_cmp);
                    runs[runs.len() / 2]
                })
        };
        let (bare_rate, memory_rate) = (median("bare"), median("memory"));
        println!("median of each case (SQLite counting the checkpoint that seals its run):");
        println!("bare axum handler:   {bare_rate:>9.0} reports/s");
        println!(
            "in-memory store:     {memory_rate:>9.0} reports/s  ({:.2}x bare)",
            memory_rate / bare_rate
        );
        for (case, name) in [
            ("fsync", "SQLite, fsync:  "),
            ("process", "SQLite, process:"),
            ("logsync", "log floor, fsync:"),
            ("log", "log floor:      "),
        ] {
            let rate = median(case);
            println!(
                "{name}     {rate:>9.0} reports/s  ({:.2}x memory)",
                rate / memory_rate
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    });
}
