//! A rollup block: the buckets of one tier of one device over a fixed span
//! (six hours of minute buckets, a week of hour buckets), with the count, sum,
//! min and max of every metric. It fills in memory as reports arrive and is
//! stored whole, one column of numbers per field of each metric, with the
//! number primitives of [`crate::store::codec`].

use std::collections::{BTreeMap, HashMap};

use tailmon_core::{OffsetDateTime, Point, Tier};

use crate::store::codec::{
    BlockError, Reader, decimal_value, put_varint, scaled_at, smallest_scale, unzigzag, zigzag,
};
use crate::store::downsample::{Bucket, DECIMAL_UNITS_LIMIT};

/// Seconds one block of `tier` spans: six hours of minutes (360 buckets), a
/// week of hours (168). Long blocks share one header among many buckets.
pub(crate) fn span_seconds(tier: Tier) -> i64 {
    match tier {
        Tier::Hour => 7 * 86_400,
        Tier::Minute | Tier::Raw => 6 * 3_600,
    }
}

/// The start (Unix seconds) of the block of `tier` that holds `at`.
pub(crate) fn block_start(tier: Tier, at: i64) -> i64 {
    let span = span_seconds(tier);
    at.div_euclid(span) * span
}

/// The buckets of one block, by bucket start (Unix seconds), each holding
/// the running avg/min/max of every metric seen in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RollupBlock {
    names: Vec<String>,
    index: HashMap<String, usize>,
    buckets: BTreeMap<i64, Vec<Option<Bucket>>>,
    /// Where the next metric is expected: reports name their metrics in the
    /// same order each time, so a comparison usually spares the hashing.
    cursor: usize,
}

impl RollupBlock {
    /// Adds one value of metric `name` to the bucket starting at `bucket`.
    pub(crate) fn add(&mut self, bucket: i64, name: &str, value: f64) {
        let slot = self.slot(bucket, name);
        match slot {
            Some(b) => b.add(value),
            None => *slot = Some(Bucket::of(value)),
        }
    }

    /// The running bucket of metric `name` starting at `bucket`.
    fn slot(&mut self, bucket: i64, name: &str) -> &mut Option<Bucket> {
        let metric = match self.names.get(self.cursor) {
            Some(expected) if expected == name => self.cursor,
            _ => match self.index.get(name) {
                Some(&i) => i,
                None => {
                    self.names.push(name.to_owned());
                    self.index.insert(name.to_owned(), self.names.len() - 1);
                    self.names.len() - 1
                }
            },
        };
        self.cursor = metric + 1;
        let slots = self.buckets.entry(bucket).or_default();
        if slots.len() <= metric {
            slots.resize(metric + 1, None);
        }
        &mut slots[metric]
    }

    /// Whether the block holds no bucket.
    pub(crate) fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The points of metric `name` whose bucket starts within `from..=to`.
    pub(crate) fn points(&self, name: &str, from: i64, to: i64) -> Vec<Point> {
        let Some(&metric) = self.index.get(name) else {
            return Vec::new();
        };
        self.buckets
            .range(from..=to)
            .filter_map(|(&start, slots)| {
                let bucket = slots.get(metric).copied().flatten()?;
                Some(bucket.point(OffsetDateTime::from_unix_timestamp(start).ok()?))
            })
            .collect()
    }

    /// Drops the buckets that start before `cutoff`.
    pub(crate) fn retain_from(&mut self, cutoff: i64) {
        self.buckets = self.buckets.split_off(&cutoff);
    }

    /// The block, column-encoded and compressed with zstd at `level`.
    ///
    /// Layout: a version byte; the bucket starts (the first, then the
    /// steps); then each metric as its name and a length-prefixed section
    /// (which buckets have it, then as number columns its counts, the units
    /// and scales of the decimal sums, mins, maxes, and the other sums with
    /// their errors), so a reader wanting one metric skips the others. Every
    /// number is stored exactly: a block read back is the block that was
    /// sealed, and goes on summing as it would have. The columns of other
    /// sums hold zeros for metrics of decimals, and cost next to nothing.
    pub(crate) fn seal(&self, level: i32) -> std::io::Result<Vec<u8>> {
        let mut out = vec![FORMAT];
        put_varint(&mut out, self.buckets.len() as u64);
        let mut previous = 0;
        for &start in self.buckets.keys() {
            put_varint(&mut out, zigzag(start.wrapping_sub(previous)));
            previous = start;
        }
        put_varint(&mut out, self.names.len() as u64);
        let mut section = Vec::new();
        let mut columns: [Vec<f64>; 7] = Default::default();
        for (metric, name) in self.names.iter().enumerate() {
            section.clear();
            columns.iter_mut().for_each(Vec::clear);
            let mut present = vec![0u8; self.buckets.len().div_ceil(8)];
            for (i, slots) in self.buckets.values().enumerate() {
                if let Some(Some(b)) = slots.get(metric) {
                    present[i / 8] |= 1 << (i % 8);
                    columns[0].push(b.count as f64);
                    // Exact: below 2^53 in magnitude.
                    columns[1].push(b.decimal_units as f64);
                    columns[2].push(f64::from(b.decimal_scale));
                    columns[3].push(b.min);
                    columns[4].push(b.max);
                    columns[5].push(b.binary_sum);
                    columns[6].push(b.binary_error);
                }
            }
            section.extend_from_slice(&present);
            for column in &columns {
                put_numbers(&mut section, column);
            }
            put_varint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_varint(&mut out, section.len() as u64);
            out.extend_from_slice(&section);
        }
        zstd::bulk::compress(&out, level)
    }

    /// A block from what [`RollupBlock::seal`] wrote, with every metric.
    pub(crate) fn open(bytes: &[u8]) -> Result<Self, BlockError> {
        Self::open_only(bytes, None)
    }

    /// A block from what [`RollupBlock::seal`] wrote, with only metric
    /// `wanted` when given (a history query needs no other).
    pub(crate) fn open_only(bytes: &[u8], wanted: Option<&str>) -> Result<Self, BlockError> {
        Self::open_where(bytes, |name| wanted.is_none_or(|w| w == name))
    }

    /// A block from what [`RollupBlock::seal`] wrote, with only the metrics
    /// whose name `wanted` accepts (those of a multi-metric history query):
    /// the sections of the others are skipped undecoded.
    pub(crate) fn open_where(
        bytes: &[u8],
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Self, BlockError> {
        let raw = zstd::bulk::decompress(bytes, MAX_BLOCK_BYTES).map_err(BlockError::Zstd)?;
        let mut reader = Reader::new(&raw);
        let format = reader.byte()?;
        if format != FORMAT && format != FORMAT_DOUBLE_SUMS {
            return Err(BlockError::Malformed("unknown rollup block format"));
        }
        let count = reader.length()?;
        let mut starts = Vec::with_capacity(count.min(raw.len()));
        let mut previous = 0i64;
        for _ in 0..count {
            previous = previous.wrapping_add(unzigzag(reader.varint()?));
            starts.push(previous);
        }
        let mut block = Self::default();
        for _ in 0..reader.length()? {
            let len = reader.length()?;
            let name = std::str::from_utf8(reader.bytes(len)?)
                .map_err(|_| BlockError::Malformed("metric name is not UTF-8"))?;
            let len = reader.length()?;
            let section = reader.bytes(len)?;
            if !wanted(name) {
                continue;
            }
            let mut section = Reader::new(section);
            let present = section.bytes(count.div_ceil(8))?;
            let has = |i: usize| present.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
            let n = (0..count).filter(|&i| has(i)).count();
            let columns = if format == FORMAT_DOUBLE_SUMS {
                let [counts, sums, mins, maxes] = read_columns(&mut section, n)?;
                // A sum of that format: a decimal when it is one, as it
                // was rounded to be, else a plain double.
                let (mut units, mut scales, mut others) = (Vec::new(), Vec::new(), Vec::new());
                for sum in sums {
                    let (scale, scaled, other) = match smallest_scale(sum) {
                        Some((scale, scaled)) => (scale, scaled, 0.0),
                        None => (0, 0, sum),
                    };
                    units.push(scaled as f64);
                    scales.push(f64::from(scale));
                    others.push(other);
                }
                let errors = vec![0.0; n];
                [counts, units, scales, mins, maxes, others, errors]
            } else {
                read_columns(&mut section, n)?
            };
            let mut k = 0;
            for (i, &start) in starts.iter().enumerate() {
                if !has(i) {
                    continue;
                }
                let row: [Option<f64>; 7] = std::array::from_fn(|c| columns[c].get(k).copied());
                let [
                    Some(count),
                    Some(units),
                    Some(scale),
                    Some(min),
                    Some(max),
                    Some(binary_sum),
                    Some(binary_error),
                ] = row
                else {
                    return Err(BlockError::Truncated);
                };
                k += 1;
                let bucket = Bucket {
                    count: count as u64,
                    decimal_units: units as i64,
                    decimal_scale: scale as u8,
                    binary_sum,
                    binary_error,
                    min,
                    max,
                };
                let exact = units.fract() == 0.0
                    && units.abs() < DECIMAL_UNITS_LIMIT as f64
                    && (0.0..=6.0).contains(&scale)
                    && scale.fract() == 0.0;
                if !exact {
                    return Err(BlockError::Malformed("rollup sum out of range"));
                }
                if count >= 1.0 {
                    *block.slot(start, name) = Some(bucket);
                }
            }
        }
        Ok(block)
    }
}

/// The format byte of a sealed rollup block.
const FORMAT: u8 = 2;
/// The format byte of blocks sealed before sums were kept exactly: four
/// columns per metric, the sum a double rounded to the decimals of the
/// bucket's min and max when it differed from that by noise. They still
/// read: such a sum as the decimal it is, else as a double.
const FORMAT_DOUBLE_SUMS: u8 = 1;
/// Most bytes a rollup block may decompress to.
const MAX_BLOCK_BYTES: usize = 64 << 20;
/// Marks a number column stored as raw bits rather than decimals.
const RAW_BITS: u8 = u8::MAX;

/// Appends a column of numbers: as zigzag steps between integers of a
/// common decimal scale when every value is such a decimal, else as the
/// bits of each value XOR the previous one.
fn put_numbers(out: &mut Vec<u8>, values: &[f64]) {
    let scale = values
        .iter()
        .map(|&v| smallest_scale(v).map(|(scale, _)| scale))
        .try_fold(0u8, |widest, scale| scale.map(|s| widest.max(s)));
    let scaled: Option<Vec<i64>> =
        scale.and_then(|scale| values.iter().map(|&v| scaled_at(v, scale)).collect());
    match (scale, scaled) {
        (Some(scale), Some(scaled)) => {
            out.push(scale);
            let mut previous = 0i64;
            for v in scaled {
                put_varint(out, zigzag(v.wrapping_sub(previous)));
                previous = v;
            }
        }
        _ => {
            out.push(RAW_BITS);
            let mut previous = 0u64;
            for v in values {
                out.extend_from_slice(&(v.to_bits() ^ previous).to_le_bytes());
                previous = v.to_bits();
            }
        }
    }
}

/// Reads `N` columns of `n` numbers each.
fn read_columns<const N: usize>(
    reader: &mut Reader<'_>,
    n: usize,
) -> Result<[Vec<f64>; N], BlockError> {
    let mut columns: [Vec<f64>; N] = std::array::from_fn(|_| Vec::new());
    for column in &mut columns {
        *column = read_numbers(reader, n)?;
    }
    Ok(columns)
}

/// Reads a column of `n` numbers written by [`put_numbers`].
fn read_numbers(reader: &mut Reader<'_>, n: usize) -> Result<Vec<f64>, BlockError> {
    let scale = reader.byte()?;
    let mut values = Vec::with_capacity(n.min(1 << 16));
    if scale == RAW_BITS {
        let mut previous = 0u64;
        for _ in 0..n {
            let bytes: [u8; 8] = reader
                .bytes(8)?
                .try_into()
                .map_err(|_| BlockError::Truncated)?;
            previous ^= u64::from_le_bytes(bytes);
            values.push(f64::from_bits(previous));
        }
    } else {
        let mut previous = 0i64;
        for _ in 0..n {
            previous = previous.wrapping_add(unzigzag(reader.varint()?));
            values.push(decimal_value(previous, scale));
        }
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_avg_min_max_and_survive_sealing() {
        let mut block = RollupBlock::default();
        for v in [0.1, 0.2, 0.7] {
            block.add(60, "cpu_usage", v);
        }
        block.add(120, "cpu_usage", 5.0);
        block.add(120, "disk_used_percent:/", 50.0);
        let points = block.points("cpu_usage", 0, 3_600);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].at.unix_timestamp(), 60);
        assert!((points[0].avg - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((points[0].min, points[0].max), (0.1, 0.7));
        assert_eq!(block.points("disk_used_percent:/", 0, 3_600)[0].avg, 50.0);
        assert!(block.points("nothing", 0, 3_600).is_empty());

        let opened = RollupBlock::open(&block.seal(3).unwrap()).unwrap();
        assert_eq!(opened.points("cpu_usage", 0, 3_600), points);
        assert_eq!(opened.points("disk_used_percent:/", 0, 3_600).len(), 1);
        assert_eq!(
            opened.points("cpu_usage", 61, 3_600).len(),
            1,
            "range is by bucket start"
        );
    }

    #[test]
    fn one_metric_can_be_read_alone_and_odd_numbers_survive() {
        let mut block = RollupBlock::default();
        block.add(0, "a", 1.25);
        block.add(60, "a", std::f64::consts::E);
        block.add(60, "b", -4.0);
        block.add(120, "b", 1e300);
        let sealed = block.seal(3).unwrap();
        let only_b = RollupBlock::open_only(&sealed, Some("b")).unwrap();
        assert!(only_b.points("a", 0, 3_600).is_empty());
        assert_eq!(only_b.points("b", 0, 3_600), block.points("b", 0, 3_600));
        let all = RollupBlock::open(&sealed).unwrap();
        assert_eq!(all.points("a", 0, 3_600), block.points("a", 0, 3_600));
        assert_eq!(all.points("a", 0, 3_600)[1].max, std::f64::consts::E);
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut block = RollupBlock::default();
        for i in 0..50 {
            block.add(i * 60, "cpu_usage", i as f64 / 4.0);
            block.add(i * 60, "disk_used_percent:/", 50.0);
        }
        let raw = zstd::bulk::decompress(&block.seal(1).unwrap(), 1 << 20).unwrap();
        for cut in 0..raw.len() {
            let damaged = zstd::bulk::compress(&raw[..cut], 1).unwrap();
            assert!(RollupBlock::open(&damaged).is_err(), "cut at {cut}");
        }
        for i in 0..raw.len() {
            let mut flipped = raw.clone();
            flipped[i] ^= 0x5a;
            let _ = RollupBlock::open(&zstd::bulk::compress(&flipped, 1).unwrap());
        }
        assert!(RollupBlock::open(b"not zstd").is_err());
    }

    #[test]
    fn a_sealed_block_reads_back_bit_for_bit() {
        let mut block = RollupBlock::default();
        for v in [0.1, 0.2, 0.3] {
            block.add(60, "cpu_usage", v);
        }
        for v in [1e15, -1e15, 1e-9] {
            block.add(120, "cpu_usage", v);
        }
        let opened = RollupBlock::open(&block.seal(1).unwrap()).unwrap();
        assert_eq!(opened, block, "sums and their errors included");
        let avgs = |b: &RollupBlock| -> Vec<f64> {
            b.points("cpu_usage", 0, 3_600)
                .iter()
                .map(|p| p.avg)
                .collect()
        };
        assert_eq!(avgs(&opened), [0.6 / 3.0, 1e-9 / 3.0]);
        // Summing on after a reopen gives what summing on in memory gives.
        let (mut kept, mut reopened) = (block.clone(), opened);
        for v in [0.7, 1e-17, 3.3] {
            kept.add(60, "cpu_usage", v);
            reopened.add(60, "cpu_usage", v);
            reopened = RollupBlock::open(&reopened.seal(9).unwrap()).unwrap();
        }
        assert_eq!(reopened, kept);
    }

    /// A block sealed by the format before sums carried their error (the
    /// code of commit e2b19af): 0.1, 0.2, 0.3 at 60; 1e15, -1e15, 1e-9 at
    /// 120; `ram_used_mb` 2048 at 120, 4096 and 1024 at 180.
    const FORMAT_1_BLOCK: &str = "28b52ffd205ad10200010378787802096370755f75736167652903000600010c0bff9a9999999999b93f9a99adbf6cf2b5fcff333333333333d33f33330715c658df7c0b72616d5f757365645f6d6213060002020080208030008020ff0f0080208020";

    #[test]
    fn blocks_of_the_earlier_format_still_read() {
        let bytes: Vec<u8> = (0..FORMAT_1_BLOCK.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&FORMAT_1_BLOCK[i..i + 2], 16).unwrap())
            .collect();
        let block = RollupBlock::open(&bytes).unwrap();
        let cpu: Vec<(i64, f64, f64, f64)> = block
            .points("cpu_usage", 0, 3_600)
            .iter()
            .map(|p| (p.at.unix_timestamp(), p.avg, p.min, p.max))
            .collect();
        // What that format answered after a checkpoint: its sums were
        // rounded to the decimals of min and max.
        assert_eq!(cpu, [(60, 0.6 / 3.0, 0.1, 0.3), (120, 0.0, -1e15, 1e15)]);
        let ram: Vec<(f64, f64, f64)> = block
            .points("ram_used_mb", 0, 3_600)
            .iter()
            .map(|p| (p.avg, p.min, p.max))
            .collect();
        assert_eq!(ram, [(2048.0, 2048.0, 2048.0), (2560.0, 1024.0, 4096.0)]);
        // Written again, in today's format, it reads the same.
        let mut block = block;
        block.add(180, "ram_used_mb", 0.5);
        let resealed = RollupBlock::open(&block.seal(3).unwrap()).unwrap();
        assert_eq!(resealed, block);
        assert_eq!(
            resealed.points("ram_used_mb", 180, 180)[0].avg,
            5120.5 / 3.0
        );
    }

    #[test]
    fn retention_drops_whole_buckets() {
        let mut block = RollupBlock::default();
        block.add(0, "a", 1.0);
        block.add(60, "a", 2.0);
        block.retain_from(60);
        assert_eq!(block.points("a", 0, 3_600).len(), 1);
        block.retain_from(3_600);
        assert!(block.is_empty());
    }

    #[test]
    fn blocks_align_to_their_span() {
        assert_eq!(block_start(Tier::Minute, 6 * 3_600 + 5), 6 * 3_600);
        assert_eq!(block_start(Tier::Hour, 7 * 86_400 + 5), 7 * 86_400);
        assert_eq!(block_start(Tier::Minute, -1), -6 * 3_600);
    }
}
