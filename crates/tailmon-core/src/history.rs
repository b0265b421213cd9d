use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a history answer's points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A point travels as `[unix_seconds, avg, min, max]`, the seconds with
/// their fraction (`1795832745.25` for a quarter past).
impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        [unix_seconds(self.at), self.avg, self.min, self.max].serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let [at, avg, min, max] = <[f64; 4]>::deserialize(deserializer)?;
        let at = from_unix_seconds(at).ok_or_else(|| {
            serde::de::Error::custom(format!("{at} is not a time in Unix seconds"))
        })?;
        Ok(Self { at, avg, min, max })
    }
}

/// In the OpenAPI document: `[at, avg, min, max]`, four numbers.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Point {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let number = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .description(Some(description))
                .build()
        };
        ArrayBuilder::new()
            .description(Some(
                "One point: [time in Unix seconds (fractions for sub-second times), average, minimum, maximum].",
            ))
            .prefix_items([
                number("time, Unix seconds"),
                number("average"),
                number("minimum"),
                number("maximum"),
            ])
            .min_items(Some(4))
            .max_items(Some(4))
            .build()
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Point {}

/// `at` in Unix seconds: the whole seconds and the fraction converted apart,
/// so that a fraction a binary number holds exactly (`.25`, `.5`) comes out
/// exactly, and any other is off by no more than the last bit. Dividing the
/// nanoseconds since 1970 by 10⁹ instead rounds the nanoseconds first (they
/// need 61 bits; a double has 53) and gives `…45.2499998` for `…45.25`.
fn unix_seconds(at: OffsetDateTime) -> f64 {
    let fraction = f64::from(at.nanosecond()) / 1e9;
    at.unix_timestamp() as f64 + fraction
}

/// The time `seconds` after 1970 (the inverse of [`unix_seconds`]); `None`
/// when it is not a finite time `time` can hold. A double near today's
/// seconds tells times apart only some 240 ns apart, so the fraction is
/// rounded to the finest decimal unit it can hold (the microsecond today):
/// a time sent in whole microseconds comes back as it was.
fn from_unix_seconds(seconds: f64) -> Option<OffsetDateTime> {
    if !seconds.is_finite() {
        return None;
    }
    let whole = seconds.floor();
    // Exact: the fraction needs no more bits than `seconds` has.
    let fraction = seconds - whole;
    let resolution_nanos = (f64::from_bits(seconds.abs().to_bits() + 1) - seconds.abs()) * 1e9;
    let mut unit = 1.0;
    while unit < resolution_nanos && unit < 1e9 {
        unit *= 10.0;
    }
    let nanos = ((fraction * 1e9 / unit).round() * unit) as i128;
    let whole = i64::try_from(whole as i128).ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(whole) * 1_000_000_000 + nanos).ok()
}

/// The answer to a history query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    #[test]
    fn sub_second_times_travel_exactly() {
        let at = time::macros::datetime!(2026-11-28 02:25:45.25 UTC);
        let p = Point {
            at,
            avg: 1.0,
            min: 1.0,
            max: 1.0,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, format!("[{}.25,1.0,1.0,1.0]", at.unix_timestamp()));
        assert_eq!(serde_json::from_str::<Point>(&json).unwrap().at, at);
        // A millisecond or a microsecond is no binary fraction: the
        // nearest double comes back as the same time.
        for micros in [1, 7, 1_000, 125_000, 999_999] {
            let at = at.replace_microsecond(micros).unwrap();
            let json = serde_json::to_string(&Point { at, ..p }).unwrap();
            assert_eq!(
                serde_json::from_str::<Point>(&json).unwrap().at,
                at,
                "{json}"
            );
        }
        let before_1970 = OffsetDateTime::from_unix_timestamp_nanos(-1_750_000_000).unwrap();
        assert_eq!(unix_seconds(before_1970), -1.75);
        assert_eq!(from_unix_seconds(-1.75), Some(before_1970));
        assert!(serde_json::from_str::<Point>("[1e300,1,1,1]").is_err());
    }
}
