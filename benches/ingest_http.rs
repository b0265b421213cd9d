//! End-to-end ingest over real HTTP on loopback: reports per second that one
//! server takes with the SQLite store, the in-memory store, and a bare axum
//! handler that only reads the body (the ceiling), in the same run.
//!
//! `cargo bench -p tailmon-benches --bench ingest_http`
//! (`TAILMON_BENCH_SECS=10` per case by default, `TAILMON_BENCH_CONNECTIONS=32`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tailmon_core::{OffsetDateTime, Report};
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

/// Posts reports of `devices` devices from `connections` clients for `secs`;
/// returns acknowledged reports per second.
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
            let mut n = 0u64;
            while Instant::now() < deadline {
                let device = (c + n * connections) % devices;
                let mut report =
                    Report::new(format!("load-{device:05}"), OffsetDateTime::now_utc());
                report.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
                report.cpu_usage = (n % 100) as f64;
                report.ram_used_mb = 4096;
                report.ram_total_mb = 16384;
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
    let devices = 1000;
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
                .store(memory)
                .build()
                .expect("server")
                .router(),
        )
        .await;
        let dir = std::env::temp_dir().join(format!("tailmon-bench-{}", std::process::id()));
        let disk: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("disk")).expect("sqlite"));
        let disk = serve(
            ServerBuilder::new()
                .store(disk)
                .build()
                .expect("server")
                .router(),
        )
        .await;
        let process: Arc<dyn Store> = Arc::new(
            SqliteStore::builder(dir.join("process"))
                .durability(Durability::Process)
                .open()
                .expect("sqlite"),
        );
        let process = serve(
            ServerBuilder::new()
                .store(process)
                .build()
                .expect("server")
                .router(),
        )
        .await;

        println!("{connections} connections, {devices} devices, {secs} s per case");
        let bare_rate = load(bare, connections, secs, devices).await;
        println!("bare axum handler:   {bare_rate:>9.0} reports/s");
        let memory_rate = load(memory, connections, secs, devices).await;
        println!(
            "in-memory store:     {memory_rate:>9.0} reports/s  ({:.2}x bare)",
            memory_rate / bare_rate
        );
        let disk_rate = load(disk, connections, secs, devices).await;
        println!(
            "SQLite, fsync:       {disk_rate:>9.0} reports/s  ({:.2}x memory)",
            disk_rate / memory_rate
        );
        let process_rate = load(process, connections, secs, devices).await;
        println!(
            "SQLite, process:     {process_rate:>9.0} reports/s  ({:.2}x memory)",
            process_rate / memory_rate
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
