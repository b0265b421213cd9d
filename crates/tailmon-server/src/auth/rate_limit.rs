//! Token-bucket rate limits by key (a client address, a token, a login
//! name), on the server's [`Clock`].

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Reference;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

use crate::Clock;

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests a second, sustained (at least 1).
    #[schema(value_type = u32, minimum = 1)]
    pub per_second: NonZeroU32,
    /// Requests at once, after a quiet spell (at least 1).
    #[schema(value_type = u32, minimum = 1)]
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` sustained with bursts of `burst`; `None` if either is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        Some(Self {
            per_second: NonZeroU32::new(per_second)?,
            burst: NonZeroU32::new(burst)?,
        })
    }
}

/// Requests per client address: 20 a second, bursts of 200. Agents send
/// one every 5 s and a dashboard about one every 3 s, so only a runaway or
/// hostile client meets it.
pub const DEFAULT_RATE_LIMIT_PER_ADDRESS: RateLimit = RateLimit {
    per_second: NonZeroU32::new(20).expect("non-zero"),
    burst: NonZeroU32::new(200).expect("non-zero"),
};

/// Requests per token: 100 a second, bursts of 1,000, enough for 500
/// agents sharing one token at the 5 s interval.
pub const DEFAULT_RATE_LIMIT_PER_TOKEN: RateLimit = RateLimit {
    per_second: NonZeroU32::new(100).expect("non-zero"),
    burst: NonZeroU32::new(1000).expect("non-zero"),
};

/// Login attempts per client address and per user name: 5 at once, then
/// one every [`LOGIN_REFILL`].
pub(crate) const LOGIN_BURST: NonZeroU32 = NonZeroU32::new(5).expect("non-zero");
pub(crate) const LOGIN_REFILL: Duration = Duration::from_secs(12);

/// The server's clock, as governor reads time.
#[derive(Clone)]
struct GovernorClock(Arc<dyn Clock>);

impl governor::clock::Clock for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = self.0.now().unix_timestamp_nanos();
        Nanos::from(u64::try_from(nanos).unwrap_or(0))
    }
}

/// One limit applied to many keys.
pub(crate) struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DashMapStateStore<K>, GovernorClock, NoOpMiddleware<Nanos>>,
    clock: GovernorClock,
    checks: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub(crate) fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        Self::with_quota(
            Quota::per_second(limit.per_second).allow_burst(limit.burst),
            clock,
        )
    }

    /// The login limiter: [`LOGIN_BURST`] at once, then one every [`LOGIN_REFILL`].
    pub(crate) fn for_logins(clock: Arc<dyn Clock>) -> Self {
        let quota = Quota::with_period(LOGIN_REFILL)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(LOGIN_BURST);
        Self::with_quota(quota, clock)
    }

    fn with_quota(quota: Quota, clock: Arc<dyn Clock>) -> Self {
        let clock = GovernorClock(clock);
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request from `key`'s bucket; `Err` with how long until
    /// the next would pass when it is empty.
    pub(crate) fn check(&self, key: &K) -> Result<(), Duration> {
        // Forget full buckets now and then, so the map stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 && self.limiter.len() > 1024 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let now = governor::clock::Clock::now(&self.clock);
            let wait = not_until.earliest_possible().duration_since(now);
            Duration::from(wait)
        })
    }
}

/// The seconds a `Retry-After` header gives for `wait`: at least 1.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use tailmon_core::OffsetDateTime;

    #[test]
    fn a_bucket_empties_then_refills_with_time() {
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::DAY,
        ));
        let limiter = KeyedLimiter::new(RateLimit::new(2, 3).expect("limit"), clock.clone());
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a"), Ok(()));
        }
        let wait = limiter.check(&"a").expect_err("empty");
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        assert_eq!(limiter.check(&"b"), Ok(()), "keys are apart");
        clock.advance(Duration::from_millis(500));
        assert_eq!(limiter.check(&"a"), Ok(()));
        assert!(limiter.check(&"a").is_err());
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    }
}
