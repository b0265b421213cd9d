//! A store that forwards every call to another, with hooks where a test
//! wants to step in: the one way tests wrap a store.

use async_trait::async_trait;
use tailmon_core::{History, HistoryQuery, OffsetDateTime, OrgId, Report};
use tailmon_server::Store;
use tailmon_server::StoreError;
use tailmon_server::store::{ReportStream, Retention};

/// What a test adds to a store it wraps in [`Forwarding`]: every hook does
/// nothing unless overridden.
#[async_trait]
pub trait StoreHooks: Send + Sync + 'static {
    /// The store every call goes to.
    type Inner: Store;

    /// The wrapped store.
    fn inner(&self) -> &Self::Inner;

    /// Called after every successful `insert` and `insert_many`.
    async fn after_insert(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Called before every `latest` and `newest_since` (the reads of the
    /// whole fleet).
    async fn before_latest(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Called after every successful `latest` and `newest_since`, with its
    /// answer in hand (before it is returned): where a test acts while a
    /// reader holds what it read.
    async fn after_latest(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Called before every `latest_of_many`, with the devices asked for.
    async fn before_latest_of_many(
        &self,
        devices: &[(OrgId, String, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        let _ = devices;
        Ok(())
    }

    /// Called before every `ready`; an error here is the answer.
    async fn before_ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A [`Store`] that forwards every call to `hooks.inner()`, calling the
/// hooks around the calls they name.
///
/// ```
/// use async_trait::async_trait;
/// use tailmon_server::{MemoryStore, Store, StoreError};
/// use tailmon_testkit::{Forwarding, StoreHooks};
///
/// struct CountInserts(MemoryStore, std::sync::atomic::AtomicUsize);
///
/// #[async_trait]
/// impl StoreHooks for CountInserts {
///     type Inner = MemoryStore;
///     fn inner(&self) -> &MemoryStore {
///         &self.0
///     }
///     async fn after_insert(&self) -> Result<(), StoreError> {
///         self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         Ok(())
///     }
/// }
///
/// let store: Box<dyn Store> = Box::new(Forwarding(CountInserts(MemoryStore::new(), 0.into())));
/// ```
#[derive(Debug)]
pub struct Forwarding<H>(pub H);

#[async_trait]
impl<H: StoreHooks> Store for Forwarding<H> {
    async fn insert(&self, org: &OrgId, report: Report) -> Result<(), StoreError> {
        self.0.inner().insert(org, report).await?;
        self.0.after_insert().await
    }

    async fn insert_many(&self, org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError> {
        self.0.inner().insert_many(org, reports).await?;
        self.0.after_insert().await
    }

    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError> {
        self.0.before_latest().await?;
        let latest = self.0.inner().latest().await?;
        self.0.after_latest().await?;
        Ok(latest)
    }

    async fn latest_of(&self, org: &OrgId, device_id: &str) -> Result<Option<Report>, StoreError> {
        self.0.inner().latest_of(org, device_id).await
    }

    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        self.0.inner().devices().await
    }

    async fn newest_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(OrgId, String, OffsetDateTime)>, StoreError> {
        self.0.before_latest().await?;
        let newest = self.0.inner().newest_since(since).await?;
        self.0.after_latest().await?;
        Ok(newest)
    }

    async fn latest_of_many(
        &self,
        devices: Vec<(OrgId, String, OffsetDateTime)>,
    ) -> Result<Vec<(OrgId, Report)>, StoreError> {
        self.0.before_latest_of_many(&devices).await?;
        self.0.inner().latest_of_many(devices).await
    }

    async fn history(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        self.0.inner().history(org, query).await
    }

    async fn histories(
        &self,
        org: &OrgId,
        device_id: &str,
        metrics: &[String],
        from: OffsetDateTime,
        to: OffsetDateTime,
        max_points: usize,
    ) -> Result<Option<Vec<History>>, StoreError> {
        self.0
            .inner()
            .histories(org, device_id, metrics, from, to, max_points)
            .await
    }

    async fn reports(
        &self,
        org: &OrgId,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError> {
        self.0.inner().reports(org, device_id, from, to).await
    }

    async fn delete_device(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError> {
        self.0.inner().delete_device(org, device_id).await
    }

    async fn apply_retention(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        self.0.inner().apply_retention(now).await
    }

    fn set_retention(&self, retention: Retention) {
        self.0.inner().set_retention(retention);
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.0.before_ready().await?;
        self.0.inner().ready().await
    }
}
