//! Uptime, boot time and the number of processes.

use sysinfo::System;
use tailmon_core::OffsetDateTime;

/// Seconds since `boot`, by the wall clock: no read of the OS per report.
pub(crate) fn uptime_seconds(boot: OffsetDateTime) -> Option<u64> {
    u64::try_from((OffsetDateTime::now_utc() - boot).whole_seconds()).ok()
}

/// When the host booted; read once, since it does not change.
pub(crate) fn boot_time() -> Option<OffsetDateTime> {
    let secs = i64::try_from(System::boot_time().ok()?).ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Processes running, by listing `/proc` (no per-process reads).
#[cfg(target_os = "linux")]
pub(crate) fn process_count(_system: &System) -> Option<u64> {
    let entries = std::fs::read_dir("/proc").ok()?;
    let count = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .as_encoded_bytes()
                .iter()
                .all(u8::is_ascii_digit)
        })
        .count();
    u64::try_from(count).ok()
}

/// Processes running, as of the last process scan.
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_count(system: &System) -> Option<u64> {
    let count = system.processes().len();
    (count > 0).then(|| u64::try_from(count).ok()).flatten()
}
