//! Overall CPU usage.

use sysinfo::System;

/// Refreshes only CPU times and returns overall usage in percent, 0 to 100,
/// over the window since the previous refresh.
pub(crate) fn usage(system: &mut System) -> Option<f64> {
    system.refresh_cpu_usage();
    let usage = f64::from(system.global_cpu_usage());
    usage.is_finite().then_some(usage.clamp(0.0, 100.0))
}
