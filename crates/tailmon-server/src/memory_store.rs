use async_trait::async_trait;
use dashmap::DashMap;
use tailmon_core::Report;

use crate::{Store, StoreError};

/// A lock-free in-memory [`Store`] on a [`DashMap`]: for tests, embedding and
/// short-lived servers. Everything is lost when the process ends.
///
/// ```
/// use std::sync::Arc;
/// use tailmon_server::{MemoryStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    latest: DashMap<String, Report>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert(&self, report: Report) -> Result<(), StoreError> {
        // A known device is updated in place: no key allocation on the hot path.
        if let Some(mut slot) = self.latest.get_mut(report.device_id.as_str()) {
            *slot = report;
            return Ok(());
        }
        self.latest.insert(report.device_id.clone(), report);
        Ok(())
    }

    async fn latest(&self) -> Result<Vec<Report>, StoreError> {
        let mut all: Vec<Report> = self.latest.iter().map(|e| e.value().clone()).collect();
        all.sort_unstable_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(all)
    }

    async fn devices(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.latest.iter().map(|e| e.key().clone()).collect())
    }
}
