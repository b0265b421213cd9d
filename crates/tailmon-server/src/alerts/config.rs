//! The `[alerts]` section of the server's configuration file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alerts::channels::ChannelConfig;
use crate::alerts::duration_text::{serde_text, serde_text_opt};
use crate::alerts::rule::{RuleConfig, RuleError, valid_name};

/// Default repeat interval of a firing alert: 4 hours.
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);

/// A channel with its name, as in `[[alerts.channels]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NamedChannel {
    /// The name rules use, e.g. `ops`.
    pub name: String,
    /// Its type and settings (`type = "webhook"`, `url = ...`).
    #[serde(flatten)]
    pub config: ChannelConfig,
}

/// Alerting settings: the `[alerts]` section. `AlertsConfig::default()`
/// has the default rules, no channel and a 4 h repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Whether the default rules apply (CPU 60/80 %, RAM 70/90 %, disks
    /// 80/90 %, offline); defaults to `true`.
    #[serde(default = "yes")]
    pub default_rules: bool,
    /// How often a firing alert is told again; defaults to [`DEFAULT_REPEAT`].
    #[serde(default = "default_repeat", with = "serde_text")]
    pub repeat: Duration,
    /// The dashboard's address for links in notifications, e.g.
    /// `https://monitor.example.net/`; the binary defaults it to
    /// `http://<host>:<port>/` of its listen address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// How often offline and predictive rules are checked; defaults to `5s`
    /// (predictive ones at most once a minute).
    #[serde(
        default,
        with = "serde_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub evaluate_every: Option<Duration>,
    /// The rules of the file (read-only in the dashboard).
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    /// The channels of the file (read-only in the dashboard).
    #[serde(default)]
    pub channels: Vec<NamedChannel>,
}

fn yes() -> bool {
    true
}

fn default_repeat() -> Duration {
    DEFAULT_REPEAT
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            default_rules: true,
            repeat: DEFAULT_REPEAT,
            public_url: None,
            evaluate_every: None,
            rules: Vec::new(),
            channels: Vec::new(),
        }
    }
}

/// Why an `[alerts]` section is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsConfigError {
    /// A rule is wrong.
    #[error("alerts.rules {rule:?}: {error}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What is wrong.
        error: RuleError,
    },
    /// A channel is wrong.
    #[error("alerts.channels {channel:?}: {message}")]
    Channel {
        /// The channel's name.
        channel: String,
        /// What is wrong.
        message: String,
    },
    /// Another setting is wrong.
    #[error("alerts.{field}: {message}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl AlertsConfig {
    /// Checks the whole: each rule, unique names, channels that exist.
    pub fn check(&self) -> Result<(), AlertsConfigError> {
        self.check_with(&[])
    }

    /// [`check`](Self::check), knowing of further channels (an
    /// application's own) besides the file's.
    pub fn check_with(&self, more_channels: &[&str]) -> Result<(), AlertsConfigError> {
        if self.repeat < Duration::from_secs(60) {
            return Err(AlertsConfigError::Setting {
                field: "repeat",
                message: "must be at least 1m".into(),
            });
        }
        if self.evaluate_every.is_some_and(|d| d.is_zero()) {
            return Err(AlertsConfigError::Setting {
                field: "evaluate_every",
                message: "must be more than 0s".into(),
            });
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(AlertsConfigError::Setting {
                field: "public_url",
                message: "must start with http:// or https://".into(),
            });
        }
        let mut channels: std::collections::HashSet<&str> = more_channels.iter().copied().collect();
        for channel in &self.channels {
            if !valid_name(&channel.name) {
                return Err(AlertsConfigError::Channel {
                    channel: channel.name.clone(),
                    message: "name: 1 to 64 letters, digits, '-', '_' or '.'".into(),
                });
            }
            if !channels.insert(channel.name.as_str()) {
                return Err(AlertsConfigError::Channel {
                    channel: channel.name.clone(),
                    message: "name: used twice".into(),
                });
            }
        }
        let mut rules = std::collections::HashSet::new();
        let defaults = if self.default_rules {
            crate::alerts::rule::default_rules()
        } else {
            Vec::new()
        };
        for rule in defaults.iter().chain(&self.rules) {
            let refuse = |field, message: String| AlertsConfigError::Rule {
                rule: rule.name.clone(),
                error: RuleError { field, message },
            };
            rule.check().map_err(|error| AlertsConfigError::Rule {
                rule: rule.name.clone(),
                error,
            })?;
            if !rules.insert(rule.name.as_str()) {
                return Err(refuse(
                    "name",
                    "used twice (the default rules take cpu-*, ram-*, disk-* and offline; \
                     set default_rules = false to use those names)"
                        .into(),
                ));
            }
            if let Some(missing) = rule.channel_names().find(|c| !channels.contains(c)) {
                return Err(refuse(
                    "channels",
                    format!("no channel is named {missing:?}"),
                ));
            }
        }
        Ok(())
    }
}
