//! A device page's history request: 40 series of one device over 24 hours
//! of 5-second reports in the SQLite store, asked one metric at a time
//! (`Store::history` 40 times, what `/histories` did before) and all at
//! once (`Store::histories`), then through the whole router as the
//! dashboard asks it (`GET /api/v1/devices/{id}/histories`, identity and
//! gzip).
//!
//! `cargo bench -p tailmon-benches --bench histories`

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tailmon_benches::simulated_host::SimulatedHost;
use tailmon_core::{OffsetDateTime, OrgId, Report, metric};
use tailmon_server::store::HistoryQuery;
use tailmon_server::{ManualClock, ServerBuilder, SqliteStore, Store};
use tower::ServiceExt;

/// Reports between checkpoints, as a live server at 5 s seals them.
const CHECKPOINT_REPORTS: usize = 120;
/// The series a device page asks for.
const SERIES: usize = 40;
/// Timed runs of each case; the median and the slowest are shown.
const RUNS: usize = 11;

/// A simulated host's report with 14 custom metrics besides its 26, so
/// that it has the 40 series a busy device page draws.
fn report(host: &mut SimulatedHost, at: OffsetDateTime, n: u64) -> Report {
    let mut r = host.next(at);
    r.custom = Some(
        (0..14u64)
            .map(|i| {
                (
                    format!("queue_{i}"),
                    ((n * 7 + i * 13) % 1000) as f64 / 10.0,
                )
            })
            .collect(),
    );
    r
}

/// The median and the slowest of `RUNS` runs of `case`, in milliseconds.
async fn time<F: std::future::Future<Output = ()>>(mut case: impl FnMut() -> F) -> (f64, f64) {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        case().await;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], times[RUNS - 1])
}

#[tokio::main]
async fn main() {
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    let dir = std::env::temp_dir().join(format!("tailmon-bench-histories-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(
        SqliteStore::builder(&dir)
            .clock(Arc::new(ManualClock::new(now)))
            .open()
            .expect("open"),
    );
    let mut host = SimulatedHost::new("web-1", 7);
    let count = 86_400 / 5;
    let mut batch = Vec::with_capacity(CHECKPOINT_REPORTS);
    let mut last = None;
    for n in 0..count {
        let at = now - time::Duration::seconds((count - n) * 5);
        let r = report(&mut host, at, n as u64);
        last = Some(r.clone());
        batch.push(r);
        if batch.len() == CHECKPOINT_REPORTS {
            store
                .insert_many(&OrgId::default(), std::mem::take(&mut batch))
                .await
                .expect("insert");
            store.checkpoint().await.expect("checkpoint");
        }
    }
    store
        .insert_many(&OrgId::default(), batch)
        .await
        .expect("insert");
    let mut metrics = Vec::new();
    metric::for_each(&last.expect("reports"), |name, _| {
        metrics.push(name.to_owned())
    });
    metrics.truncate(SERIES);
    assert_eq!(
        metrics.len(),
        SERIES,
        "the simulated report has {SERIES} series"
    );
    println!("one device, 24 h at 5 s ({count} reports), {SERIES} series asked");

    for (label, hours, points) in [
        (
            "24 h, points=2000: minute buckets, 1,441 points a series",
            24,
            2_000,
        ),
        ("12 h, points=10000: raw, 8,640 points a series", 12, 10_000),
        ("1 h, points=1000: raw, 720 points a series", 1, 1_000),
    ] {
        let from = now - time::Duration::hours(hours);
        let (one_by_one, one_worst) = time(|| async {
            for name in &metrics {
                let query =
                    HistoryQuery::new("web-1", name.as_str(), from, now).with_max_points(points);
                store
                    .history(&OrgId::default(), &query)
                    .await
                    .expect("history")
                    .expect("known");
            }
        })
        .await;
        let (together, together_worst) = time(|| async {
            store
                .histories(&OrgId::default(), "web-1", &metrics, from, now, points)
                .await
                .expect("histories")
                .expect("known");
        })
        .await;
        println!(
            "{label}: history x{SERIES} median {one_by_one:.1} ms (max {one_worst:.1}); \
             histories median {together:.1} ms (max {together_worst:.1}); {:.1}x",
            one_by_one / together
        );
    }

    // The whole request, as the device page sends it.
    let router = ServerBuilder::new()
        .open_access()
        .store(Arc::clone(&store))
        .clock(Arc::new(ManualClock::new(now)))
        .build()
        .expect("server")
        .router();
    for (label, hours, points) in [("24 h", 24, 2_000), ("1 h", 1, 1_000)] {
        let mut uri = format!(
            "/api/v1/devices/web-1/histories?from={}&to={}&points={points}",
            (now - time::Duration::hours(hours)).unix_timestamp(),
            now.unix_timestamp()
        );
        for name in &metrics {
            uri.push_str("&metric=");
            for byte in name.bytes() {
                if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                    uri.push(char::from(byte));
                } else {
                    uri.push_str(&format!("%{byte:02X}"));
                }
            }
        }
        for encoding in ["identity", "gzip", "br"] {
            let bytes = std::cell::Cell::new(0);
            let (median, worst) = time(|| {
                let request = Request::get(&uri)
                    .header(header::ACCEPT_ENCODING, encoding)
                    .body(Body::empty())
                    .expect("request");
                let router = router.clone();
                let bytes = &bytes;
                async move {
                    let response = router.oneshot(request).await.expect("answer");
                    assert_eq!(response.status(), StatusCode::OK);
                    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                        .await
                        .expect("body");
                    bytes.set(body.len());
                }
            })
            .await;
            println!(
                "GET /histories, {label}, {SERIES} series, points={points}, {encoding}: \
                 median {median:.1} ms (max {worst:.1}), {:.0} kB",
                bytes.get() as f64 / 1e3
            );
        }
    }
    drop(router);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
