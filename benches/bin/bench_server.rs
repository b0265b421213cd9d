//! The stock server over a chosen store, open to all and unthrottled, for
//! load generators run in other processes (`benches/durable_ingest.sh`):
//! every case serves the same router the same way, so that what differs
//! between them is the store alone.
//!
//! `tailmon-bench-server STORE DIR ADDR`, with STORE one of `sqlite`
//! (the default SQLite store, `Durability::Disk`), `sqlite-process`,
//! `memory`, `floor` (`LogStore` with `fdatasync`: the durable floor) and
//! `floor-nosync`. It prints `listening on ADDR` once it accepts, and stops
//! on SIGTERM or SIGINT, after the store's own shutdown work (the SQLite
//! store's last checkpoint), printing how long that took.

use std::sync::Arc;
use std::time::Instant;

/// The stock server's allocator (see bins/tailmon-server/Cargo.toml).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use tailmon_benches::log_store::LogStore;
use tailmon_server::ServeOptions;
use tailmon_server::store::Durability;
use tailmon_server::{MemoryStore, ServerBuilder, SqliteStore, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, dir, addr] = args.as_slice() else {
        return Err(
            "usage: tailmon-bench-server sqlite|sqlite-process|memory|floor|floor-nosync DIR ADDR"
                .into(),
        );
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let store: Arc<dyn Store> = match kind.as_str() {
        "sqlite" => Arc::new(SqliteStore::open(dir)?),
        "sqlite-process" => Arc::new(
            SqliteStore::builder(dir)
                .durability(Durability::Process)
                .open()?,
        ),
        "memory" => Arc::new(MemoryStore::new()),
        "floor" => Arc::new(LogStore::create(&dir.join("log"), true)?),
        "floor-nosync" => Arc::new(LogStore::create(&dir.join("log"), false)?),
        other => return Err(format!("unknown store {other}").into()),
    };
    let served = Arc::clone(&store);
    runtime.block_on(async move {
        let server = ServerBuilder::new()
            .open_access()
            .rate_limit_per_address(None)
            .max_devices(1_000_000)
            .store(served)
            .build()?;
        let listener = tokio::net::TcpListener::bind(addr.as_str()).await?;
        println!("listening on {}", listener.local_addr()?);
        let options = ServeOptions::new()
            .max_connections(100_000)
            .max_connections_per_address(100_000);
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        server.serve_with(listener, options, shutdown).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    let started = Instant::now();
    drop(store);
    drop(runtime);
    println!("stopped in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
