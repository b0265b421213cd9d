use std::sync::Arc;

use crate::{Clock, Ingest, MemoryStore, Server, Store, SystemClock};

/// Largest request body accepted, in bytes: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Most devices the server tracks; reports of further new devices get 429: 10,000.
pub const DEFAULT_MAX_DEVICES: usize = 10_000;

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
    max_devices: usize,
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
            max_devices: DEFAULT_MAX_DEVICES,
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
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let ingest = Ingest::new(store, self.clock, self.max_devices);
        Ok(Server::new(ingest, self.max_body_bytes))
    }
}
