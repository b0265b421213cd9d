//! History answers checked against a ground truth computed here, apart from
//! any store: random reports (shuffled, duplicated, late, sub-second, of
//! mixed magnitude) go into each store, and every answer must equal, bit for
//! bit, what the reports that count give: the first to arrive of each
//! device and millisecond, none older than a retention cutoff applied
//! before it came. The SQLite store must give the same answer before and
//! after a checkpoint, a reopen and retention.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use tailmon_server::store::OrgId;

use proptest::prelude::*;
use tailmon_core::{History, HistoryQuery, OffsetDateTime, Point, Report, Tier};
use tailmon_server::store::{DEFAULT_RAW_RETENTION, Durability};
use tailmon_server::{ManualClock, MemoryStore, SqliteStore, Store};

use crate::support::{TestDirs, report};

/// Where the reports start: ten minutes before an hour, so that minute and
/// hour buckets both have a boundary inside the reports' span.
const T0_MS: i64 = 1_800_000_000_000 - 600_000;
/// How long the reports span, in milliseconds.
const SPAN_MS: i64 = 1_500_000;
/// Where retention cuts the raw reports, from [`T0_MS`].
const CUTOFF_MS: i64 = 600_000;
const DEVICES: [&str; 2] = ["gt-a", "gt-b"];
/// Every value that is no decimal of at most six places is a multiple of
/// 2^-GRID below 2^20, so that the exact sum of those of a bucket is an
/// integer number of 2^-GRID in an `i128`.
const GRID: i32 = 58;

fn time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(T0_MS + ms) * 1_000_000).unwrap()
}

/// One report as sent: device, time from [`T0_MS`] in ms, `cpu_usage`.
#[derive(Debug, Clone, Copy)]
struct Sent {
    device: usize,
    ms: i64,
    value: f64,
}

impl Sent {
    fn report(self) -> Report {
        let mut r = report(DEVICES[self.device], self.value, 1);
        r.last_seen = time(self.ms);
        r.received_at = None;
        r
    }
}

/// Percent-like decimals, integers of either sign, and binary fractions
/// down to the tiny: a bucket may hold 0.1 and 6e7 and 3e-17 together.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![0.1, 0.2, 0.3, 12.34, 99.99, 50.0, 0.0]),
        (-(1i64 << 26)..(1i64 << 26)).prop_map(|n| n as f64),
        (-(1i64 << 20)..(1i64 << 20), 0..=GRID).prop_map(|(m, k)| m as f64 * 2f64.powi(-k)),
    ]
}

/// A time in whole seconds, or anywhere within a second.
fn millis() -> impl Strategy<Value = i64> {
    prop_oneof![
        (0..SPAN_MS / 1_000).prop_map(|s| s * 1_000),
        (0..SPAN_MS / 250).prop_map(|q| q * 250),
        0..SPAN_MS,
    ]
}

fn sent() -> impl Strategy<Value = Sent> {
    (0..DEVICES.len(), millis(), value()).prop_map(|(device, ms, value)| Sent { device, ms, value })
}

/// The reports in arrival order: some sent once more later with another
/// value (a retry; the first must win), shuffled (late arrivals), and each
/// device's last report at the end of the span, so both keep a raw report
/// through retention.
fn arrivals() -> impl Strategy<Value = Vec<Sent>> {
    (
        prop::collection::vec(sent(), 1..60),
        prop::collection::vec((any::<prop::sample::Index>(), value()), 0..15),
    )
        .prop_flat_map(|(mut sent, retries)| {
            let retried: Vec<Sent> = retries
                .into_iter()
                .map(|(i, value)| Sent {
                    value,
                    ..*i.get(&sent)
                })
                .collect();
            sent.extend(retried);
            for device in 0..DEVICES.len() {
                sent.push(Sent {
                    device,
                    ms: SPAN_MS - 1,
                    value: 1.0,
                });
            }
            Just(sent).prop_shuffle()
        })
}

/// A query range within (and a little beyond) the span, in ms.
fn range() -> impl Strategy<Value = (i64, i64)> {
    (-60_000..SPAN_MS + 60_000, 0..SPAN_MS).prop_map(|(from, len)| (from, from + len))
}

/// What the reports that count give, computed apart from any store.
#[derive(Default)]
struct Truth {
    /// The value of each (device, ms) that counts.
    counted: BTreeMap<(usize, i64), f64>,
    /// Reports stamped before this (ms from T0) are dropped on arrival.
    horizon: Option<i64>,
}

impl Truth {
    fn send(&mut self, s: Sent) {
        if self.horizon.is_some_and(|h| s.ms < h) {
            return;
        }
        self.counted.entry((s.device, s.ms)).or_insert(s.value);
    }

    /// The values of `device`, oldest first: those a store still holds raw,
    /// or with `all` every one counted (what rollups are made of).
    fn values(&self, device: usize, all: bool) -> Vec<(i64, f64)> {
        let kept_from = if all { None } else { self.horizon };
        self.counted
            .iter()
            .filter(|((d, ms), _)| *d == device && kept_from.is_none_or(|h| *ms >= h))
            .map(|((_, ms), v)| (*ms, *v))
            .collect()
    }

    /// The answer a store must give to a query; `rollups` says whether
    /// the store keeps buckets beyond its raw reports.
    fn answer(&self, device: usize, (from, to): (i64, i64), max: usize, rollups: bool) -> History {
        let in_range = |values: Vec<(i64, f64)>| -> Vec<(i64, f64)> {
            values
                .into_iter()
                .filter(|(ms, _)| (from..=to).contains(ms))
                .collect()
        };
        let raw = in_range(self.values(device, false));
        let (tier, points) = if raw.len() <= max {
            let points = raw
                .into_iter()
                .map(|(ms, v)| Point {
                    at: time(ms),
                    avg: v,
                    min: v,
                    max: v,
                })
                .collect();
            (Tier::Raw, points)
        } else {
            let span_secs = (time(to) - time(from)).whole_seconds();
            let tier = if usize::try_from(span_secs / 60 + 1).is_ok_and(|b| b <= max) {
                Tier::Minute
            } else {
                Tier::Hour
            };
            (tier, buckets(tier, from, to, self.values(device, rollups)))
        };
        History {
            device_id: DEVICES[device].into(),
            metric: "cpu_usage".into(),
            tier,
            points,
        }
    }
}

/// The buckets of `tier` overlapping `from..=to`, each over all its values.
fn buckets(tier: Tier, from: i64, to: i64, values: Vec<(i64, f64)>) -> Vec<Point> {
    let width = tier.bucket_seconds().unwrap() * 1_000;
    let start = |ms: i64| (T0_MS + ms).div_euclid(width) * width - T0_MS;
    let mut by_bucket: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (ms, v) in values {
        if (start(from)..=start(to)).contains(&start(ms)) {
            by_bucket.entry(start(ms)).or_default().push(v);
        }
    }
    by_bucket
        .into_iter()
        .map(|(bucket, values)| Point {
            at: time(bucket),
            avg: exact_sum(&values) / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
        .collect()
}

/// `v` as a decimal of at most six places, if it is one (the double
/// nearest that decimal): the fewest places, and `v` in units of them.
fn decimal(v: f64) -> Option<(i32, i128)> {
    (0..=6).find_map(|places| {
        let scale = 10f64.powi(places);
        let units = (v * scale).round();
        (units.abs() < 2f64.powi(53) && ((units as i64) as f64 / scale).to_bits() == v.to_bits())
            .then_some((places, units as i128))
    })
}

/// The sum the store must give: the decimals summed exactly in units of
/// the finest of them, the others exactly in units of 2^-GRID, then the
/// first rounded and added to the second's nearest double and remainder.
fn exact_sum(values: &[f64]) -> f64 {
    let decimals: Vec<(i32, i128)> = values.iter().filter_map(|&v| decimal(v)).collect();
    let places = decimals.iter().map(|&(p, _)| p).max().unwrap_or(0);
    let units: i128 = decimals
        .iter()
        .map(|&(p, n)| n * 10i128.pow((places - p).unsigned_abs()))
        .sum();
    assert!(units.unsigned_abs() < 1 << 53, "the decimals stay exact");
    let scale = 2f64.powi(GRID);
    let others: i128 = values
        .iter()
        .filter(|&&v| decimal(v).is_none())
        .map(|v| {
            let scaled = v * scale;
            assert_eq!(scaled.fract(), 0.0, "{v} is off the grid");
            scaled as i128
        })
        .sum();
    let nearest = others as f64 / scale;
    let rest = (others - (nearest * scale) as i128) as f64 / scale;
    units as f64 / 10f64.powi(places) + nearest + rest
}

/// The queries of one case: each range asked for raw points, for as many
/// points as it has minutes, and for one point.
fn queries(ranges: &[(i64, i64)]) -> Vec<(usize, (i64, i64), usize)> {
    let mut queries = Vec::new();
    for device in 0..DEVICES.len() {
        for &(from, to) in ranges {
            let minutes = usize::try_from((to - from) / 60_000 + 1).unwrap();
            for max in [100_000, minutes, 1] {
                queries.push((device, (from, to), max));
            }
        }
    }
    queries
}

/// Asks every query of `queries` and checks each answer against `truth`.
async fn check(
    store: &dyn Store,
    truth: &Truth,
    queries: &[(usize, (i64, i64), usize)],
    rollups: bool,
    stage: &str,
) -> Vec<History> {
    let answers = ask(store, queries).await;
    for (&(device, range, max), got) in queries.iter().zip(&answers) {
        let want = truth.answer(device, range, max, rollups);
        assert_eq!(
            got, &want,
            "{stage}: device {device}, range {range:?} ms, {max} points"
        );
    }
    answers
}

async fn ask(store: &dyn Store, queries: &[(usize, (i64, i64), usize)]) -> Vec<History> {
    let mut answers = Vec::new();
    for &(device, (from, to), max_points) in queries {
        let query = HistoryQuery::new(DEVICES[device], "cpu_usage", time(from), time(to))
            .with_max_points(max_points);
        answers.push(
            store
                .history(&OrgId::default(), &query)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    answers
}

/// Sends `arrivals` in batches of `batch`, to the store and the truth.
async fn send(store: &dyn Store, truth: &mut Truth, arrivals: &[Sent], batch: usize) {
    for chunk in arrivals.chunks(batch) {
        store
            .insert_many(
                &OrgId::default(),
                chunk.iter().map(|s| s.report()).collect(),
            )
            .await
            .unwrap();
        chunk.iter().for_each(|&s| truth.send(s));
    }
}

/// When retention runs: raw reports before [`CUTOFF_MS`] go; the minute
/// and hour tiers keep far more than the reports span.
fn retention_now() -> OffsetDateTime {
    time(CUTOFF_MS) + DEFAULT_RAW_RETENTION
}

fn sqlite(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::builder(dir)
        .durability(Durability::Process)
        .clock(Arc::new(ManualClock::new(time(SPAN_MS + 1_000))))
        .open()
        .unwrap()
}

/// One case: what is sent, in batches of `batch`, and what is asked.
struct Case {
    arrivals: Vec<Sent>,
    /// Sent after retention.
    retries: Vec<Sent>,
    queries: Vec<(usize, (i64, i64), usize)>,
    batch: usize,
}

async fn sqlite_matches_the_truth(dir: &std::path::Path, case: &Case) {
    let Case {
        arrivals,
        retries,
        queries,
        batch,
    } = case;
    let (queries, batch) = (queries.as_slice(), *batch);
    let mut truth = Truth::default();
    let store = sqlite(dir);
    send(&store, &mut truth, arrivals, batch).await;
    let first = check(&store, &truth, queries, true, "as received").await;
    store.checkpoint().await.unwrap();
    let checkpointed = check(&store, &truth, queries, true, "after a checkpoint").await;
    assert_eq!(checkpointed, first);
    drop(store);
    let store = sqlite(dir);
    let reopened = check(&store, &truth, queries, true, "after a reopen").await;
    assert_eq!(reopened, first);

    store.apply_retention(retention_now()).await.unwrap();
    truth.horizon = Some(CUTOFF_MS);
    send(&store, &mut truth, retries, batch).await;
    let trimmed = check(&store, &truth, queries, true, "after retention").await;
    drop(store);
    let store = sqlite(dir);
    send(&store, &mut truth, retries, batch).await;
    let again = check(&store, &truth, queries, true, "after a reopen, retried").await;
    assert_eq!(again, trimmed);
}

async fn memory_matches_the_truth(case: &Case) {
    let mut truth = Truth::default();
    let store = MemoryStore::with_history(DEFAULT_RAW_RETENTION);
    send(&store, &mut truth, &case.arrivals, case.batch).await;
    check(&store, &truth, &case.queries, false, "memory").await;
    store.apply_retention(retention_now()).await.unwrap();
    truth.horizon = Some(CUTOFF_MS);
    send(&store, &mut truth, &case.retries, case.batch).await;
    let stage = "memory, after retention";
    check(&store, &truth, &case.queries, false, stage).await;
}

/// A directory per case: a store's threads may still close their files
/// just after it is dropped.
static DIRS: LazyLock<TestDirs> = LazyLock::new(|| TestDirs::new("history-ground-truth"));

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn history_answers_match_a_ground_truth(
        arrivals in arrivals(),
        // After retention: the same reports again with other values (some
        // now too old), and new ones on both sides of the cutoff.
        retries in (prop::collection::vec(value(), 0..20), prop::collection::vec(sent(), 0..10)),
        ranges in prop::collection::vec(range(), 1..4),
        batch in 1usize..20,
    ) {
        let (values, new) = retries;
        let retries = arrivals
            .iter()
            .zip(values)
            .map(|(s, value)| Sent { value, ..*s })
            .chain(new)
            .collect();
        let case = Case { arrivals, retries, queries: queries(&ranges), batch };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            memory_matches_the_truth(&case).await;
            sqlite_matches_the_truth(&DIRS.fresh(), &case).await;
        });
    }
}
