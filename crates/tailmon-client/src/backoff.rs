use std::time::Duration;

/// The delay before retry number `attempt` (1 for the first retry) under
/// exponential backoff with full jitter: a uniform draw, scaled by `unit`
/// (in `0.0..1.0`), of `min(cap, base * 2^(attempt - 1))`.
///
/// ```
/// use std::time::Duration;
/// use tailmon_client::full_jitter;
///
/// let base = Duration::from_secs(1);
/// let cap = Duration::from_secs(60);
/// assert_eq!(full_jitter(3, base, cap, 0.5), Duration::from_secs(2));
/// assert_eq!(full_jitter(30, base, cap, 0.5), Duration::from_secs(30));
/// ```
pub fn full_jitter(attempt: u32, base: Duration, cap: Duration, unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(60);

    #[test]
    fn ceiling_doubles_then_caps() {
        let ceilings: Vec<u64> = (1..=9)
            .map(|n| full_jitter(n, BASE, CAP, 1.0).as_secs())
            .collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(full_jitter(u32::MAX, BASE, CAP, 1.0), CAP);
    }

    #[test]
    fn jitter_spans_zero_to_ceiling() {
        assert_eq!(full_jitter(4, BASE, CAP, 0.0), Duration::ZERO);
        assert_eq!(full_jitter(4, BASE, CAP, 0.25), Duration::from_secs(2));
        assert_eq!(full_jitter(4, BASE, CAP, 7.0), Duration::from_secs(8));
    }
}
