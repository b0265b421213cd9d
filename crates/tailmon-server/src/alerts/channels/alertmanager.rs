//! Prometheus Alertmanager: its API v2, `POST /api/v2/alerts`.

use async_trait::async_trait;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::alerts::channels::delivery::{deliver, join, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{
    Notification, NotificationKind, Notifier, NotifyError, Severity,
};

/// Posts alerts to one Alertmanager.
#[derive(Debug)]
pub struct Alertmanager {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Alertmanager {
    /// The Alertmanager whose base URL is `url` (e.g. `http://am:9093`).
    pub fn new(http: reqwest::Client, url: &str) -> Result<Self, NotifyError> {
        let base = parse_url("the Alertmanager url", url)?;
        Ok(Self {
            http,
            url: join(&base, &["api", "v2", "alerts"]),
        })
    }
}

/// The list of one alert Alertmanager's API v2 takes: labels `alertname`
/// (the rule), `device`, `severity`, `metric` and, for an organisation
/// other than the default one, `org` (they identify it), the
/// annotations `summary`, `description` and `url`, `startsAt`, and `endsAt`
/// when resolved. A firing alert carries no `endsAt`: Alertmanager keeps it
/// for its `resolve_timeout`, so keep the rule's repeat interval shorter.
pub fn payload(n: &Notification) -> serde_json::Value {
    let severity = match n.severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
    };
    let mut alert = json!({
        "labels": {
            "alertname": n.rule,
            "device": n.device_id,
            "severity": severity,
            "metric": n.metric,
        },
        "annotations": {
            "summary": n.summary,
            "description": message::lines(n).join("\n"),
            "url": n.url,
        },
        "startsAt": n.since.format(&Rfc3339).unwrap_or_default(),
        "generatorURL": n.url,
    });
    if n.kind == NotificationKind::Test {
        alert["labels"]["tailmon_test"] = json!("true");
    }
    // Organisations other than the default one are told apart by a label
    // (one Alertmanager may serve several); the default one's alerts keep
    // the labels they always had.
    if !n.org.is_default() {
        alert["labels"]["org"] = json!(n.org.as_str());
    }
    if n.kind == NotificationKind::Resolved {
        alert["endsAt"] = json!(n.at.format(&Rfc3339).unwrap_or_default());
    }
    json!([alert])
}

#[async_trait]
impl Notifier for Alertmanager {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        deliver(
            self.http
                .post(self.url.clone())
                .json(&payload(notification)),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::channels::message::tests::sample;

    #[test]
    fn alerts_of_two_organisations_differ_by_their_org_label() {
        let default = payload(&sample());
        assert!(default[0]["labels"].get("org").is_none(), "{default}");
        let mut other = sample();
        other.org = tailmon_core::OrgId::new("acme").unwrap();
        let other = payload(&other);
        assert_eq!(other[0]["labels"]["org"], "acme");
        assert_eq!(other[0]["labels"]["device"], default[0]["labels"]["device"]);
    }
}
