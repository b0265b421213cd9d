//! Tests of the block codec, one file per concern: encoding and decoding
//! (round trips, corrupt input, blocks written by earlier versions), sizes
//! and timings on report-like rows, and the serializer against
//! `serde_json::to_value`. Here: what they share.

mod encode_decode;
mod serializer;
mod sizes;

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{Map, Number, Value, json};

use super::decoder::*;
use super::encoder::*;

/// Whether `a` and `b` are equal, with floats compared by their bits.
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            x.is_f64() && y.is_f64() && x.as_f64().map(f64::to_bits) == y.as_f64().map(f64::to_bits)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| identical(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| identical(x, y)))
        }
        _ => a == b,
    }
}

fn assert_identical(decoded: &[Value], rows: &[Value]) {
    assert_eq!(decoded, rows);
    for (decoded, row) in decoded.iter().zip(rows) {
        assert!(
            identical(decoded, row),
            "{decoded} is not bit-identical to {row}"
        );
    }
}

fn encoder_of(rows: &[Value]) -> BlockEncoder {
    let mut encoder = BlockEncoder::new();
    for row in rows {
        encoder.push(row);
    }
    encoder
}

/// Encodes and seals `rows`, checks both decode to them; returns the block.
fn round_trip(rows: &[Value]) -> Vec<u8> {
    let encoder = encoder_of(rows);
    assert_eq!(encoder.len(), rows.len());
    let block = encoder.encode();
    assert_identical(&decode(&block).unwrap(), rows);
    let sealed = encoder.seal(3).unwrap();
    assert_identical(&decode_sealed(&sealed).unwrap(), rows);
    block
}

fn float(x: f64) -> Value {
    Value::Number(Number::from_f64(x).unwrap())
}

fn floats() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        12.34,
        0.1 + 0.2,
        1e-7,
        123456.789012,
        f64::MIN_POSITIVE,
        f64::MIN_POSITIVE / 1024.0,
        5e-324,
        f64::MAX,
        f64::MIN,
        1e300,
        9007199254740993.0,
        4503599627370495.5,
    ]
}

/// A small fixed-seed PRNG (splitmix64), so the data is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1) as u64) as i64
    }
}

/// A random walk kept in `0..=max`, in units of `10^-decimals`.
struct Walk {
    value: i64,
    step: i64,
    max: i64,
    decimals: i32,
}

impl Walk {
    fn new(rng: &mut Rng, max: i64, step: i64, decimals: i32) -> Self {
        Self {
            value: rng.range(0, max),
            step,
            max,
            decimals,
        }
    }

    /// The next value, rounded to its decimals the way the agent does.
    fn next(&mut self, rng: &mut Rng) -> f64 {
        self.value = (self.value + rng.range(-self.step, self.step)).clamp(0, self.max);
        self.value as f64 / 10f64.powi(self.decimals)
    }
}

/// `n` rows shaped like a device's successive reports (about 2.5 KB of
/// JSON and 150 leaves each).
fn report_rows(n: usize, seed: u64) -> Vec<Value> {
    let rng = &mut Rng(seed);
    let mut cpu = Walk::new(rng, 10_000, 150, 2);
    let mut cores: Vec<Walk> = (0..16).map(|_| Walk::new(rng, 1000, 40, 1)).collect();
    let mut breakdown: Vec<Walk> = (0..5).map(|_| Walk::new(rng, 10_000, 80, 2)).collect();
    let mut load: Vec<Walk> = (0..3).map(|_| Walk::new(rng, 800, 10, 2)).collect();
    let mut disk_percent: Vec<Walk> = (0..3).map(|_| Walk::new(rng, 10_000, 2, 2)).collect();
    let mut io: Vec<Walk> = (0..4).map(|_| Walk::new(rng, 500_000, 20_000, 1)).collect();
    let mut temperatures: Vec<Walk> = (0..6).map(|_| Walk::new(rng, 900, 5, 1)).collect();
    let mut ram_used: i64 = 9_000;
    let mut disk_used: Vec<u64> = vec![120 << 30, 300 << 30, 2 << 40];
    let mut net_bytes: Vec<u64> = vec![1 << 36, 1 << 34, 1 << 30, 1 << 29, 1 << 20, 1 << 19];
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
    let mut process_cpu: Vec<Walk> = (0..names.len())
        .map(|_| Walk::new(rng, 4000, 60, 2))
        .collect();
    let mut rss: Vec<u64> = (0..names.len())
        .map(|i| ((i as u64 + 1) * 37) << 20)
        .collect();
    // Application metrics that change now and then.
    let mut custom: Vec<i64> = (0..20).map(|_| rng.range(0, 5000)).collect();
    let mut processes = 300;
    (0..n)
        .map(|i| {
            ram_used = (ram_used + rng.range(-40, 40)).clamp(1000, 16_000);
            for used in &mut disk_used {
                *used += rng.range(0, 200_000) as u64 * 4096 / 100;
            }
            for bytes in &mut net_bytes {
                *bytes += rng.range(0, 3_000_000) as u64;
            }
            processes = (processes + rng.range(-2, 2)).clamp(200, 400);
            let mut top: Vec<(usize, f64)> =
                process_cpu.iter_mut().map(|w| w.next(rng)).enumerate().collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            for bytes in &mut rss {
                if rng.range(0, 3) == 0 {
                    *bytes = (*bytes as i64 + rng.range(-64, 64) * 4096).max(1 << 20) as u64;
                }
            }
            let disks: Vec<Value> = ["/", "/home", "/var/lib/docker"]
                .iter()
                .zip(&disk_used)
                .zip(&mut disk_percent)
                .map(|((mount, used), percent)| {
                    json!({
                        "mount_point": mount,
                        "total_bytes": 4u64 << 40,
                        "used_bytes": used,
                        "used_percent": percent.next(rng),
                    })
                })
                .collect();
            let disk_io: Vec<Value> = ["nvme0n1", "sda"]
                .iter()
                .zip(io.chunks_mut(2))
                .map(|(name, rates)| {
                    json!({
                        "device": name,
                        "read_bytes_per_sec": rates[0].next(rng),
                        "write_bytes_per_sec": rates[1].next(rng),
                    })
                })
                .collect();
            let networks: Vec<Value> = ["eth0", "docker0", "wg0"]
                .iter()
                .zip(net_bytes.chunks(2))
                .map(|(name, bytes)| {
                    json!({ "name": name, "rx_bytes": bytes[0], "tx_bytes": bytes[1], "rx_errors": 0, "tx_errors": 0 })
                })
                .collect();
            let temps: Vec<Value> = temperatures
                .iter_mut()
                .enumerate()
                .map(|(t, w)| json!({ "label": format!("coretemp Core {t}"), "celsius": w.next(rng) }))
                .collect();
            let top_processes: Vec<Value> = top
                .iter()
                .take(10)
                .map(|&(p, cpu)| {
                    json!({ "pid": 1000 + p * 17, "name": names[p], "cpu_percent": cpu, "rss_bytes": rss[p] })
                })
                .collect();
            let cores: Vec<f64> = cores.iter_mut().map(|w| w.next(rng)).collect();
            for value in &mut custom {
                if rng.range(0, 7) == 0 {
                    *value = (*value + rng.range(-20, 20)).max(0);
                }
            }
            let custom: Map<String, Value> = custom
                .iter()
                .enumerate()
                .map(|(c, value)| (format!("app.metric_{c}"), json!(*value as f64 / 10.0)))
                .collect();
            json!({
                "device_id": "web-01.example.com",
                "os_info": "Ubuntu 22.04.4 LTS (Kernel: 5.15.0-105-generic)",
                "t": 1_700_000_000_000i64 + 5000 * i as i64,
                "cpu_usage": cpu.next(rng),
                "ram_used_mb": ram_used,
                "ram_total_mb": 16_384,
                "swap_used_mb": 512,
                "swap_total_mb": 4096,
                "uptime_seconds": 864_000 + 5 * i as u64,
                "process_count": processes,
                "cpu_per_core": cores,
                "cpu_breakdown": {
                    "user": breakdown[0].next(rng),
                    "system": breakdown[1].next(rng),
                    "iowait": breakdown[2].next(rng),
                    "steal": breakdown[3].next(rng),
                    "idle": breakdown[4].next(rng),
                },
                "load_avg": { "one": load[0].next(rng), "five": load[1].next(rng), "fifteen": load[2].next(rng) },
                "disks": disks,
                "disk_io": disk_io,
                "networks": networks,
                "temperatures": temps,
                "top_processes": top_processes,
                "custom": custom,
            })
        })
        .collect()
}

/// Any number a report may hold.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..1000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |x| Number::from_f64(x).map(Value::Number)),
        (
            prop_oneof![-10_000i64..10_000, -(1i64 << 53)..(1i64 << 53)],
            0i32..=7
        )
            .prop_map(|(scaled, decimals)| float(scaled as f64 / 10f64.powi(decimals))),
        proptest::sample::select(floats()).prop_map(float),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        number(),
        any::<String>().prop_map(Value::String),
        proptest::sample::select(vec!["", "a", "b"]).prop_map(Value::from),
    ]
}

/// Values nested up to 3 deep, with keys from `keys`.
fn value(keys: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn any_keys() -> BoxedStrategy<String> {
    any::<String>().boxed()
}

/// A few keys, so that rows share columns with changing kinds.
fn few_keys() -> BoxedStrategy<String> {
    proptest::sample::select(vec!["a", "b", "", "a/b", "ü:/"])
        .prop_map(String::from)
        .boxed()
}

fn leaves(value: &Value) -> usize {
    match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(leaves).sum(),
        Value::Object(map) if !map.is_empty() => map.values().map(leaves).sum(),
        _ => 1,
    }
}

/// The store's row: the timestamp and the report.
#[derive(Serialize)]
struct ReportRow<'a> {
    t: i64,
    r: &'a tailmon_core::Report,
}
