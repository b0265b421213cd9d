//! Decimal floats as scaled integers: the one formula the block codec,
//! the rollup blocks and the exact bucket sums of downsampling share.

/// The most decimals a decimal value may have.
pub(crate) const MAX_SCALE: u8 = 6;
/// `10^k` for every scale `k`, exact in f64.
pub(crate) const POW10: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
/// Scaled decimals stay below this in magnitude, so they are exact in f64.
pub(crate) const SCALED_LIMIT: u64 = 1 << 53;

/// The float that `scaled` hundredths (or other `10^-scale`) stand for: the
/// one formula the encoder checks against and the decoder applies.
pub(crate) fn decimal_value(scaled: i64, scale: u8) -> f64 {
    let divisor = POW10.get(usize::from(scale)).copied().unwrap_or(1.0);
    scaled as f64 / divisor
}

/// `x` as an integer number of `10^-scale`, when [`decimal_value`] gives
/// back exactly `x` (same bits) from it.
pub(crate) fn scaled_at(x: f64, scale: u8) -> Option<i64> {
    let multiplier = POW10.get(usize::from(scale)).copied()?;
    let product = x * multiplier;
    if product.is_nan() || product.abs() >= SCALED_LIMIT as f64 {
        return None;
    }
    // Rounds half away from zero without `f64::round`, a libm call on
    // baseline x86-64; a wrong guess only fails the check below.
    let scaled = (product + 0.5f64.copysign(product)) as i64;
    (scaled.unsigned_abs() < SCALED_LIMIT && decimal_value(scaled, scale).to_bits() == x.to_bits())
        .then_some(scaled)
}

/// The fewest decimals `x` is exact with, and `x` scaled by them.
pub(crate) fn smallest_scale(x: f64) -> Option<(u8, i64)> {
    (0..=MAX_SCALE).find_map(|scale| scaled_at(x, scale).map(|scaled| (scale, scaled)))
}
