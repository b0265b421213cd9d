use dashmap::DashSet;
use tokio::sync::{Mutex, OnceCell};

use crate::{Store, StoreError};

/// Admits reports of known devices and of new ones while there are fewer than
/// the cap, so a flood of made-up ids cannot exhaust memory.
pub(crate) struct DeviceAdmission {
    cap: usize,
    known: OnceCell<DashSet<Box<str>>>,
    admitting: Mutex<()>,
}

/// The outcome of asking to admit a device.
pub(crate) enum Admission {
    Admitted,
    OverCap { cap: usize },
}

impl DeviceAdmission {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            known: OnceCell::new(),
            admitting: Mutex::new(()),
        }
    }

    /// Frees the place of a deleted device.
    pub(crate) fn forget(&self, device_id: &str) {
        if let Some(known) = self.known.get() {
            known.remove(device_id);
        }
    }

    pub(crate) async fn admit(
        &self,
        device_id: &str,
        store: &dyn Store,
    ) -> Result<Admission, StoreError> {
        let known = self
            .known
            .get_or_try_init(|| async {
                Ok::<_, StoreError>(
                    store
                        .devices()
                        .await?
                        .into_iter()
                        .filter(|(org, _)| org.is_default())
                        .map(|(_, device_id)| device_id.into_boxed_str())
                        .collect(),
                )
            })
            .await?;
        if known.contains(device_id) {
            return Ok(Admission::Admitted);
        }
        let _one_at_a_time = self.admitting.lock().await;
        if known.contains(device_id) {
            return Ok(Admission::Admitted);
        }
        if known.len() >= self.cap {
            return Ok(Admission::OverCap { cap: self.cap });
        }
        known.insert(device_id.into());
        Ok(Admission::Admitted)
    }
}
