//! The remote store: reports kept in a Prometheus-compatible engine
//! (Prometheus, VictoriaMetrics, Mimir), written by remote write 1.0 and
//! read back through the Prometheus HTTP API. docs/remote-store.md tells
//! the mapping and the set-up.

mod connection;
mod prom_query;
pub(crate) mod remote_store;
mod remote_writer;
mod report_series;
mod reports_from_samples;
mod write_request;
