use std::collections::HashSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use tailmon_core::OrgId;
use tokio::sync::{Mutex, OnceCell};

use crate::{Store, StoreError};

/// Admits reports of known devices and of new ones while there are fewer than
/// the caps (the organisation's, and the server-wide one over every
/// organisation), so a flood of made-up ids cannot exhaust memory.
pub(crate) struct DeviceAdmission {
    /// The server-wide cap.
    cap: usize,
    /// Where organisations' own caps are read (the owner's limits), asked
    /// only when a device is new.
    org_caps: OnceLock<OrgCaps>,
    known: OnceCell<DashMap<OrgId, HashSet<Box<str>>>>,
    /// Devices known, over every organisation.
    total: AtomicUsize,
    admitting: Mutex<()>,
}

/// An organisation's own device cap, if it has one.
pub(crate) type OrgCaps = Box<dyn Fn(&OrgId) -> Option<usize> + Send + Sync>;

/// The outcome of asking to admit a device.
pub(crate) enum Admission {
    Admitted,
    OverCap { cap: usize },
}

impl DeviceAdmission {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            org_caps: OnceLock::new(),
            known: OnceCell::new(),
            total: AtomicUsize::new(0),
            admitting: Mutex::new(()),
        }
    }

    /// Makes `caps` where organisations' own device caps are read, once
    /// (later calls are ignored). Devices over a lowered cap stay; new ones
    /// wait until there is room.
    pub(crate) fn set_org_caps(&self, caps: OrgCaps) {
        let _ = self.org_caps.set(caps);
    }

    /// Frees the place of a deleted device.
    pub(crate) fn forget(&self, org: &OrgId, device_id: &str) {
        if let Some(known) = self.known.get()
            && let Some(mut devices) = known.get_mut(org)
            && devices.remove(device_id)
        {
            self.total.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Counts a device another server over the same store admitted (seen
    /// by a fleet refresh), so that the caps count it here too; nothing
    /// happens before the first admission has read the store's devices,
    /// which hold it.
    pub(crate) fn note(&self, org: &OrgId, device_id: &str) {
        if let Some(known) = self.known.get()
            && known
                .entry(org.clone())
                .or_default()
                .insert(device_id.into())
        {
            self.total.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub(crate) async fn admit(
        &self,
        org: &OrgId,
        device_id: &str,
        store: &dyn Store,
    ) -> Result<Admission, StoreError> {
        let known = self
            .known
            .get_or_try_init(|| async {
                let known: DashMap<OrgId, HashSet<Box<str>>> = DashMap::new();
                let mut total = 0;
                for (org, device_id) in store.devices().await? {
                    if known
                        .entry(org)
                        .or_default()
                        .insert(device_id.into_boxed_str())
                    {
                        total += 1;
                    }
                }
                self.total.store(total, Ordering::Release);
                Ok::<_, StoreError>(known)
            })
            .await?;
        let is_known = |known: &DashMap<OrgId, HashSet<Box<str>>>| {
            known
                .get(org)
                .is_some_and(|devices| devices.contains(device_id))
        };
        if is_known(known) {
            return Ok(Admission::Admitted);
        }
        let _one_at_a_time = self.admitting.lock().await;
        if is_known(known) {
            return Ok(Admission::Admitted);
        }
        if self.total.load(Ordering::Acquire) >= self.cap {
            return Ok(Admission::OverCap { cap: self.cap });
        }
        if let Some(cap) = self.org_caps.get().and_then(|caps| caps(org)) {
            let count = known.get(org).map_or(0, |devices| devices.len());
            if count >= cap {
                return Ok(Admission::OverCap { cap });
            }
        }
        known
            .entry(org.clone())
            .or_default()
            .insert(device_id.into());
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(Admission::Admitted)
    }
}
