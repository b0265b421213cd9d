//! Why an alerting request was refused.

use crate::alerts::notification::NotifyError;

/// Why an alerting request (API or library) was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    /// No such alert, silence, rule or channel.
    #[error("{0}")]
    NotFound(String),
    /// The thing exists already, or is read-only (from the file or the defaults).
    #[error("{0}")]
    Conflict(String),
    /// A field is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The channel's test notification failed.
    #[error("the channel failed: {0}")]
    Delivery(#[from] NotifyError),
    /// The alerts database failed.
    #[error("{0}")]
    Storage(String),
}
