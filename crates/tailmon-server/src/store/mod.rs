//! Where reports are kept: the [`Store`] trait every store implements, the
//! in-memory store, the SQLite store and the block codec it stores history
//! in (both with the `sqlite` feature), the remote store (with the
//! `remote` feature), the downsampling every store answers
//! history with, and the conformance suite every store passes (with the
//! `conformance` feature).
//!
//! May use: `tailmon-core` only; nothing else of this crate but its leaf
//! helpers (`clock`, `private_dir`, `refusal_log`).

#[cfg(feature = "sqlite")]
pub(crate) mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
pub(crate) mod decimal;
pub(crate) mod downsample;
pub(crate) mod memory_store;
pub(crate) mod metric_set;
#[cfg(feature = "remote")]
pub(crate) mod remote;
pub mod retention;
#[cfg(feature = "sqlite")]
pub(crate) mod rollup_block;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

use std::pin::Pin;

use async_trait::async_trait;
use tailmon_core::{History, OffsetDateTime, Report};

pub use memory_store::{DEFAULT_MEMORY_HISTORY, MemoryStore};
#[cfg(feature = "remote")]
pub use remote::remote_store::{
    DEFAULT_INDEX_TENANT, DEFAULT_READ_CONCURRENCY, RemoteStore, RemoteStoreBuilder,
    RemoteStoreError,
};
pub use retention::{
    DEFAULT_HOUR_RETENTION, DEFAULT_MINUTE_RETENTION, DEFAULT_RAW_RETENTION, MAX_RETENTION,
    Retention,
};
#[cfg(feature = "sqlite")]
pub use sqlite::sqlite_store::{
    DATABASE_FILE, Durability, OpenError, SqliteStore, SqliteStoreBuilder,
};
pub use tailmon_core::{HistoryQuery, OrgId};

/// Reports of one device in time order, streamed out of a store.
pub type ReportStream =
    Pin<Box<dyn futures_core::Stream<Item = Result<Report, StoreError>> + Send + 'static>>;

/// Where the server keeps what agents report. Object-safe: the server holds an
/// `Arc<dyn Store>`, so embedding applications can bring their own.
///
/// **Organisations.** Every device belongs to one organisation ([`OrgId`]),
/// and a device id is unique within its organisation only: `web-1` of
/// `acme` and `web-1` of `globex` are two devices, and nothing asked of
/// one ever answers with, changes or drops anything of the other. Every
/// call that names a device names its organisation too; a batch of
/// reports belongs to one organisation (it comes with one credential).
/// The reports themselves carry no organisation: the store keeps it beside
/// them. A single-tenant server uses [`OrgId::default`] throughout.
///
/// Reports are placed in time by their own `last_seen`, so back-filled
/// reports land where they belong; the latest of a device is the one with the
/// newest `last_seen`, whatever the order of arrival.
///
/// Every report counts once, however often it arrives:
/// - **Duplicates**: a report whose organisation, device and `last_seen`
///   (to the millisecond) are those of one already stored is dropped; the
///   first to arrive wins.
/// - **Too old**: once [`apply_retention`](Store::apply_retention) has
///   dropped the raw reports older than a cutoff, a report stamped before
///   that cutoff is dropped too, whatever the device: the store could no
///   longer tell it from one already counted in the rollups. An agent's
///   queue holds at most 24 hours, well within the 48 hours raw reports are
///   kept, so only a stale retry meets this rule.
///
/// Dropping is not an error: the insert succeeds, as the report is stored
/// (or was, or would only be counted twice).
///
/// Every implementation passes the same conformance suite, which the
/// `conformance` feature makes public as `tailmon_server::store::conformance`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Keeps `report` in organisation `org`. When this returns `Ok`, the
    /// report is as durable as the store promises and may be acknowledged.
    async fn insert(&self, org: &OrgId, report: Report) -> Result<(), StoreError> {
        self.insert_many(org, vec![report]).await
    }

    /// Keeps every report of `reports` in organisation `org`, all or none.
    async fn insert_many(&self, org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError>;

    /// The latest report of every device of every organisation, with its
    /// organisation, sorted by organisation then device id.
    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError>;

    /// The latest report of one device; `None` for a device `org` does not
    /// have.
    async fn latest_of(&self, org: &OrgId, device_id: &str) -> Result<Option<Report>, StoreError>;

    /// Every device the store holds, of every organisation, as
    /// (organisation, device id), in any order.
    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError>;

    /// Every device with a report stamped at or after `since`, as
    /// (organisation, device id, `last_seen` of its latest report), in any
    /// order: what a reader that holds the fleet as of some time before
    /// `since` asks to learn what changed, before it reads the latest
    /// reports of the devices it finds newer ([`latest_of_many`](Store::latest_of_many)).
    /// A device whose latest report is older than `since` is not listed.
    ///
    /// The default filters [`latest`](Store::latest); a store whose
    /// `latest` reads much (a remote engine) reads only what is recent.
    async fn newest_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(OrgId, String, OffsetDateTime)>, StoreError> {
        Ok(self
            .latest()
            .await?
            .into_iter()
            .filter(|(_, report)| report.last_seen >= since)
            .map(|(org, report)| (org, report.device_id, report.last_seen))
            .collect())
    }

    /// The latest report of each device of `devices`, each given as
    /// [`newest_since`](Store::newest_since) lists it (the `last_seen` a
    /// hint of where its latest report is), in any order; a device the
    /// store no longer has is left out.
    ///
    /// The default asks [`latest_of`](Store::latest_of) for each; a
    /// remote store reads devices whose latest reports are close in time
    /// together.
    async fn latest_of_many(
        &self,
        devices: Vec<(OrgId, String, OffsetDateTime)>,
    ) -> Result<Vec<(OrgId, Report)>, StoreError> {
        let mut out = Vec::with_capacity(devices.len());
        for (org, device_id, _) in devices {
            if let Some(report) = self.latest_of(&org, &device_id).await? {
                out.push((org, report));
            }
        }
        Ok(out)
    }

    /// One metric of one device over a range, from the finest tier that gives
    /// at most `query.max_points` points; `None` for a device `org` does not
    /// have.
    ///
    /// Raw points are those with `from <= last_seen <= to`. A bucket (minute
    /// or hour) is answered when it overlaps the range, and then covers the
    /// whole bucket: the first and last buckets may hold values from just
    /// before `from` or just after `to`. Its average is that of every value
    /// in it, their sum kept exactly (decimals of up to six places as
    /// integers, other values to some 32 significant digits), so the answer
    /// does not depend on the order reports arrived in, nor change at a
    /// checkpoint or a restart.
    async fn history(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError>;

    /// Several metrics of one device over one range, one [`History`] per
    /// name of `metrics`, in that order (a name asked twice is answered
    /// twice); `None` for a device `org` does not have. Each answer is the
    /// one [`history`](Store::history) gives for that metric with the same
    /// device, range and `max_points`, point for point.
    ///
    /// The default asks [`history`](Store::history) once per metric; a store
    /// overrides it to read the range once for all of them (a device page
    /// asks for some 20 to 60 series at a time). With no metric asked, the
    /// default answers an empty list whether or not the device is known.
    async fn histories(
        &self,
        org: &OrgId,
        device_id: &str,
        metrics: &[String],
        from: OffsetDateTime,
        to: OffsetDateTime,
        max_points: usize,
    ) -> Result<Option<Vec<History>>, StoreError> {
        let mut out = Vec::with_capacity(metrics.len());
        for metric in metrics {
            let query =
                HistoryQuery::new(device_id, metric.as_str(), from, to).with_max_points(max_points);
            match self.history(org, &query).await? {
                Some(history) => out.push(history),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The raw reports of one device with `from <= last_seen <= to`, oldest
    /// first, streamed rather than gathered; `None` for a device `org` does
    /// not have.
    async fn reports(
        &self,
        org: &OrgId,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError>;

    /// Removes a device of `org` and all its history; `false` if `org` has
    /// no such device.
    async fn delete_device(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError>;

    /// Drops what is older than each tier keeps, as of `now`, in every
    /// organisation. From then on, reports older than the raw tier keeps as
    /// of `now` are dropped when they arrive (see the rules above); a later
    /// call with an earlier `now` does not move that cutoff back.
    async fn apply_retention(&self, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Changes how long each tier is kept, from the next
    /// [`apply_retention`](Store::apply_retention) on (a running server
    /// calls it on a reload, then applies retention soon after). The
    /// caller has checked `retention` ([`Retention::check`]).
    ///
    /// The default does nothing: a store whose retention is not made of
    /// these three tiers (such as [`MemoryStore`], which keeps a number of
    /// reports per device) keeps its own. A raw cutoff already applied is
    /// never moved back: a longer raw retention keeps more from then on,
    /// it does not bring back what was dropped.
    fn set_retention(&self, retention: Retention) {
        let _ = retention;
    }

    /// Whether the store answers now: `Ok` when it is open (its migrations
    /// done, as opening does them) and a cheap read succeeds in time.
    /// `GET /readyz` asks it. The default is `Ok`: a store that is built is
    /// ready. A store with a backend it may lose (a file, a network) checks
    /// it here, cheaply: load balancers ask every few seconds.
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A shared store is a store: hand [`ServerBuilder::store`](crate::ServerBuilder::store)
/// an `Arc` of a store the application keeps using too.
#[async_trait]
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    async fn insert(&self, org: &OrgId, report: Report) -> Result<(), StoreError> {
        (**self).insert(org, report).await
    }

    async fn insert_many(&self, org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError> {
        (**self).insert_many(org, reports).await
    }

    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError> {
        (**self).latest().await
    }

    async fn latest_of(&self, org: &OrgId, device_id: &str) -> Result<Option<Report>, StoreError> {
        (**self).latest_of(org, device_id).await
    }

    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        (**self).devices().await
    }

    async fn newest_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(OrgId, String, OffsetDateTime)>, StoreError> {
        (**self).newest_since(since).await
    }

    async fn latest_of_many(
        &self,
        devices: Vec<(OrgId, String, OffsetDateTime)>,
    ) -> Result<Vec<(OrgId, Report)>, StoreError> {
        (**self).latest_of_many(devices).await
    }

    async fn history(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        (**self).history(org, query).await
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
        (**self)
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
        (**self).reports(org, device_id, from, to).await
    }

    async fn delete_device(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError> {
        (**self).delete_device(org, device_id).await
    }

    async fn apply_retention(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        (**self).apply_retention(now).await
    }

    fn set_retention(&self, retention: Retention) {
        (**self).set_retention(retention);
    }

    async fn ready(&self) -> Result<(), StoreError> {
        (**self).ready().await
    }
}

/// Why a store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot take writes for now (disk full, database locked);
    /// agents should retry. Answered with 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else the backend reports. Answered with 500 and logged.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// The same error again, for answering every request of a failed group commit.
    #[cfg(feature = "sqlite")]
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Unavailable(message) => Self::Unavailable(message.clone()),
            Self::Backend(source) => Self::Backend(source.to_string().into()),
        }
    }
}
