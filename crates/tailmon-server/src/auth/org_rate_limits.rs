//! Rate limits an organisation sets for itself ([`OrgLimits`]): one
//! keyed limiter per organisation and limit, made when first needed and
//! made anew when the owner changes the limit.
//!
//! [`OrgLimits`]: crate::auth::OrgLimits

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tailmon_core::OrgId;

use crate::Clock;
use crate::auth::rate_limit::{KeyedLimiter, RateLimit};

/// Per organisation, the limiter of its own limit (keyed by token id or by
/// client address).
pub(crate) struct OrgRateLimits<K: Hash + Eq + Clone> {
    clock: Arc<dyn Clock>,
    by_org: DashMap<OrgId, (RateLimit, Arc<KeyedLimiter<K>>)>,
}

impl<K: Hash + Eq + Clone> OrgRateLimits<K> {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            by_org: DashMap::new(),
        }
    }

    /// Takes one request from `key`'s bucket under `org`'s `limit`. A limit
    /// other than the one last seen for `org` starts new, full buckets.
    pub(crate) fn check(&self, org: &OrgId, limit: RateLimit, key: &K) -> Result<(), Duration> {
        let known = self
            .by_org
            .get(org)
            .filter(|entry| entry.0 == limit)
            .map(|entry| entry.1.clone());
        let limiter = match known {
            Some(limiter) => limiter,
            None => {
                let limiter = Arc::new(KeyedLimiter::new(limit, self.clock.clone()));
                self.by_org.insert(org.clone(), (limit, limiter.clone()));
                limiter
            }
        };
        limiter.check(key)
    }

    /// Forgets the limiters of organisations that no longer set a limit
    /// (removed ones too): `keep` says which still do.
    pub(crate) fn retain(&self, keep: impl Fn(&OrgId) -> bool) {
        self.by_org.retain(|org, _| keep(org));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;
    use tailmon_core::OffsetDateTime;

    #[test]
    fn each_organisation_counts_apart_and_a_new_limit_starts_afresh() {
        let clock = Arc::new(ManualClock::new(
            OffsetDateTime::UNIX_EPOCH + time::Duration::DAY,
        ));
        let limits = OrgRateLimits::new(clock);
        let acme = OrgId::new("acme").expect("name");
        let beta = OrgId::new("beta").expect("name");
        let two = RateLimit::new(1, 2).expect("limit");
        for _ in 0..2 {
            assert!(limits.check(&acme, two, &"t").is_ok());
        }
        assert!(
            limits.check(&acme, two, &"t").is_err(),
            "acme's bucket is empty"
        );
        assert!(limits.check(&acme, two, &"u").is_ok(), "another key");
        assert!(
            limits.check(&beta, two, &"t").is_ok(),
            "another organisation"
        );
        let three = RateLimit::new(1, 3).expect("limit");
        assert!(limits.check(&acme, three, &"t").is_ok(), "a changed limit");
        limits.retain(|org| *org != acme);
        assert_eq!(limits.by_org.len(), 1);
    }
}
