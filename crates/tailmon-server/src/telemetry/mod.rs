//! The server's own health, for `GET /metrics`: reports received and
//! refused by reason (with the refusals' throttled log lines), ingest and
//! store-write latency histograms, and the process's own figures read from
//! `/proc/self`. Written in the text exposition format of
//! `tailmon_core::exposition`.
//!
//! May use: `clock`.

pub(crate) mod histogram;
pub(crate) mod process_metrics;
pub(crate) mod refusal_reason;
pub(crate) mod server_metrics;

pub(crate) use refusal_reason::RefusalReason;
pub(crate) use server_metrics::ServerMetrics;
