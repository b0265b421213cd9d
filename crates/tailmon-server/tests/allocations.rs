//! Heap allocations per request and per report stay as they were after a
//! reload: the values a reload swaps (rate limiters, thresholds) are read
//! on the hot paths without allocating. Its own test binary, as it
//! installs a counting global allocator (dhat's).
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::auth::RateLimit;
use tailmon_server::{Clock, ManualClock, MemoryStore, RuntimeConfig, Server, ServerBuilder};
use tower::ServiceExt;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Heap blocks allocated so far.
fn blocks() -> u64 {
    dhat::HeapStats::get().total_blocks
}

const ROUNDS: u64 = 50;

/// Blocks allocated per report ingested in process (the fleet classifies
/// each with the thresholds in force).
async fn per_report(server: &Server, clock: &ManualClock) -> u64 {
    let reports: Vec<Report> = (0..ROUNDS)
        .map(|_| {
            clock.advance(Duration::from_secs(1));
            let mut report = Report::new("measured", clock.now());
            report.cpu_usage = 50.0;
            report.ram_used_mb = 1024;
            report.ram_total_mb = 8192;
            report
        })
        .collect();
    let before = blocks();
    for report in reports {
        server.ingest().ingest(report).await.unwrap();
    }
    (blocks() - before) / ROUNDS
}

/// Blocks allocated per `GET /healthz` from an address (the per-address
/// limiter is consulted).
async fn per_request(router: &axum::Router) -> u64 {
    let requests: Vec<Request<Body>> = (0..ROUNDS)
        .map(|_| {
            let mut request = Request::get("/healthz").body(Body::empty()).unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 40000))));
            request
        })
        .collect();
    let before = blocks();
    for request in requests {
        let answer = router.clone().oneshot(request).await.unwrap();
        assert_eq!(answer.status(), 200);
    }
    (blocks() - before) / ROUNDS
}

#[test]
fn a_reload_adds_no_allocation_per_report_nor_per_request() {
    // Never dropped: dropping it would write a profile file.
    let _profiler = std::mem::ManuallyDrop::new(dhat::Profiler::builder().testing().build());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        // Reports, without a router: no alert task reading them meanwhile.
        let ingesting = ServerBuilder::new()
            .open_access()
            .clock(clock.clone())
            .store(MemoryStore::with_history(Duration::from_secs(10)))
            .build()
            .unwrap();
        // Requests, through the router.
        let serving = ServerBuilder::new()
            .open_access()
            .clock(clock.clone())
            .rate_limit_per_address(RateLimit::new(1000, 100_000))
            .build()
            .unwrap();
        let router = serving.router();
        // Warm up: first-use allocations (maps, thread-locals) are not per report.
        per_report(&ingesting, &clock).await;
        per_request(&router).await;
        let report_before = per_report(&ingesting, &clock).await;
        let request_before = per_request(&router).await;

        let mut config = RuntimeConfig::default();
        config.thresholds.cpu_warning = 40.0;
        config.rate_limit_per_address = RateLimit::new(2000, 100_000);
        let summary = ingesting.reloader().reload(config.clone()).await.unwrap();
        assert_eq!(summary.statuses_changed, 1);
        assert!(
            serving
                .reloader()
                .reload(config)
                .await
                .unwrap()
                .rate_limit_per_address
        );
        // Warm up again: the new limiter's map holds the address once.
        per_request(&router).await;
        let report_after = per_report(&ingesting, &clock).await;
        let request_after = per_request(&router).await;
        eprintln!(
            "blocks per report: {report_before} before a reload, {report_after} after; \
             per request: {request_before} before, {request_after} after"
        );
        assert_eq!(report_after, report_before);
        assert_eq!(request_after, request_before);
    });
}
