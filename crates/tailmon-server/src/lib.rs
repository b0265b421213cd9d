//! An embeddable Tailmon server: build it, then serve it or nest its
//! [`axum::Router`] inside your own application.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tailmon_server::ServerBuilder;
//!
//! let tailmon = ServerBuilder::new().build()?;
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "your own route" }))
//!     .nest("/monitor", tailmon.router());
//! # Ok::<(), tailmon_server::BuildError>(())
//! ```
//!
//! The HTTP surface:
//! - `POST /api/metrics`: one [`tailmon_core::Report`], as the original Tailmon agent sends it;
//! - `GET /api/all_metrics`: the latest report of every device;
//! - `GET /`: the live dashboard;
//! - `GET /healthz`: 200 while the server is up;
//! - `GET /api/v1/devices`: the latest report of each device with its status;
//! - `GET /api/v1/devices/{id}/history?metric=&from=&to=&points=`: one metric over time;
//! - `GET /api/v1/devices/{id}/export?format=csv|json&from=&to=`: raw reports, streamed;
//! - `POST /api/v1/reports`: a batch of up to 1,000 reports (agents' back-fill);
//! - `DELETE /api/v1/devices/{id}`: a device and its history.
//!
//! Errors are JSON `{"error": "...", "field": "..."}`; see [`ApiError`].

mod api_error;
mod body_deadline;
mod builder;
mod clock;
mod column_block;
mod connection_loop;
mod connection_service;
mod device_admission;
mod device_state;
mod downsample;
mod ingest;
mod json_body;
mod memory_store;
mod raw_window;
mod rollup_block;
mod routes;
mod serve_options;
mod server;
mod sqlite_applier;
mod sqlite_schema;
mod sqlite_store;
mod sqlite_writer;
mod store;
mod time_param;
mod tls_config;

pub use api_error::ApiError;
pub use builder::{
    BuildError, DEFAULT_EXPECTED_INTERVAL, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DEVICES, ServerBuilder,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connection_loop::serve_router;
pub use ingest::Ingest;
pub use memory_store::{DEFAULT_MEMORY_HISTORY, MemoryStore};
pub use routes::v1_api::{DEFAULT_HISTORY_POINTS, MAX_HISTORY_POINTS};
pub use serve_options::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ServeOptions,
};
pub use server::{RETENTION_EVERY, Server};
pub use sqlite_store::{
    DATABASE_FILE, DEFAULT_HOUR_RETENTION, DEFAULT_MINUTE_RETENTION, DEFAULT_RAW_RETENTION,
    Durability, OpenError, SqliteStore, SqliteStoreBuilder,
};
pub use store::{HistoryQuery, ReportStream, Store, StoreError};
pub use tls_config::{TlsConfig, TlsError};
