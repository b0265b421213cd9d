//! Slack incoming webhooks: `text` for notifications, Block Kit for the channel.

use async_trait::async_trait;
use serde_json::json;

use crate::alerts::channels::delivery::{deliver, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// Posts to a Slack incoming webhook.
#[derive(Debug)]
pub struct Slack {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Slack {
    /// A Slack webhook at `url`.
    pub fn new(http: reqwest::Client, url: &str) -> Result<Self, NotifyError> {
        Ok(Self {
            http,
            url: parse_url("the Slack webhook url", url)?,
        })
    }
}

/// The body Slack documents for incoming webhooks: a fallback `text` and
/// `blocks` (a header, then the lines as `mrkdwn`).
pub fn payload(n: &Notification) -> serde_json::Value {
    let title = message::title(n);
    let lines = escape(&message::lines(n).join("\n"));
    json!({
        "text": message::truncate(&format!("{}\n{lines}", escape(&title)), 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": message::truncate(&title, 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": message::truncate(&lines, 3000)}},
        ],
    })
}

/// Slack's `mrkdwn` escapes: `&`, `<` and `>` (which would start a link).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[async_trait]
impl Notifier for Slack {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        deliver(
            self.http
                .post(self.url.clone())
                .json(&payload(notification)),
        )
        .await
    }
}
