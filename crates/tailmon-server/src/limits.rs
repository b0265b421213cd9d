//! The server's own defaults and limits: those of [`ServerBuilder`]'s
//! settings, of the history API and of the retention schedule. The defaults
//! of one part live with it: [`auth`](crate::auth), [`http`](crate::http)
//! and [`store`](crate::store).
//!
//! Re-exports only; it uses what it names.

#[cfg(doc)]
use crate::ServerBuilder;

pub use crate::api::devices_query::MAX_DEVICES_LIMIT;
pub use crate::api::fleet_snapshot::MAX_COMPRESSED_STALENESS;
pub use crate::api::routes::live_api::{LIVE_CHECK_EVERY, LIVE_PING_EVERY};
pub use crate::api::routes::v1_api::MAX_HISTORIES_METRICS;
pub use crate::builder::{
    DEFAULT_EXPECTED_INTERVAL, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DEVICES, MIN_FLEET_REFRESH,
};
pub use crate::server::RETENTION_EVERY;
pub use tailmon_core::{DEFAULT_HISTORY_POINTS, MAX_HISTORY_POINTS};
