use serde::{Deserialize, Serialize};

/// Most reports one `POST /api/v1/reports` may carry.
pub const MAX_BATCH_REPORTS: usize = 1000;

/// The answer to `POST /api/v1/reports`: how many reports were stored, and
/// why any were refused. Stored ones are committed before the answer is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchResult {
    /// Valid reports, stored or already counted: a duplicate of a stored
    /// report, or one older than raw retention has trimmed, is accepted and
    /// dropped, so that it is neither sent again nor counted twice.
    pub accepted: usize,
    /// Reports refused, each with its place in the request.
    pub rejected: Vec<RejectedReport>,
}

/// One report of a batch that was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedReport {
    /// Its index in the request's array, from 0.
    pub index: usize,
    /// Why it was refused.
    pub error: String,
    /// The field to blame, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
