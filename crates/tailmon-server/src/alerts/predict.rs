//! The predictive rule's arithmetic: a least-squares line through a disk's
//! use over time, and when it reaches 100 %.

use tailmon_core::OffsetDateTime;

/// Fewest points a fit is made from: 3.
pub const MIN_POINTS: usize = 3;

/// A line `value = intercept + slope * seconds since `origin``.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearFit {
    /// Where the seconds count from (the first point).
    pub origin: OffsetDateTime,
    /// Percent per second.
    pub slope: f64,
    /// Percent at `origin`.
    pub intercept: f64,
}

impl LinearFit {
    /// The least-squares line through `points` (time, percent); `None`
    /// with fewer than [`MIN_POINTS`] or all at one time.
    pub fn of(points: &[(OffsetDateTime, f64)]) -> Option<Self> {
        let (&(origin, _), _) = points.split_first()?;
        if points.len() < MIN_POINTS {
            return None;
        }
        let n = points.len() as f64;
        let xs = points.iter().map(|(at, _)| (*at - origin).as_seconds_f64());
        let mean_x = xs.clone().sum::<f64>() / n;
        let mean_y = points.iter().map(|(_, v)| *v).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (x, (_, y)) in xs.zip(points) {
            sxy += (x - mean_x) * (y - mean_y);
            sxx += (x - mean_x) * (x - mean_x);
        }
        if sxx <= 0.0 || !sxx.is_finite() || !sxy.is_finite() {
            return None;
        }
        let slope = sxy / sxx;
        Some(Self {
            origin,
            slope,
            intercept: mean_y - slope * mean_x,
        })
    }

    /// The line's value at `at`.
    pub fn at(&self, at: OffsetDateTime) -> f64 {
        self.intercept + self.slope * (at - self.origin).as_seconds_f64()
    }

    /// How long after `now` the line reaches `full` percent; `None` when it
    /// is flat or falling. Zero when it is there already.
    pub fn time_to(&self, full: f64, now: OffsetDateTime) -> Option<std::time::Duration> {
        // A slope under 0.01 % a day is noise, not a trend.
        if self.slope <= 0.01 / 86_400.0 {
            return None;
        }
        let left = full - self.at(now);
        if left <= 0.0 {
            return Some(std::time::Duration::ZERO);
        }
        std::time::Duration::try_from_secs_f64(left / self.slope).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
    }

    #[test]
    fn a_disk_filling_a_percent_an_hour_is_full_when_the_line_says() {
        let points: Vec<_> = (0..=6).map(|h| (at(h * 3600), 50.0 + h as f64)).collect();
        let fit = LinearFit::of(&points).expect("a fit");
        let left = fit.time_to(100.0, at(6 * 3600)).expect("filling");
        assert!(
            (left.as_secs_f64() / 3600.0 - 44.0).abs() < 1e-6,
            "{left:?}"
        );
    }

    #[test]
    fn a_steady_or_emptying_disk_never_fills() {
        let steady: Vec<_> = (0..10).map(|m| (at(m * 60), 70.0)).collect();
        assert_eq!(
            LinearFit::of(&steady).and_then(|f| f.time_to(100.0, at(600))),
            None
        );
        let emptying: Vec<_> = (0..10).map(|m| (at(m * 60), 70.0 - m as f64)).collect();
        assert_eq!(
            LinearFit::of(&emptying).and_then(|f| f.time_to(100.0, at(600))),
            None
        );
        assert_eq!(LinearFit::of(&steady[..2]), None);
        assert_eq!(
            LinearFit::of(&[(at(0), 1.0), (at(0), 2.0), (at(0), 3.0)]),
            None
        );
    }
}
