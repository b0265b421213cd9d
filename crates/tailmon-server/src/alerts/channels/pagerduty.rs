//! PagerDuty Events API v2: trigger and resolve, deduplicated by alert id.

use async_trait::async_trait;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::alerts::channels::delivery::{deliver, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{
    Notification, NotificationKind, Notifier, NotifyError, Severity,
};

/// Sends events to one PagerDuty service.
#[derive(Debug)]
pub struct PagerDuty {
    http: reqwest::Client,
    url: reqwest::Url,
    routing_key: String,
}

impl PagerDuty {
    /// Events for the integration `routing_key`, sent to `url`.
    pub fn new(http: reqwest::Client, url: &str, routing_key: &str) -> Result<Self, NotifyError> {
        if routing_key.trim().is_empty() {
            return Err(NotifyError::Config("PagerDuty needs a routing_key".into()));
        }
        Ok(Self {
            http,
            url: parse_url("the PagerDuty url", url)?,
            routing_key: routing_key.to_owned(),
        })
    }
}

/// The Events v2 body: `resolve` for a resolved alert, `trigger` otherwise
/// (a repeat or escalation updates the same incident), `dedup_key` the
/// alert's id; a test gets its own key so it never touches a real incident.
pub fn payload(routing_key: &str, n: &Notification) -> serde_json::Value {
    let dedup_key = match n.kind {
        NotificationKind::Test => format!("tailmon-test/{}", n.alert_id),
        _ if n.org.is_default() => n.alert_id.clone(),
        _ => format!("{}/{}", n.org, n.alert_id),
    };
    if n.kind == NotificationKind::Resolved {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key});
    }
    let severity = match n.severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": message::truncate(&format!("{}: {}", message::title(n), n.summary), 1024),
            "source": n.device_id,
            "severity": severity,
            "timestamp": n.since.format(&Rfc3339).unwrap_or_default(),
            "component": n.metric,
            "group": n.rule,
            "class": n.metric,
            "custom_details": {
                "rule": n.rule,
                "metric": n.metric,
                "value": n.value,
                "op": n.op,
                "threshold": n.threshold,
                "held_for": message::held_for(n),
                "top_processes": n.top_processes,
            },
        },
        "client": "Tailmon",
        "client_url": n.url,
        "links": [{"href": n.url, "text": "Device page"}],
    })
}

#[async_trait]
impl Notifier for PagerDuty {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let body = payload(&self.routing_key, notification);
        deliver(self.http.post(self.url.clone()).json(&body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::channels::message::tests::sample;

    #[test]
    fn incidents_of_two_organisations_have_their_own_keys() {
        let default = payload("key", &sample());
        let mut other = sample();
        other.org = tailmon_core::OrgId::new("acme").unwrap();
        let other = payload("key", &other);
        assert_eq!(default["dedup_key"], "cpu-high/web-1");
        assert_eq!(other["dedup_key"], "acme/cpu-high/web-1");
    }
}
