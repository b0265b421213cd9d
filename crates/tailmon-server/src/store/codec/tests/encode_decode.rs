//! Encoding and decoding: round trips of every kind of value, corrupt
//! input, and blocks written by earlier versions.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::store::codec::decoder::*;
use crate::store::codec::encoder::*;
use crate::store::codec::format::*;

#[test]
fn empty_block() {
    let encoder = BlockEncoder::default();
    assert_eq!(encoder.len(), 0);
    assert_eq!(decode(&encoder.encode()).unwrap(), Vec::<Value>::new());
    assert_eq!(
        decode_sealed(&encoder.seal(9).unwrap()).unwrap(),
        Vec::<Value>::new()
    );
}

#[test]
fn top_level_scalars_of_every_kind() {
    let mut rows = vec![
        Value::Null,
        json!(false),
        json!(true),
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(i64::MAX as u64 + 1),
        json!(u64::MAX),
        json!(""),
        json!("héllo \u{0} \n \"quoted\" 🦀 \u{10FFFF}"),
        json!([]),
        json!({}),
    ];
    rows.extend(floats().into_iter().map(float));
    round_trip(&rows);
    // Each one alone too, and every kind after every other one.
    for row in &rows {
        round_trip(std::slice::from_ref(row));
    }
    let pairs: Vec<Value> = rows
        .iter()
        .flat_map(|a| rows.iter().flat_map(move |b| [a.clone(), b.clone()]))
        .collect();
    round_trip(&pairs);
}

#[test]
fn one_column_of_mixed_kinds() {
    let values = [
        json!(1),
        float(2.5),
        json!("a"),
        json!("a"),
        json!("b"),
        Value::Null,
        json!(true),
        json!([]),
        json!({}),
        json!(u64::MAX),
        json!(-3),
        float(0.1 + 0.2),
        float(-0.0),
        json!("a"),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(i64::MIN),
        float(7.25),
    ];
    let rows: Vec<Value> = values.iter().map(|v| json!({ "x": v })).collect();
    round_trip(&rows);
    let absent: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i % 3 == 0 {
                json!({ "y": 1 })
            } else {
                json!({ "x": v })
            }
        })
        .collect();
    round_trip(&absent);
}

#[test]
fn keys_with_any_characters() {
    let row = json!({
        "disk_used_percent:/": 12.5,
        "a/b": 1,
        "a": { "b": 2 },
        "": { "": [""] },
        "0": "not an index",
        "ü🦀\u{0}\n": true,
        "x\"y\\z": null,
    });
    round_trip(&[row.clone(), row]);
    round_trip(&[
        json!({ "a": { "b": 1 } }),
        json!({ "a/b": 1 }),
        json!({ "a": [1] }),
        json!({ "a": { "0": 1 } }),
    ]);
}

#[test]
fn shapes_change() {
    let rows = vec![
        json!({ "a": 1, "b": [1, 2, 3], "c": { "d": "x" } }),
        json!({ "a": 2, "b": [1, 2, 3, 4, 5] }),
        json!({ "a": 3, "b": [1], "c": { "d": "x", "e": [] }, "f": {} }),
        json!({ "a": { "nested": 1 }, "b": [], "c": { "d": { "deeper": [[], {}] } } }),
        json!({ "a": [1, { "x": 1 }], "b": [[1, 2], 3] }),
        json!({ "a": [{ "y": 2 }, 2], "b": {} }),
        json!({ "a": [{ "x": 3 }, { "x": 4 }], "b": [3, [1, 2]] }),
        json!(5),
        json!([1, 2]),
        json!({}),
        json!([]),
        json!({ "a": 1 }),
        json!("text"),
        json!({ "a": 1, "b": [1, 2, 3], "c": { "d": "x" } }),
    ];
    round_trip(&rows);
    // The same rows in reverse create the columns in another order.
    let reversed: Vec<Value> = rows.into_iter().rev().collect();
    round_trip(&reversed);
}

#[test]
fn arrays_of_objects_grow_shrink_and_reorder() {
    let process =
        |pid: u64, name: &str, cpu: f64| json!({ "pid": pid, "name": name, "cpu_percent": cpu });
    let rows = vec![
        json!({ "top": [process(1, "init", 0.5), process(2, "sshd", 1.25)] }),
        json!({ "top": [process(2, "sshd", 3.5), process(1, "init", 0.5), process(3, "cargo", 99.0)] }),
        json!({ "top": [process(3, "cargo", 98.75)] }),
        json!({ "top": [] }),
        json!({}),
        json!({ "top": [process(4, "rustc", 12.0), process(3, "cargo", 1.0)] }),
    ];
    round_trip(&rows);
}

#[test]
fn floats_take_the_decimal_path_when_exact() {
    let rows: Vec<Value> = [12.0, 12.5, 12.25, 12.125, 0.001, 99.999999, 1.0]
        .into_iter()
        .map(|x| json!({ "x": x }))
        .collect();
    let encoder = encoder_of(&rows);
    let column = &encoder.columns[0];
    assert_eq!(column.scale, 6, "raised one step at a time");
    assert!(column.raws.is_empty(), "all of them are decimals");
    round_trip(&rows);

    // 1e15 is exact at scale 0, but at scale 1 it would pass 2^53: the
    // half goes raw, and the column keeps its scale.
    let rows = vec![
        json!({ "x": 1e15 }),
        json!({ "x": 0.5 }),
        json!({ "x": 3.0 }),
    ];
    let encoder = encoder_of(&rows);
    assert_eq!(encoder.columns[0].scale, 0);
    assert_eq!(encoder.columns[0].raws.len(), 8);
    round_trip(&rows);

    // Non-decimal and negative-zero floats go raw without spoiling the column.
    let rows: Vec<Value> = [1.25, -0.0, 1.5, 0.1 + 0.2, 2.0, 1e-7, 3.75]
        .into_iter()
        .map(|x| json!({ "x": x }))
        .collect();
    let encoder = encoder_of(&rows);
    assert_eq!(encoder.columns[0].scale, 2);
    assert_eq!(encoder.columns[0].raws.len(), 3 * 8);
    round_trip(&rows);
}

#[test]
fn decimal_check_uses_the_decoders_formula() {
    for x in floats() {
        if let Some((scale, scaled)) = smallest_scale(x) {
            assert_eq!(decimal_value(scaled, scale).to_bits(), x.to_bits(), "{x}");
        }
    }
    assert_eq!(smallest_scale(12.34), Some((2, 1234)));
    assert_eq!(smallest_scale(-0.0), None);
    assert_eq!(smallest_scale(0.1 + 0.2), None);
    assert_eq!(smallest_scale(f64::MAX), None);
    assert_eq!(smallest_scale(5e-324), None);
}

#[test]
fn strings_repeat_without_bytes() {
    let rows: Vec<Value> = ["a", "a", "a", "b", "b", "a", "", ""]
        .into_iter()
        .map(|s| json!({ "s": s }))
        .collect();
    let encoder = encoder_of(&rows);
    assert_eq!(encoder.columns[0].strings, b"\x01a\x01b\x01a\x00");
    round_trip(&rows);
}

#[test]
fn encode_then_push_more_then_encode_again() {
    let rows = report_rows(50, 7);
    let mut encoder = BlockEncoder::new();
    for (i, row) in rows.iter().enumerate() {
        encoder.push(row);
        if i % 7 == 0 {
            assert_identical(&decode(&encoder.encode()).unwrap(), &rows[..=i]);
        }
    }
    assert_identical(&decode(&encoder.encode()).unwrap(), &rows);
    assert_identical(&decode_sealed(&encoder.seal(9).unwrap()).unwrap(), &rows);
}

#[test]
fn heap_bytes_tracks_the_encoded_size() {
    let rows = report_rows(720, 1);
    let encoder = encoder_of(&rows);
    let encoded = encoder.encode().len();
    let held = encoder.heap_bytes();
    println!("720 report rows: {encoded} bytes encoded, {held} bytes held");
    assert!(
        held >= encoded / 2 && held <= 3 * encoded,
        "{held} vs {encoded}"
    );
}

#[test]
fn decode_rejects_bad_input() {
    assert!(matches!(decode(&[]), Err(BlockError::Truncated)));
    assert!(matches!(decode(&[2]), Err(BlockError::Version(2))));
    let block = round_trip(&report_rows(3, 2));
    for cut in 0..block.len() {
        assert!(decode(&block[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = block.clone();
    longer.push(0);
    assert!(matches!(decode(&longer), Err(BlockError::Malformed(_))));
    assert!(matches!(decode_sealed(&block), Err(BlockError::Zstd(_))));
    // A row count far beyond the block.
    let mut lying = vec![VERSION];
    put_varint(&mut lying, u64::MAX);
    assert!(matches!(decode(&lying), Err(BlockError::TooLarge)));
}

#[test]
fn decode_survives_every_truncation_and_bit_flip() {
    let rows = vec![
        json!({ "a": 1, "b": [1.5, 0.1], "c": "x", "d": { "e": [true, null, {}, []] }, "n": u64::MAX }),
        json!({ "a": 2, "b": [1.75, 0.2 + 0.1], "c": "x", "f": -0.0 }),
        json!({ "a": 3, "b": [], "c": "y", "d": { "e": [false] } }),
    ];
    let block = round_trip(&rows);
    for cut in 0..block.len() {
        assert!(decode(&block[..cut]).is_err());
    }
    for index in 0..block.len() {
        for bit in 0..8 {
            let mut flipped = block.clone();
            flipped[index] ^= 1 << bit;
            let _ = decode(&flipped);
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_rows_round_trip(rows in proptest::collection::vec(value(any_keys()), 0..12)) {
        round_trip(&rows);
    }

    #[test]
    fn similar_rows_round_trip(rows in proptest::collection::vec(value(few_keys()), 0..24)) {
        round_trip(&rows);
    }

    #[test]
    fn decimal_columns_round_trip(
        cells in proptest::collection::vec(
            (prop_oneof![-1000i64..1000, -(1i64 << 53)..(1i64 << 53)], 0i32..=7, any::<bool>()),
            1..40,
        )
    ) {
        let rows: Vec<Value> = cells
            .into_iter()
            .map(|(scaled, decimals, int)| {
                let x = if int { Value::from(scaled) } else { float(scaled as f64 / 10f64.powi(decimals)) };
                json!({ "x": x, "y": [x] })
            })
            .collect();
        round_trip(&rows);
    }

    #[test]
    fn encode_push_encode(
        first in proptest::collection::vec(value(few_keys()), 0..10),
        second in proptest::collection::vec(value(few_keys()), 0..10),
    ) {
        let mut encoder = encoder_of(&first);
        assert_identical(&decode(&encoder.encode()).unwrap(), &first);
        for row in &second {
            encoder.push(row);
        }
        let all: Vec<Value> = first.iter().chain(&second).cloned().collect();
        assert_identical(&decode(&encoder.encode()).unwrap(), &all);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&bytes);
        let _ = decode_sealed(&bytes);
        let mut versioned = vec![VERSION];
        versioned.extend_from_slice(&bytes);
        let _ = decode(&versioned);
    }

    #[test]
    fn decode_never_panics_on_corrupt_blocks(
        rows in proptest::collection::vec(value(few_keys()), 1..8),
        cut in any::<proptest::sample::Index>(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..8), 1..4),
    ) {
        let encoder = encoder_of(&rows);
        let block = encoder.encode();
        prop_assert!(decode(&block[..cut.index(block.len())]).is_err());
        let mut flipped = block.clone();
        for (index, bit) in flips {
            flipped[index.index(block.len())] ^= 1 << bit;
        }
        let _ = decode(&flipped);
        let sealed = encoder.seal(1).unwrap();
        let _ = decode_sealed(&sealed[..cut.index(sealed.len())]);
        let mut flipped = sealed.clone();
        flipped[cut.index(sealed.len())] ^= 0x10;
        let _ = decode_sealed(&flipped);
    }
}

/// The raw blocks of the database written by e2b19af, before the codec was
/// split (`tests/fixtures/store-e2b19af/`): each decodes, and encoding its
/// rows again, from `Value`s and from typed reports, gives the very bytes
/// stored then.
#[test]
fn blocks_written_before_the_split_encode_to_the_same_bytes() {
    let db = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/store-e2b19af/tailmon.db"
    );
    let connection =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut statement = connection.prepare("SELECT data FROM raw_blocks").unwrap();
    let blocks: Vec<Vec<u8>> = statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(blocks.len(), 8);
    for sealed in &blocks {
        let stored = zstd::stream::decode_all(&sealed[..]).unwrap();
        let rows = decode_sealed(sealed).unwrap();
        let mut by_value = BlockEncoder::new();
        let mut by_report = BlockEncoder::new();
        for row in &rows {
            by_value.push(row);
            let report: tailmon_core::Report = serde_json::from_value(row["r"].clone()).unwrap();
            let t = row["t"].as_i64().unwrap();
            by_report
                .push_serialize(&ReportRow { t, r: &report })
                .unwrap();
        }
        assert!(
            by_value.encode() == stored,
            "a block of {} rows",
            rows.len()
        );
        assert!(
            by_report.encode() == stored,
            "a block of {} rows",
            rows.len()
        );
    }
}
