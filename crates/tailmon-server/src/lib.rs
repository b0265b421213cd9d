//! An embeddable Tailmon server: build it, then serve it or nest its
//! [`axum::Router`] inside your own application.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use tailmon_server::{Credentials, NewToken, ServerBuilder, TokenKind};
//!
//! // Who may use it: here one agent token for the `web-*` devices.
//! let credentials = Arc::new(Credentials::in_memory());
//! let agent = credentials.create_token(NewToken {
//!     name: "web servers".into(),
//!     kind: TokenKind::Agent,
//!     device: Some("web-*".into()),
//!     max_devices: None,
//! })?;
//! println!("TAILMON_TOKEN={}", agent.token);
//!
//! let tailmon = ServerBuilder::new().credentials(credentials).build()?;
//! let app: Router = Router::new()
//!     .route("/hello", get(|| async { "your own route" }))
//!     .nest("/monitor", tailmon.router());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every route but `/healthz`, the login page and its assets needs
//! credentials: an agent token to send reports, a read-only token or a
//! signed-in viewer to read, an admin to change things ([`Access`],
//! [`Server::route_table`]). [`ServerBuilder::open_access`] turns that off.
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
//! - `DELETE /api/v1/devices/{id}`: a device and its history;
//! - `POST /api/v1/login`, `POST /api/v1/logout`, `GET /api/v1/session`: people signing in;
//! - `POST /api/v1/session/password`: a signed-in user changes their own password;
//! - `/api/v1/tokens…`, `/api/v1/users…`: tokens and users, for admins.
//!
//! Errors are JSON `{"error": "...", "field": "..."}`; see [`ApiError`].

mod api;
mod auth;
mod builder;
mod clock;
mod http;
mod ingest;
mod private_dir;
mod refusal_log;
mod server;
mod store;

pub use api::api_error::ApiError;
pub use api::routes::v1_api::{DEFAULT_HISTORY_POINTS, MAX_HISTORY_POINTS};
pub use auth::access::Access;
pub use auth::credentials::{
    CREDENTIALS_FILE, CreatedToken, Credentials, CredentialsError, INITIAL_ADMIN_PASSWORD_FILE,
    MIN_PASSWORD_CHARS, NewToken, Role, TokenInfo, TokenKind, UserInfo,
};
pub use auth::guard::{DEFAULT_MAX_DEVICES_PER_TOKEN, DEFAULT_SESSION_TTL};
pub use auth::password_checks::{PASSWORD_CHECK_WAIT, default_max_password_checks};
pub use auth::rate_limit::{
    DEFAULT_RATE_LIMIT_PER_ADDRESS, DEFAULT_RATE_LIMIT_PER_TOKEN, RateLimit,
};
pub use auth::sessions::{CSRF_HEADER, SESSION_COOKIE};
pub use builder::{
    BuildError, DEFAULT_EXPECTED_INTERVAL, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_DEVICES, ServerBuilder,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use http::connection_loop::serve_router;
pub use http::security_headers::CONTENT_SECURITY_POLICY;
pub use http::send_deadline::MIN_SEND_PROGRESS;
pub use http::serve_options::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_SEND_TIMEOUT, MAX_READ_AHEAD_BYTES, ServeOptions,
};
pub use http::tls_config::{TlsConfig, TlsError};
pub use ingest::{Ingest, IngestError};
pub use server::{RETENTION_EVERY, RouteEntry, Server};
pub use store::memory_store::{DEFAULT_MEMORY_HISTORY, MemoryStore};
pub use store::sqlite::sqlite_store::{
    DATABASE_FILE, DEFAULT_HOUR_RETENTION, DEFAULT_MINUTE_RETENTION, DEFAULT_RAW_RETENTION,
    Durability, OpenError, SqliteStore, SqliteStoreBuilder,
};
pub use store::{HistoryQuery, ReportStream, Store, StoreError};
