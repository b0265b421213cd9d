//! Sizes and timings on report-like rows.

use serde_json::{Value, json};

use super::*;
use crate::store::codec::decoder::*;
use crate::store::codec::encoder::*;

#[test]
fn reports_compress_well_below_per_row_zstd() {
    let rows = report_rows(720, 42);
    let json_bytes: usize = rows
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .sum();
    let per_row_zstd: usize = rows
        .iter()
        .map(|r| {
            zstd::bulk::compress(&serde_json::to_vec(r).unwrap(), 9)
                .unwrap()
                .len()
        })
        .sum();
    let encoder = encoder_of(&rows);
    let encoded = encoder.encode();
    let sealed = encoder.seal(9).unwrap();
    assert_identical(&decode_sealed(&sealed).unwrap(), &rows);
    let n = rows.len() as f64;
    let sealed_per_row = sealed.len() as f64 / n;
    let zstd_per_row = per_row_zstd as f64 / n;
    println!(
        "{} rows, {} leaves per row, {} columns: JSON {:.0} B/row, each row zstd-9 {:.1} B/row, \
         block encoded {:.1} B/row, sealed zstd-9 {:.1} B/row ({} B), {:.1}x smaller",
        rows.len(),
        leaves(&rows[0]),
        encoder.columns.len(),
        json_bytes as f64 / n,
        zstd_per_row,
        encoded.len() as f64 / n,
        sealed_per_row,
        sealed.len(),
        zstd_per_row / sealed_per_row,
    );
    assert!(sealed_per_row < 120.0, "{sealed_per_row} B/row");
    assert!(
        sealed_per_row * 4.0 < zstd_per_row,
        "{sealed_per_row} vs {zstd_per_row}"
    );
}

#[test]
fn rollup_rows_round_trip() {
    let rng = &mut Rng(3);
    let mut cpu = Walk::new(rng, 10_000, 300, 2);
    let rows: Vec<Value> = (0..200)
        .map(|i| {
            let (a, b, c) = (cpu.next(rng), cpu.next(rng), cpu.next(rng));
            json!({
                "t": 1_700_000_000 + 60 * i,
                "cpu_usage": [12, a + b, a.min(c), b.max(c)],
                "disk_used_percent:/": [12, 45.5, 45.25, 45.75],
            })
        })
        .collect();
    round_trip(&rows);
}

/// Run with `cargo test --release -p tailmon-server --lib codec -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn push_timing() {
    use std::time::{Duration, Instant};
    let rows = report_rows(720, 9);
    let jsons: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    let json_bytes: usize = jsons.iter().map(Vec::len).sum();
    let rounds = 30;
    // As in the store: each row is pushed right after it was parsed.
    let mut pushing = Duration::ZERO;
    let mut parsing = Duration::ZERO;
    for _ in 0..rounds {
        let mut encoder = BlockEncoder::new();
        for json in &jsons {
            let start = Instant::now();
            let row: Value = serde_json::from_slice(json).unwrap();
            let parsed = Instant::now();
            encoder.push(&row);
            pushing += parsed.elapsed();
            parsing += parsed - start;
        }
    }
    let per_row = |d: Duration| d.as_secs_f64() * 1e6 / (rounds * rows.len()) as f64;
    // Rows long parsed, spread over memory: cache misses on the Value.
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(encoder_of(&rows));
    }
    let cold = per_row(start.elapsed());
    let encoder = encoder_of(&rows);
    let start = Instant::now();
    let block = encoder.encode();
    let encode = start.elapsed().as_secs_f64() * 1e6;
    let start = Instant::now();
    let sealed = encoder.seal(9).unwrap();
    let seal = start.elapsed().as_secs_f64() * 1e6;
    let start = Instant::now();
    let decoded = decode_sealed(&sealed).unwrap();
    let decode_time = start.elapsed().as_secs_f64() * 1e6;
    assert_eq!(decoded.len(), rows.len());
    println!(
        "push: {:.2} µs/row just after parsing it (the parse: {:.2} µs), {cold:.2} µs/row \
         for rows parsed long before ({:.0} B JSON, {} leaves per row); per 720-row block: \
         encode {encode:.0} µs ({} B), seal-9 {seal:.0} µs ({} B), decode_sealed \
         {decode_time:.0} µs",
        per_row(pushing),
        per_row(parsing),
        json_bytes as f64 / rows.len() as f64,
        leaves(&rows[0]),
        block.len(),
        sealed.len(),
    );
}

// ---- push_serialize: the same block as push(&to_value(..)) ----
