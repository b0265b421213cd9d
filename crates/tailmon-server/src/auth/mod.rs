//! Who may do what: credentials (tokens and users), sessions and CSRF,
//! password checks and login throttling, rate limits, the `Host` check of
//! open mode, and the layers that put all of it in front of every route.
//!
//! May use: `http` (the client's address, the security headers) and, for
//! persisted state only, `store`. Never `api` or `ingest`.

pub(crate) mod access;
pub(crate) mod access_layer;
pub(crate) mod auth_error;
pub(crate) mod credentials;
pub(crate) mod guard;
pub(crate) mod host_check;
pub(crate) mod login_throttle;
pub(crate) mod password;
pub(crate) mod password_checks;
pub(crate) mod rate_limit;
pub(crate) mod secret;
pub(crate) mod sessions;
