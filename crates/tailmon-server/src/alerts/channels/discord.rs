//! Discord webhooks: one embed, coloured by severity.

use async_trait::async_trait;
use serde_json::json;

use crate::alerts::channels::delivery::{deliver, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{
    Notification, NotificationKind, Notifier, NotifyError, Severity,
};

/// Posts to a Discord channel webhook.
#[derive(Debug)]
pub struct Discord {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Discord {
    /// A Discord webhook at `url`.
    pub fn new(http: reqwest::Client, url: &str) -> Result<Self, NotifyError> {
        Ok(Self {
            http,
            url: parse_url("the Discord webhook url", url)?,
        })
    }
}

/// The embed colour: green when resolved, red when critical, amber otherwise.
fn colour(n: &Notification) -> u32 {
    match (n.kind, n.severity) {
        (NotificationKind::Resolved, _) => 0x2e_a0_43,
        (_, Severity::Critical) => 0xd1_24_2f,
        (_, Severity::Warning) => 0xd4_a7_2c,
    }
}

/// The body Discord documents for "Execute Webhook": `username`, `content`
/// (the title, shown in notifications) and one embed with the lines.
pub fn payload(n: &Notification) -> serde_json::Value {
    let title = message::title(n);
    json!({
        "username": "Tailmon",
        "content": message::truncate(&title, 2000),
        "embeds": [{
            "title": message::truncate(&title, 256),
            "description": message::truncate(&message::lines(n).join("\n"), 4096),
            "url": n.url,
            "color": colour(n),
            "timestamp": n.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }],
        "allowed_mentions": {"parse": []},
    })
}

#[async_trait]
impl Notifier for Discord {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        deliver(
            self.http
                .post(self.url.clone())
                .json(&payload(notification)),
        )
        .await
    }
}
