//! Turning raw values into history points: the tier choice and bucketing
//! that every store answers with.

use tailmon_core::{OffsetDateTime, Point, Tier};

/// Running avg/min/max of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Bucket {
    pub(crate) fn of(value: f64) -> Self {
        Self {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }
    }

    pub(crate) fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub(crate) fn point(&self, at: OffsetDateTime) -> Point {
        Point {
            at,
            avg: self.sum / self.count as f64,
            min: self.min,
            max: self.max,
        }
    }
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

/// Buckets `(time, value)` pairs, given oldest first, into `tier`.
pub(crate) fn downsample(
    tier: Tier,
    values: impl IntoIterator<Item = (OffsetDateTime, f64)>,
) -> Vec<Point> {
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

    #[test]
    fn tier_gives_at_most_the_points_asked_for() {
        assert_eq!(bucket_tier(t(0), t(3600 * 10), 1000), Tier::Minute);
        assert_eq!(bucket_tier(t(0), t(86_400), 1000), Tier::Hour);
        assert_eq!(bucket_start(Tier::Hour, t(7199)), t(3600));
    }
}
