use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a history answer's points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Every report as received (kept 48 h by default).
    Raw,
    /// One-minute buckets (kept 30 days by default).
    Minute,
    /// One-hour buckets (kept a year by default).
    Hour,
}

impl Tier {
    /// The width of one bucket in seconds; `None` for raw reports.
    pub fn bucket_seconds(self) -> Option<i64> {
        match self {
            Self::Raw => None,
            Self::Minute => Some(60),
            Self::Hour => Some(3600),
        }
    }
}

/// One point of a history: for raw reports avg, min and max are the value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The report's time (raw) or the bucket's start.
    pub at: OffsetDateTime,
    /// The mean over the bucket.
    pub avg: f64,
    /// The smallest value in the bucket.
    pub min: f64,
    /// The largest value in the bucket.
    pub max: f64,
}

/// A point travels as `[unix_seconds, avg, min, max]`.
impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let at = self.at.unix_timestamp_nanos() as f64 / 1e9;
        [at, self.avg, self.min, self.max].serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let [at, avg, min, max] = <[f64; 4]>::deserialize(deserializer)?;
        let at = OffsetDateTime::from_unix_timestamp_nanos((at * 1e9).round() as i128)
            .map_err(serde::de::Error::custom)?;
        Ok(Self { at, avg, min, max })
    }
}

/// The answer to a history query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The device.
    pub device_id: String,
    /// The metric (see [`crate::metric`]).
    pub metric: String,
    /// The tier the points come from.
    pub tier: Tier,
    /// The points, oldest first.
    pub points: Vec<Point>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_travel_as_arrays() {
        let p = Point {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            avg: 2.5,
            min: 1.0,
            max: 4.0,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "[1700000000.0,2.5,1.0,4.0]");
        assert_eq!(serde_json::from_str::<Point>(&json).unwrap(), p);
    }
}
