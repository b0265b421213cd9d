//! The fleet read anew from the store, for servers that share one store
//! (replicas over one engine): what the others stored is offered to this
//! server's fleet, and what they deleted is forgotten.

use std::collections::{HashMap, HashSet};

use tailmon_core::OrgId;

use crate::StoreError;
use crate::ingest::Ingest;

/// What one [`Ingest::refresh_fleet`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetRefresh {
    /// Devices whose latest report was new to this server (stored by
    /// another, or before this server read the store).
    pub offered: usize,
    /// Devices forgotten: the store no longer has them (deleted elsewhere).
    pub removed: usize,
}

impl Ingest {
    /// Reads every device's latest report from the store ([`Store::latest`](crate::Store::latest))
    /// and brings this server's fleet in line, as readers of every replica
    /// over a shared store must see it: a report newer than the one this
    /// server holds is offered to the fleet (and so to the dashboard, the
    /// APIs, `GET /metrics`, live readers and the alert engine) as if it
    /// had been received here, but it is not stored again nor counted as
    /// received; a device the store no longer has is forgotten, as if it
    /// had been deleted here (its alerts end quietly).
    ///
    /// A report stored through this server while the store is read is not
    /// mistaken for a deletion, nor is a device deleted through this server
    /// meanwhile brought back. What a refreshed report cannot carry:
    /// the clock-skew flag and the agent instance (only the server that
    /// received the report knows them).
    ///
    /// Counted in `GET /metrics` (`tailmon_fleet_refreshes_total` and
    /// the families after it). [`ServerBuilder::fleet_refresh`](crate::ServerBuilder::fleet_refresh)
    /// runs it periodically; call it directly to refresh at once.
    pub async fn refresh_fleet(&self) -> Result<FleetRefresh, StoreError> {
        let started = std::time::Instant::now();
        let result = self.refresh_fleet_once().await;
        let counts = result
            .as_ref()
            .ok()
            .map(|outcome| (outcome.offered, outcome.removed));
        self.inner
            .metrics
            .fleet_refreshed(counts, started.elapsed());
        result
    }

    async fn refresh_fleet_once(&self) -> Result<FleetRefresh, StoreError> {
        let inner = &self.inner;
        let fleets = self.fleets().await?;
        // Read before the store: a device offered after this is kept.
        let since: HashMap<OrgId, u64> = fleets
            .all()
            .into_iter()
            .map(|(org, fleet)| (org, fleet.generation()))
            .collect();
        let latest = inner.store.latest().await?;
        let now = inner.clock.now();
        let mut outcome = FleetRefresh::default();
        let mut present: HashMap<&OrgId, HashSet<&str>> = HashMap::new();
        for (org, report) in &latest {
            present
                .entry(org)
                .or_default()
                .insert(report.device_id.as_str());
            let fleet = fleets.of(org);
            // A fleet made since the store was read had no device then.
            let read_at = since.get(org).copied().unwrap_or(0);
            if fleet.would_take(&report.device_id, report.last_seen, read_at) {
                fleet.offer(fleet.prepare(report), None, now);
                inner.admission.note(org, &report.device_id);
                outcome.offered += 1;
            }
        }
        for (org, fleet) in fleets.all() {
            // A fleet made since the store was read has nothing older.
            let Some(&since) = since.get(&org) else {
                continue;
            };
            let devices = present.get(&org);
            let gone = fleet.remove_absent(
                |device_id| devices.is_some_and(|devices| devices.contains(device_id)),
                since,
            );
            for device_id in &gone {
                inner.admission.forget(&org, device_id);
            }
            outcome.removed += gone.len();
        }
        if outcome != FleetRefresh::default() {
            tracing::debug!(
                offered = outcome.offered,
                removed = outcome.removed,
                "fleet refreshed from the store"
            );
        }
        Ok(outcome)
    }
}
