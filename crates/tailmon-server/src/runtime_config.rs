//! The settings a running server can change without a restart.

use crate::alerts::AlertsConfig;
use crate::auth::{DEFAULT_RATE_LIMIT_PER_ADDRESS, DEFAULT_RATE_LIMIT_PER_TOKEN, RateLimit};
use crate::store::Retention;

/// The settings a running server can change without a restart: given at
/// build ([`ServerBuilder::runtime_config`](crate::ServerBuilder::runtime_config)),
/// changed by [`Reloader::reload`](crate::Reloader::reload). The tokens and
/// users of the credentials file are re-read at each reload too.
///
/// Everything else (listen address, TLS, data directory, store, device
/// caps, authentication on or off…) is fixed for the life of a server.
///
/// ```
/// use tailmon_server::RuntimeConfig;
///
/// let mut config = RuntimeConfig::default();
/// config.thresholds.cpu_warning = 50.0;
/// assert!(config.check().is_ok());
/// config.thresholds.cpu_warning = 95.0; // above the critical 80
/// assert!(config.check().is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// What makes a device `warning` or `critical`; defaults to
    /// [`tailmon_core::Thresholds::default`] (CPU 60/80 %, RAM 70/90 %).
    pub thresholds: tailmon_core::Thresholds,
    /// How long each tier of history is kept; defaults to
    /// [`Retention::default`] (48 h, 30 days, a year). Applied by stores
    /// that keep these tiers ([`Store::set_retention`](crate::Store::set_retention)).
    pub retention: Retention,
    /// Requests per client address; `None` turns the limit off. Defaults to
    /// [`DEFAULT_RATE_LIMIT_PER_ADDRESS`].
    pub rate_limit_per_address: Option<RateLimit>,
    /// Requests per token; `None` turns the limit off. Defaults to
    /// [`DEFAULT_RATE_LIMIT_PER_TOKEN`].
    pub rate_limit_per_token: Option<RateLimit>,
    /// Alerting: rules, channels, repeat, public URL, evaluation period;
    /// defaults to [`AlertsConfig::default`].
    pub alerts: AlertsConfig,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            thresholds: tailmon_core::Thresholds::default(),
            retention: Retention::default(),
            rate_limit_per_address: Some(DEFAULT_RATE_LIMIT_PER_ADDRESS),
            rate_limit_per_token: Some(DEFAULT_RATE_LIMIT_PER_TOKEN),
            alerts: AlertsConfig::default(),
        }
    }
}

/// Why a [`RuntimeConfig`] is refused (at build or at a reload).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeConfigError {
    /// A setting is out of its allowed range; `setting` is its name in the
    /// configuration file (`cpu_warning`, `raw_retention`…).
    #[error("{setting}: {reason}")]
    Invalid {
        /// The setting's key.
        setting: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// The alerting settings are wrong.
    #[error(transparent)]
    Alerts(#[from] crate::alerts::AlertsConfigError),
}

impl RuntimeConfig {
    /// Checks every setting: thresholds are numbers from 0 to 100 with each
    /// warning at most its critical, each retention at least a minute (see
    /// [`Retention::check`]), and the alerting settings pass
    /// [`AlertsConfig::check`]. The first problem found is returned.
    pub fn check(&self) -> Result<(), RuntimeConfigError> {
        self.check_with(&[])
    }

    /// [`check`](Self::check), knowing of an application's own alert
    /// channels besides those of the settings.
    pub(crate) fn check_with(&self, more_channels: &[&str]) -> Result<(), RuntimeConfigError> {
        let t = &self.thresholds;
        for (setting, value) in [
            ("cpu_warning", t.cpu_warning),
            ("cpu_critical", t.cpu_critical),
            ("ram_warning", t.ram_warning),
            ("ram_critical", t.ram_critical),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(RuntimeConfigError::Invalid {
                    setting,
                    reason: format!("must be a percentage from 0 to 100, not {value}"),
                });
            }
        }
        for (setting, warning, critical) in [
            ("cpu_warning", t.cpu_warning, t.cpu_critical),
            ("ram_warning", t.ram_warning, t.ram_critical),
        ] {
            if warning > critical {
                return Err(RuntimeConfigError::Invalid {
                    setting,
                    reason: format!("{warning} is above the critical threshold {critical}"),
                });
            }
        }
        self.retention
            .check()
            .map_err(|(setting, reason)| RuntimeConfigError::Invalid {
                setting,
                reason: reason.to_owned(),
            })?;
        self.alerts.check_with(more_channels)?;
        Ok(())
    }
}
