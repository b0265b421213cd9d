//! Load averages.

use tailmon_core::LoadAvg;

/// The 1, 5 and 15 minute load averages; `None` where the platform has none.
pub(crate) fn average() -> Option<LoadAvg> {
    let load = sysinfo::System::load_average().ok()?;
    [load.one, load.five, load.fifteen]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        .then_some(LoadAvg {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        })
}
