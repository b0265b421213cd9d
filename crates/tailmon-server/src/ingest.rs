use std::sync::Arc;

use tailmon_core::Report;

use crate::device_admission::{Admission, DeviceAdmission};
use crate::{ApiError, Clock, Store};

/// The one way reports enter the server, shared by the HTTP handlers and
/// in-process agents: validate, stamp the receive time, admit the device,
/// store. Cheap to clone.
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tailmon_core::{OffsetDateTime, Report};
///
/// let server = tailmon_server::ServerBuilder::new().build()?;
/// let mut report = Report::new("in-process", OffsetDateTime::now_utc());
/// report.ram_used_mb = 1;
/// report.ram_total_mb = 2;
/// server.ingest().ingest(report).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<IngestInner>,
}

struct IngestInner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    admission: DeviceAdmission,
}

impl Ingest {
    pub(crate) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, max_devices: usize) -> Self {
        Self {
            inner: Arc::new(IngestInner {
                store,
                clock,
                admission: DeviceAdmission::new(max_devices),
            }),
        }
    }

    /// Validates and stores one report. `Ok` means the store has it.
    pub async fn ingest(&self, mut report: Report) -> Result<(), ApiError> {
        let now = self.inner.clock.now();
        report.validate(now)?;
        report.received_at = Some(now);
        let store = self.inner.store.as_ref();
        if let Admission::OverCap { cap } =
            self.inner.admission.admit(&report.device_id, store).await?
        {
            return Err(ApiError::TooManyDevices { cap });
        }
        tracing::debug!(device_id = %report.device_id, cpu = report.cpu_usage, "report accepted");
        store.insert(report).await?;
        Ok(())
    }

    /// The store reports go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
}
