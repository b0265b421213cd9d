//! The server's own defaults and limits: those of [`ServerBuilder`]'s
//! settings, of the history API and of the retention schedule. The defaults
//! of one part live with it: [`auth`](crate::auth), [`http`](crate::http)
//! and [`store`](crate::store).
//!
//! Re-exports only; it uses what it names.

#[cfg(doc)]
use crate::ServerBuilder;

pub use crate::builder::{
    DEFAULT_EXPECTED_INTERVAL, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEVICES,
};
pub use crate::server::RETENTION_EVERY;
pub use tailmon_core::{DEFAULT_HISTORY_POINTS, MAX_HISTORY_POINTS};
