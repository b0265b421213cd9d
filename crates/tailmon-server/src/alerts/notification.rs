//! What a channel is told, and the one trait every channel implements.

use async_trait::async_trait;
use serde::Serialize;
use tailmon_core::{OffsetDateTime, ProcessInfo};

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum NotificationKind {
    /// The alert has just started firing.
    Firing,
    /// The alert is still firing after the rule's repeat interval.
    Repeat,
    /// The alert is still firing, unacknowledged, after an escalation delay.
    Escalation,
    /// The alert has stopped firing.
    Resolved,
    /// An administrator's "send test".
    Test,
}

/// How serious an alert is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// Act now.
    Critical,
}

/// One message about one alert, as every channel receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// Why it is sent.
    pub kind: NotificationKind,
    /// The alert's stable id (rule and device, and the disk or other key
    /// where the rule has one): the dedup key for PagerDuty and Alertmanager.
    pub alert_id: String,
    /// The rule's name.
    pub rule: String,
    /// How serious.
    pub severity: Severity,
    /// The device it is about.
    pub device_id: String,
    /// The organisation the device belongs to: two organisations may name
    /// a device and a rule alike, and a receiver shared by both (one
    /// Alertmanager, one PagerDuty service) must tell their alerts apart.
    pub org: tailmon_core::OrgId,
    /// The metric the rule watches, e.g. `disk_used_percent:/`.
    pub metric: String,
    /// The metric's value that made it fire (or resolve); `None` for offline.
    pub value: Option<f64>,
    /// The comparison, e.g. `>`.
    pub op: String,
    /// The rule's threshold.
    pub threshold: f64,
    /// When the condition started to hold.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// When this notification was made.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The device's page on the dashboard.
    pub url: String,
    /// The device's heaviest processes at firing time, when its report had them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_processes: Option<Vec<ProcessInfo>>,
    /// One line for people, e.g. `CRITICAL cpu-high on web-1: cpu_usage 93.5 > 80 for 5m`.
    pub summary: String,
}

/// A channel failed to deliver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The receiver could not be reached, or timed out.
    #[error("cannot reach the receiver: {0}")]
    Unreachable(String),
    /// The receiver answered with a status that is not a success.
    #[error("the receiver answered {status}: {body}")]
    Refused {
        /// The HTTP status, or an SMTP reply code.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// The channel's settings are wrong (a bad address, a missing field).
    #[error("the channel is misconfigured: {0}")]
    Config(String),
}

/// A way to tell people: one implementation per provider
/// (`alerts/channels/`), all used as `Arc<dyn Notifier>`.
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Delivers `notification` once; the engine's queue retries with backoff.
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError>;
}
