//! One collection by the stock host collector.
//!
//! `cargo bench -p tailmon-benches --bench collect`

use criterion::{Criterion, criterion_group, criterion_main};
use tailmon_collect::{Collector, HostCollector};
use tailmon_core::{OffsetDateTime, Report};

fn collect(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut collector = HostCollector::new().expect("sysinfo");
    let mut report = Report::new("bench-host", OffsetDateTime::now_utc());
    c.bench_function("host_collector_collect", |b| {
        b.iter(|| {
            runtime
                .block_on(collector.collect(&mut report))
                .expect("probes work")
        })
    });
}

criterion_group!(benches, collect);
criterion_main!(benches);
