//! What the SQLite store keeps in memory of each device, shared by its writer
//! (the only one to change it) and its readers: which inbox rows hold its
//! reports not yet sealed into blocks, and a few timestamps.
//!
//! Everything else is in the database: a report is committed to the inbox
//! table, and a checkpoint moves each device's rows into a raw block and its
//! rollup blocks. At open this state is rebuilt from the inbox's
//! `(seq, device, ts)` columns, without decoding any report.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::DashMap;
use tailmon_core::OrgId;

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

/// The in-memory part of one device: only where its unsealed reports are
/// (their inbox rows) and a few timestamps, so that a device costs a few
/// hundred bytes however much it reports; the reports themselves stay in
/// the inbox table until a checkpoint seals them.
#[derive(Default)]
pub(crate) struct DeviceState {
    /// Its inbox rows not yet sealed.
    pub(crate) pending: PendingRows,
    /// The `last_seen` (ms) of the latest report stored in the devices
    /// table, `i64::MIN` if none.
    pub(crate) stored_latest: i64,
    /// The newest timestamp (ms) in any sealed raw block of the device.
    pub(crate) sealed_newest: i64,
}

impl DeviceState {
    /// A device's state as its tables leave it, before its inbox rows are
    /// counted.
    pub(crate) fn stored(stored_latest: i64, sealed_newest: i64) -> Self {
        Self {
            pending: PendingRows::default(),
            stored_latest,
            sealed_newest,
        }
    }

    /// The inbox row holding the latest report, if the inbox has one newer
    /// than the devices table's.
    pub(crate) fn latest_pending(&self) -> Option<i64> {
        (!self.pending.is_empty() && self.pending.newest >= self.stored_latest)
            .then_some(self.pending.newest_seq)
    }
}

/// A device's inbox rows not yet sealed: their sequence numbers (as 32-bit
/// steps from the first, four bytes a report), and the range of their
/// timestamps.
#[derive(Default, Clone)]
pub(crate) struct PendingRows {
    base: i64,
    steps: Vec<u32>,
    /// The oldest and newest timestamps (ms) among them.
    pub(crate) oldest: i64,
    pub(crate) newest: i64,
    /// The row of the newest one.
    pub(crate) newest_seq: i64,
}

impl PendingRows {
    /// Counts the row `seq` holding a report stamped `ts` (ms). Rows come in
    /// increasing `seq`.
    pub(crate) fn push(&mut self, seq: i64, ts: i64) {
        if self.steps.is_empty() {
            self.base = seq;
            (self.oldest, self.newest, self.newest_seq) = (ts, ts, seq);
        } else {
            self.oldest = self.oldest.min(ts);
            if ts >= self.newest {
                (self.newest, self.newest_seq) = (ts, seq);
            }
        }
        // The writer numbers rows one by one and empties the inbox at every
        // checkpoint, so four billion rows of one device in between cannot
        // happen; saturating keeps a bad number from wrapping.
        let step = u32::try_from(seq - self.base).unwrap_or(u32::MAX);
        self.steps.push(step);
    }

    /// How many rows.
    pub(crate) fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether a report stamped `ts` may be among them (its timestamp is in
    /// their range).
    pub(crate) fn may_hold(&self, ts: i64) -> bool {
        !self.is_empty() && (self.oldest..=self.newest).contains(&ts)
    }

    /// The sequence number of the first row, if any: it changes only when
    /// the rows are sealed or deleted and new ones come.
    pub(crate) fn first_seq(&self) -> Option<i64> {
        (!self.is_empty()).then_some(self.base)
    }

    /// Their sequence numbers, oldest row first.
    pub(crate) fn seqs(&self) -> impl Iterator<Item = i64> + '_ {
        self.steps.iter().map(|&s| self.base + i64::from(s))
    }

    /// Forgets them (sealed or deleted).
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}
