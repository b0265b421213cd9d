//! Channels: where notifications go. TEMPORARY stand-in with the generic
//! webhook only, replaced by the "channels" branch when it is merged.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alerts::notification::{Notification, Notifier, NotifyError};

/// What a shown secret is replaced with.
pub const REDACTED: &str = "••••";

/// One channel's settings, as written in `[[alerts.channels]]` (beside its
/// `name`) or sent to the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum ChannelConfig {
    /// POSTs the notification's JSON to `url`.
    Webhook {
        /// Where to.
        url: String,
        /// When set, signs the body (not in this stand-in).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
}

impl ChannelConfig {
    /// The same settings with secrets replaced by [`REDACTED`].
    pub fn redacted(&self) -> ChannelConfig {
        match self {
            Self::Webhook { url, secret } => Self::Webhook {
                url: url.clone(),
                secret: secret.as_ref().map(|_| REDACTED.to_owned()),
            },
        }
    }
}

struct Webhook {
    url: String,
    http: reqwest::Client,
}

#[async_trait]
impl Notifier for Webhook {
    async fn send(&self, notification: &Notification) -> Result<(), NotifyError> {
        let answer = self
            .http
            .post(&self.url)
            .json(notification)
            .send()
            .await
            .map_err(|e| NotifyError::Unreachable(e.to_string()))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default();
        Err(NotifyError::Refused {
            status: status.as_u16(),
            body: body.chars().take(200).collect(),
        })
    }
}

/// The notifier for `config`, sharing `http`.
pub fn notifier(
    config: &ChannelConfig,
    http: &reqwest::Client,
) -> Result<Arc<dyn Notifier>, NotifyError> {
    match config {
        ChannelConfig::Webhook { url, .. } => {
            let parsed =
                reqwest::Url::parse(url).map_err(|e| NotifyError::Config(format!("url: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(NotifyError::Config("url: must be http or https".into()));
            }
            Ok(Arc::new(Webhook {
                url: url.clone(),
                http: http.clone(),
            }))
        }
    }
}
