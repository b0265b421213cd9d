use std::sync::Arc;

#[cfg(doc)]
use crate::Reloader;
use crate::alerts::alert_db::AlertDb;
use crate::alerts::engine::{AlertEngine, EngineParts};
use crate::alerts::{AlertsConfig, Notifier, OrgAlerts};
use crate::auth::edge_layer::EdgeSettings;
use crate::auth::guard::{
    DEFAULT_MAX_DEVICES_PER_TOKEN, DEFAULT_SESSION_TTL, Guard, GuardSettings,
};
use crate::auth::host_check::AllowedHosts;
#[cfg(doc)]
use crate::auth::password_checks::PASSWORD_CHECK_WAIT;
use crate::auth::password_checks::default_max_password_checks;
use crate::auth::rate_limit::{
    DEFAULT_RATE_LIMIT_PER_ADDRESS, DEFAULT_RATE_LIMIT_PER_TOKEN, RateLimit,
};
use crate::http::security_headers;
use crate::refusal_log::RefusalLog;
use crate::server::ServerSettings;
use crate::store::Retention;
use crate::views::{Owner, PreferenceStore};
use crate::{
    Clock, Credentials, Ingest, MemoryStore, RuntimeConfig, RuntimeConfigError, Server, Store,
    SystemClock,
};
use tailmon_core::OrgId;

pub use crate::api::json_body::DEFAULT_MAX_BODY_BYTES;
/// Most devices the server tracks; reports of further new devices get 429: 10,000.
pub const DEFAULT_MAX_DEVICES: usize = 10_000;
/// Largest batch body (`POST /api/v1/reports`), in bytes: 4 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The shortest [`ServerBuilder::fleet_refresh`] period but zero (off):
/// 100 ms.
pub const MIN_FLEET_REFRESH: std::time::Duration = std::time::Duration::from_millis(100);
/// The reporting interval the server expects of agents: 5 s. A device with no
/// report for three of them is `offline`.
pub const DEFAULT_EXPECTED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds a [`Server`]. Every setter documents its default; [`build`](Self::build)
/// checks the whole and returns an error rather than panicking.
///
/// ```
/// use std::sync::Arc;
/// use tailmon_server::{Credentials, MemoryStore, ServerBuilder};
///
/// let server = ServerBuilder::new()
///     .store(MemoryStore::new())
///     .credentials(Arc::new(Credentials::open(std::env::temp_dir().join("tailmon-doc"))?))
///     .max_devices(500)
///     .build()?;
/// let router: axum::Router = server.router();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct ServerBuilder {
    store: Option<Arc<dyn Store>>,
    clock: Arc<dyn Clock>,
    max_body_bytes: usize,
    max_batch_bytes: usize,
    max_devices: usize,
    expected_interval: std::time::Duration,
    thresholds: tailmon_core::Thresholds,
    auth: AuthChoice,
    session_ttl: std::time::Duration,
    secure_cookies: bool,
    max_devices_per_token: usize,
    rate_limit_per_address: Option<RateLimit>,
    rate_limit_per_token: Option<RateLimit>,
    max_password_checks: usize,
    allowed_hosts: Vec<String>,
    hsts: Option<std::time::Duration>,
    preferences: Option<Arc<PreferenceStore>>,
    alerts: AlertsConfig,
    alert_channels: Vec<(String, Arc<dyn Notifier>)>,
    alerts_database: Option<std::path::PathBuf>,
    /// Set by [`ServerBuilder::runtime_config`]: handed to the store at build.
    retention: Option<Retention>,
    fleet_refresh: std::time::Duration,
}

/// Whether and how callers are authenticated.
enum AuthChoice {
    /// Not said: authentication on, with credentials only in memory.
    Default,
    Open,
    Credentials(Arc<Credentials>),
}

/// Why [`ServerBuilder::build`] refused its settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is out of its allowed range.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// The setter's name.
        setting: &'static str,
        /// Why the value is refused.
        reason: &'static str,
    },
    /// The alerting settings are wrong, or its database cannot be opened.
    #[error("alerts: {0}")]
    Alerts(String),
    /// A setting of the [`RuntimeConfig`] is wrong (thresholds, retention).
    #[error("invalid setting {0}")]
    RuntimeConfig(RuntimeConfigError),
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            AuthChoice::Default => "credentials in memory",
            AuthChoice::Open => "open access",
            AuthChoice::Credentials(_) => "credentials given",
        };
        f.debug_struct("ServerBuilder")
            .field("store_given", &self.store.is_some())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_devices", &self.max_devices)
            .field("expected_interval", &self.expected_interval)
            .field("thresholds", &self.thresholds)
            .field("auth", &auth)
            .field("session_ttl", &self.session_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("max_devices_per_token", &self.max_devices_per_token)
            .field("rate_limit_per_address", &self.rate_limit_per_address)
            .field("rate_limit_per_token", &self.rate_limit_per_token)
            .field("max_password_checks", &self.max_password_checks)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("hsts", &self.hsts)
            .field("preferences", &self.preferences)
            .field("alerts", &self.alerts)
            .field("alerts_database", &self.alerts_database)
            .field("retention", &self.retention)
            .field("fleet_refresh", &self.fleet_refresh)
            .finish_non_exhaustive()
    }
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Self {
            store: None,
            clock: Arc::new(SystemClock),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_devices: DEFAULT_MAX_DEVICES,
            expected_interval: DEFAULT_EXPECTED_INTERVAL,
            thresholds: tailmon_core::Thresholds::default(),
            auth: AuthChoice::Default,
            session_ttl: DEFAULT_SESSION_TTL,
            secure_cookies: false,
            max_devices_per_token: DEFAULT_MAX_DEVICES_PER_TOKEN,
            rate_limit_per_address: Some(DEFAULT_RATE_LIMIT_PER_ADDRESS),
            rate_limit_per_token: Some(DEFAULT_RATE_LIMIT_PER_TOKEN),
            max_password_checks: default_max_password_checks(),
            allowed_hosts: Vec::new(),
            hsts: None,
            preferences: None,
            alerts: AlertsConfig::default(),
            alert_channels: Vec::new(),
            alerts_database: None,
            retention: None,
            fleet_refresh: std::time::Duration::ZERO,
        }
    }

    /// Every setting a running server can change (see [`Reloader`]) at
    /// once: [`thresholds`](Self::thresholds),
    /// [`rate_limit_per_address`](Self::rate_limit_per_address),
    /// [`rate_limit_per_token`](Self::rate_limit_per_token),
    /// [`alerts`](Self::alerts), and the store's retention, handed to it at
    /// [`build`](Self::build) ([`Store::set_retention`]). The single
    /// setters called after it change their part. Checked at `build`.
    ///
    /// Without it, the store keeps the retention it was opened with.
    pub fn runtime_config(mut self, config: RuntimeConfig) -> Self {
        let RuntimeConfig {
            thresholds,
            retention,
            rate_limit_per_address,
            rate_limit_per_token,
            alerts,
        } = config;
        self.thresholds = thresholds;
        self.retention = Some(retention);
        self.rate_limit_per_address = rate_limit_per_address;
        self.rate_limit_per_token = rate_limit_per_token;
        self.alerts = alerts;
        self
    }

    /// Alerting: rules, channels, repeat interval, the dashboard's public
    /// address for links (usually the `[alerts]` section of a
    /// [`ConfigFile`](crate::ConfigFile)). Checked at [`build`](Self::build).
    /// Defaults to [`AlertsConfig::default`]: the default rules (CPU 60/80 %,
    /// RAM 70/90 %, disks 80/90 %, offline), no channel, a 4 h repeat, links
    /// to `http://localhost:3000/`.
    pub fn alerts(mut self, config: AlertsConfig) -> Self {
        self.alerts = config;
        self
    }

    /// A channel of the application's own, named `name` for rules: any
    /// [`Notifier`]. Read-only in the dashboard. Defaults to none.
    pub fn alert_channel(mut self, name: impl Into<String>, notifier: Arc<dyn Notifier>) -> Self {
        self.alert_channels.push((name.into(), notifier));
        self
    }

    /// Where alerting keeps its state (alerts under way, history, silences,
    /// acknowledgements, dashboard rules and channels) across restarts:
    /// usually `<data-dir>/`[`alerts.db`](crate::alerts::ALERTS_DATABASE_FILE).
    /// Defaults to `None`: kept in memory only.
    #[cfg(feature = "sqlite")]
    pub fn alerts_database(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.alerts_database = Some(path.into());
        self
    }

    /// Where each user's dashboard preferences (`/api/v1/preferences`) are
    /// kept: [`PreferenceStore::open`] of the data directory to keep them
    /// across restarts. Defaults to [`PreferenceStore::in_memory`].
    ///
    /// When the [`credentials`](Self::credentials) are kept in a file, the
    /// preferences of users and tokens they no longer hold (removed while
    /// the server was down) are forgotten at [`build`](Self::build).
    pub fn preferences(mut self, preferences: Arc<PreferenceStore>) -> Self {
        self.preferences = Some(preferences);
        self
    }

    /// Most password checks (sign-ins, and admins setting passwords) that
    /// run at once; each takes 19 MiB and tens of milliseconds of a core.
    /// An attempt that finds none free within [`PASSWORD_CHECK_WAIT`] is
    /// answered 503 with `Retry-After`, so a crowd of sign-ins from many
    /// addresses cannot exhaust memory. Defaults to
    /// [`default_max_password_checks`]: one per core. Must be at least 1.
    pub fn max_password_checks(mut self, checks: usize) -> Self {
        self.max_password_checks = checks;
        self
    }

    /// With authentication off ([`open_access`](Self::open_access)), the
    /// host names the server answers to besides `localhost`, `*.localhost`
    /// and IP addresses; a request with another `Host` gets 403, so that a
    /// web page cannot reach the server through DNS rebinding. `*` allows
    /// any. Defaults to none. With authentication on, every host is
    /// answered: a foreign page never has the session cookie.
    pub fn allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Sends `Strict-Transport-Security: max-age=…` on every answer, so
    /// that browsers reach the server over HTTPS only for `max_age`. Set it
    /// only when the server is reached over TLS alone (its own, or a
    /// proxy's). Defaults to `None`: not sent.
    pub fn strict_transport_security(mut self, max_age: Option<std::time::Duration>) -> Self {
        self.hsts = max_age;
        self
    }

    /// Who may use the server: every route but `/healthz`, `/readyz`, the login page
    /// and its assets then needs a token or a signed-in user (see
    /// [`Access`](crate::auth::Access)). Defaults to authentication on with
    /// [`Credentials::in_memory`], empty: nobody gets in until tokens or
    /// users are added to credentials given here.
    pub fn credentials(mut self, credentials: Arc<Credentials>) -> Self {
        self.auth = AuthChoice::Credentials(credentials);
        self
    }

    /// Turns authentication off: anybody who reaches the server may send
    /// reports, read everything and delete devices, as in the original
    /// Tailmon. Only for trusted networks.
    pub fn open_access(mut self) -> Self {
        self.auth = AuthChoice::Open;
        self
    }

    /// How long a login lasts. Defaults to [`DEFAULT_SESSION_TTL`].
    pub fn session_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Marks the session cookie `Secure` (sent over HTTPS only); set it
    /// when serving TLS or behind a TLS-terminating proxy. Defaults to `false`.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Most distinct devices one agent token may write (since the server
    /// started), unless the token sets its own. Defaults to
    /// [`DEFAULT_MAX_DEVICES_PER_TOKEN`]. Must be at least 1.
    pub fn max_devices_per_token(mut self, devices: usize) -> Self {
        self.max_devices_per_token = devices;
        self
    }

    /// Rate limit per client address (429 with `Retry-After` beyond it);
    /// `None` turns it off. Defaults to [`DEFAULT_RATE_LIMIT_PER_ADDRESS`].
    /// Behind a reverse proxy every client has the proxy's address.
    pub fn rate_limit_per_address(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit_per_address = limit;
        self
    }

    /// Rate limit per token; `None` turns it off. Defaults to
    /// [`DEFAULT_RATE_LIMIT_PER_TOKEN`].
    pub fn rate_limit_per_token(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit_per_token = limit;
        self
    }

    /// Where reports are kept: any [`Store`], or an `Arc` of one that the
    /// application keeps using too. An `Arc<dyn Store>` is kept as it is,
    /// not wrapped once more. Defaults to a new [`MemoryStore`].
    pub fn store<S: Store>(mut self, store: S) -> Self {
        let mut slot = Some(store);
        let shared = (&mut slot as &mut dyn std::any::Any)
            .downcast_mut::<Option<Arc<dyn Store>>>()
            .and_then(Option::take);
        self.store = shared.or_else(|| slot.map(|store| Arc::new(store) as Arc<dyn Store>));
        self
    }

    /// How often the server reads what changed in its store
    /// ([`Ingest::refresh_fleet`]), for servers that share one store
    /// (replicas over one engine, see docs/scaling.md): what another
    /// server stored appears in this one's dashboard, APIs, `GET /metrics`,
    /// live stream and alerts within this period, and a device deleted
    /// through another disappears. Each refresh reads the devices with
    /// recent reports and the latest reports of those that changed
    /// ([`Store::newest_since`](crate::Store::newest_since),
    /// [`Store::latest_of_many`](crate::Store::latest_of_many)). Defaults
    /// to zero: off, as a server alone with its store sees every report
    /// itself. At least [`MIN_FLEET_REFRESH`] when on.
    pub fn fleet_refresh(mut self, every: std::time::Duration) -> Self {
        self.fleet_refresh = every;
        self
    }

    /// The clock for receive stamps and the future-skew rule. Defaults to [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Largest request body, in bytes; larger ones get 413. Defaults to
    /// [`DEFAULT_MAX_BODY_BYTES`]. Must be at least 1 KiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Largest body of a batch of reports, in bytes. Defaults to
    /// [`DEFAULT_MAX_BATCH_BYTES`]. Must be at least the single-report limit.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// The reporting interval agents use; a device silent for three of them
    /// is `offline`. Defaults to [`DEFAULT_EXPECTED_INTERVAL`]. Must not be zero.
    pub fn expected_interval(mut self, interval: std::time::Duration) -> Self {
        self.expected_interval = interval;
        self
    }

    /// The thresholds behind each device's status. Defaults to the original's
    /// ([`tailmon_core::Thresholds::default`]).
    pub fn thresholds(mut self, thresholds: tailmon_core::Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// Most devices tracked; a new device beyond it gets 429 while known ones
    /// keep reporting. Defaults to [`DEFAULT_MAX_DEVICES`]. Must be at least 1.
    pub fn max_devices(mut self, devices: usize) -> Self {
        self.max_devices = devices;
        self
    }

    /// Checks the settings and builds the server.
    pub fn build(self) -> Result<Server, BuildError> {
        if self.max_body_bytes < 1024 {
            return Err(BuildError::InvalidSetting {
                setting: "max_body_bytes",
                reason: "must be at least 1024 bytes",
            });
        }
        if self.max_devices == 0 {
            return Err(BuildError::InvalidSetting {
                setting: "max_devices",
                reason: "must be at least 1",
            });
        }
        if self.max_batch_bytes < self.max_body_bytes {
            return Err(BuildError::InvalidSetting {
                setting: "max_batch_bytes",
                reason: "must be at least max_body_bytes",
            });
        }
        let offline_after = time::Duration::try_from(self.expected_interval.saturating_mul(3))
            .ok()
            .filter(|d| d.is_positive())
            .ok_or(BuildError::InvalidSetting {
                setting: "expected_interval",
                reason: "must be more than zero and at most a few years",
            })?;
        if !self.fleet_refresh.is_zero() && self.fleet_refresh < MIN_FLEET_REFRESH {
            return Err(BuildError::InvalidSetting {
                setting: "fleet_refresh",
                reason: "must be zero (off) or at least 100 ms",
            });
        }
        if self.max_devices_per_token == 0 {
            return Err(BuildError::InvalidSetting {
                setting: "max_devices_per_token",
                reason: "must be at least 1",
            });
        }
        let session_ttl = time::Duration::try_from(self.session_ttl)
            .ok()
            .filter(|d| d.is_positive() && *d <= time::Duration::days(366))
            .ok_or(BuildError::InvalidSetting {
                setting: "session_ttl",
                reason: "must be more than zero and at most a year",
            })?;
        let runtime = RuntimeConfig {
            thresholds: self.thresholds,
            retention: self.retention.unwrap_or_default(),
            rate_limit_per_address: self.rate_limit_per_address,
            rate_limit_per_token: self.rate_limit_per_token,
            alerts: self.alerts.clone(),
        };
        // The alerting settings are checked with the application's channels
        // below, by the engine.
        RuntimeConfig {
            alerts: AlertsConfig::default(),
            ..runtime.clone()
        }
        .check()
        .map_err(BuildError::RuntimeConfig)?;
        if self.max_password_checks == 0 {
            return Err(BuildError::InvalidSetting {
                setting: "max_password_checks",
                reason: "must be at least 1",
            });
        }
        let credentials = match self.auth {
            AuthChoice::Default => Some(Arc::new(Credentials::in_memory())),
            AuthChoice::Open => None,
            AuthChoice::Credentials(c) => Some(c),
        };
        let edge = EdgeSettings {
            allowed_hosts: credentials
                .is_none()
                .then(|| AllowedHosts::new(&self.allowed_hosts)),
            hsts: self.hsts.map(security_headers::strict_transport_security),
            refused_hosts: RefusalLog::default(),
        };
        let credentials_in_a_file = credentials.as_ref().filter(|c| c.path().is_some()).cloned();
        let org_limits = credentials.clone();
        let guard = Guard::new(GuardSettings {
            credentials,
            clock: self.clock.clone(),
            session_ttl,
            secure_cookies: self.secure_cookies,
            max_devices_per_token: self.max_devices_per_token,
            per_address: self.rate_limit_per_address,
            per_token: self.rate_limit_per_token,
            max_password_checks: self.max_password_checks,
        });
        let preferences = self
            .preferences
            .unwrap_or_else(|| Arc::new(PreferenceStore::in_memory()));
        if let Some(credentials) = credentials_in_a_file {
            // Each user's and token's choices, in the organisations they
            // (still) belong to.
            let users: std::collections::HashSet<(OrgId, String)> = credentials
                .all_users()
                .into_iter()
                .flat_map(|u| {
                    u.memberships
                        .into_keys()
                        .map(move |org| (org, u.username.clone()))
                })
                .collect();
            let tokens: std::collections::HashSet<(OrgId, String)> = credentials
                .tokens()
                .into_iter()
                .map(|t| (t.org, t.id))
                .collect();
            let kept = preferences.retain_in(|org, owner| match owner {
                Owner::User(name) => users.contains(&(org.clone(), name.clone())),
                Owner::Token(id) => tokens.contains(&(org.clone(), id.clone())),
                _ => true,
            });
            if let Err(error) = kept {
                tracing::warn!(%error, "could not forget the preferences of removed users");
            }
        }
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        if let Some(retention) = self.retention {
            store.set_retention(retention);
        }
        let db = match &self.alerts_database {
            #[cfg(feature = "sqlite")]
            Some(path) => AlertDb::open(path).map_err(|e| BuildError::Alerts(e.to_string()))?,
            _ => AlertDb::in_memory(),
        };
        let alerts = AlertEngine::new(EngineParts {
            config: self.alerts,
            app_channels: self.alert_channels,
            clock: self.clock.clone(),
            store: store.clone(),
            offline_after,
            db,
        })
        .and_then(OrgAlerts::new)
        .map_err(BuildError::Alerts)?;
        let metrics = Arc::new(crate::telemetry::ServerMetrics::new(self.clock.clone()));
        let ingest = Ingest::new(
            store,
            self.clock,
            self.max_devices,
            offline_after,
            self.thresholds,
            metrics,
        );
        if let Some(credentials) = org_limits {
            // Read when a device is new, so that the owner's changes and a
            // reload of the credentials count from the next device on.
            ingest.set_device_caps(move |org| {
                credentials
                    .organisation(org)
                    .and_then(|info| info.limits.max_devices)
            });
        }
        Ok(Server::new(
            ingest,
            ServerSettings {
                max_body_bytes: self.max_body_bytes,
                max_batch_bytes: self.max_batch_bytes,
                fleet_refresh: (!self.fleet_refresh.is_zero()).then_some(self.fleet_refresh),
            },
            guard,
            edge,
            preferences,
            alerts,
            (runtime, self.retention.is_some()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_store_is_kept_as_it_is() {
        let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let server = ServerBuilder::new()
            .store(shared.clone())
            .build()
            .expect("valid");
        assert!(Arc::ptr_eq(server.ingest().store(), &shared));
        let server = ServerBuilder::new()
            .store(MemoryStore::new())
            .build()
            .expect("valid");
        assert!(!Arc::ptr_eq(server.ingest().store(), &shared));
    }
}
