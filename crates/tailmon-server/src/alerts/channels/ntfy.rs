//! ntfy: a JSON publish to the server's root naming the topic.

use async_trait::async_trait;
use serde_json::json;

use crate::alerts::channels::delivery::{deliver, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{
    Notification, NotificationKind, Notifier, NotifyError, Severity,
};

/// Publishes to an ntfy topic.
#[derive(Debug)]
pub struct Ntfy {
    http: reqwest::Client,
    url: reqwest::Url,
    topic: String,
    token: Option<String>,
}

impl Ntfy {
    /// Publishes to `topic` on the ntfy server at `url`, with `token` as a
    /// bearer token when there is one.
    pub fn new(
        http: reqwest::Client,
        url: &str,
        topic: &str,
        token: Option<String>,
    ) -> Result<Self, NotifyError> {
        if topic.trim().is_empty() {
            return Err(NotifyError::Config("the ntfy topic is empty".into()));
        }
        Ok(Self {
            http,
            url: parse_url("the ntfy url", url)?,
            topic: topic.to_owned(),
            token,
        })
    }
}

/// ntfy's priority: 5 (max) for critical, 4 for warnings, 3 when resolved or a test.
fn priority(n: &Notification) -> u8 {
    match (n.kind, n.severity) {
        (NotificationKind::Resolved | NotificationKind::Test, _) => 3,
        (_, Severity::Critical) => 5,
        (_, Severity::Warning) => 4,
    }
}

/// The JSON ntfy documents for publishing: topic, title, message,
/// priority, tags (emoji short codes) and a click action to the device page.
pub fn payload(topic: &str, n: &Notification) -> serde_json::Value {
    let tag = match n.kind {
        NotificationKind::Resolved => "white_check_mark",
        NotificationKind::Test => "test_tube",
        _ => "rotating_light",
    };
    json!({
        "topic": topic,
        "title": message::title(n),
        "message": message::lines(n).join("\n"),
        "priority": priority(n),
        "tags": [tag],
        "click": n.url,
    })
}

#[async_trait]
impl Notifier for Ntfy {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let mut request = self
            .http
            .post(self.url.clone())
            .json(&payload(&self.topic, notification));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        deliver(request).await
    }
}
