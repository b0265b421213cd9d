//! A Telegram bot: the Bot API's `sendMessage`, plain text.

use async_trait::async_trait;
use serde_json::json;

use crate::alerts::channels::delivery::{deliver, join, parse_url};
use crate::alerts::channels::message;
use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// Sends through a Telegram bot to one chat.
#[derive(Debug)]
pub struct Telegram {
    http: reqwest::Client,
    url: reqwest::Url,
    chat_id: String,
}

impl Telegram {
    /// The bot `bot_token` on the Bot API at `api_url`, posting to `chat_id`.
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        bot_token: &str,
        chat_id: &str,
    ) -> Result<Self, NotifyError> {
        if bot_token.trim().is_empty() || chat_id.trim().is_empty() {
            return Err(NotifyError::Config(
                "Telegram needs a bot_token and a chat_id".into(),
            ));
        }
        let base = parse_url("the Telegram api_url", api_url)?;
        let url = join(&base, &[&format!("bot{bot_token}"), "sendMessage"]);
        Ok(Self {
            http,
            url,
            chat_id: chat_id.to_owned(),
        })
    }
}

/// The `sendMessage` body: chat, text (at most 4096 characters), no link preview.
pub fn payload(chat_id: &str, n: &Notification) -> serde_json::Value {
    json!({
        "chat_id": chat_id,
        "text": message::truncate(&message::text(n), 4096),
        "link_preview_options": {"is_disabled": true},
    })
}

#[async_trait]
impl Notifier for Telegram {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        deliver(
            self.http
                .post(self.url.clone())
                .json(&payload(&self.chat_id, notification)),
        )
        .await
    }
}
