//! The guard in front of every route: identifies the caller (token,
//! session cookie or nobody), applies rate limits, and keeps sessions.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use dashmap::DashMap;

use crate::access::{Principal, TokenGrant};
use crate::credentials::{Credentials, Role, split_token};
use crate::rate_limit::{KeyedLimiter, RateLimit, retry_after_secs};
use crate::sessions::{SESSION_COOKIE, Session, Sessions};
use crate::{ApiError, Clock};

/// How long a login lasts: 12 hours.
pub const DEFAULT_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);
/// Most distinct devices one agent token may write, unless the token sets
/// its own cap: 1,000.
pub const DEFAULT_MAX_DEVICES_PER_TOKEN: usize = 1000;

/// How the guard is set up; see the `ServerBuilder` setters.
pub(crate) struct GuardSettings {
    /// `None`: authentication off.
    pub(crate) credentials: Option<Arc<Credentials>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) session_ttl: time::Duration,
    pub(crate) secure_cookies: bool,
    pub(crate) max_devices_per_token: usize,
    pub(crate) per_address: Option<RateLimit>,
    pub(crate) per_token: Option<RateLimit>,
}

/// Identifies callers and keeps what they share: sessions, token grants,
/// rate-limit buckets.
pub(crate) struct Guard {
    credentials: Option<Arc<Credentials>>,
    clock: Arc<dyn Clock>,
    sessions: Sessions,
    grants: DashMap<String, Arc<TokenGrant>>,
    session_ttl: time::Duration,
    secure_cookies: bool,
    max_devices_per_token: usize,
    per_address: Option<KeyedLimiter<IpAddr>>,
    per_token: Option<KeyedLimiter<String>>,
    logins_by_address: KeyedLimiter<IpAddr>,
    logins_by_name: KeyedLimiter<String>,
}

/// A successful login: the cookie to set and what the page needs.
pub(crate) struct Login {
    pub(crate) set_cookie: HeaderValue,
    pub(crate) role: Role,
    pub(crate) csrf: Arc<str>,
}

impl Guard {
    pub(crate) fn new(settings: GuardSettings) -> Self {
        let clock = settings.clock;
        Self {
            credentials: settings.credentials,
            sessions: Sessions::default(),
            grants: DashMap::new(),
            session_ttl: settings.session_ttl,
            secure_cookies: settings.secure_cookies,
            max_devices_per_token: settings.max_devices_per_token,
            per_address: settings
                .per_address
                .map(|l| KeyedLimiter::new(l, clock.clone())),
            per_token: settings
                .per_token
                .map(|l| KeyedLimiter::new(l, clock.clone())),
            logins_by_address: KeyedLimiter::for_logins(clock.clone()),
            logins_by_name: KeyedLimiter::for_logins(clock.clone()),
            clock,
        }
    }

    /// Whether authentication is on.
    pub(crate) fn required(&self) -> bool {
        self.credentials.is_some()
    }

    /// The credentials behind the guard, when authentication is on.
    pub(crate) fn credentials(&self) -> Option<&Arc<Credentials>> {
        self.credentials.as_ref()
    }

    /// Takes one request from the bucket of the client's address.
    pub(crate) fn limit_address(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        match (&self.per_address, address) {
            (Some(limiter), Some(address)) => limiter.check(&address).map_err(rate_limited),
            _ => Ok(()),
        }
    }

    /// Who sent a request with these headers. An `Authorization` header
    /// that is not a valid token is refused outright (401), rather than
    /// falling back to the cookie.
    pub(crate) fn identify(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(credentials) = &self.credentials else {
            return Ok(Principal::Open);
        };
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or_else(|| {
                    ApiError::Unauthorized("the Authorization header must be Bearer <token>".into())
                })?;
            let invalid = || ApiError::Unauthorized("invalid or revoked token".into());
            if !credentials.token_is_valid(token) {
                return Err(invalid());
            }
            let (id, _) = split_token(token).ok_or_else(invalid)?;
            let known = self.grants.get(id).map(|g| g.value().clone());
            let grant = match known {
                Some(grant) => grant,
                None => {
                    let info = credentials.verify_token(token).ok_or_else(invalid)?;
                    self.grants
                        .entry(info.id.clone())
                        .or_insert_with(|| {
                            Arc::new(TokenGrant::new(info, self.max_devices_per_token))
                        })
                        .clone()
                }
            };
            if let Some(limiter) = &self.per_token {
                limiter.check(&grant.info.id).map_err(rate_limited)?;
            }
            return Ok(Principal::Token(grant));
        }
        let now = self.clock.now();
        let Some(session_id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(Principal::Anonymous);
        };
        let Some(session) = self.sessions.get(session_id, now) else {
            return Ok(Principal::Anonymous);
        };
        // The user may have been removed since the login.
        let Some(role) = credentials.role(&session.username) else {
            self.sessions.end(session_id);
            return Ok(Principal::Anonymous);
        };
        Ok(Principal::User {
            username: session.username,
            role,
            csrf: session.csrf,
        })
    }

    /// Checks login throttling for this address and name, before the
    /// password is looked at.
    pub(crate) fn limit_login(
        &self,
        address: Option<IpAddr>,
        username: &str,
    ) -> Result<(), ApiError> {
        if !self.required() {
            return Ok(());
        }
        if let Some(address) = address {
            self.logins_by_address
                .check(&address)
                .map_err(rate_limited)?;
        }
        self.logins_by_name
            .check(&username.to_owned())
            .map_err(rate_limited)
    }

    /// Verifies a password (on a blocking thread: argon2 takes tens of
    /// milliseconds) and starts a session.
    pub(crate) async fn login(
        &self,
        username: String,
        password: String,
    ) -> Result<Login, ApiError> {
        let Some(credentials) = self.credentials.clone() else {
            return Err(ApiError::Conflict(
                "authentication is off on this server; there is nothing to log in to".into(),
            ));
        };
        let checked = username.clone();
        let role =
            tokio::task::spawn_blocking(move || credentials.verify_password(&checked, &password))
                .await
                .ok()
                .flatten()
                .ok_or_else(|| ApiError::Unauthorized("wrong username or password".into()))?;
        let now = self.clock.now();
        let (id, session) = self
            .sessions
            .start(&username, now + self.session_ttl, now)
            .map_err(|e| ApiError::Internal(format!("no randomness for a session id: {e}")))?;
        let Session { csrf, .. } = session;
        Ok(Login {
            set_cookie: self.session_cookie(&id, self.session_ttl.whole_seconds())?,
            role,
            csrf,
        })
    }

    /// Ends the session these headers carry, if any; returns the header
    /// that clears the cookie.
    pub(crate) fn logout(&self, headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.sessions.end(id);
        }
        self.session_cookie("", 0)
    }

    /// Ends every session of `username`.
    pub(crate) fn end_sessions_of(&self, username: &str) {
        self.sessions.end_all_of(username);
    }

    fn session_cookie(&self, value: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .map_err(|e| ApiError::Internal(format!("session cookie: {e}")))
    }
}

fn rate_limited(wait: std::time::Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: retry_after_secs(wait),
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}
