use serde::{Deserialize, Serialize};

use crate::{Report, Status};

/// One device as `GET /api/v1/devices` lists it: its latest report and its status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSummary {
    /// How healthy it looks, or `offline` when it has not reported for three intervals.
    pub status: Status,
    /// Its latest report.
    #[serde(flatten)]
    pub report: Report,
}
