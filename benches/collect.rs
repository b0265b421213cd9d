//! One collection by the stock host collector, next to the floor it cannot
//! beat: reading the same kernel sources directly.
//!
//! `cargo bench -p tailmon-benches --bench collect`

use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tailmon_collect::{Collector, HostCollector, Subsystems};
use tailmon_core::{OffsetDateTime, Report};

/// The kernel files a full collection reads on Linux.
const SOURCES: [&str; 6] = [
    "/proc/stat",
    "/proc/meminfo",
    "/proc/loadavg",
    "/proc/net/dev",
    "/proc/diskstats",
    "/proc/mounts",
];

/// Reads every source once into a reused buffer and statvfs's each mount the
/// collector reports: no parsing, no allocation per call.
fn floor(buffer: &mut String, mounts: &[String]) -> usize {
    let mut total = 0;
    for path in SOURCES {
        buffer.clear();
        if let Ok(mut file) = std::fs::File::open(path) {
            total += file.read_to_string(buffer).unwrap_or(0);
        }
    }
    for mount in mounts {
        if let Ok(stat) = nix::sys::statvfs::statvfs(mount.as_str()) {
            total += stat.blocks() as usize;
        }
    }
    total
}

fn collect(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut report = Report::new("bench-host", OffsetDateTime::now_utc());

    // Steady state: the process table is scanned at most every 30 s, so leave
    // it to its own benchmark below.
    let steady: Subsystems = "cpu,load,swap,disks,diskio,network,temperature,system"
        .parse()
        .expect("known subsystems");
    let mut collector = HostCollector::builder()
        .subsystems(steady)
        .build()
        .expect("sysinfo");
    runtime
        .block_on(collector.collect(&mut report))
        .expect("probes work");
    let mounts: Vec<String> = report
        .disks
        .iter()
        .flatten()
        .map(|d| d.mount_point.clone())
        .collect();

    let mut group = c.benchmark_group("collection");
    group.bench_function("floor_read_kernel_sources", |b| {
        let mut buffer = String::with_capacity(64 * 1024);
        b.iter(|| black_box(floor(&mut buffer, &mounts)))
    });
    group.bench_function("host_collector_all_but_processes", |b| {
        b.iter(|| {
            runtime
                .block_on(collector.collect(black_box(&mut report)))
                .expect("probes work")
        })
    });
    let mut original = HostCollector::builder()
        .subsystems(Subsystems::none())
        .build()
        .expect("sysinfo");
    group.bench_function("host_collector_original_fields", |b| {
        b.iter(|| {
            runtime
                .block_on(original.collect(black_box(&mut report)))
                .expect("probes work")
        })
    });
    // Each subsystem alone; the process scan has its own benchmark below.
    for name in Subsystems::NAMES.iter().filter(|n| **n != "processes") {
        let mut one = HostCollector::builder()
            .subsystems(name.parse().expect("known"))
            .build()
            .expect("sysinfo");
        group.bench_function(format!("host_collector_only_{name}"), |b| {
            b.iter(|| {
                runtime
                    .block_on(one.collect(black_box(&mut report)))
                    .expect("probes work")
            })
        });
    }
    let mut scanner = HostCollector::builder()
        .subsystems("processes".parse().expect("known"))
        .process_scan_interval(Duration::ZERO)
        .build()
        .expect("sysinfo");
    group.bench_function("process_scan", |b| {
        b.iter(|| {
            runtime
                .block_on(scanner.collect(black_box(&mut report)))
                .expect("probes work")
        })
    });
    group.finish();
}

criterion_group!(benches, collect);
criterion_main!(benches);
