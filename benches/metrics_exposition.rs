//! `GET /metrics` with 10,000 devices: a scrape of an unchanged fleet (the
//! cached devices' part plus the health written fresh), with and without
//! gzip, and the cold cost of writing every device's lines from its report
//! (what a scrape pays when every device has reported since the last).
//!
//! `cargo bench -p tailmon-benches --bench metrics_exposition`

use std::hint::black_box;

use axum::body::Body;
use axum::http::{Request, header};
use criterion::{Criterion, criterion_group, criterion_main};
use tailmon_core::exposition::{DeviceSamples, write_devices};
use tailmon_core::{Disk, NetworkInterface, OffsetDateTime, Report, Temperature};
use tailmon_server::ServerBuilder;
use tower::ServiceExt;

const DEVICES: usize = 10_000;

/// A host report with 8 cores, 2 disks, 2 interfaces and 3 sensors.
fn report(device: usize) -> Report {
    let mut r = Report::new(format!("host-{device:05}"), OffsetDateTime::now_utc());
    r.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
    r.cpu_usage = (device % 100) as f64 + 0.5;
    r.ram_used_mb = 4096;
    r.ram_total_mb = 16384;
    r.cpu_per_core = Some((0..8).map(|c| (c * 10) as f64 + 0.25).collect());
    r.disks = Some(
        ["/", "/var"]
            .iter()
            .map(|m| Disk {
                mount_point: (*m).into(),
                fs_type: "ext4".into(),
                total_bytes: 100_000_000_000,
                used_bytes: 22_000_000_000,
                available_bytes: Some(73_000_000_000),
            })
            .collect(),
    );
    r.networks = Some(
        ["eth0", "eth1"]
            .iter()
            .map(|i| NetworkInterface {
                interface: (*i).into(),
                rx_bytes_per_sec: Some(12_345.5),
                tx_bytes_per_sec: Some(2_345.25),
                rx_bytes_total: 123_456_789,
                tx_bytes_total: 23_456_789,
                rx_errors: 0,
                tx_errors: 0,
            })
            .collect(),
    );
    r.temperatures = Some(
        (0..3)
            .map(|s| Temperature {
                label: format!("coretemp Core {s}"),
                celsius: 45.0 + s as f64,
            })
            .collect(),
    );
    r.uptime_seconds = Some(86_400);
    r
}

fn metrics(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = ServerBuilder::new().open_access().build().expect("server");
    let router = server.router();
    let reports: Vec<Report> = (0..DEVICES).map(report).collect();
    runtime.block_on(async {
        for chunk in reports.chunks(1000) {
            server
                .ingest()
                .ingest_batch(chunk.to_vec())
                .await
                .expect("stored");
        }
    });
    let scrape = |gzip: bool| {
        let mut request = Request::get("/metrics");
        if gzip {
            request = request.header(header::ACCEPT_ENCODING, "gzip");
        }
        let request = request.body(Body::empty()).expect("request");
        runtime.block_on(async {
            let response = router.clone().oneshot(request).await.expect("infallible");
            assert!(response.status().is_success());
            axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body")
                .len()
        })
    };
    eprintln!(
        "GET /metrics, {DEVICES} devices: {} bytes plain, {} bytes gzip",
        scrape(false),
        scrape(true)
    );
    let mut group = c.benchmark_group("metrics_10k");
    group.sample_size(20);
    group.bench_function("scrape_unchanged_plain", |b| {
        b.iter(|| black_box(scrape(false)))
    });
    group.bench_function("scrape_unchanged_gzip", |b| {
        b.iter(|| black_box(scrape(true)))
    });
    group.bench_function("write_every_device_cold", |b| {
        b.iter(|| {
            let samples: Vec<DeviceSamples> = reports.iter().map(DeviceSamples::new).collect();
            let mut out = String::with_capacity(16 << 20);
            write_devices(&mut out, samples.iter());
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
