//! The fleet read anew from the store, for servers that share one store
//! (replicas over one engine): what the others stored is offered to this
//! server's fleet, and what they deleted is forgotten.
//!
//! A refresh reads what changed, not the whole fleet: the devices with a
//! report stamped since shortly before the previous refresh and the
//! `last_seen` of each one's latest ([`Store::newest_since`](crate::Store::newest_since):
//! one number a device), then the latest reports of those newer than this
//! server holds ([`Store::latest_of_many`](crate::Store::latest_of_many)).
//! Its cost follows the reports stored since the previous refresh, not the
//! size of the fleet. Once every [`FLEET_WIDEN_EVERY`] the window reaches
//! [`FLEET_REFRESH_WINDOW`] back instead, for reports stamped well before
//! they were stored (a device whose clock is slow). A device this server
//! holds with a report inside the window that the store no longer has was
//! deleted elsewhere; the whole device list ([`Store::devices`](crate::Store::devices))
//! is read every [`FLEET_SWEEP_EVERY`] only, for the devices silent for
//! longer.

use std::collections::{HashMap, HashSet};

use tailmon_core::{OffsetDateTime, OrgId};

use crate::StoreError;
use crate::ingest::Ingest;

/// How far back a refresh looks for reports once every
/// [`FLEET_WIDEN_EVERY`]. A device whose reports are stamped further back
/// than this when they are stored (its clock that far behind) reaches the
/// other servers only when they start.
pub const FLEET_REFRESH_WINDOW: time::Duration = time::Duration::minutes(10);

/// How often a refresh looks [`FLEET_REFRESH_WINDOW`] back; the others
/// look back to 30 s before the previous refresh.
pub const FLEET_WIDEN_EVERY: time::Duration = time::Duration::minutes(1);

/// How long before the previous refresh the others look back from: a
/// report stored late (an agent's retry, a clock a little slow) is still
/// read by the next refresh.
const NARROW_MARGIN: time::Duration = time::Duration::seconds(30);

/// How often a refresh also reads the whole device list, for deletions of
/// devices silent for longer than [`FLEET_REFRESH_WINDOW`].
pub const FLEET_SWEEP_EVERY: time::Duration = time::Duration::minutes(5);

/// A device heard of this recently may not be searchable in the store yet
/// (an engine makes a sample searchable a moment after taking it): its
/// absence is not taken for a deletion.
const SEARCHABLE_AFTER: time::Duration = time::Duration::seconds(5);

/// A device whose latest report is this close to the start of the window
/// is left to a later refresh: the store may count the window's edge
/// otherwise.
const WINDOW_EDGE: time::Duration = time::Duration::seconds(1);

/// When the previous refreshes ran, by the server's clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RefreshMarks {
    /// The previous successful refresh.
    last: Option<OffsetDateTime>,
    /// The previous one that looked [`FLEET_REFRESH_WINDOW`] back.
    widened: Option<OffsetDateTime>,
    /// The previous one that read the whole device list.
    swept: Option<OffsetDateTime>,
}

/// Whether `every` has passed since `at` (or there was no `at`, or the
/// clock went back).
fn due(at: Option<OffsetDateTime>, now: OffsetDateTime, every: time::Duration) -> bool {
    at.is_none_or(|at| now - at >= every || at > now)
}

/// How much newer than the one held a report must be to be read: the
/// store's `last_seen` of it may be rounded (a remote engine keeps
/// milliseconds, and a float).
const NEWER_BY: time::Duration = time::Duration::milliseconds(2);

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
    /// Reads from the store what changed since the last refresh and brings
    /// this server's fleet in line, as readers of every replica over a
    /// shared store must see it: a report newer than the one this server
    /// holds is offered to the fleet (and so to the dashboard, the APIs,
    /// `GET /metrics`, live readers and the alert engine) as if it had been
    /// received here, but it is not stored again nor counted as received;
    /// a device the store no longer has is forgotten, as if it had been
    /// deleted here (its alerts end quietly).
    ///
    /// What it reads (the module's documentation tells more): the devices
    /// with a report stamped since shortly before the previous refresh (by
    /// this server's clock; [`FLEET_REFRESH_WINDOW`] back every
    /// [`FLEET_WIDEN_EVERY`]), the latest reports of those newer than held,
    /// and, every [`FLEET_SWEEP_EVERY`] (and on the first refresh), the
    /// whole device list. So a device deleted elsewhere leaves at the next
    /// refresh when it reported within the window, within
    /// [`FLEET_SWEEP_EVERY`] otherwise.
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
        let now = inner.clock.now();
        let marks = *inner
            .fleet_marks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let widen = due(marks.widened, now, FLEET_WIDEN_EVERY);
        let sweep = due(marks.swept, now, FLEET_SWEEP_EVERY);
        let window = match marks.last {
            Some(last) if !widen => (last - NARROW_MARGIN).max(now - FLEET_REFRESH_WINDOW),
            _ => now - FLEET_REFRESH_WINDOW,
        };
        let recent = inner.store.newest_since(window).await?;
        // Only the devices whose latest report is newer than held.
        let newer: Vec<(OrgId, String, OffsetDateTime)> = recent
            .iter()
            .filter(|(org, device_id, last_seen)| {
                let read_at = since.get(org).copied().unwrap_or(0);
                fleets
                    .of(org)
                    .would_take(device_id, *last_seen - NEWER_BY, read_at)
            })
            .cloned()
            .collect();
        let latest = if newer.is_empty() {
            Vec::new()
        } else {
            inner.store.latest_of_many(newer).await?
        };
        let listed = if sweep {
            Some(inner.store.devices().await?)
        } else {
            None
        };
        let mut outcome = FleetRefresh::default();
        for (org, report) in &latest {
            let fleet = fleets.of(org);
            // A fleet made since the store was read had no device then.
            let read_at = since.get(org).copied().unwrap_or(0);
            if fleet.would_take(&report.device_id, report.last_seen, read_at) {
                fleet.offer(fleet.prepare(report), None, now);
                inner.admission.note(org, &report.device_id);
                outcome.offered += 1;
            }
        }
        let recent_of = by_org(recent.iter().map(|(org, device_id, _)| (org, device_id)));
        let listed_of = listed
            .as_ref()
            .map(|listed| by_org(listed.iter().map(|(org, device_id)| (org, device_id))));
        for (org, fleet) in fleets.all() {
            // A fleet made since the store was read has nothing older.
            let Some(&since) = since.get(&org) else {
                continue;
            };
            let recent = recent_of.get(&org);
            let listed = listed_of.as_ref().map(|listed| listed.get(&org));
            let gone = fleet.remove_absent(
                |device_id, last_seen, seen| {
                    let has = |devices: Option<&HashSet<&str>>| {
                        devices.is_some_and(|devices| devices.contains(device_id))
                    };
                    has(recent)
                        // Heard of too lately to be searchable yet.
                        || seen > now - SEARCHABLE_AFTER
                        || match listed {
                            Some(listed) => has(listed),
                            // Without the list, only a device whose latest
                            // report is inside the window can be missed.
                            None => last_seen < window + WINDOW_EDGE,
                        }
                },
                since,
            );
            for device_id in &gone {
                inner.admission.forget(&org, device_id);
            }
            outcome.removed += gone.len();
        }
        {
            let mut marks = inner
                .fleet_marks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            marks.last = Some(now);
            if widen {
                marks.widened = Some(now);
            }
            if sweep {
                marks.swept = Some(now);
            }
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

/// Device ids by organisation.
fn by_org<'a>(
    devices: impl Iterator<Item = (&'a OrgId, &'a String)>,
) -> HashMap<&'a OrgId, HashSet<&'a str>> {
    let mut out: HashMap<&OrgId, HashSet<&str>> = HashMap::new();
    for (org, device_id) in devices {
        out.entry(org).or_default().insert(device_id.as_str());
    }
    out
}
