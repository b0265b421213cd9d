//! Serving HTTP: the accept loop with its connection caps, TLS, the
//! deadlines on reading requests and sending answers, the client's address,
//! and the headers every answer carries.
//!
//! May use: nothing of this crate above it (auth, api, ingest, store); only
//! the crate's leaf helpers (`refusal_log`).

pub(crate) mod body_deadline;
pub(crate) mod client_address;
pub(crate) mod connection_loop;
pub(crate) mod connection_service;
pub(crate) mod error_answer;
pub(crate) mod security_headers;
pub(crate) mod send_deadline;
pub(crate) mod serve_options;
pub(crate) mod tls_config;
