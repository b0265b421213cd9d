//! Serving HTTP: the accept loop with its connection caps, TLS, the
//! deadlines on reading requests and sending answers, the client's address,
//! and the headers every answer carries.
//!
//! Public here: [`serve_router`] with its [`ServeOptions`] and their
//! defaults, [`TlsConfig`], and the Content-Security-Policy every answer
//! carries.
//!
//! May use: nothing of this crate above it (auth, api, ingest, store); only
//! the crate's leaf helpers (`refusal_log`).

pub(crate) mod body_deadline;
pub(crate) mod client_address;
pub(crate) mod connection_drops;
pub(crate) mod connection_loop;
pub(crate) mod connection_service;
pub(crate) mod error_answer;
pub(crate) mod parse_error_answer;
pub(crate) mod security_headers;
pub(crate) mod send_deadline;
pub(crate) mod serve_options;
pub(crate) mod tls_config;
pub(crate) mod unread_body;

pub use connection_loop::serve_router;
pub use security_headers::CONTENT_SECURITY_POLICY;
pub use send_deadline::MIN_SEND_PROGRESS;
pub use serve_options::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, DEFAULT_SEND_TIMEOUT, MAX_DISCARDED_BODY_BYTES,
    MAX_READ_AHEAD_BYTES, ServeOptions,
};
pub use tls_config::{TlsConfig, TlsError};
