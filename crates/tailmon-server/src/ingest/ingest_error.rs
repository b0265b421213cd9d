use tailmon_core::ValidationError;

use crate::StoreError;
use crate::telemetry::RefusalReason;

/// Why [`Ingest`](crate::Ingest) did not take a report. The HTTP API
/// answers these as 422, 429 (with `Retry-After`) and 503 or 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The report broke a validation rule; it never will be taken.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A new device would pass the device cap; worth retrying once devices
    /// are removed.
    #[error("device limit of {cap} reached; new devices are refused until some are removed")]
    TooManyDevices {
        /// The cap.
        cap: usize,
    },
    /// The store failed; [`StoreError::Unavailable`] is worth retrying.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IngestError {
    /// Whether the same report may be taken later: the device cap may free
    /// up, an unavailable store may recover. A report that broke a
    /// validation rule never will be.
    ///
    /// ```
    /// use tailmon_server::IngestError;
    ///
    /// assert!(IngestError::TooManyDevices { cap: 10 }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(_) => false,
            Self::TooManyDevices { .. } => true,
            Self::Store(error) => matches!(error, StoreError::Unavailable(_)),
        }
    }

    /// The reason it is counted under in `tailmon_reports_refused_total`.
    pub(crate) fn refusal_reason(&self) -> RefusalReason {
        match self {
            Self::Invalid(ValidationError::LastSeenInFuture { .. }) => RefusalReason::ClockSkew,
            Self::Invalid(_) => RefusalReason::Invalid,
            Self::TooManyDevices { .. } => RefusalReason::DeviceLimit,
            Self::Store(StoreError::Unavailable(_)) => RefusalReason::StoreUnavailable,
            Self::Store(_) => RefusalReason::Internal,
        }
    }
}
