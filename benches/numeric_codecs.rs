//! The block codec's numeric streams against pco, on simulated host data:
//! bytes per device-year and CPU per report, for the raw tier and the
//! minute and hour rollups.
//!
//! `cargo bench -p tailmon-benches --bench numeric_codecs`
//! (`TAILMON_BENCH_DAYS`, 7 by default: the days of 5 s reports simulated;
//! `TAILMON_BENCH_PCO_LEVEL`, pco's compression level, 8 by default.)
//!
//! Only the numbers are compared: the paths, kinds, strings, metric names
//! and presence bitmaps around them would be the same with either. Today's
//! encoding is rebuilt here as the store writes it (`store/codec/` for raw
//! blocks, `store/rollup_block.rs` for rollups): per column, integers as
//! zigzag steps in LEB128 varints, decimals scaled by the column's power of
//! ten and stepped the same way, the block then sealed with zstd at level 9.
//! pco gets the same scaled integers, one chunk per column (which is what a
//! reader wanting one metric would need), at its default level, and is not
//! compressed again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tailmon_benches::simulated_host::SimulatedHost;
use tailmon_core::{OffsetDateTime, Report, metric};

/// Reports in a raw block: an hour at 5 s.
const WINDOW: usize = 720;
/// zstd level of sealed blocks in the SQLite store.
const SEAL_LEVEL: i32 = 9;
/// Seconds between reports.
const INTERVAL: i64 = 5;

/// Raw reports, minute buckets and hour buckets a device holds at once at
/// the default tiers: 48 h of raw reports, 30 days of minutes, a year of
/// hours.
const RAW_HELD: f64 = 48.0 * 3600.0 / INTERVAL as f64;
const MINUTES_HELD: f64 = 30.0 * 1440.0;
const HOURS_HELD: f64 = 365.0 * 24.0;

/// One column of numbers, as the encoders see it: the scaled integers (or,
/// for floats no decimal scale of at most 6 holds, their bits).
enum Column {
    Scaled(Vec<i64>),
    Bits(Vec<f64>),
}

/// The smallest `k <= 6` with `x == round(x * 10^k) / 10^k`, as the codec checks.
fn scale_of(x: f64) -> Option<u32> {
    (0..=6).find(|&k| {
        let p = 10f64.powi(k as i32);
        let scaled = (x * p).round();
        scaled.abs() < 2f64.powi(53) && scaled / p == x
    })
}

/// A column of floats at the widest scale its values need.
fn column_of(values: &[f64]) -> Column {
    let widest = values
        .iter()
        .try_fold(0, |widest, &v| scale_of(v).map(|k| k.max(widest)));
    match widest {
        Some(k) => {
            let p = 10f64.powi(k as i32);
            Column::Scaled(values.iter().map(|v| (v * p).round() as i64).collect())
        }
        None => Column::Bits(values.to_vec()),
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Today's encoding of a block's numeric columns: steps as varints, raw
/// bits XORed with the previous, the whole sealed with zstd.
fn today(columns: &[Column]) -> usize {
    let mut out = Vec::new();
    for column in columns {
        match column {
            Column::Scaled(values) => {
                let mut previous = 0i64;
                for &v in values {
                    let step = v.wrapping_sub(previous);
                    put_varint(&mut out, ((step << 1) ^ (step >> 63)) as u64);
                    previous = v;
                }
            }
            Column::Bits(values) => {
                let mut previous = 0u64;
                for v in values {
                    out.extend_from_slice(&(v.to_bits() ^ previous).to_le_bytes());
                    previous = v.to_bits();
                }
            }
        }
    }
    zstd::bulk::compress(&out, SEAL_LEVEL).expect("zstd").len()
}

/// pco's compression level: `TAILMON_BENCH_PCO_LEVEL`, else its default (8).
fn pco_level() -> usize {
    std::env::var("TAILMON_BENCH_PCO_LEVEL")
        .ok()
        .and_then(|level| level.parse().ok())
        .unwrap_or(pco::DEFAULT_COMPRESSION_LEVEL)
}

/// pco: one chunk per column.
fn pco(columns: &[Column]) -> usize {
    let config = pco::ChunkConfig::default().with_compression_level(pco_level());
    columns
        .iter()
        .map(|column| match column {
            Column::Scaled(values) => pco::standalone::simple_compress(values, &config),
            Column::Bits(values) => pco::standalone::simple_compress(values, &config),
        })
        .map(|bytes| bytes.expect("pco").len())
        .sum()
}

/// The numeric leaves of a report, by JSON path.
fn leaves(value: &Value, path: &mut String, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => out.push((path.clone(), n.as_f64().unwrap_or(f64::NAN))),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                leaves(item, path, out);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = path.len();
                path.push('/');
                path.push_str(key);
                leaves(item, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The numeric columns of each raw block (`WINDOW` reports).
fn raw_blocks(reports: &[Report]) -> Vec<Vec<Column>> {
    reports
        .chunks(WINDOW)
        .map(|window| {
            let mut columns: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            let mut found = Vec::new();
            for report in window {
                found.clear();
                let value = serde_json::to_value(report).expect("json");
                leaves(&value, &mut String::new(), &mut found);
                for (path, x) in found.drain(..) {
                    columns.entry(path).or_default().push(x);
                }
            }
            columns.values().map(|values| column_of(values)).collect()
        })
        .collect()
}

/// count, sum, min, max of one bucket.
#[derive(Clone, Copy)]
struct Bucket([f64; 4]);

/// The sum as the store keeps it: rounded to the decimals of min and max
/// when that is within noise (`rollup_block.rs`'s `decimal_sum`).
fn decimal_sum(b: &Bucket) -> f64 {
    let [_, sum, min, max] = b.0;
    for k in 0..=6 {
        let p = 10f64.powi(k);
        let exact = |v: f64| (v * p).round() / p == v;
        if exact(min) && exact(max) {
            let rounded = (sum * p).round() / p;
            return if (rounded - sum).abs() <= 1e-9 * sum.abs().max(1.0) {
                rounded
            } else {
                sum
            };
        }
    }
    sum
}

/// The numeric columns of each rollup block: buckets of `bucket` seconds,
/// blocks of `span` seconds, four columns (count, sum, min, max) a metric.
/// Also the number of bucket rows (bucket, metric) in all blocks.
fn rollup_blocks(reports: &[Report], bucket: i64, span: i64) -> (Vec<Vec<Column>>, usize) {
    // block -> metric -> bucket start -> bucket
    let mut blocks: BTreeMap<i64, BTreeMap<String, BTreeMap<i64, Bucket>>> = BTreeMap::new();
    for report in reports {
        let at = report.last_seen.unix_timestamp();
        let block = blocks.entry(at.div_euclid(span)).or_default();
        metric::for_each(report, |name, v| {
            let b = block
                .entry(name.to_owned())
                .or_default()
                .entry(at.div_euclid(bucket))
                .or_insert(Bucket([0.0, 0.0, v, v]));
            b.0[0] += 1.0;
            b.0[1] += v;
            b.0[2] = b.0[2].min(v);
            b.0[3] = b.0[3].max(v);
        });
    }
    let mut rows = 0;
    let columns = blocks
        .values()
        .map(|metrics| {
            let mut columns = Vec::new();
            for buckets in metrics.values() {
                rows += buckets.len();
                let field =
                    |f: &dyn Fn(&Bucket) -> f64| -> Vec<f64> { buckets.values().map(f).collect() };
                columns.push(column_of(&field(&|b| b.0[0])));
                columns.push(column_of(&field(&decimal_sum)));
                columns.push(column_of(&field(&|b| b.0[2])));
                columns.push(column_of(&field(&|b| b.0[3])));
            }
            columns
        })
        .collect();
    (columns, rows)
}

/// Bytes of all blocks with `encode`, and the median time of 5 runs.
fn measure(blocks: &[Vec<Column>], encode: fn(&[Column]) -> usize) -> (usize, Duration) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let start = Instant::now();
        bytes = blocks.iter().map(|block| encode(block)).sum();
        times.push(start.elapsed());
    }
    times.sort();
    (bytes, times[2])
}

fn main() {
    let days: i64 = std::env::var("TAILMON_BENCH_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(7);
    let start = OffsetDateTime::from_unix_timestamp(1_767_571_200).expect("start");
    let mut host = SimulatedHost::new("bench", 7);
    let n = days * 86_400 / INTERVAL;
    let reports: Vec<Report> = (0..n)
        .map(|i| host.next(start + time::Duration::seconds(i * INTERVAL)))
        .collect();
    let count = reports.len() as f64;

    let raw = raw_blocks(&reports);
    let (minutes, minute_rows) = rollup_blocks(&reports, 60, 6 * 3600);
    let (hours, hour_rows) = rollup_blocks(&reports, 3600, 7 * 86_400);
    let metrics = minute_rows as f64 / (count * INTERVAL as f64 / 60.0);

    println!("{days} days of 5 s reports: {n} reports, {metrics:.0} metrics");
    println!(
        "{:<8} {:<6} {:>12} {:>16} {:>14}",
        "tier", "codec", "bytes/row", "MB/device-year", "CPU/report"
    );
    let mut year = [0.0f64; 2];
    let mut cpu = [0.0f64; 2];
    for (tier, blocks, rows, held) in [
        ("raw", &raw, count, RAW_HELD),
        (
            "minute",
            &minutes,
            minute_rows as f64 / metrics,
            MINUTES_HELD,
        ),
        ("hour", &hours, hour_rows as f64 / metrics, HOURS_HELD),
    ] {
        for (i, (codec, encode)) in [("today", today as fn(&[Column]) -> usize), ("pco", pco)]
            .into_iter()
            .enumerate()
        {
            let (bytes, time) = measure(blocks, encode);
            let per_row = bytes as f64 / rows;
            let mb = per_row * held / 1e6;
            // Every report passes through each tier once when sealed.
            let per_report = time.as_secs_f64() / count * 1e6;
            year[i] += mb;
            cpu[i] += per_report;
            println!("{tier:<8} {codec:<6} {per_row:>12.1} {mb:>16.2} {per_report:>11.3} µs");
        }
    }
    println!(
        "total    today  {:>29.2} {:>11.3} µs\ntotal    pco    {:>29.2} {:>11.3} µs",
        year[0], cpu[0], year[1], cpu[1]
    );
}
