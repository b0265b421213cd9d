//! Physical memory and swap.

use sysinfo::{MemoryRefreshKind, System};

const MIB: u64 = 1024 * 1024;

/// Refreshes RAM (and swap when asked) in one read of the OS's counters.
pub(crate) fn refresh(system: &mut System, swap: bool) {
    let kind = MemoryRefreshKind::nothing().with_ram();
    system.refresh_memory_specifics(if swap { kind.with_swap() } else { kind });
}

/// Memory in use and installed, in MiB; `None` when the total is unknown.
pub(crate) fn ram_mb(system: &System) -> Option<(u64, u64)> {
    let total = system.total_memory() / MIB;
    let used = (system.used_memory() / MIB).min(total);
    (total > 0).then_some((used, total))
}

/// Swap in use and configured, in MiB (both zero without swap).
pub(crate) fn swap_mb(system: &System) -> (u64, u64) {
    let total = system.total_swap() / MIB;
    ((system.used_swap() / MIB).min(total), total)
}
