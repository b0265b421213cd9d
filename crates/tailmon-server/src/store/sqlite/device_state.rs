//! What the SQLite store keeps in memory of each device, shared by its writer
//! (the only one to change it) and its readers: the latest report, the raw
//! window not yet sealed into a block, and the rollup blocks being filled.
//!
//! Everything here is also in the database: a report is first committed to
//! the inbox table, and a checkpoint moves windows and blocks into their
//! tables. After a crash the inbox is replayed to rebuild this state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::DashMap;
use tailmon_core::{OrgId, Report};

use crate::store::rollup_block::RollupBlock;
use crate::store::sqlite::raw_window::RawWindow;

/// Every device the store holds, by organisation then device id.
#[derive(Default)]
pub(crate) struct Devices {
    by_org: DashMap<OrgId, DashMap<String, Arc<DeviceEntry>>>,
}

impl Devices {
    /// The device called `name` in `org`.
    pub(crate) fn get(&self, org: &OrgId, name: &str) -> Option<Arc<DeviceEntry>> {
        let devices = self.by_org.get(org)?;
        devices.get(name).map(|e| Arc::clone(e.value()))
    }

    /// Adds (or replaces) a device.
    pub(crate) fn insert(&self, entry: Arc<DeviceEntry>) {
        self.by_org
            .entry(entry.org.clone())
            .or_default()
            .insert(entry.name.clone(), entry);
    }

    /// Forgets a device.
    pub(crate) fn remove(&self, org: &OrgId, name: &str) {
        if let Some(devices) = self.by_org.get(org) {
            devices.remove(name);
        }
    }

    /// Every device, sorted by organisation then name.
    pub(crate) fn all(&self) -> Vec<Arc<DeviceEntry>> {
        let mut all = Vec::new();
        for devices in &self.by_org {
            all.extend(devices.iter().map(|e| Arc::clone(e.value())));
        }
        all.sort_by(|a, b| (&a.org, &a.name).cmp(&(&b.org, &b.name)));
        all
    }

    /// Every device as (organisation, name), in no order.
    pub(crate) fn names(&self) -> Vec<(OrgId, String)> {
        let mut all = Vec::new();
        for devices in &self.by_org {
            all.extend(
                devices
                    .iter()
                    .map(|e| (devices.key().clone(), e.key().clone())),
            );
        }
        all
    }
}

/// One device: its row id, its organisation, its name and its in-memory
/// state.
pub(crate) struct DeviceEntry {
    pub(crate) id: i64,
    pub(crate) org: OrgId,
    pub(crate) name: String,
    state: Mutex<DeviceState>,
}

impl DeviceEntry {
    pub(crate) fn new(id: i64, org: OrgId, name: String, state: DeviceState) -> Self {
        Self {
            id,
            org,
            name,
            state: Mutex::new(state),
        }
    }

    /// The state, for a moment: hold it only to copy or change it, never
    /// across a database call made for a reader.
    pub(crate) fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The in-memory part of one device.
pub(crate) struct DeviceState {
    /// The report with the newest `last_seen`.
    pub(crate) latest: Option<Report>,
    /// Whether `latest` changed since the last checkpoint.
    pub(crate) latest_dirty: bool,
    /// Reports not yet sealed into a raw block.
    pub(crate) window: RawWindow,
    /// Rollup blocks held in memory, by (tier code, block start): the ones
    /// being filled, and any changed since the last checkpoint.
    pub(crate) rollups: BTreeMap<(u8, i64), HeldBlock>,
    /// The newest timestamp (ms) in any sealed raw block of the device.
    pub(crate) sealed_newest: i64,
    /// The newest inbox sequence number applied to this state.
    pub(crate) applied_seq: i64,
    /// The newest inbox sequence number whose effects are in the tables.
    pub(crate) sealed_seq: i64,
}

impl DeviceState {
    /// A device's state as its tables leave it.
    pub(crate) fn stored(latest: Option<Report>, sealed_newest: i64, sealed_seq: i64) -> Self {
        Self {
            latest,
            latest_dirty: false,
            window: RawWindow::default(),
            rollups: BTreeMap::new(),
            sealed_newest,
            applied_seq: sealed_seq,
            sealed_seq,
        }
    }

    /// Keeps `report` as the latest if it is newer than the one held.
    pub(crate) fn offer_latest(&mut self, report: Report) {
        if self
            .latest
            .as_ref()
            .is_none_or(|l| report.last_seen >= l.last_seen)
        {
            self.latest = Some(report);
            self.latest_dirty = true;
        }
    }

    /// The key of the newest rollup block held of each tier: the ones the
    /// device is filling.
    pub(crate) fn newest_blocks(&self) -> Vec<(u8, i64)> {
        let mut newest: Vec<(u8, i64)> = Vec::with_capacity(2);
        for &key in self.rollups.keys() {
            match newest.iter_mut().find(|k| k.0 == key.0) {
                Some(k) => k.1 = k.1.max(key.1),
                None => newest.push(key),
            }
        }
        newest
    }

    /// Whether anything here is not yet in the tables.
    pub(crate) fn is_dirty(&self) -> bool {
        self.latest_dirty
            || !self.window.is_empty()
            || self.applied_seq > self.sealed_seq
            || self.rollups.values().any(|b| b.dirty)
    }
}

/// A rollup block in memory, and whether it changed since it was stored.
#[derive(Clone)]
pub(crate) struct HeldBlock {
    pub(crate) block: RollupBlock,
    pub(crate) dirty: bool,
}
