//! Microsoft Teams incoming webhooks (Workflows): an Adaptive Card.

use async_trait::async_trait;
use serde_json::json;

use crate::alerts::channels::delivery::{deliver, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// Posts to a Teams webhook.
#[derive(Debug)]
pub struct Teams {
    http: reqwest::Client,
    url: reqwest::Url,
}

impl Teams {
    /// A Teams webhook at `url`.
    pub fn new(http: reqwest::Client, url: &str) -> Result<Self, NotifyError> {
        Ok(Self {
            http,
            url: parse_url("the Teams webhook url", url)?,
        })
    }
}

/// The message Teams documents for webhooks: `type: message` with one
/// Adaptive Card attachment (title, one text block a line, a button to the
/// device page).
pub fn payload(n: &Notification) -> serde_json::Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": message::title(n), "weight": "Bolder", "size": "Medium", "wrap": true,
    })];
    body.extend(
        message::lines(n).into_iter().map(
            |line| json!({"type": "TextBlock", "text": line, "wrap": true, "spacing": "None"}),
        ),
    );
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": "Open the device", "url": n.url}],
            },
        }],
    })
}

#[async_trait]
impl Notifier for Teams {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        deliver(
            self.http
                .post(self.url.clone())
                .json(&payload(notification)),
        )
        .await
    }
}
