//! Overall and per-core CPU usage.

use sysinfo::System;

/// Refreshes only CPU times; returns overall usage in percent, 0 to 100, over
/// the window since the previous refresh.
pub(crate) fn usage(system: &mut System) -> Option<f64> {
    system.refresh_cpu_usage();
    percent(system.global_cpu_usage())
}

/// Usage of each logical core from the last refresh (call after [`usage`]).
pub(crate) fn per_core(system: &System) -> Option<Vec<f64>> {
    let cores: Option<Vec<f64>> = system.cpus().iter().map(|c| percent(c.usage())).collect();
    cores.filter(|c| !c.is_empty())
}

/// A percentage clamped to 0 to 100 and rounded to hundredths (finer is noise).
pub(crate) fn percent(value: f32) -> Option<f64> {
    let value = f64::from(value);
    value
        .is_finite()
        .then(|| (value.clamp(0.0, 100.0) * 100.0).round() / 100.0)
}
