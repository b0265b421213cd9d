//! The ingest path, piece by piece and whole: decode, validate, store, and one
//! `POST /api/metrics` through the router without a socket.
//!
//! `cargo bench -p tailmon-benches --bench ingest`

use std::hint::black_box;

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use tailmon_core::{OffsetDateTime, OrgId, Report};

use tailmon_server::auth::NewToken;
use tailmon_server::{Credentials, MemoryStore, ServerBuilder, Store};
use tower::ServiceExt;

fn sample(device: usize) -> Report {
    let mut report = Report::new(
        format!("host-{device:05}.example.com"),
        OffsetDateTime::now_utc(),
    );
    report.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
    report.cpu_usage = 37.5;
    report.ram_used_mb = 4096;
    report.ram_total_mb = 16384;
    report
}

/// One `POST /api/metrics` through `router`, with a bearer header if given.
fn post(
    runtime: &tokio::runtime::Runtime,
    router: &axum::Router,
    body: Vec<u8>,
    authorization: Option<&str>,
) {
    let mut request =
        Request::post("/api/metrics").header(header::CONTENT_TYPE, "application/json");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let request = request.body(Body::from(body)).expect("request");
    let response = runtime
        .block_on(router.clone().oneshot(request))
        .expect("infallible");
    assert!(response.status().is_success());
}

fn ingest(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let report = sample(1);
    let body = serde_json::to_vec(&report).expect("json");
    let now = OffsetDateTime::now_utc();

    c.bench_function("decode", |b| {
        b.iter(|| serde_json::from_slice::<Report>(black_box(&body)).expect("valid"))
    });
    c.bench_function("validate", |b| {
        b.iter(|| black_box(&report).validate(now).expect("valid"))
    });

    let store = MemoryStore::new();
    let org = OrgId::default();
    c.bench_function("store_insert_known_device", |b| {
        b.iter(|| {
            runtime
                .block_on(store.insert(&org, black_box(report.clone())))
                .expect("stored")
        })
    });

    let router = ServerBuilder::new()
        .open_access()
        .build()
        .expect("valid")
        .router();
    c.bench_function("post_api_metrics_router", |b| {
        b.iter(|| post(&runtime, &router, body.clone(), None))
    });

    // The same with authentication on: a device-bound agent token from a
    // credentials file (checked for changes on each request), rate limits on.
    let dir = std::env::temp_dir().join(format!("tailmon-bench-auth-{}", std::process::id()));
    let credentials = Credentials::open(&dir).expect("credentials");
    let token = credentials
        .create_token(NewToken::agent("bench").device("host-*"))
        .expect("token")
        .token;
    let router = ServerBuilder::new()
        .credentials(Arc::new(credentials))
        .rate_limit_per_token(None)
        .build()
        .expect("valid")
        .router();
    let bearer = format!("Bearer {token}");
    c.bench_function("post_api_metrics_router_with_agent_token", |b| {
        b.iter(|| post(&runtime, &router, body.clone(), Some(&bearer)))
    });
    let _ = std::fs::remove_dir_all(&dir);

    // 1,000 devices reporting in turn: the admission check and map stay flat.
    let bodies: Vec<Vec<u8>> = (0..1000)
        .map(|n| serde_json::to_vec(&sample(n)).expect("json"))
        .collect();
    let router = ServerBuilder::new()
        .open_access()
        .build()
        .expect("valid")
        .router();
    let mut next = 0;
    c.bench_function("post_api_metrics_router_1000_devices", |b| {
        b.iter(|| {
            next = (next + 1) % bodies.len();
            post(&runtime, &router, bodies[next].clone(), None);
        })
    });
}

criterion_group!(benches, ingest);
criterion_main!(benches);
