//! Throttling of password guessing, which never locks out the owner of an
//! account.
//!
//! Two limits, both [`LOGIN_BURST`] at once and then one every
//! [`LOGIN_REFILL`]:
//! - every attempt from one client address ([`limit_key`]) counts against
//!   that address;
//! - every *failed* attempt at one user name counts against that name.
//!
//! When a name's failures run out, further attempts at it are refused
//! before the password is looked at, but only from addresses that have
//! themselves failed a sign-in lately ([`FAILURE_MEMORY`]). An attacker
//! guessing `admin` from one address therefore cannot stop its owner, on
//! another address, from signing in with the right password; and an
//! attacker with many addresses gets one guess from each new one before it
//! is held back with the rest.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tailmon_core::OffsetDateTime;

use crate::Clock;
use crate::auth::auth_error::AuthError;
use crate::auth::rate_limit::{KeyedLimiter, retry_after_secs};
#[cfg(doc)]
use crate::auth::rate_limit::{LOGIN_BURST, LOGIN_REFILL};
use crate::http::client_address::limit_key;
use crate::refusal_log::RefusalLog;

/// How long an address that failed a sign-in is held to the names' limits:
/// 15 minutes.
const FAILURE_MEMORY: time::Duration = time::Duration::minutes(15);
/// Past this many remembered addresses or names, the stale ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// The login limits; see the module's documentation.
pub(crate) struct LoginThrottle {
    clock: Arc<dyn Clock>,
    attempts_by_address: KeyedLimiter<IpAddr>,
    failures_by_name: KeyedLimiter<String>,
    /// Names whose failures ran out, until when.
    name_held_until: DashMap<String, OffsetDateTime>,
    /// Addresses that failed a sign-in, and when last.
    failed_addresses: DashMap<IpAddr, OffsetDateTime>,
    refused: RefusalLog,
}

impl LoginThrottle {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            attempts_by_address: KeyedLimiter::for_logins(clock.clone()),
            failures_by_name: KeyedLimiter::for_logins(clock.clone()),
            name_held_until: DashMap::new(),
            failed_addresses: DashMap::new(),
            refused: RefusalLog::default(),
            clock,
        }
    }

    /// Whether an attempt at `username` from `address` may have its
    /// password checked; 429 with `Retry-After` otherwise.
    pub(crate) fn before_attempt(
        &self,
        address: Option<IpAddr>,
        username: &str,
    ) -> Result<(), AuthError> {
        let address = address.map(limit_key);
        if let Some(address) = address {
            self.attempts_by_address
                .check(&address)
                .map_err(|wait| self.refuse(wait, "address"))?;
        }
        let now = self.clock.now();
        let held_until = self.name_held_until.get(username).map(|until| *until);
        if let Some(until) = held_until.filter(|until| *until > now)
            && address.is_none_or(|address| self.failed_lately(address, now))
        {
            let wait = (until - now).unsigned_abs();
            return Err(self.refuse(wait, "user name"));
        }
        Ok(())
    }

    /// Counts a failed attempt at `username` from `address`.
    pub(crate) fn after_failure(&self, address: Option<IpAddr>, username: &str) {
        let now = self.clock.now();
        if let Some(address) = address.map(limit_key) {
            if self.failed_addresses.len() > PRUNE_ABOVE {
                self.failed_addresses
                    .retain(|_, at| now - *at < FAILURE_MEMORY);
            }
            self.failed_addresses.insert(address, now);
        }
        if let Err(wait) = self.failures_by_name.check(&username.to_owned()) {
            if self.name_held_until.len() > PRUNE_ABOVE {
                self.name_held_until.retain(|_, until| *until > now);
            }
            let until = now + wait;
            self.name_held_until.insert(username.to_owned(), until);
        }
    }

    fn failed_lately(&self, address: IpAddr, now: OffsetDateTime) -> bool {
        self.failed_addresses
            .get(&address)
            .is_some_and(|at| now - *at < FAILURE_MEMORY)
    }

    fn refuse(&self, wait: Duration, by: &'static str) -> AuthError {
        if let Some(since_last_line) = self.refused.count() {
            tracing::warn!(
                by,
                since_last_line,
                total = self.refused.total(),
                "sign-in attempts throttled"
            );
        }
        AuthError::RateLimited {
            retry_after_secs: retry_after_secs(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn throttle() -> (LoginThrottle, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::DAY,
        ));
        (LoginThrottle::new(clock.clone()), clock)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("address"))
    }

    fn guess(t: &LoginThrottle, address: &str, name: &str) -> Result<(), AuthError> {
        t.before_attempt(ip(address), name)?;
        t.after_failure(ip(address), name);
        Ok(())
    }

    #[test]
    fn failures_at_a_name_do_not_hold_back_an_address_that_has_not_failed() {
        let (t, _) = throttle();
        for _ in 0..5 {
            guess(&t, "127.0.0.2", "admin").expect("the burst");
        }
        // The attacker's address is spent, and so are the name's failures.
        assert!(matches!(
            guess(&t, "127.0.0.2", "admin"),
            Err(AuthError::RateLimited { .. })
        ));
        // The owner, elsewhere, gets their password checked.
        assert!(t.before_attempt(ip("127.0.0.3"), "admin").is_ok());
        assert!(t.before_attempt(ip("127.0.0.3"), "admin").is_ok());
    }

    #[test]
    fn an_address_that_failed_is_held_to_the_names_limit() {
        let (t, clock) = throttle();
        for i in 0..5 {
            guess(&t, &format!("127.0.1.{i}"), "admin").expect("one guess each");
        }
        // A sixth address gets its first guess, then is held back.
        guess(&t, "127.0.1.9", "admin").expect("a fresh address");
        let Err(AuthError::RateLimited { retry_after_secs }) = guess(&t, "127.0.1.9", "admin")
        else {
            panic!("held back");
        };
        assert!((1..=12).contains(&retry_after_secs), "{retry_after_secs}");
        assert!(
            guess(&t, "127.0.1.0", "admin").is_err(),
            "so are the others"
        );
        assert!(
            guess(&t, "127.0.1.0", "bob").is_ok(),
            "other names are apart"
        );
        clock.advance(crate::auth::rate_limit::LOGIN_REFILL);
        assert!(guess(&t, "127.0.1.0", "admin").is_ok(), "refilled");
        // After a quiet spell an address is no longer taken for an attacker.
        clock.advance(Duration::from_secs(16 * 60));
        for _ in 0..6 {
            t.after_failure(ip("127.0.2.1"), "carol");
        }
        assert!(t.before_attempt(ip("127.0.1.0"), "carol").is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_64s_attempts() {
        let (t, _) = throttle();
        for i in 1..=5 {
            t.before_attempt(ip(&format!("2001:db8::{i}")), &format!("u{i}"))
                .expect("the burst");
        }
        assert!(t.before_attempt(ip("2001:db8::ff"), "u9").is_err());
        assert!(t.before_attempt(ip("2001:db8:0:1::1"), "u9").is_ok());
    }
}
