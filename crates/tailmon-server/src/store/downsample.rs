//! Turning raw values into history points: the tier choice and bucketing
//! that every store answers with.

use tailmon_core::{OffsetDateTime, Point, Tier};

use crate::store::decimal::{decimal_value, smallest_scale};

/// Running avg/min/max of one bucket.
///
/// The sum is kept exactly, in two parts, so that an average does not
/// depend on the order the values came in, and a bucket stored and read
/// back goes on exactly as one that stayed in memory:
/// - values that are decimals of at most six places (all the agent sends:
///   percentages in hundredths, rates in whole units) are summed as an
///   integer count of their finest decimal, which stores as compactly as
///   the values themselves;
/// - any other value is summed in two doubles, the double nearest the sum
///   and what rounding left out, with error-free additions (Knuth's
///   TwoSum): exact for values on a common binary grid no wider than about
///   104 bits (`1e15` with `1e-9`, say).
///
/// A decimal that would take the decimal part past 2^53 units is summed
/// with the others instead; only then may the order matter, in the last bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) count: u64,
    /// The sum of the decimal values, in units of 10^-`decimal_scale`.
    pub(crate) decimal_units: i64,
    /// The most decimal places among the decimal values, at most six.
    pub(crate) decimal_scale: u8,
    /// The double nearest the sum of the other values.
    pub(crate) binary_sum: f64,
    /// The rest of that sum: at most half a unit in the last place of
    /// `binary_sum`.
    pub(crate) binary_error: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

/// Most units, in magnitude, the decimal part of a bucket's sum holds: as
/// many as a double holds exactly.
pub(crate) const DECIMAL_UNITS_LIMIT: u64 = 1 << 53;

impl Bucket {
    pub(crate) fn of(value: f64) -> Self {
        let mut bucket = Self {
            count: 0,
            decimal_units: 0,
            decimal_scale: 0,
            binary_sum: 0.0,
            binary_error: 0.0,
            min: value,
            max: value,
        };
        bucket.add(value);
        bucket
    }

    pub(crate) fn add(&mut self, value: f64) {
        self.count += 1;
        if !self.add_decimal(value) {
            self.add_binary(value);
        }
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds `value` to the decimal part if it is a decimal that fits.
    fn add_decimal(&mut self, value: f64) -> bool {
        let Some((places, units)) = smallest_scale(value) else {
            return false;
        };
        let scale = self.decimal_scale.max(places);
        let widen = |units: i64, from: u8| units.checked_mul(10i64.pow(u32::from(scale - from)));
        let sum = widen(self.decimal_units, self.decimal_scale)
            .zip(widen(units, places))
            .and_then(|(a, b)| a.checked_add(b));
        match sum {
            Some(sum) if sum.unsigned_abs() < DECIMAL_UNITS_LIMIT => {
                (self.decimal_units, self.decimal_scale) = (sum, scale);
                true
            }
            _ => false,
        }
    }

    fn add_binary(&mut self, value: f64) {
        let (sum, error) = two_sum(self.binary_sum, value);
        let (sum, error) = two_sum(sum, error + self.binary_error);
        if sum.is_finite() && error.is_finite() {
            (self.binary_sum, self.binary_error) = (sum, error);
        } else {
            // An infinity or a NaN has no error to carry.
            (self.binary_sum, self.binary_error) = (self.binary_sum + value, 0.0);
        }
    }

    /// The sum of the values, rounded: the decimal part (rounded once),
    /// then the other part.
    pub(crate) fn sum(&self) -> f64 {
        decimal_value(self.decimal_units, self.decimal_scale) + self.binary_sum + self.binary_error
    }

    pub(crate) fn point(&self, at: OffsetDateTime) -> Point {
        Point {
            at,
            avg: self.sum() / self.count as f64,
            min: self.min,
            max: self.max,
        }
    }
}

/// `a + b` rounded, and what the rounding lost: the two add up to exactly
/// `a + b` (Knuth's TwoSum, without branches).
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let sum = a + b;
    let b_part = sum - a;
    let a_part = sum - b_part;
    (sum, (a - a_part) + (b - b_part))
}

/// The start of the bucket of `tier` holding `at`.
pub(crate) fn bucket_start(tier: Tier, at: OffsetDateTime) -> OffsetDateTime {
    let width = tier.bucket_seconds().unwrap_or(1);
    let secs = at.unix_timestamp().div_euclid(width) * width;
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(at)
}

/// The finest bucket tier whose buckets over `from..=to` number at most
/// `max_points` (the hour tier if none does).
pub(crate) fn bucket_tier(from: OffsetDateTime, to: OffsetDateTime, max_points: usize) -> Tier {
    let span = (to - from).whole_seconds().max(0);
    let buckets = span / 60 + 1;
    if usize::try_from(buckets).is_ok_and(|b| b <= max_points) {
        Tier::Minute
    } else {
        Tier::Hour
    }
}

/// Buckets `(time, value)` pairs, given oldest first, into `tier`; with
/// [`Tier::Raw`], each is a point at its own time, to the nanosecond.
pub(crate) fn downsample(
    tier: Tier,
    values: impl IntoIterator<Item = (OffsetDateTime, f64)>,
) -> Vec<Point> {
    if tier == Tier::Raw {
        return values
            .into_iter()
            .map(|(at, value)| Point {
                at,
                avg: value,
                min: value,
                max: value,
            })
            .collect();
    }
    let mut points = Vec::new();
    let mut current: Option<(OffsetDateTime, Bucket)> = None;
    for (at, value) in values {
        let start = bucket_start(tier, at);
        match &mut current {
            Some((s, bucket)) if *s == start => bucket.add(value),
            _ => {
                if let Some((s, bucket)) = current.take() {
                    points.push(bucket.point(s));
                }
                current = Some((start, Bucket::of(value)));
            }
        }
    }
    if let Some((s, bucket)) = current {
        points.push(bucket.point(s));
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn buckets_hold_avg_min_max() {
        let points = downsample(
            Tier::Minute,
            [
                (t(0), 1.0),
                (t(30), 5.0),
                (t(59), 3.0),
                (t(60), 10.0),
                (t(185), 7.0),
            ],
        );
        assert_eq!(
            points,
            [
                Point {
                    at: t(0),
                    avg: 3.0,
                    min: 1.0,
                    max: 5.0
                },
                Point {
                    at: t(60),
                    avg: 10.0,
                    min: 10.0,
                    max: 10.0
                },
                Point {
                    at: t(180),
                    avg: 7.0,
                    min: 7.0,
                    max: 7.0
                },
            ]
        );
    }

    fn bucket_of(values: &[f64]) -> Bucket {
        let mut bucket = Bucket::of(values[0]);
        for &v in &values[1..] {
            bucket.add(v);
        }
        bucket
    }

    #[test]
    fn sums_are_exact_whatever_the_order() {
        let t0 = t(0);
        assert_eq!(bucket_of(&[0.1, 0.2, 0.3]).point(t0).avg, 0.6 / 3.0);
        assert_eq!(bucket_of(&[0.3, 0.2, 0.1]).point(t0).avg, 0.6 / 3.0);
        assert_eq!(bucket_of(&[1e15, -1e15, 1e-9]).point(t0).avg, 1e-9 / 3.0);
        assert_eq!(bucket_of(&[1e-9, 1e15, -1e15]).point(t0).avg, 1e-9 / 3.0);
        // Decimals: 1e12 + 0.1 - 1e12 + 12.34 + 99.99 - 0.3 = 112.13 exactly;
        // the others: 2^-50 + 3 * 2^-60, exactly.
        let tiny = 2f64.powi(-50);
        let tinier = 3.0 * 2f64.powi(-60);
        let mixed = [1e12, 0.1, -1e12, 12.34, tiny, 99.99, tinier, -0.3];
        let want = (112.13 + (tiny + tinier)) / 8.0;
        let mut values = mixed;
        for _ in 0..mixed.len() {
            values.rotate_left(1);
            assert_eq!(bucket_of(&values).point(t0).avg, want, "{values:?}");
            values.reverse();
            assert_eq!(bucket_of(&values).point(t0).avg, want, "{values:?}");
        }
        let decimal = bucket_of(&[12.34, 0.5, 7.0]);
        assert_eq!(
            (
                decimal.decimal_units,
                decimal.decimal_scale,
                decimal.binary_sum
            ),
            (1_984, 2, 0.0),
            "agent values stay in the decimal part"
        );
    }

    #[test]
    fn infinities_do_not_turn_into_nan() {
        let mut bucket = bucket_of(&[1.0, f64::MAX, f64::MAX]);
        assert_eq!(bucket.sum(), f64::INFINITY);
        bucket.add(1.0);
        assert_eq!(bucket.point(t(0)).avg, f64::INFINITY);
    }

    #[test]
    fn raw_points_keep_their_own_time() {
        let at = |ms: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
        };
        let points = downsample(Tier::Raw, [(at(1_250), 50.0), (at(1_500), 99.99)]);
        let summary: Vec<(OffsetDateTime, f64)> = points.iter().map(|p| (p.at, p.avg)).collect();
        assert_eq!(summary, [(at(1_250), 50.0), (at(1_500), 99.99)]);
    }

    #[test]
    fn tier_gives_at_most_the_points_asked_for() {
        assert_eq!(bucket_tier(t(0), t(3600 * 10), 1000), Tier::Minute);
        assert_eq!(bucket_tier(t(0), t(86_400), 1000), Tier::Hour);
        assert_eq!(bucket_start(Tier::Hour, t(7199)), t(3600));
    }
}
