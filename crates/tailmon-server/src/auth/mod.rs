//! Who may do what: credentials (tokens and users), sessions and CSRF,
//! password checks and login throttling, rate limits, the `Host` check of
//! open mode, and the layers that put all of it in front of every route.
//!
//! Public here: [`Credentials`] and what it hands out ([`NewToken`],
//! [`TokenInfo`], [`UserInfo`], [`OrgInfo`]…), the organisations' names
//! ([`OrgId`]) and limits ([`OrgLimits`]), the [`Access`] each route asks, the
//! [`RateLimit`]s, the session's cookie and CSRF header names, the files
//! credentials are kept in and the defaults of the builder's auth settings.
//!
//! May use: `http` (the client's address, the security headers) and, for
//! persisted state only, `store`. Never `api` or `ingest`.

pub(crate) mod access;
pub(crate) mod auth_error;
pub(crate) mod credential_set;
pub(crate) mod credentials;
pub(crate) mod credentials_error;
pub(crate) mod csrf;
pub(crate) mod edge_layer;
pub(crate) mod guard;
pub(crate) mod host_check;
pub(crate) mod login_throttle;
pub(crate) mod org_rate_limits;
pub(crate) mod organisation;
pub(crate) mod password;
pub(crate) mod password_checks;
pub(crate) mod rate_limit;
pub(crate) mod require_layer;
pub(crate) mod role;
pub(crate) mod secret;
pub(crate) mod sessions;
pub(crate) mod token_info;

pub use access::Access;
pub use credentials::{
    CREDENTIALS_FILE, CreatedToken, Credentials, CredentialsError, INITIAL_ADMIN_PASSWORD_FILE,
    MIN_PASSWORD_CHARS, NewToken, Role, TokenInfo, TokenKind, UserInfo,
};
pub use guard::{DEFAULT_MAX_DEVICES_PER_TOKEN, DEFAULT_SESSION_TTL};
pub use organisation::{OrgInfo, OrgLimits};
pub use password_checks::{PASSWORD_CHECK_WAIT, default_max_password_checks};
pub use rate_limit::{DEFAULT_RATE_LIMIT_PER_ADDRESS, DEFAULT_RATE_LIMIT_PER_TOKEN, RateLimit};
pub use sessions::{CSRF_HEADER, SESSION_COOKIE};
pub use tailmon_core::{DEFAULT_ORG, OrgId};
