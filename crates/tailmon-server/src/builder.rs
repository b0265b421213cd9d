use std::sync::Arc;

use crate::server::ServerSettings;
use crate::{Clock, Ingest, MemoryStore, Server, Store, SystemClock};

/// Largest request body accepted, in bytes: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Most devices the server tracks; reports of further new devices get 429: 10,000.
pub const DEFAULT_MAX_DEVICES: usize = 10_000;
/// Largest batch body (`POST /api/v1/reports`), in bytes: 4 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The reporting interval the server expects of agents: 5 s. A device with no
/// report for three of them is `offline`.
pub const DEFAULT_EXPECTED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Builds a [`Server`]. Every setter documents its default; [`build`](Self::build)
/// checks the whole and returns an error rather than panicking.
///
/// ```
/// use std::sync::Arc;
/// use tailmon_server::{MemoryStore, ServerBuilder};
///
/// let server = ServerBuilder::new()
///     .store(Arc::new(MemoryStore::new()))
///     .max_devices(500)
///     .build()?;
/// let router: axum::Router = server.router();
/// # Ok::<(), tailmon_server::BuildError>(())
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
        }
    }

    /// Where reports are kept. Defaults to a new [`MemoryStore`].
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
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
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let ingest = Ingest::new(store, self.clock, self.max_devices);
        Ok(Server::new(
            ingest,
            ServerSettings {
                max_body_bytes: self.max_body_bytes,
                max_batch_bytes: self.max_batch_bytes,
                offline_after,
                thresholds: self.thresholds,
            },
        ))
    }
}
