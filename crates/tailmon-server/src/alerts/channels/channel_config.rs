//! How a channel is set up: one variant per provider, as written in the
//! configuration file (`[[alerts.channels]]`) or sent by the dashboard.

use serde::{Deserialize, Deserializer, Serialize};

/// What stands in for a secret in [`ChannelConfig::redacted`].
pub const REDACTED: &str = "••••";

/// One channel's settings, tagged by `type`. Every provider address has a
/// default and can be overridden (a proxy, a self-hosted ntfy, tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum ChannelConfig {
    /// A generic webhook: the [`Notification`](crate::alerts::notification::Notification)
    /// as JSON, POSTed to `url`.
    Webhook {
        /// Where to POST.
        url: String,
        /// When set, the header `X-Tailmon-Signature: sha256=<hex>` carries the
        /// HMAC-SHA256 of the body keyed with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// A Slack incoming webhook (`https://hooks.slack.com/services/…`).
    Slack {
        /// The webhook's URL.
        url: String,
    },
    /// A Discord channel webhook (`https://discord.com/api/webhooks/…`).
    Discord {
        /// The webhook's URL.
        url: String,
    },
    /// A Microsoft Teams incoming webhook (a Workflows "post to a channel
    /// when a webhook request is received" URL), sent an Adaptive Card.
    Teams {
        /// The webhook's URL.
        url: String,
    },
    /// An ntfy topic.
    Ntfy {
        /// The ntfy server; default `https://ntfy.sh`.
        #[serde(default = "default_ntfy_url")]
        url: String,
        /// The topic to publish to.
        topic: String,
        /// An access token, sent as `Authorization: Bearer`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// A Telegram bot posting to a chat (`sendMessage`).
    Telegram {
        /// The bot's token from @BotFather.
        bot_token: String,
        /// The chat: its numeric id (a number or a string) or `@channelname`.
        #[serde(deserialize_with = "number_or_string")]
        chat_id: String,
        /// The Bot API; default `https://api.telegram.org`.
        #[serde(default = "default_telegram_url")]
        api_url: String,
    },
    /// PagerDuty Events API v2: a trigger when an alert fires, a resolve
    /// when it stops, with the alert's id as `dedup_key`.
    Pagerduty {
        /// The service integration's routing key.
        routing_key: String,
        /// The events endpoint; default `https://events.pagerduty.com/v2/enqueue`.
        #[serde(default = "default_pagerduty_url")]
        url: String,
    },
    /// A Prometheus Alertmanager: alerts POSTed to `{url}/api/v2/alerts`.
    Alertmanager {
        /// The Alertmanager's base URL, e.g. `http://alertmanager:9093`.
        url: String,
    },
    /// E-mail over SMTP.
    Email {
        /// The SMTP server's host name.
        host: String,
        /// Its port; default 587.
        #[serde(default = "default_smtp_port")]
        port: u16,
        /// `starttls` (default), `tls` (implicit TLS, usually port 465) or
        /// `none` (plain text: only for a server on the same machine).
        #[serde(default)]
        security: EmailSecurity,
        /// The SMTP user name, when the server wants one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        /// The SMTP password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// The sender, e.g. `Tailmon <tailmon@example.net>`.
        from: String,
        /// The recipients.
        to: Vec<String>,
    },
    /// SMS through Twilio's Messages API, one message per recipient.
    Twilio {
        /// The account's SID (`AC…`).
        account_sid: String,
        /// The account's auth token.
        auth_token: String,
        /// The sending number (E.164, e.g. `+15005550006`) or messaging service.
        from: String,
        /// The recipients' numbers.
        to: Vec<String>,
        /// The API; default `https://api.twilio.com`.
        #[serde(default = "default_twilio_url")]
        api_url: String,
    },
}

/// How the e-mail channel protects its SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EmailSecurity {
    /// Plain connection upgraded with STARTTLS, which must succeed.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
    /// No encryption at all.
    None,
}

/// The default ntfy server.
pub const DEFAULT_NTFY_URL: &str = "https://ntfy.sh";
/// The default Telegram Bot API.
pub const DEFAULT_TELEGRAM_URL: &str = "https://api.telegram.org";
/// The default PagerDuty Events API v2 endpoint.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// The default Twilio API.
pub const DEFAULT_TWILIO_URL: &str = "https://api.twilio.com";

fn default_ntfy_url() -> String {
    DEFAULT_NTFY_URL.to_owned()
}
fn default_telegram_url() -> String {
    DEFAULT_TELEGRAM_URL.to_owned()
}
fn default_pagerduty_url() -> String {
    DEFAULT_PAGERDUTY_URL.to_owned()
}
fn default_twilio_url() -> String {
    DEFAULT_TWILIO_URL.to_owned()
}
fn default_smtp_port() -> u16 {
    587
}

/// Telegram chat ids are numbers, but `@channel` names are strings.
fn number_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(i64),
        Text(String),
    }
    Ok(match Either::deserialize(deserializer)? {
        Either::Number(n) => n.to_string(),
        Either::Text(s) => s,
    })
}

impl ChannelConfig {
    /// The channel's type as written in `type`: `webhook`, `slack`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Webhook { .. } => "webhook",
            Self::Slack { .. } => "slack",
            Self::Discord { .. } => "discord",
            Self::Teams { .. } => "teams",
            Self::Ntfy { .. } => "ntfy",
            Self::Telegram { .. } => "telegram",
            Self::Pagerduty { .. } => "pagerduty",
            Self::Alertmanager { .. } => "alertmanager",
            Self::Email { .. } => "email",
            Self::Twilio { .. } => "twilio",
        }
    }

    /// The same settings with every secret replaced by [`REDACTED`]: tokens,
    /// passwords, keys, the webhook secret, and the path of Slack, Discord
    /// and Teams webhook URLs (which is their secret). For API answers.
    pub fn redacted(&self) -> ChannelConfig {
        let hide = |_: &String| REDACTED.to_owned();
        let mut copy = self.clone();
        match &mut copy {
            Self::Webhook { secret, .. } => *secret = secret.as_ref().map(hide),
            Self::Slack { url } | Self::Discord { url } | Self::Teams { url } => {
                *url = redact_url_path(url);
            }
            Self::Ntfy { token, .. } => *token = token.as_ref().map(hide),
            Self::Telegram { bot_token, .. } => *bot_token = REDACTED.to_owned(),
            Self::Pagerduty { routing_key, .. } => *routing_key = REDACTED.to_owned(),
            Self::Alertmanager { .. } => {}
            Self::Email { password, .. } => *password = password.as_ref().map(hide),
            Self::Twilio { auth_token, .. } => *auth_token = REDACTED.to_owned(),
        }
        copy
    }
}

/// `https://hooks.slack.com/services/T0/B0/x` → `https://hooks.slack.com/••••`.
fn redact_url_path(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => {
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{}/{REDACTED}",
                parsed.scheme(),
                parsed.host_str().unwrap_or_default(),
                port
            )
        }
        _ => REDACTED.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<ChannelConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults_fill_the_provider_addresses() {
        let ntfy = parse(serde_json::json!({"type": "ntfy", "topic": "ops"})).unwrap();
        assert_eq!(
            ntfy,
            ChannelConfig::Ntfy {
                url: DEFAULT_NTFY_URL.into(),
                topic: "ops".into(),
                token: None
            }
        );
        let mail = parse(serde_json::json!({
            "type": "email", "host": "smtp.example.net", "from": "a@example.net", "to": ["b@example.net"]
        }))
        .unwrap();
        assert!(matches!(
            mail,
            ChannelConfig::Email {
                port: 587,
                security: EmailSecurity::Starttls,
                ..
            }
        ));
        let telegram = parse(serde_json::json!({
            "type": "telegram", "bot_token": "1:x", "chat_id": -100_123
        }))
        .unwrap();
        assert!(
            matches!(telegram, ChannelConfig::Telegram { ref chat_id, ref api_url, .. }
            if chat_id == "-100123" && api_url == DEFAULT_TELEGRAM_URL)
        );
    }

    #[test]
    fn unknown_fields_and_types_are_refused() {
        let err = parse(serde_json::json!({"type": "slack", "url": "https://x", "channel": "#a"}))
            .unwrap_err();
        assert!(err.to_string().contains("channel"), "{err}");
        assert!(parse(serde_json::json!({"type": "fax", "number": "1"})).is_err());
        assert!(parse(serde_json::json!({"type": "email", "host": "h", "from": "a@b", "to": [], "security": "ssl"})).is_err());
    }

    #[test]
    fn redaction_hides_every_secret_and_keeps_the_rest() {
        let slack = ChannelConfig::Slack {
            url: "https://hooks.slack.com/services/T0/B0/xyz".into(),
        };
        assert_eq!(
            slack.redacted(),
            ChannelConfig::Slack {
                url: "https://hooks.slack.com/••••".into()
            }
        );
        let hook = ChannelConfig::Webhook {
            url: "https://h/x".into(),
            secret: Some("s3cret".into()),
        };
        let shown = serde_json::to_string(&hook.redacted()).unwrap();
        assert!(
            !shown.contains("s3cret") && shown.contains("https://h/x"),
            "{shown}"
        );
        let twilio = ChannelConfig::Twilio {
            account_sid: "AC1".into(),
            auth_token: "t0ps3cret".into(),
            from: "+1".into(),
            to: vec!["+2".into()],
            api_url: DEFAULT_TWILIO_URL.into(),
        };
        let shown = serde_json::to_string(&twilio.redacted()).unwrap();
        assert!(
            !shown.contains("t0ps3cret") && shown.contains("AC1"),
            "{shown}"
        );
        for secretive in [
            ChannelConfig::Telegram {
                bot_token: "1:abc".into(),
                chat_id: "1".into(),
                api_url: "u".into(),
            },
            ChannelConfig::Pagerduty {
                routing_key: "abc".into(),
                url: "u".into(),
            },
            ChannelConfig::Ntfy {
                url: "u".into(),
                topic: "t".into(),
                token: Some("abc".into()),
            },
            ChannelConfig::Email {
                host: "h".into(),
                port: 1,
                security: EmailSecurity::None,
                username: Some("me".into()),
                password: Some("abc".into()),
                from: "f".into(),
                to: vec![],
            },
        ] {
            let shown = serde_json::to_string(&secretive.redacted()).unwrap();
            assert!(
                !shown.contains("abc") && shown.contains(REDACTED),
                "{shown}"
            );
        }
    }
}
