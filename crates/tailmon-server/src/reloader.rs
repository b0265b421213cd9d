//! Changing a running server's [`RuntimeConfig`]: the [`Reloader`], what
//! a reload changed ([`ReloadSummary`]) and why one was refused
//! ([`ReloadError`]).

use std::sync::Arc;

use crate::alerts::{AlertEngine, ConfigChange};
use crate::auth::CredentialsError;
use crate::auth::guard::Guard;
use crate::{Ingest, RuntimeConfig, RuntimeConfigError};

/// Changes a running server's [`RuntimeConfig`] without a restart and
/// without dropping a connection: thresholds, retention, rate limits and
/// alerting, and the tokens and users of the credentials file, read anew.
/// Taken from [`Server::reloader`](crate::Server::reloader) before the
/// server is served; cheap to clone, and usable from any task.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tailmon_server::{RuntimeConfig, ServerBuilder};
///
/// let server = ServerBuilder::new().build()?;
/// let reloader = server.reloader();
/// // … serve `server`; then, on SIGHUP, from the configuration as it is now:
/// let mut config = RuntimeConfig::default();
/// config.thresholds.cpu_warning = 50.0;
/// let summary = reloader.reload(config.clone()).await?;
/// assert_eq!(summary.to_string(), "thresholds (0 statuses changed)");
/// assert!(summary.thresholds);
/// // The same again changes nothing.
/// assert!(reloader.reload(config).await?.is_empty());
/// // A wrong one is refused whole, and changes nothing.
/// let mut wrong = RuntimeConfig::default();
/// wrong.thresholds.ram_warning = f64::NAN;
/// assert!(reloader.reload(wrong).await.is_err());
/// # Ok(())
/// # }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Clone)]
pub struct Reloader {
    inner: Arc<ReloaderInner>,
}

struct ReloaderInner {
    ingest: Ingest,
    guard: Arc<Guard>,
    alerts: AlertEngine,
    /// Wakes the retention task for a pass soon after the retention changed.
    retention_pass: Arc<tokio::sync::Notify>,
    /// The configuration in force; held through a reload, so that reloads
    /// run one at a time.
    current: tokio::sync::Mutex<Current>,
}

/// The configuration in force, and whether the store was told its retention.
struct Current {
    config: RuntimeConfig,
    retention_given: bool,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

/// Why a reload was refused. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// A setting is wrong (see [`RuntimeConfig::check`]).
    #[error(transparent)]
    Invalid(#[from] RuntimeConfigError),
    /// The alerting settings cannot be used: a channel cannot be set up, the
    /// public URL does not parse, the alerts database cannot be read.
    #[error("alerts: {0}")]
    Alerts(String),
    /// The credentials file cannot be read or is damaged; the tokens and
    /// users in use are kept.
    #[error("credentials: {0}")]
    Credentials(#[from] CredentialsError),
}

/// What a reload changed. [`Display`](std::fmt::Display) gives one line for
/// the log: `thresholds (3 statuses changed), alert rules (2 added, 1
/// changed)`, or `nothing changed`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadSummary {
    /// The thresholds changed.
    pub thresholds: bool,
    /// Devices whose status changed with the thresholds.
    pub statuses_changed: usize,
    /// The retention changed (applied by the store at a pass run soon after).
    pub retention: bool,
    /// The rate limit per client address changed (new buckets).
    pub rate_limit_per_address: bool,
    /// The rate limit per token changed (new buckets).
    pub rate_limit_per_token: bool,
    /// What changed in alerting.
    pub alerts: ConfigChange,
    /// The tokens or users of the credentials file differ from those in use.
    pub credentials: bool,
}

impl ReloadSummary {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl std::fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.thresholds {
            parts.push(format!(
                "thresholds ({} statuses changed)",
                self.statuses_changed
            ));
        }
        if self.retention {
            parts.push("retention".into());
        }
        if self.rate_limit_per_address {
            parts.push("rate limit per address".into());
        }
        if self.rate_limit_per_token {
            parts.push("rate limit per token".into());
        }
        if !self.alerts.rules.is_empty() {
            parts.push(format!("alert rules ({})", self.alerts.rules));
        }
        if !self.alerts.channels.is_empty() {
            parts.push(format!("alert channels ({})", self.alerts.channels));
        }
        if self.alerts.settings {
            parts.push("alert settings".into());
        }
        if self.alerts.alerts_ended > 0 {
            parts.push(format!(
                "{} alerts ended with their rules",
                self.alerts.alerts_ended
            ));
        }
        if self.credentials {
            parts.push("tokens and users".into());
        }
        if parts.is_empty() {
            f.write_str("nothing changed")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What the server hands its reloader.
pub(crate) struct ReloaderParts {
    pub(crate) ingest: Ingest,
    pub(crate) guard: Arc<Guard>,
    pub(crate) alerts: AlertEngine,
    pub(crate) retention_pass: Arc<tokio::sync::Notify>,
    /// The configuration the server was built with.
    pub(crate) config: RuntimeConfig,
    /// Whether the builder set the store's retention to `config.retention`.
    pub(crate) retention_given: bool,
}

impl Reloader {
    pub(crate) fn new(parts: ReloaderParts) -> Self {
        Self {
            inner: Arc::new(ReloaderInner {
                ingest: parts.ingest,
                guard: parts.guard,
                alerts: parts.alerts,
                retention_pass: parts.retention_pass,
                current: tokio::sync::Mutex::new(Current {
                    config: parts.config,
                    retention_given: parts.retention_given,
                }),
            }),
        }
    }

    /// Applies what changed between the configuration in force and `new`,
    /// and reads the credentials file again (even when its time stamp did
    /// not change). Everything is checked first: on `Err`, nothing changed.
    /// Connections, sessions, live streams and queued notifications go on.
    ///
    /// - **Thresholds**: every device's status is recomputed at once; the
    ///   device list, `/api/all_metrics` and their `ETag`s, and live streams
    ///   (an event per device whose status changed) follow.
    /// - **Retention**: handed to the store
    ///   ([`Store::set_retention`](crate::Store::set_retention)), and a
    ///   retention pass runs soon after (with a router in use).
    /// - **Rate limits**: a changed limit starts afresh, with full buckets
    ///   of the new quota.
    /// - **Alerting**: rules and channels are swapped. An alert pending or
    ///   firing keeps its state (acknowledgement included) while a rule of
    ///   its name still watches its device and metric; any other ends: a
    ///   firing one is resolved and its channels told, a pending one is
    ///   dropped. Silences and history stay; notifications already queued
    ///   are delivered. `evaluate_every` takes effect at the next tick.
    /// - **Tokens and users**: the credentials file is read again, so a
    ///   token added or revoked there counts from the next request.
    ///
    /// Reloads run one at a time.
    pub async fn reload(&self, new: RuntimeConfig) -> Result<ReloadSummary, ReloadError> {
        let inner = &self.inner;
        let mut current = inner.current.lock().await;
        // Everything checked and made ready first.
        let application_channels = inner.alerts.application_channels();
        let names: Vec<&str> = application_channels.iter().map(String::as_str).collect();
        new.check_with(&names)?;
        let alerts = if new.alerts != current.config.alerts {
            Some(
                inner
                    .alerts
                    .prepare(new.alerts.clone())
                    .map_err(ReloadError::Alerts)?,
            )
        } else {
            None
        };
        let credentials = match inner.guard.credentials() {
            Some(credentials) => credentials.read_now()?,
            None => None,
        };
        // Then applied; nothing below fails.
        let mut summary = ReloadSummary::default();
        if new.thresholds != current.config.thresholds {
            summary.thresholds = true;
            summary.statuses_changed = inner.ingest.set_thresholds(new.thresholds);
        }
        if new.retention != current.config.retention || !current.retention_given {
            summary.retention = new.retention != current.config.retention;
            inner.ingest.store().set_retention(new.retention);
            current.retention_given = true;
            if summary.retention {
                inner.retention_pass.notify_one();
            }
        }
        if new.rate_limit_per_address != current.config.rate_limit_per_address {
            summary.rate_limit_per_address = true;
            inner
                .guard
                .set_rate_limit_per_address(new.rate_limit_per_address);
        }
        if new.rate_limit_per_token != current.config.rate_limit_per_token {
            summary.rate_limit_per_token = true;
            inner
                .guard
                .set_rate_limit_per_token(new.rate_limit_per_token);
        }
        if let Some(alerts) = alerts {
            summary.alerts = inner.alerts.reconfigure(alerts);
        }
        if let (Some(credentials), Some(reading)) = (inner.guard.credentials(), credentials) {
            summary.credentials = credentials.install(reading);
            if summary.credentials {
                // Organisations' limits may have changed from the command
                // line (device caps are read from the credentials as new
                // devices come).
                inner.guard.forget_unused_org_limits();
            }
        }
        current.config = new;
        Ok(summary)
    }

    /// The configuration in force: the one built with, or the last one
    /// reloaded.
    pub async fn current(&self) -> RuntimeConfig {
        self.inner.current.lock().await.config.clone()
    }
}
