//! One value per organisation, made when first asked for.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use tailmon_core::OrgId;

/// One `T` per organisation, made when the organisation is first asked
/// for: what keeps an organisation's caches its own.
#[derive(Debug)]
pub(crate) struct PerOrg<T>(RwLock<HashMap<OrgId, Arc<T>>>);

impl<T> Default for PerOrg<T> {
    fn default() -> Self {
        Self(RwLock::default())
    }
}

impl<T> PerOrg<T> {
    /// `org`'s value, made by `make` if it has none yet.
    pub(crate) fn get_or_make(&self, org: &OrgId, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(found) = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(org)
        {
            return found.clone();
        }
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(org.clone())
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }
}
