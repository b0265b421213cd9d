//! One alert: a rule's condition on one device (and metric), and where it
//! is in its life: pending, firing, resolved.

use serde::{Deserialize, Serialize};
use sha2::Digest;
use tailmon_core::{OffsetDateTime, ProcessInfo};

use crate::alerts::notification::Severity;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, not yet for the rule's `for`.
    Pending,
    /// The condition has held long enough; people were told.
    Firing,
    /// It fired, then stopped.
    Resolved,
}

/// One alert, as the API answers it and the database keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Stable for a rule, a device and a metric.
    pub id: String,
    /// The rule's name.
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The device.
    pub device_id: String,
    /// The metric, e.g. `disk_used_percent:/`; `offline` for offline rules.
    pub metric: String,
    /// The latest value; `None` for offline.
    pub value: Option<f64>,
    /// The comparison, e.g. `>`.
    pub op: String,
    /// The threshold.
    pub threshold: f64,
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// When the condition started to hold.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// When it fired.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
    /// When it resolved.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolved_at: Option<OffsetDateTime>,
    /// Who acknowledged it: no more repeats nor escalations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// Until when a silence holds its notifications back (computed when answered).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub silenced_until: Option<OffsetDateTime>,
    /// When people were last told (firing, repeat).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_notified: Option<OffsetDateTime>,
    /// How many escalation steps were sent.
    #[serde(default)]
    pub escalations_sent: usize,
    /// A few words on a predictive alert, e.g. `full in about 5h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The device's heaviest processes when the alert fired (not kept).
    #[serde(skip)]
    pub top_processes: Option<Vec<ProcessInfo>>,
}

/// The id of the alert of `rule` on `device` for `metric`: 16 hex digits
/// of a SHA-256, safe in a URL path.
pub fn alert_id(rule: &str, device: &str, metric: &str) -> String {
    let mut hash = sha2::Sha256::new();
    for part in [rule, device, metric] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}
