//! End-to-end ingest over real HTTP on loopback: reports per second that one
//! server takes with the SQLite store, the in-memory store, and a bare axum
//! handler that only reads the body (the ceiling), in the same run.
//!
//! `cargo bench -p tailmon-benches --bench ingest_http`
//! (`TAILMON_BENCH_SECS=10` per case by default, `TAILMON_BENCH_CONNECTIONS=32`,
//! `TAILMON_BENCH_ROUNDS=3`, `TAILMON_BENCH_CASES=bare,memory,fsync,process` to
//! run only some cases.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tailmon_benches::simulated_host::SimulatedHost;
use tailmon_core::OffsetDateTime;
use tailmon_server::{Durability, MemoryStore, ServerBuilder, SqliteStore, Store};

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

fn main() {
    let secs = env("TAILMON_BENCH_SECS", 10);
    let connections = env("TAILMON_BENCH_CONNECTIONS", 32);
    let rounds = env("TAILMON_BENCH_ROUNDS", 3).max(1);
    let devices = 1000;
    // A comma-separated subset of bare,memory,fsync,process (for profiling).
    let cases =
        std::env::var("TAILMON_BENCH_CASES").unwrap_or_else(|_| "bare,memory,fsync,process".into());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bare = serve(Router::new().route(
            "/api/metrics",
            post(|body: Bytes| async move { body.len().to_string() }),
        ))
        .await;
        let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let memory = serve(
            ServerBuilder::new()
                .open_access()
                .rate_limit_per_address(None)
                .store(memory)
                .build()
                .expect("server")
                .router(),
        )
        .await;
        let dir = std::env::temp_dir().join(format!("tailmon-bench-{}", std::process::id()));
        let disk_store = Arc::new(SqliteStore::open(dir.join("disk")).expect("sqlite"));
        let disk = serve(
            ServerBuilder::new()
                .open_access()
                .rate_limit_per_address(None)
                .store(disk_store.clone())
                .build()
                .expect("server")
                .router(),
        )
        .await;
        let process_store = Arc::new(
            SqliteStore::builder(dir.join("process"))
                .durability(Durability::Process)
                .open()
                .expect("sqlite"),
        );
        let process = serve(
            ServerBuilder::new()
                .open_access()
                .rate_limit_per_address(None)
                .store(process_store.clone())
                .build()
                .expect("server")
                .router(),
        )
        .await;

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
            ] {
                if !cases.split(',').any(|c| c == case) {
                    continue;
                }
                let mut rate = load(addr, connections, secs, devices).await;
                if let Some(store) = store {
                    // The reports the run acknowledged are sealed into blocks
                    // at the next checkpoint: its time counts against the run.
                    let started = Instant::now();
                    store.checkpoint().await.expect("checkpoint");
                    let sealing = started.elapsed().as_secs_f64();
                    rate *= secs as f64 / (secs as f64 + sealing);
                }
                println!("round {round}: {case:<8} {rate:>9.0} reports/s");
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
