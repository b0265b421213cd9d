//! Physical memory.

use sysinfo::{MemoryRefreshKind, System};

const MIB: u64 = 1024 * 1024;

/// Memory in use and installed, in MiB; `None` when the total is unknown.
pub(crate) fn usage_mb(system: &mut System) -> Option<(u64, u64)> {
    system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
    let total = system.total_memory() / MIB;
    let used = (system.used_memory() / MIB).min(total);
    (total > 0).then_some((used, total))
}
