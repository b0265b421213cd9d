//! The serializer: `push_serialize` gives the block `push(&to_value(row))`
//! gives, byte for byte, and refuses what `to_value` refuses.

use proptest::prelude::*;
use serde_json::{Value, json};

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use time::OffsetDateTime;

use super::*;
use crate::store::codec::decoder::*;
use crate::store::codec::encoder::*;
use crate::store::codec::format::*;
use crate::store::codec::serializer::*;

/// Pushes every row both ways, `push(&to_value(row))` and
/// `push_serialize(row)`, checking after each that the blocks are the
/// same bytes; a row `to_value` rejects must be rejected and leave the
/// block as it was. Returns the encoder of `push_serialize`.
fn assert_same_as_to_value<T: Serialize>(rows: &[T]) -> BlockEncoder {
    let mut by_value = BlockEncoder::new();
    let mut by_serialize = BlockEncoder::new();
    for (i, row) in rows.iter().enumerate() {
        let pushed = by_serialize.push_serialize(row);
        match serde_json::to_value(row) {
            Ok(value) => {
                assert!(
                    pushed.is_ok(),
                    "row {i}: {pushed:?} but to_value gave {value}"
                );
                by_value.push(&value);
            }
            Err(error) => assert!(
                matches!(pushed, Err(BlockError::Serialize(_))),
                "row {i}: to_value failed ({error}) but push_serialize gave {pushed:?}"
            ),
        }
        assert_eq!(by_serialize.len(), by_value.len());
        assert!(
            by_serialize.encode() == by_value.encode(),
            "row {i}: the blocks differ"
        );
    }
    by_serialize
}

/// Serializes a `Value` with its objects' entries in a scrambled order
/// and with decoys: entries whose key comes again later, which
/// `to_value` overwrites (so it still gives back the `Value`).
struct Scrambled<'a> {
    value: &'a Value,
    seed: u64,
}

impl Serialize for Scrambled<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mix =
            |i: usize| (self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17);
        match self.value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                if !entries.is_empty() {
                    let len = entries.len();
                    entries.rotate_left(self.seed as usize % len);
                }
                if self.seed & 4 != 0 {
                    entries.reverse();
                }
                let decoys = [
                    json!({ "decoy": [1, { "z": null }] }),
                    json!(7.5),
                    json!([]),
                ];
                let mut state = serializer.serialize_map(None)?;
                for (i, (key, value)) in entries.into_iter().enumerate() {
                    let roll = mix(i);
                    if roll % 3 == 0 {
                        state.serialize_entry(key, &decoys[(roll >> 8) as usize % 3])?;
                    }
                    state.serialize_entry(
                        key,
                        &Scrambled {
                            value,
                            seed: mix(i + 1000),
                        },
                    )?;
                }
                state.end()
            }
            Value::Array(items) => {
                serializer.collect_seq(items.iter().enumerate().map(|(i, value)| Scrambled {
                    value,
                    seed: mix(i),
                }))
            }
            other => other.serialize(serializer),
        }
    }
}

proptest! {
    #[test]
    fn push_serialize_of_values_matches_push(
        rows in proptest::collection::vec((value(few_keys()), any::<u64>()), 0..16),
    ) {
        let values: Vec<&Value> = rows.iter().map(|(value, _)| value).collect();
        assert_same_as_to_value(&values);
        let scrambled: Vec<Scrambled<'_>> = rows
            .iter()
            .map(|(value, seed)| Scrambled { value, seed: *seed })
            .collect();
        for row in &scrambled {
            prop_assert_eq!(&serde_json::to_value(row).unwrap(), row.value);
        }
        assert_same_as_to_value(&scrambled);
        // The same rows again: now every path is known (the fast path).
        let twice: Vec<&Scrambled<'_>> = scrambled.iter().chain(&scrambled).collect();
        assert_same_as_to_value(&twice);
    }

    #[test]
    fn push_serialize_of_arbitrary_values_matches_push(
        rows in proptest::collection::vec((value(any_keys()), any::<u64>()), 0..8),
    ) {
        let scrambled: Vec<Scrambled<'_>> = rows
            .iter()
            .map(|(value, seed)| Scrambled { value, seed: *seed })
            .collect();
        assert_same_as_to_value(&scrambled);
    }

    #[test]
    fn push_serialize_of_structs_matches_push(
        seeds in proptest::collection::vec(any::<u64>(), 1..12),
    ) {
        let rows: Vec<Sample> = seeds.iter().map(|seed| sample(*seed)).collect();
        for row in &rows {
            prop_assert!(serde_json::to_value(row).is_ok());
        }
        let encoder = assert_same_as_to_value(&rows);
        prop_assert_eq!(encoder.len(), rows.len());
    }
}

#[derive(Serialize)]
struct Child {
    id: u32,
    label: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<char>,
    scale: Meters,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
enum Color {
    Red,
    #[serde(rename = "grün")]
    Green,
}

#[derive(Serialize)]
enum Kind {
    Idle,
    Busy(f32),
    Pair(i8, u8),
    NoFields(),
    Moving { speed: f64, heading: Option<u16> },
    Empty {},
    Nested(Box<Kind>),
}

#[derive(Serialize)]
struct Meters(f64);

#[derive(Serialize)]
struct Marker;

/// Serialized with `serialize_bytes`.
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

/// A map from any keys, duplicates and order kept (`collect_map`).
struct Pairs<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Pairs<K, V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// Serialized with `collect_str`, as a value or a key.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Hex(u32);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("0x{:x}", self.0))
    }
}

/// Fields flattened into a struct: serialized as a map, and a key of
/// `extra` may repeat a field (the later one wins).
#[derive(Serialize)]
struct Flattened {
    name: String,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
    #[serde(flatten)]
    inner: Option<LoadLike>,
}

#[derive(Serialize)]
struct LoadLike {
    one: f64,
    five: f32,
}

/// Everything `to_value` has a rule for.
#[derive(Serialize)]
struct Sample {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    maybe: Option<u32>,
    nothing: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    at_maybe: Option<OffsetDateTime>,
    metrics: HashMap<String, f64>,
    ratio: f32,
    ratios: Vec<f32>,
    big: u64,
    signed: i64,
    wide: (i128, u128, i128),
    children: Vec<Child>,
    unit: (),
    marker: Marker,
    tuple: (i8, char, bool, i16, u16),
    kind: Kind,
    kinds: Vec<Kind>,
    bytes: Bytes,
    floats: Vec<f64>,
    by_int: BTreeMap<i64, bool>,
    by_u8: HashMap<u8, Option<u8>>,
    by_bool: BTreeMap<bool, i8>,
    by_char: BTreeMap<char, i16>,
    by_color: BTreeMap<Color, Color>,
    by_float: Pairs<f64, u8>,
    by_f32: Pairs<f32, u8>,
    by_hex: Pairs<Hex, Hex>,
    by_wide: Pairs<i128, u128>,
    duplicates: Pairs<&'static str, Value>,
    flattened: Flattened,
    json: Value,
    nested: Vec<Vec<Option<Vec<u8>>>>,
}

fn sample(seed: u64) -> Sample {
    let rng = &mut Rng(seed);
    let mut pick = |n: u64| rng.next() % n;
    let name = ["a", "b", "", "ü🦀"][pick(4) as usize].to_string();
    let children = (0..pick(4))
        .map(|i| Child {
            id: i as u32 * 7 + pick(3) as u32,
            label: (pick(2) == 0).then(|| format!("child-{}", pick(3))),
            tags: (0..pick(3)).map(|t| ['x', 'é', '🦀'][t as usize]).collect(),
            scale: Meters(pick(1000) as f64 / 100.0),
        })
        .collect();
    let float = |roll: u64| match roll % 8 {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => -0.0,
        3 => 0.1 + 0.2,
        4 => f64::NEG_INFINITY,
        5 => 1e300,
        _ => (roll % 10_000) as f64 / 100.0,
    };
    let kind = |roll: u64| match roll % 8 {
        0 => Kind::Idle,
        1 => Kind::Busy(if roll & 8 == 0 { 1.1 } else { f32::NAN }),
        2 => Kind::Pair(-3, 200),
        3 => Kind::NoFields(),
        4 => Kind::Moving {
            speed: (roll % 977) as f64 / 10.0,
            heading: (roll & 16 == 0).then_some(270),
        },
        5 => Kind::Empty {},
        6 => Kind::Nested(Box::new(Kind::Busy(0.5))),
        _ => Kind::Nested(Box::new(Kind::Moving {
            speed: 1.0,
            heading: None,
        })),
    };
    let mut metrics = HashMap::new();
    for m in 0..pick(12) {
        metrics.insert(format!("m.{}", pick(20) + m), float(pick(1 << 20)));
    }
    let mut extra = BTreeMap::new();
    for e in 0..pick(4) {
        let key = ["name", "one", "x", "five", "y"][(pick(5) + e) as usize % 5];
        extra.insert(key.to_string(), json!(pick(5)));
    }
    Sample {
        name,
        maybe: (pick(2) == 0).then(|| pick(100) as u32),
        nothing: (pick(4) == 0).then(|| "something".to_string()),
        at: OffsetDateTime::from_unix_timestamp_nanos(
            1_700_000_000_000_000_000 + i128::from(pick(1 << 40)) * 1000,
        )
        .unwrap(),
        at_maybe: (pick(2) == 0).then(|| OffsetDateTime::from_unix_timestamp(0).unwrap()),
        metrics,
        ratio: [0.1f32, 1.5, f32::NAN, f32::INFINITY, -0.0, 16_777_217.0][pick(6) as usize],
        ratios: (0..pick(4)).map(|r| r as f32 / 3.0).collect(),
        big: [u64::MAX, i64::MAX as u64 + 1, 5, i64::MAX as u64][pick(4) as usize],
        signed: [i64::MIN, -1, 0, i64::MAX][pick(4) as usize],
        wide: (
            [-1, i128::from(i64::MIN), i128::from(u64::MAX), 3][pick(4) as usize],
            [0, u128::from(u64::MAX)][pick(2) as usize],
            -(pick(1000) as i128),
        ),
        children,
        unit: (),
        marker: Marker,
        tuple: (-(pick(100) as i8), 'ß', pick(2) == 0, -300, 60_000),
        kind: kind(pick(1 << 20)),
        kinds: (0..pick(4)).map(|_| kind(pick(1 << 20))).collect(),
        bytes: Bytes((0..pick(5)).map(|b| (b * 61) as u8).collect()),
        floats: (0..pick(6)).map(|_| float(pick(1 << 20))).collect(),
        by_int: (0..pick(4))
            .map(|k| (k as i64 * 37 - 50, k % 2 == 0))
            .collect(),
        by_u8: (0..pick(4))
            .map(|k| (k as u8 * 10, (k > 0).then_some(k as u8)))
            .collect(),
        by_bool: [(true, 1), (false, -1)]
            .into_iter()
            .take(pick(3) as usize)
            .collect(),
        by_char: [('z', 1), ('a', 2), ('🦀', 3)]
            .into_iter()
            .take(pick(4) as usize)
            .collect(),
        by_color: [(Color::Green, Color::Red), (Color::Red, Color::Green)]
            .into_iter()
            .take(pick(3) as usize)
            .collect(),
        by_float: Pairs(
            [
                (1.0, 1),
                (0.5, 2),
                (1e20, 3),
                (-0.0, 4),
                (1.0, 5),
                (0.1 + 0.2, 6),
            ]
            .into_iter()
            .take(pick(7) as usize)
            .collect(),
        ),
        by_f32: Pairs(
            [(0.1f32, 1), (1e-7, 2), (3.0, 3)]
                .into_iter()
                .take(pick(4) as usize)
                .collect(),
        ),
        by_hex: Pairs(
            (0..pick(3))
                .map(|h| (Hex(h as u32 * 255), Hex(7)))
                .collect(),
        ),
        by_wide: Pairs(vec![(i128::MIN, u128::from(u64::MAX)), (i128::MAX, 0)]),
        duplicates: Pairs(
            [
                ("b", json!(1)),
                ("a", json!({ "deep": [1, 2] })),
                ("b", json!("two")),
                ("a", json!(null)),
                ("c", json!([])),
                ("a", json!({ "deep": [3] })),
            ]
            .into_iter()
            .take(pick(7) as usize)
            .collect(),
        ),
        flattened: Flattened {
            name: "flat".into(),
            extra,
            inner: (pick(2) == 0).then_some(LoadLike {
                one: 0.25,
                five: 0.1,
            }),
        },
        json: [
            json!(null),
            json!({ "b": 1, "a": [true, {}] }),
            json!([1.5, "s"]),
        ][pick(3) as usize]
            .clone(),
        nested: (0..pick(3))
            .map(|i| {
                (0..pick(3))
                    .map(|j| (pick(2) == 0).then(|| vec![i as u8, j as u8]))
                    .collect()
            })
            .collect(),
    }
}

#[test]
fn push_serialize_of_structs_with_changing_shapes() {
    let rows: Vec<Sample> = (0..60).map(sample).collect();
    let encoder = assert_same_as_to_value(&rows);
    let values: Vec<Value> = rows
        .iter()
        .map(|row| serde_json::to_value(row).unwrap())
        .collect();
    assert_identical(&decode(&encoder.encode()).unwrap(), &values);
    // The same rows once more, now along known paths.
    let twice: Vec<&Sample> = rows.iter().chain(&rows).collect();
    let encoder = assert_same_as_to_value(&twice);
    // Rows with a key twice (most of them here) take the slow path.
    assert!(encoder.fast_rows >= 10, "{} fast rows", encoder.fast_rows);
}

/// A struct named as one of serde_json's private markers, with one field
/// of that name, as `RawValue` (or `Number` under `arbitrary_precision`)
/// serializes itself.
struct MarkerLike(&'static str, &'static str);

impl Serialize for MarkerLike {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct(self.0, 1)?;
        state.serialize_field(self.0, self.1)?;
        state.end()
    }
}

/// serde_json's private marker structs are stored as the objects they are
/// to serde: the block does not depend on serde_json's private names, nor
/// on whether a build turns on its `raw_value` or `arbitrary_precision`
/// features (with them, `to_value` would parse the string instead).
#[test]
fn push_serialize_of_serde_json_markers_is_the_plain_struct() {
    #[derive(Serialize)]
    struct Row {
        marker: MarkerLike,
        n: u8,
    }
    for token in [
        "$serde_json::private::RawValue",
        "$serde_json::private::Number",
    ] {
        let texts = [r#"{"b": [1, 2.5], "a": "x"}"#, "12", "1e400"];
        let mut by_serialize = BlockEncoder::new();
        let mut by_value = BlockEncoder::new();
        for (n, text) in (1u8..).zip(texts) {
            by_serialize
                .push_serialize(&Row {
                    marker: MarkerLike(token, text),
                    n,
                })
                .unwrap();
            by_value.push(&json!({ "marker": { token: text }, "n": n }));
        }
        assert!(by_serialize.encode() == by_value.encode(), "{token}");
    }
}

/// Fails to serialize, after some leaves of the row were seen.
struct Failing;

impl Serialize for Failing {
    fn serialize<S: serde::Serializer>(&self, _serializer: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this row is broken"))
    }
}

/// Displays with an error (`to_string` would panic).
struct BadDisplay;

impl std::fmt::Display for BadDisplay {
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Err(std::fmt::Error)
    }
}

/// Calls `serialize_value` without a key (`to_value` would panic).
struct ValueWithoutKey;

impl Serialize for ValueWithoutKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_value(&1)?;
        map.end()
    }
}

/// Calls `serialize_key` twice: serde_json keeps the second key.
struct KeyTwice;

impl Serialize for KeyTwice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_key("first")?;
        map.serialize_key("second")?;
        map.serialize_value(&1)?;
        map.serialize_key("dangling")?;
        map.end()
    }
}

#[test]
fn push_serialize_refuses_what_to_value_refuses() {
    #[derive(Serialize)]
    struct Row<T> {
        a: u8,
        nested: Vec<T>,
        z: &'static str,
    }
    let row = |i: u8| Row {
        a: i,
        nested: vec![json!({ "x": i })],
        z: "z",
    };
    let mut encoder = BlockEncoder::new();
    encoder.push_serialize(&row(1)).unwrap();
    let before = encoder.encode();
    let failing: Vec<Result<(), BlockError>> = vec![
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Failing],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![i128::MAX],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![i128::MIN],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![u128::MAX],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![(Some(1), 1)])],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![(None::<u8>, 1)])],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![((), 1)])],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![(vec![1], 1)])],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![(f64::NAN, 1)])],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![(f32::INFINITY, 1)])],
            z: "z",
        }),
        encoder.push_serialize(&Row {
            a: 2,
            nested: vec![Pairs(vec![(Kind::Busy(1.0), 1)])],
            z: "z",
        }),
    ];
    for (i, result) in failing.iter().enumerate() {
        assert!(
            matches!(result, Err(BlockError::Serialize(_))),
            "{i}: {result:?}"
        );
    }
    // to_value agrees on each (checked with the same rows).
    assert!(
        serde_json::to_value(Row {
            a: 2,
            nested: vec![Failing],
            z: "z"
        })
        .is_err()
    );
    assert!(serde_json::to_value(i128::MAX).is_err());
    assert!(serde_json::to_value(u128::MAX).is_err());
    assert!(serde_json::to_value(Pairs(vec![(f64::NAN, 1)])).is_err());
    assert!(serde_json::to_value(Pairs(vec![(Some(1), 1)])).is_err());
    // What to_value would panic on is refused too.
    let hex = Pairs(vec![(1, Hex(1))]);
    assert!(encoder.push_serialize(&hex).is_ok());
    encoder = BlockEncoder::new();
    encoder.push_serialize(&row(1)).unwrap();
    struct Bad;
    impl Serialize for Bad {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(&BadDisplay)
        }
    }
    assert!(
        encoder
            .push_serialize(&Row {
                a: 2,
                nested: vec![Bad],
                z: "z"
            })
            .is_err()
    );
    assert!(encoder.push_serialize(&ValueWithoutKey).is_err());
    // Nothing of the refused rows was recorded.
    assert_eq!(encoder.len(), 1);
    assert!(encoder.encode() == before);
    encoder.push_serialize(&row(2)).unwrap();
    let mut by_value = BlockEncoder::new();
    by_value.push(&serde_json::to_value(row(1)).unwrap());
    by_value.push(&serde_json::to_value(row(2)).unwrap());
    assert!(encoder.encode() == by_value.encode());
    // A key without a value is dropped, as serde_json drops it.
    assert_same_as_to_value(&[KeyTwice, KeyTwice]);
}

#[test]
fn push_serialize_of_top_level_scalars() {
    assert_same_as_to_value(&[json!(1), json!("s"), json!(null), json!([]), json!({})]);
    assert_same_as_to_value(&[1.5f64, f64::NAN, 2.0, f64::INFINITY, -0.0]);
    assert_same_as_to_value(&[Some(3u64), None, Some(u64::MAX)]);
    assert_same_as_to_value(&["a", "a", "b"]);
    assert_same_as_to_value(&[Kind::Idle, Kind::Empty {}, Kind::Pair(1, 2), Kind::Idle]);
}

/// Pushes into another encoder while it is serialized.
struct Reentrant {
    inner: std::cell::RefCell<BlockEncoder>,
    n: u8,
}

impl Serialize for Reentrant {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.inner
            .borrow_mut()
            .push_serialize(&json!({ "inner": self.n }))
            .map_err(serde::ser::Error::custom)?;
        (self.n, "x").serialize(serializer)
    }
}

#[test]
fn push_serialize_inside_push_serialize() {
    let row = Reentrant {
        inner: std::cell::RefCell::new(BlockEncoder::new()),
        n: 1,
    };
    let mut outer = BlockEncoder::new();
    outer.push_serialize(&row).unwrap();
    outer.push_serialize(&row).unwrap();
    let mut expected = BlockEncoder::new();
    expected.push(&json!([1, "x"]));
    expected.push(&json!([1, "x"]));
    assert!(outer.encode() == expected.encode());
    let mut expected = BlockEncoder::new();
    expected.push(&json!({ "inner": 1 }));
    expected.push(&json!({ "inner": 1 }));
    assert!(row.inner.borrow().encode() == expected.encode());
}

#[test]
fn push_serialize_of_a_huge_row_then_small_ones() {
    let huge: Vec<Value> = (0..70_000).map(|i| json!({ "i": i })).collect();
    let small = vec![json!({ "i": 1 }), json!(2)];
    assert_same_as_to_value(&[&small, &huge, &small, &huge[..3]]);
    SCRATCH.with(|scratch| {
        let scratch = scratch.borrow();
        assert!(scratch.tape.events.capacity() <= SCRATCH_EVENTS);
    });
}

/// `n` full reports of one device, with everything filled (about 150
/// leaves each), changing shape now and then.
fn reports(n: usize, seed: u64) -> Vec<(i64, tailmon_core::Report)> {
    use tailmon_core::{
        CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, ProcessInfo, Report, Temperature,
    };
    let rng = &mut Rng(seed);
    let mut cpu = Walk::new(rng, 10_000, 150, 2);
    let mut cores: Vec<Walk> = (0..16).map(|_| Walk::new(rng, 1000, 40, 1)).collect();
    let mut breakdown: Vec<Walk> = (0..4).map(|_| Walk::new(rng, 10_000, 80, 2)).collect();
    let mut load: Vec<Walk> = (0..3).map(|_| Walk::new(rng, 800, 10, 2)).collect();
    let mut io: Vec<Walk> = (0..4).map(|_| Walk::new(rng, 500_000, 20_000, 0)).collect();
    let mut temperatures: Vec<Walk> = (0..6).map(|_| Walk::new(rng, 9000, 50, 2)).collect();
    let mut process_cpu: Vec<Walk> = (0..12).map(|_| Walk::new(rng, 4000, 60, 2)).collect();
    let mut ram_used: i64 = 9_000;
    let mut disk_used: Vec<u64> = vec![120 << 30, 300 << 30, 2 << 40];
    let mut net_bytes: Vec<u64> = vec![1 << 36, 1 << 34, 1 << 30, 1 << 29, 1 << 20, 1 << 19];
    let mut custom: Vec<i64> = (0..20).map(|_| rng.range(0, 5000)).collect();
    let names = [
        "postgres",
        "nginx",
        "tailmon-agent",
        "systemd",
        "dockerd",
        "containerd",
        "node",
        "python3",
        "sshd",
        "cron",
        "redis-server",
        "java",
    ];
    let start = 1_700_000_000_000i64;
    (0..n)
        .map(|i| {
            let ts = start + 5000 * i as i64 + rng.range(0, 3);
            let at = |ms: i64| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
            };
            let mut report = Report::new("web-01.example.com", at(ts - 40));
            report.os_info = "Ubuntu 22.04.4 LTS (Kernel: 5.15.0-105-generic)".into();
            report.cpu_usage = cpu.next(rng);
            ram_used = (ram_used + rng.range(-40, 40)).clamp(1000, 16_000);
            report.ram_used_mb = ram_used as u64;
            report.ram_total_mb = 16_384;
            report.received_at = Some(at(ts));
            report.cpu_per_core = Some(cores.iter_mut().map(|w| w.next(rng)).collect());
            let b: Vec<f64> = breakdown.iter_mut().map(|w| w.next(rng)).collect();
            report.cpu_breakdown = Some(CpuBreakdown {
                user: b[0],
                system: b[1],
                iowait: b[2],
                steal: b[3],
            });
            let l: Vec<f64> = load.iter_mut().map(|w| w.next(rng)).collect();
            report.load_avg = Some(LoadAvg {
                one: l[0],
                five: l[1],
                fifteen: l[2],
            });
            report.swap_used_mb = Some(512);
            report.swap_total_mb = Some(4096);
            for used in &mut disk_used {
                *used += rng.range(0, 200_000) as u64 * 4096 / 100;
            }
            report.disks = Some(
                ["/", "/home", "/var/lib/docker"]
                    .iter()
                    .zip(&disk_used)
                    .map(|(mount, used)| Disk {
                        mount_point: (*mount).into(),
                        fs_type: "ext4".into(),
                        total_bytes: 4 << 40,
                        used_bytes: *used,
                        // 5 % reserved for root.
                        available_bytes: Some(((4u64 << 40) / 20 * 19).saturating_sub(*used)),
                    })
                    .collect(),
            );
            // Rates are absent on the first sample.
            report.disk_io = (i > 0).then(|| {
                ["nvme0n1", "sda"]
                    .iter()
                    .zip(io.chunks_mut(2))
                    .map(|(name, rates)| DiskIo {
                        device: (*name).into(),
                        read_bytes_per_sec: rates[0].next(rng),
                        write_bytes_per_sec: rates[1].next(rng),
                    })
                    .collect()
            });
            for bytes in &mut net_bytes {
                *bytes += rng.range(0, 3_000_000) as u64;
            }
            report.networks = Some(
                ["eth0", "docker0", "wg0"]
                    .iter()
                    .zip(net_bytes.chunks(2))
                    .map(|(name, bytes)| NetworkInterface {
                        interface: (*name).into(),
                        rx_bytes_per_sec: (i > 0).then(|| rng.range(0, 600_000) as f64),
                        tx_bytes_per_sec: (i > 0).then(|| rng.range(0, 600_000) as f64),
                        rx_bytes_total: bytes[0],
                        tx_bytes_total: bytes[1],
                        rx_errors: 0,
                        tx_errors: u64::from(i % 100 == 99),
                    })
                    .collect(),
            );
            report.temperatures = Some(
                temperatures
                    .iter_mut()
                    .enumerate()
                    .map(|(t, w)| Temperature {
                        label: format!("coretemp Core {t}"),
                        celsius: w.next(rng),
                    })
                    .collect(),
            );
            report.uptime_seconds = Some(864_000 + 5 * i as u64);
            report.boot_time = Some(at(start - 864_000_000));
            report.process_count = Some(300 + rng.range(0, 20) as u64);
            let mut top: Vec<(usize, f64)> = process_cpu
                .iter_mut()
                .map(|w| w.next(rng))
                .enumerate()
                .collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            // Now and then fewer processes.
            let shown = if i % 17 == 5 { 7 } else { 10 };
            report.top_processes = Some(
                top.iter()
                    .take(shown)
                    .map(|&(p, cpu)| ProcessInfo {
                        pid: 1000 + p as u32 * 17,
                        name: names[p].into(),
                        cpu_percent: cpu,
                        rss_bytes: ((p as u64 + 1) * 37) << 20,
                    })
                    .collect(),
            );
            for value in &mut custom {
                if rng.range(0, 7) == 0 {
                    *value = (*value + rng.range(-20, 20)).max(0);
                }
            }
            // A metric that comes and goes.
            let extra = (i % 10 < 3).then(|| ("app.aaa_sometimes".to_string(), 1.5));
            report.custom = Some(
                custom
                    .iter()
                    .enumerate()
                    .map(|(c, value)| (format!("app.metric_{c}"), *value as f64 / 10.0))
                    .chain(extra)
                    .collect(),
            );
            (ts, report)
        })
        .collect()
}

#[test]
fn push_serialize_of_reports_matches_push_to_value() {
    let mut reports = reports(120, 5);
    // Shape changes: parts missing, none at all, back again.
    reports[40].1.disks = None;
    reports[41].1.custom = Some(BTreeMap::new());
    reports[42].1.top_processes = Some(Vec::new());
    reports[43].1 = tailmon_core::Report::new("web-01.example.com", reports[43].1.last_seen);
    reports[44].1.cpu_per_core = Some(vec![f64::NAN, 1.0]);
    let rows: Vec<ReportRow<'_>> = reports
        .iter()
        .map(|(t, r)| ReportRow { t: *t, r })
        .collect();
    let encoder = assert_same_as_to_value(&rows);
    // Rows of a known shape take the fast path, HashMap-free or not.
    println!(
        "{} of {} report rows took the fast path",
        encoder.fast_rows,
        rows.len()
    );
    assert!(encoder.fast_rows > 100, "{} fast rows", encoder.fast_rows);
    let leaves_per_row = leaves(&serde_json::to_value(&rows[1]).unwrap());
    assert!(leaves_per_row > 140, "{leaves_per_row} leaves");
    // The block decodes to what to_value gave, and back to the reports.
    let values: Vec<Value> = rows
        .iter()
        .map(|row| serde_json::to_value(row).unwrap())
        .collect();
    let decoded = decode_sealed(&encoder.seal(3).unwrap()).unwrap();
    assert_identical(&decoded, &values);
    for ((_, report), mut row) in reports.iter().zip(decoded) {
        // NaN went to null, which does not read back as an f64.
        if report
            .cpu_per_core
            .as_ref()
            .is_none_or(|c| c.iter().all(|x| x.is_finite()))
        {
            let back: tailmon_core::Report = serde_json::from_value(row["r"].take()).unwrap();
            assert_eq!(&back, report);
        }
    }
}

/// Run with `cargo test --release -p tailmon-server --lib codec -- --ignored --nocapture`.
#[test]
#[ignore = "timing; run in release"]
fn push_serialize_timing() {
    use std::time::{Duration, Instant};
    let reports = reports(720, 9);
    let rows: Vec<ReportRow<'_>> = reports
        .iter()
        .map(|(t, r)| ReportRow { t: *t, r })
        .collect();
    let rounds = 30;
    let per_row = |d: Duration| d.as_secs_f64() * 1e6 / (rounds * rows.len()) as f64;
    // Each way in its own rounds, as the store uses one.
    let (mut to_value, mut push) = (Duration::ZERO, Duration::ZERO);
    let mut by_value = BlockEncoder::new();
    for _ in 0..rounds {
        by_value = BlockEncoder::new();
        for row in &rows {
            let start = Instant::now();
            let value = serde_json::to_value(row).unwrap();
            let built = Instant::now();
            by_value.push(&value);
            push += built.elapsed();
            to_value += built - start;
            std::hint::black_box(value);
        }
    }
    let mut serialize = Duration::ZERO;
    let mut by_serialize = BlockEncoder::new();
    for _ in 0..rounds {
        by_serialize = BlockEncoder::new();
        let start = Instant::now();
        for row in &rows {
            by_serialize.push_serialize(row).unwrap();
        }
        serialize += start.elapsed();
    }
    assert!(by_value.encode() == by_serialize.encode());
    // The part of push_serialize that only serializes into the tape.
    let mut tape = Tape::default();
    let start = Instant::now();
    for _ in 0..rounds {
        for row in &rows {
            tape.events.clear();
            tape.arena.clear();
            row.serialize(TapeSerializer { tape: &mut tape }).unwrap();
        }
    }
    let taping = start.elapsed();
    println!(
        "{} report rows, {} leaves each: push(&to_value(row)) {:.2} µs/row \
         (to_value {:.2} + push {:.2}), push_serialize(row) {:.2} µs/row \
         (serializing into the tape {:.2})",
        rows.len(),
        leaves(&serde_json::to_value(&rows[1]).unwrap()),
        per_row(to_value + push),
        per_row(to_value),
        per_row(push),
        per_row(serialize),
        per_row(taping),
    );
}
