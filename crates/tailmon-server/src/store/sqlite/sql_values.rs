//! How the SQLite store writes values into its tables, and reads its
//! errors: shared by the store, its writer thread, its applier and the raw
//! windows, and using none of them.

use rusqlite::ErrorCode;
use tailmon_core::{OffsetDateTime, Tier};

use crate::StoreError;

/// How long each tier keeps its data, as the store computes with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TierKeep {
    pub(crate) raw: time::Duration,
    pub(crate) minute: time::Duration,
    pub(crate) hour: time::Duration,
}

impl From<crate::store::Retention> for TierKeep {
    fn from(retention: crate::store::Retention) -> Self {
        let duration = |keep: std::time::Duration| {
            time::Duration::try_from(keep).unwrap_or(time::Duration::MAX)
        };
        Self {
            raw: duration(retention.raw),
            minute: duration(retention.minute),
            hour: duration(retention.hour),
        }
    }
}

/// The retention the store reads and its writer applies, swapped whole by
/// `Store::set_retention`.
pub(crate) type SharedKeep = std::sync::Arc<arc_swap::ArcSwap<TierKeep>>;

/// A SQLite error as a store error: a full disk or a busy database is
/// temporary (503, agents retry); anything else is a backend fault.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly,
        ) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Backend(Box::new(error)),
    }
}

pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn tier_code(tier: Tier) -> u8 {
    match tier {
        Tier::Raw => 0,
        Tier::Minute => 1,
        Tier::Hour => 2,
    }
}
