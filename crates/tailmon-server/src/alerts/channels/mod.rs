//! The channels alerts go out through: one module per provider, each a
//! [`Notifier`], all built from a [`ChannelConfig`] by [`notifier`].
//!
//! Every message says the same things in the same words ([`message`]):
//! device, rule, metric with its value, comparison and threshold, how long
//! it has held, the link to the device page, and the top processes when the
//! report had them.

use std::sync::Arc;
use std::time::Duration;

use crate::alerts::notification::{Notifier, NotifyError};

pub mod alertmanager;
pub mod channel_config;
pub mod delivery;
pub mod discord;
pub mod email;
pub mod message;
pub mod ntfy;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod telegram;
pub mod twilio;
pub mod webhook;

pub use channel_config::{ChannelConfig, EmailSecurity, REDACTED};

/// How long one delivery over HTTP may take before it counts as unreachable.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client the channels share: rustls, [`HTTP_TIMEOUT`], a
/// `tailmon` user agent.
pub fn http_client() -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .user_agent(concat!("tailmon/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| NotifyError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The channel `config` describes, sending over `http` (see [`http_client`]).
/// Addresses are checked here: a bad URL or e-mail address is a
/// [`NotifyError::Config`], not a failure at the first alert.
pub fn notifier(
    config: &ChannelConfig,
    http: &reqwest::Client,
) -> Result<Arc<dyn Notifier>, NotifyError> {
    let http = http.clone();
    Ok(match config {
        ChannelConfig::Webhook { url, secret } => {
            Arc::new(webhook::Webhook::new(http, url, secret.clone())?)
        }
        ChannelConfig::Slack { url } => Arc::new(slack::Slack::new(http, url)?),
        ChannelConfig::Discord { url } => Arc::new(discord::Discord::new(http, url)?),
        ChannelConfig::Teams { url } => Arc::new(teams::Teams::new(http, url)?),
        ChannelConfig::Ntfy { url, topic, token } => {
            Arc::new(ntfy::Ntfy::new(http, url, topic, token.clone())?)
        }
        ChannelConfig::Telegram {
            bot_token,
            chat_id,
            api_url,
        } => Arc::new(telegram::Telegram::new(http, api_url, bot_token, chat_id)?),
        ChannelConfig::Pagerduty { routing_key, url } => {
            Arc::new(pagerduty::PagerDuty::new(http, url, routing_key)?)
        }
        ChannelConfig::Alertmanager { url } => {
            Arc::new(alertmanager::Alertmanager::new(http, url)?)
        }
        ChannelConfig::Email { .. } => Arc::new(email::Email::new(config)?),
        ChannelConfig::Twilio {
            account_sid,
            auth_token,
            from,
            to,
            api_url,
        } => Arc::new(twilio::Twilio::new(
            http,
            api_url,
            account_sid,
            auth_token,
            from,
            to.clone(),
        )?),
    })
}
