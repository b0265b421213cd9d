//! The guard in front of every route: identifies the caller (token,
//! session cookie or nobody), applies rate limits, and keeps sessions.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use axum::http::{HeaderMap, HeaderValue, header};
use dashmap::DashMap;

use crate::Clock;
use crate::auth::access::{Principal, TokenGrant};
use crate::auth::auth_error::AuthError;
use crate::auth::credentials::{Credentials, Role, UserState, split_token};
use crate::auth::login_throttle::LoginThrottle;
use crate::auth::org_rate_limits::OrgRateLimits;
use crate::auth::organisation::OrgLimits;
use crate::auth::password_checks::PasswordChecks;
use crate::auth::rate_limit::{KeyedLimiter, RateLimit, retry_after_secs};
use crate::auth::sessions::{SESSION_COOKIE, Session, Sessions};
use crate::http::client_address::limit_key;
use tailmon_core::OrgId;

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
    /// Most password checks at once.
    pub(crate) max_password_checks: usize,
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
    /// Swapped whole at a reload ([`set_rate_limit_per_address`](Self::set_rate_limit_per_address));
    /// read without a lock.
    per_address: ArcSwapOption<KeyedLimiter<IpAddr>>,
    per_token: ArcSwapOption<KeyedLimiter<String>>,
    /// The limits organisations set for themselves: per token (in place
    /// of the server's) and per client address (besides the server's).
    org_per_token: OrgRateLimits<String>,
    org_per_address: OrgRateLimits<IpAddr>,
    logins: LoginThrottle,
    password_checks: PasswordChecks,
    /// Token requests since the start; every so often the grants of
    /// tokens revoked meanwhile are dropped.
    token_requests: AtomicU64,
}

/// Every this many token requests, grants of revoked tokens are dropped.
const GRANT_SWEEP_EVERY: u64 = 4096;

/// A successful login: the cookie to set and what the page needs.
pub(crate) struct Login {
    pub(crate) set_cookie: HeaderValue,
    pub(crate) role: Role,
    pub(crate) csrf: Arc<str>,
    /// The organisation the session starts in.
    pub(crate) org: OrgId,
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
            per_address: ArcSwapOption::new(
                settings
                    .per_address
                    .map(|l| Arc::new(KeyedLimiter::new(l, clock.clone()))),
            ),
            per_token: ArcSwapOption::new(
                settings
                    .per_token
                    .map(|l| Arc::new(KeyedLimiter::new(l, clock.clone()))),
            ),
            org_per_token: OrgRateLimits::new(clock.clone()),
            org_per_address: OrgRateLimits::new(clock.clone()),
            logins: LoginThrottle::new(clock.clone()),
            password_checks: PasswordChecks::new(
                settings.max_password_checks,
                crate::auth::password_checks::PASSWORD_CHECK_WAIT,
            ),
            token_requests: AtomicU64::new(0),
            clock,
        }
    }

    /// The credentials behind the guard, when authentication is on.
    pub(crate) fn credentials(&self) -> Option<&Arc<Credentials>> {
        self.credentials.as_ref()
    }

    /// How many distinct devices the token `id` has written since the
    /// server started, and the most it may: its own cap, else the server's.
    pub(crate) fn token_devices(&self, id: &str, own_cap: Option<usize>) -> (usize, usize) {
        let written = self.grants.get(id).map_or(0, |g| g.device_count());
        (written, own_cap.unwrap_or(self.max_devices_per_token))
    }

    /// Replaces the limit per client address: requests from now on are
    /// counted against new, full buckets of the new quota (`None`: no limit).
    pub(crate) fn set_rate_limit_per_address(&self, limit: Option<RateLimit>) {
        self.per_address
            .store(limit.map(|l| Arc::new(KeyedLimiter::new(l, self.clock.clone()))));
    }

    /// Replaces the limit per token, as [`set_rate_limit_per_address`](Self::set_rate_limit_per_address).
    pub(crate) fn set_rate_limit_per_token(&self, limit: Option<RateLimit>) {
        self.per_token
            .store(limit.map(|l| Arc::new(KeyedLimiter::new(l, self.clock.clone()))));
    }

    /// Takes one request from the bucket of the client's address.
    pub(crate) fn limit_address(&self, address: Option<IpAddr>) -> Result<(), AuthError> {
        match (self.per_address.load().as_deref(), address) {
            (Some(limiter), Some(address)) => {
                limiter.check(&limit_key(address)).map_err(rate_limited)
            }
            _ => Ok(()),
        }
    }

    /// Who sent a request with these headers, from `address`. An
    /// `Authorization` header that is not a valid token is refused outright
    /// (401), rather than falling back to the cookie.
    ///
    /// The caller's organisation's own rate limits apply here (429): a
    /// token's requests count against its organisation's limit per token
    /// when it sets one, else the server's; a token's or a session's
    /// requests count against its organisation's limit per address when it
    /// sets one, besides the server's (checked before anything, at the edge).
    pub(crate) fn identify(
        &self,
        headers: &HeaderMap,
        address: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let Some(credentials) = &self.credentials else {
            return Ok(Principal::Open);
        };
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
                AuthError::Unauthorized("the Authorization header must be Bearer <token>".into())
            })?;
            let invalid = || AuthError::Unauthorized("invalid or revoked token".into());
            if self.token_requests.fetch_add(1, Ordering::Relaxed) % GRANT_SWEEP_EVERY
                == GRANT_SWEEP_EVERY - 1
            {
                self.forget_revoked_grants();
            }
            let Some(limits) = credentials.token_org_limits(token) else {
                // Revoked: what was kept of it goes too.
                if let Some((id, _)) = split_token(token) {
                    self.grants.remove(id);
                }
                return Err(invalid());
            };
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
            match limits.rate_limit_per_token {
                Some(limit) => self
                    .org_per_token
                    .check(&grant.info.org, limit, &grant.info.id)
                    .map_err(rate_limited)?,
                None => {
                    if let Some(limiter) = self.per_token.load().as_deref() {
                        limiter.check(&grant.info.id).map_err(rate_limited)?;
                    }
                }
            }
            self.limit_address_in(&grant.info.org, &limits, address)?;
            return Ok(Principal::Token(grant));
        }
        let now = self.clock.now();
        let Some(session_id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(Principal::Anonymous);
        };
        let Some(session) = self.sessions.get(session_id, now) else {
            return Ok(Principal::Anonymous);
        };
        // The user may have been removed since the login, or made again,
        // or had their password or role changed: each ends the session.
        // So does losing their membership of the session's organisation.
        let Some(grant) =
            credentials.session_grant(&session.username, &session.stamp, &session.org)
        else {
            self.sessions.end(session_id);
            return Ok(Principal::Anonymous);
        };
        self.limit_address_in(&session.org, &grant.limits, address)?;
        Ok(Principal::User {
            username: session.username,
            role: grant.role,
            csrf: session.csrf,
            org: session.org,
            owner: grant.owner,
        })
    }

    /// Takes one request from the bucket of `address` under `org`'s own
    /// limit per address, when it sets one.
    fn limit_address_in(
        &self,
        org: &OrgId,
        limits: &OrgLimits,
        address: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        match (limits.rate_limit_per_address, address) {
            (Some(limit), Some(address)) => self
                .org_per_address
                .check(org, limit, &limit_key(address))
                .map_err(rate_limited),
            _ => Ok(()),
        }
    }

    /// Forgets the limiters of organisations that no longer set their own
    /// rate limits (their limits changed, or they were removed).
    pub(crate) fn forget_unused_org_limits(&self) {
        let Some(credentials) = &self.credentials else {
            return;
        };
        let limited: std::collections::HashMap<OrgId, OrgLimits> = credentials
            .organisations()
            .into_iter()
            .map(|org| (org.name, org.limits))
            .collect();
        self.org_per_token.retain(|org| {
            limited
                .get(org)
                .is_some_and(|l| l.rate_limit_per_token.is_some())
        });
        self.org_per_address.retain(|org| {
            limited
                .get(org)
                .is_some_and(|l| l.rate_limit_per_address.is_some())
        });
    }

    /// Makes the session these headers carry act in `org`, one of its
    /// user's organisations; answers their role there. 401 without a live
    /// session; 403 when the user is not a member of `org` (the same
    /// answer whether or not it exists).
    pub(crate) fn switch_org(&self, headers: &HeaderMap, org: OrgId) -> Result<Role, AuthError> {
        let signed_out = || AuthError::Unauthorized("sign in first".into());
        let credentials = self.credentials.as_ref().ok_or_else(signed_out)?;
        let session_id = cookie(headers, SESSION_COOKIE).ok_or_else(signed_out)?;
        let session = self
            .sessions
            .get(session_id, self.clock.now())
            .ok_or_else(signed_out)?;
        let role = credentials
            .role_under_stamp(&session.username, &session.stamp, &org)
            .ok_or_else(|| {
                AuthError::Forbidden("you are not a member of that organisation".into())
            })?;
        if !self.sessions.switch_org(session_id, org) {
            return Err(signed_out());
        }
        Ok(role)
    }

    /// Drops what is kept of tokens revoked since they were last used
    /// (their device lists): called when one is revoked through the API,
    /// and every [`GRANT_SWEEP_EVERY`] token requests for those revoked
    /// from the command line.
    pub(crate) fn forget_revoked_grants(&self) {
        if let Some(credentials) = &self.credentials {
            let live: std::collections::HashSet<String> =
                credentials.tokens().into_iter().map(|t| t.id).collect();
            self.grants.retain(|id, _| live.contains(id));
        }
    }

    /// Checks a sign-in: throttling first (see [`LoginThrottle`]), then
    /// the password, in one of the bounded password-check slots (503 when
    /// none frees in time); a failure counts against the address and the
    /// name. Starts a session on success.
    pub(crate) async fn login(
        &self,
        address: Option<IpAddr>,
        username: String,
        password: String,
    ) -> Result<Login, AuthError> {
        match self.throttled_check(address, &username, password).await? {
            Some(user) => self.start_session(&username, user),
            None => Err(AuthError::Unauthorized("wrong username or password".into())),
        }
    }

    /// Checks `password` for the signed-in `username` (as a sign-in is
    /// checked, throttled the same way), for a change of their own
    /// password.
    pub(crate) async fn check_own_password(
        &self,
        address: Option<IpAddr>,
        username: &str,
        password: String,
    ) -> Result<(), AuthError> {
        match self.throttled_check(address, username, password).await? {
            Some(_) => Ok(()),
            None => Err(AuthError::Forbidden("the current password is wrong".into())),
        }
    }

    /// Throttling first (see [`LoginThrottle`]), then the password, in one
    /// of the bounded password-check slots (503 when none frees in time); a
    /// failure counts against the address and the name. `None`: wrong.
    async fn throttled_check(
        &self,
        address: Option<IpAddr>,
        username: &str,
        password: String,
    ) -> Result<Option<UserState>, AuthError> {
        let Some(credentials) = self.credentials.clone() else {
            return Err(AuthError::Conflict(
                "authentication is off on this server; there is nothing to log in to".into(),
            ));
        };
        self.logins.before_attempt(address, username)?;
        let checked = username.to_owned();
        let user = self
            .password_checks
            .run(move |memory| credentials.check_password(&checked, &password, memory))
            .await?;
        if user.is_none() {
            self.logins.after_failure(address, username);
        }
        Ok(user)
    }

    /// Runs `work` (which hashes a new password) in a password-check slot,
    /// so that admins adding users share the bound with sign-ins.
    pub(crate) async fn hashing<T, E>(
        &self,
        work: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<AuthError> + Send + 'static,
    {
        self.password_checks.run(move |_| work()).await?
    }

    /// Starts a session for `username`, as they are now (`user`).
    pub(crate) fn start_session(
        &self,
        username: &str,
        user: UserState,
    ) -> Result<Login, AuthError> {
        let now = self.clock.now();
        let org = user.org.clone();
        let (id, session) = self
            .sessions
            .start(username, user.stamp, user.org, now + self.session_ttl, now)
            .map_err(|e| AuthError::Internal(format!("no randomness for a session id: {e}")))?;
        let Session { csrf, .. } = session;
        Ok(Login {
            set_cookie: self.session_cookie(&id, self.session_ttl.whole_seconds())?,
            role: user.role,
            csrf,
            org,
        })
    }

    /// Ends the session these headers carry, if any; returns the header
    /// that clears the cookie.
    pub(crate) fn logout(&self, headers: &HeaderMap) -> Result<HeaderValue, AuthError> {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.sessions.end(id);
        }
        self.session_cookie("", 0)
    }

    /// Ends every session of `username`.
    pub(crate) fn end_sessions_of(&self, username: &str) {
        self.sessions.end_all_of(username);
    }

    fn session_cookie(&self, value: &str, max_age: i64) -> Result<HeaderValue, AuthError> {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .map_err(|e| AuthError::Internal(format!("session cookie: {e}")))
    }
}

fn rate_limited(wait: std::time::Duration) -> AuthError {
    AuthError::RateLimited {
        retry_after_secs: retry_after_secs(wait),
    }
}

/// The token of an `Authorization` header value: the scheme `Bearer`
/// matched without regard to case (RFC 7235), then the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn guard(credentials: Arc<Credentials>) -> Guard {
        Guard::new(GuardSettings {
            credentials: Some(credentials),
            clock: Arc::new(crate::SystemClock),
            session_ttl: time::Duration::HOUR,
            secure_cookies: false,
            max_devices_per_token: 10,
            per_address: None,
            per_token: None,
            max_password_checks: 1,
        })
    }

    fn cookie_of(login: &Login) -> HeaderMap {
        let value = login.set_cookie.to_str().expect("ascii");
        let pair = value.split(';').next().expect("pair");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(pair).expect("header"));
        headers
    }

    fn org_of(principal: &Principal) -> Option<(OrgId, Role)> {
        match principal {
            Principal::User { org, role, .. } => Some((org.clone(), *role)),
            _ => None,
        }
    }

    #[test]
    fn a_session_acts_in_one_of_its_users_organisations_at_a_time() {
        let credentials = Arc::new(Credentials::in_memory());
        let acme = OrgId::new("acme").expect("name");
        let other = OrgId::new("other").expect("name");
        credentials
            .add_user("ann", "correct horse", Role::Viewer)
            .expect("add");
        credentials.create_org(&acme, Some("ann")).expect("org");
        credentials.create_org(&other, None).expect("org");
        let guard = guard(credentials.clone());
        let state = credentials.user_state("ann").expect("state");
        let headers = cookie_of(&guard.start_session("ann", state).expect("login"));
        let who = guard.identify(&headers, None).expect("identify");
        assert_eq!(org_of(&who), Some((OrgId::default(), Role::Viewer)));

        assert_eq!(
            guard.switch_org(&headers, acme.clone()).expect("switch"),
            Role::Admin
        );
        let who = guard.identify(&headers, None).expect("identify");
        assert_eq!(org_of(&who), Some((acme.clone(), Role::Admin)));
        assert_eq!(who.org(), acme);

        // Not a member: refused alike whether the organisation exists or not.
        let refused = guard.switch_org(&headers, other).expect_err("not a member");
        let unknown = guard
            .switch_org(&headers, OrgId::new("nowhere").expect("name"))
            .expect_err("no such organisation");
        assert_eq!(format!("{refused:?}"), format!("{unknown:?}"));
        assert_eq!(
            org_of(&guard.identify(&headers, None).expect("identify")).map(|o| o.0),
            Some(acme.clone())
        );

        // Removing the organisation ends the session acting in it.
        assert!(credentials.remove_org(&acme).expect("remove"));
        assert!(matches!(
            guard.identify(&headers, None),
            Ok(Principal::Anonymous)
        ));
        assert!(
            guard
                .switch_org(&HeaderMap::new(), OrgId::default())
                .is_err()
        );
    }

    #[test]
    fn the_bearer_scheme_is_matched_whatever_its_case() {
        for value in ["Bearer tmn_a_b", "bearer tmn_a_b", "BEARER  tmn_a_b "] {
            assert_eq!(bearer_token(value), Some("tmn_a_b"), "{value:?}");
        }
        for value in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "tmn_a_b"] {
            assert_eq!(bearer_token(value), None, "{value:?}");
        }
    }
}
