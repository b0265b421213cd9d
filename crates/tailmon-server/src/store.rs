use async_trait::async_trait;
use tailmon_core::Report;

/// Where the server keeps what agents report. Object-safe: the server holds an
/// `Arc<dyn Store>`, so embedding applications can bring their own.
///
/// Every implementation passes the same conformance suite
/// (`tests/it/store_conformance.rs`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Keeps `report` as the latest of its device. When this returns `Ok`, the
    /// report is as durable as the store promises and may be acknowledged.
    async fn insert(&self, report: Report) -> Result<(), StoreError>;

    /// The latest report of every device, sorted by device id.
    async fn latest(&self) -> Result<Vec<Report>, StoreError>;

    /// The id of every device the store holds, in any order.
    async fn devices(&self) -> Result<Vec<String>, StoreError>;
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
