//! An embeddable Tailmon server: build it, then serve it or nest its
//! [`axum::Router`] inside your own application.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use tailmon_server::auth::NewToken;
//! use tailmon_server::{Credentials, ServerBuilder};
//!
//! // Who may use it: here one agent token for the `web-*` devices.
//! let credentials = Arc::new(Credentials::in_memory());
//! let agent = credentials.create_token(NewToken::agent("web servers").device("web-*"))?;
//! println!("TAILMON_TOKEN={}", agent.token);
//!
//! let tailmon = ServerBuilder::new().credentials(credentials).build()?;
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "your own route" }))
//!     .nest("/monitor", tailmon.router());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every route but `/healthz`, `/readyz`, the login page and its assets needs
//! credentials: an agent token to send reports, a read-only token or a
//! signed-in viewer to read, an admin to change things ([`auth::Access`],
//! [`Server::route_table`]). [`ServerBuilder::open_access`] turns that off.
//!
//! The HTTP surface:
//! - `POST /api/metrics`: one [`tailmon_core::Report`], as the original Tailmon agent sends it;
//! - `GET /api/all_metrics`: the latest report of every device (this and
//!   the device list are cached and compressed, with `ETag`s);
//! - `GET /`: the live dashboard;
//! - `GET /healthz`: 200 while the server is up;
//! - `GET /readyz`: 200 when the store answers, 503 otherwise ([`Store::ready`]);
//! - `GET /metrics`: every device's latest values and the server's own
//!   health (reports received and refused by reason, latencies, alerts,
//!   notifications, process) for Prometheus, in the text format of
//!   [`tailmon_core::exposition`];
//! - `GET /api/v1/devices?status=&q=&sort=&order=&limit=&offset=`: the latest
//!   report of each device with its status, filtered, sorted and paged;
//! - `GET /api/v1/live`: the fleet's changes as Server-Sent Events;
//! - `GET /api/v1/devices/{id}/metrics`: the metric names a device has;
//! - `GET /api/v1/devices/{id}/histories?metric=…&metric=…`: several metrics at once;
//! - `GET /api/v1/devices/{id}/history?metric=&from=&to=&points=`: one metric over time;
//! - `GET /api/v1/devices/{id}/export?format=csv|json&from=&to=`: raw reports, streamed
//!   (these three compressed with gzip or brotli as `Accept-Encoding` asks);
//! - `POST /api/v1/reports`: a batch of up to 1,000 reports (agents' back-fill);
//! - `DELETE /api/v1/devices/{id}`: a device and its history;
//! - `POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/session`: people signing in;
//! - `POST /api/v1/session/password`: a signed-in user changes their own password;
//! - `/api/v1/tokens…`, `/api/v1/users…`: tokens and users, for admins;
//! - `GET` and `PUT /api/v1/preferences`: the caller's saved dashboard choices;
//! - `/api/v1/alerts…`, `/api/v1/silences…`, `/api/v1/alert-rules…`,
//!   `/api/v1/alert-channels…`: alerting ([`alerts`], [`ServerBuilder::alerts`]).
//!
//! Errors are JSON `{"error": "...", "field": "..."}`; see [`ApiError`].
//!
//! The root holds the entry points: [`ServerBuilder`] and the [`Server`] it
//! builds, the [`Ingest`] handle for in-process agents, the [`Store`] trait
//! with its two stores, [`Credentials`], [`serve_router`] with its
//! [`ServeOptions`], and the [`RuntimeConfig`] a running server changes
//! through its [`Reloader`] (thresholds, retention, rate limits, alerting,
//! and the credentials file read anew) without a restart. The rest lives in modules named for what they hold:
//! [`auth`] (tokens, users, roles, sessions, rate limits), [`http`] (TLS and
//! the serving loop's limits), [`store`] (the stores' settings, errors and
//! file names), [`views`] (each user's saved preferences), [`alerts`]
//! (rules, the engine, channels; [`ConfigFile`] reads its settings) and [`limits`]
//! (the server's own defaults).
//!
//! A built server applies its store's retention by itself, however it is
//! served: see [`Server::router`].
//!
//! Features:
//! - `sqlite` (default): `SqliteStore`, the durable store, with rusqlite
//!   (bundled SQLite) and zstd. Without it, `default-features = false`, the
//!   crate builds neither, for an application that keeps [`MemoryStore`] or
//!   brings its own [`Store`];
//! - `conformance`: `store::conformance`, the test suite every [`Store`]
//!   passes, for a store written outside this crate to run in its own tests.

pub mod alerts;
mod api;
pub mod auth;
#[cfg(feature = "sqlite")]
pub mod backup;
mod builder;
mod clock;
mod config_file;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
mod ingest;
pub mod limits;
mod private_dir;
mod refusal_log;
mod reloader;
mod runtime_config;
mod server;
pub mod store;
mod telemetry;
pub mod views;

pub use api::api_error::ApiError;
pub use auth::Credentials;
pub use builder::{BuildError, ServerBuilder};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config_file::{ConfigError, ConfigFile};
pub use http::{ServeOptions, serve_router};
pub use ingest::{
    FLEET_REFRESH_WINDOW, FLEET_SWEEP_EVERY, FLEET_WIDEN_EVERY, FleetRefresh, Ingest, IngestError,
};
pub use reloader::{ReloadError, ReloadSummary, Reloader};
pub use runtime_config::{RuntimeConfig, RuntimeConfigError};
pub use server::{RouteEntry, Server};
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
pub use store::{MemoryStore, Store, StoreError};

// Short paths for the crate's own code; not part of the public surface.
pub(crate) use store::{HistoryQuery, ReportStream};
