//! The fleet as readers see it: per device, its latest report already
//! serialised, its status, and what to sort it by; kept up to date by
//! ingest and deletions, so that listing 10,000 devices copies bytes
//! instead of serialising reports. Changes are numbered (the generation)
//! and broadcast to live readers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use tailmon_core::{
    DeviceSummary, ID_CONFLICT_KEPT, OffsetDateTime, OrgId, Report, Status, Thresholds,
};
use tokio::sync::broadcast;

use crate::ingest::agent_instances::AgentInstances;

/// Events a live reader may miss before it is sent a fresh snapshot instead:
/// 4,096 (two seconds of 10,000 agents reporting every 5 s).
pub(crate) const LIVE_EVENT_BUFFER: usize = 4096;

/// A device's clock running ahead is logged at most this often: 10 minutes.
pub(crate) const CLOCK_SKEW_WARN_EVERY: time::Duration = time::Duration::minutes(10);

/// A change of the fleet, as live readers get it.
#[derive(Debug, Clone)]
pub(crate) enum FleetEvent {
    /// A device's latest report or its status changed; its summary's JSON.
    Device {
        /// The device.
        device_id: Arc<str>,
        /// Its [`DeviceSummary`] as JSON.
        summary: Bytes,
    },
    /// A device was deleted.
    Deleted {
        /// The device.
        device_id: Arc<str>,
    },
}

/// A change of one organisation's fleet, as the alert engine gets them
/// (of every organisation, on one channel).
#[derive(Debug, Clone)]
pub(crate) struct OrgFleetEvent {
    /// The organisation whose fleet changed.
    pub(crate) org: OrgId,
    /// The change.
    pub(crate) event: FleetEvent,
}

/// One device as the fleet keeps it: a few numbers and its report's JSON.
#[derive(Debug)]
pub(crate) struct DeviceEntry {
    /// The latest report as JSON, as stored (no `agent_instance`).
    report_json: Box<[u8]>,
    /// The latest report's `last_seen`: an older report is a back-fill.
    last_seen: OffsetDateTime,
    /// When the device was last heard of: `received_at`, else `last_seen`.
    seen: OffsetDateTime,
    /// What the thresholds make of the latest report.
    health: Status,
    /// Whether it is offline, as of the last check.
    offline: bool,
    cpu: f64,
    ram: Option<f64>,
    disk: Option<f64>,
    instances: AgentInstances,
    /// The last time two agents alternated under this id, while kept.
    id_conflict_at: Option<OffsetDateTime>,
    /// When a warning of two agents was last logged.
    warned_at: Option<OffsetDateTime>,
    /// How far ahead the device's clock was at its latest report, in
    /// seconds, when beyond the allowance.
    clock_skew_seconds: Option<i64>,
    /// When a warning of its clock was last logged.
    skew_warned_at: Option<OffsetDateTime>,
    /// The fleet's generation its latest report made: a device offered
    /// after a refresh began is kept by it (see [`Fleet::remove_absent`]).
    offered_at: u64,
}

impl DeviceEntry {
    /// Its status, the one rule of [`DeviceSummary::new`] as of the last check.
    pub(crate) fn status(&self) -> Status {
        if self.offline {
            Status::Offline
        } else {
            self.health
        }
    }

    /// CPU usage of the latest report, in percent.
    pub(crate) fn cpu(&self) -> f64 {
        self.cpu
    }

    /// Memory in use, in percent, when known.
    pub(crate) fn ram(&self) -> Option<f64> {
        self.ram
    }

    /// The fullest disk's use, in percent, when the report has disks.
    pub(crate) fn disk(&self) -> Option<f64> {
        self.disk
    }

    /// The latest report's JSON.
    pub(crate) fn report_json(&self) -> &[u8] {
        &self.report_json
    }

    /// The latest report's `last_seen`: a new report, a new value.
    pub(crate) fn last_seen(&self) -> OffsetDateTime {
        self.last_seen
    }

    /// When the device was last heard of.
    pub(crate) fn seen(&self) -> OffsetDateTime {
        self.seen
    }

    /// Appends its [`DeviceSummary`] JSON to `out`: the status fields, then
    /// the report's own (as serde writes a `DeviceSummary`).
    pub(crate) fn write_summary(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"status\":\"");
        out.extend_from_slice(status_word(self.status()).as_bytes());
        out.push(b'"');
        if self.offline {
            write_time(out, "offline_since", self.seen);
        }
        if let Some(at) = self.id_conflict_at {
            write_time(out, "id_conflict_at", at);
        }
        out.extend_from_slice(b",\"clock_skew_seconds\":");
        match self.clock_skew_seconds {
            Some(seconds) => out.extend_from_slice(seconds.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        // The report's JSON is an object that always holds `device_id`.
        out.push(b',');
        out.extend_from_slice(self.report_json.get(1..).unwrap_or_default());
    }

    /// Appends its latest report's JSON to `out`, as `/api/all_metrics`
    /// lists it: with `clock_skew_seconds` at the end when the device's
    /// clock runs ahead (an extra field old clients ignore).
    pub(crate) fn write_report(&self, out: &mut Vec<u8>) {
        match (self.clock_skew_seconds, self.report_json.strip_suffix(b"}")) {
            (Some(seconds), Some(open)) => {
                out.extend_from_slice(open);
                out.extend_from_slice(b",\"clock_skew_seconds\":");
                out.extend_from_slice(seconds.to_string().as_bytes());
                out.push(b'}');
            }
            _ => out.extend_from_slice(&self.report_json),
        }
    }

    /// The earliest time its status or conflict mark may change by itself.
    fn next_change(&self, offline_after: time::Duration) -> Option<OffsetDateTime> {
        let offline = (!self.offline).then(|| self.seen + offline_after);
        let conflict = self.id_conflict_at.map(|at| at + ID_CONFLICT_KEPT);
        match (offline, conflict) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Critical => "critical",
        _ => "offline",
    }
}

fn write_time(out: &mut Vec<u8>, name: &str, at: OffsetDateTime) {
    let text = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":\"");
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// A report made ready for [`Fleet::offer`] (see [`Fleet::prepare`]).
#[derive(Debug)]
pub(crate) struct Prepared {
    device_id: String,
    json: Box<[u8]>,
    last_seen: OffsetDateTime,
    seen: OffsetDateTime,
    cpu: f64,
    ram: Option<f64>,
    disk: Option<f64>,
    clock_skew_seconds: Option<i64>,
}

impl Prepared {
    /// The report as measured with its device's clock `seconds` ahead
    /// (see `ingest/clock_skew.rs`); `None` within the allowance.
    pub(crate) fn with_clock_skew(mut self, seconds: Option<i64>) -> Self {
        self.clock_skew_seconds = seconds;
        self
    }
}

/// Every device's latest state, sorted by device id, with a change counter
/// and a broadcast of changes. See the module documentation.
#[derive(Debug)]
pub(crate) struct Fleet {
    offline_after: time::Duration,
    /// Read under the `devices` lock only, so that a status is always what
    /// the thresholds in force make of it (see [`set_thresholds`](Self::set_thresholds)).
    thresholds: arc_swap::ArcSwap<Thresholds>,
    devices: Mutex<BTreeMap<Arc<str>, DeviceEntry>>,
    /// Bumped on every change a reader could see.
    generation: AtomicU64,
    /// Unix nanoseconds of the earliest time a status may change by itself.
    next_check: AtomicI64,
    /// The generation the latest [`remove`](Self::remove) made: a refresh
    /// that read the store before it takes no new device from what it read.
    removed_at: AtomicU64,
    /// This organisation's live readers, made when the first one comes: a
    /// broadcast channel holds its whole buffer from the start (some 300 KB
    /// for [`LIVE_EVENT_BUFFER`] events), which an organisation nobody
    /// watches live need not pay (30 MB at 100 organisations).
    events: std::sync::OnceLock<broadcast::Sender<FleetEvent>>,
    /// Every organisation's changes, for the alert engine.
    all: broadcast::Sender<OrgFleetEvent>,
    /// The organisation this is the fleet of.
    org: OrgId,
}

impl Fleet {
    /// An empty fleet of `default` whose devices go offline after
    /// `offline_after`.
    #[cfg(test)]
    pub(crate) fn new(offline_after: time::Duration, thresholds: Thresholds) -> Self {
        Self::of(
            OrgId::default(),
            offline_after,
            thresholds,
            broadcast::channel(LIVE_EVENT_BUFFER).0,
        )
    }

    /// An empty fleet of `org`, telling `all` of its changes as well as its
    /// own live readers.
    pub(crate) fn of(
        org: OrgId,
        offline_after: time::Duration,
        thresholds: Thresholds,
        all: broadcast::Sender<OrgFleetEvent>,
    ) -> Self {
        Self {
            offline_after,
            thresholds: arc_swap::ArcSwap::from_pointee(thresholds),
            devices: Mutex::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            next_check: AtomicI64::new(i64::MAX),
            removed_at: AtomicU64::new(0),
            events: std::sync::OnceLock::new(),
            all,
            org,
        }
    }

    /// Whether anybody listens to changes: else none is made.
    fn listened(&self) -> bool {
        self.events
            .get()
            .is_some_and(|events| events.receiver_count() > 0)
            || self.all.receiver_count() > 0
    }

    /// Tells the organisation's live readers and the alert engine.
    fn emit(&self, event: FleetEvent) {
        if self.all.receiver_count() > 0 {
            let _ = self.all.send(OrgFleetEvent {
                org: self.org.clone(),
                event: event.clone(),
            });
        }
        if let Some(events) = self.events.get() {
            let _ = events.send(event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, DeviceEntry>> {
        self.devices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The change counter: equal numbers, equal contents (statuses included,
    /// once [`check_statuses`](Self::check_statuses) ran).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Live changes from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<FleetEvent> {
        self.events
            .get_or_init(|| broadcast::channel(LIVE_EVENT_BUFFER).0)
            .subscribe()
    }

    /// What [`offer`](Self::offer) needs of `report` (as stored,
    /// `agent_instance` taken out): one serialisation, a few numbers.
    pub(crate) fn prepare(&self, report: &Report) -> Prepared {
        Prepared {
            device_id: report.device_id.clone(),
            json: serde_json::to_vec(report)
                .unwrap_or_default()
                .into_boxed_slice(),
            last_seen: report.last_seen,
            seen: DeviceSummary::seen(report),
            cpu: report.cpu_usage,
            ram: report.ram_used_percent(),
            disk: report.disks.as_ref().and_then(|disks| {
                disks
                    .iter()
                    .filter_map(|d| d.used_percent())
                    .filter(|p| p.is_finite())
                    .reduce(f64::max)
            }),
            clock_skew_seconds: None,
        }
    }

    /// Takes a prepared report as its device's latest unless that one is as
    /// new or newer (a back-fill or a retry), noting `instance` for live
    /// reports.
    pub(crate) fn offer(&self, report: Prepared, instance: Option<&str>, now: OffsetDateTime) {
        if report.json.first() != Some(&b'{') {
            return;
        }
        let seen = report.seen;
        let mut devices = self.lock();
        let entry = match devices.get_mut(report.device_id.as_str()) {
            Some(entry) if entry.last_seen >= report.last_seen => return,
            Some(entry) => entry,
            None => devices
                .entry(Arc::from(report.device_id.as_str()))
                .or_insert_with(|| DeviceEntry {
                    report_json: Box::default(),
                    last_seen: report.last_seen,
                    seen,
                    health: Status::Ok,
                    offline: false,
                    cpu: 0.0,
                    ram: None,
                    disk: None,
                    instances: AgentInstances::default(),
                    id_conflict_at: None,
                    warned_at: None,
                    clock_skew_seconds: None,
                    skew_warned_at: None,
                    offered_at: 0,
                }),
        };
        entry.report_json = report.json;
        entry.last_seen = report.last_seen;
        entry.seen = seen;
        // As `Report::status` does, with the thresholds in force now.
        entry.health = self.thresholds.load().classify(report.cpu, report.ram);
        entry.offline = now - seen > self.offline_after;
        entry.cpu = report.cpu;
        entry.ram = report.ram;
        entry.disk = report.disk;
        entry.clock_skew_seconds = report.clock_skew_seconds;
        if let Some(seconds) = report.clock_skew_seconds
            && entry
                .skew_warned_at
                .is_none_or(|at| now - at >= CLOCK_SKEW_WARN_EVERY)
        {
            entry.skew_warned_at = Some(now);
            tracing::warn!(
                device_id = %report.device_id,
                clock_skew_seconds = seconds,
                "the device's clock is {seconds} s ahead of the server's; its reports are stored at the server's receive time: set its clock right (NTP)"
            );
        }
        if let Some(instance) = instance
            && entry.instances.note(instance, now)
        {
            entry.id_conflict_at = Some(now);
            if entry
                .warned_at
                .is_none_or(|at| now - at >= ID_CONFLICT_KEPT)
            {
                entry.warned_at = Some(now);
                tracing::warn!(
                    device_id = %report.device_id,
                    "two agents report under this device id (their reports alternate); \
                     give each host its own device id"
                );
            }
        }
        if let Some(at) = entry.next_change(self.offline_after) {
            self.next_check.fetch_min(nanos(at), Ordering::AcqRel);
        }
        entry.offered_at = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        if self.listened() {
            let mut summary = Vec::with_capacity(entry.report_json.len() + 64);
            entry.write_summary(&mut summary);
            let device_id = devices
                .get_key_value(report.device_id.as_str())
                .map(|(id, _)| id.clone())
                .unwrap_or_else(|| Arc::from(report.device_id.as_str()));
            self.emit(FleetEvent::Device {
                device_id,
                summary: summary.into(),
            });
        }
    }

    /// Makes `thresholds` those in force and brings every device's status
    /// in line at once: live readers are told of each device whose status
    /// changed, and the generation moves on (so cached answers are made
    /// again) whenever the thresholds differ. Returns how many statuses
    /// changed.
    pub(crate) fn set_thresholds(&self, thresholds: Thresholds) -> usize {
        let mut devices = self.lock();
        if **self.thresholds.load() == thresholds {
            return 0;
        }
        // Stored under the lock: an offer holding it now classified with
        // the old ones, and is reclassified below.
        self.thresholds.store(Arc::new(thresholds));
        let live = self.listened();
        let mut changed = 0;
        for (device_id, entry) in devices.iter_mut() {
            let health = thresholds.classify(entry.cpu, entry.ram);
            if health == entry.health {
                continue;
            }
            entry.health = health;
            changed += 1;
            if live {
                let mut summary = Vec::with_capacity(entry.report_json.len() + 64);
                entry.write_summary(&mut summary);
                self.emit(FleetEvent::Device {
                    device_id: device_id.clone(),
                    summary: summary.into(),
                });
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        changed
    }

    /// Whether a refresh that read the store when the generation was
    /// `since` should offer a report of `device_id` stamped `last_seen`:
    /// the device's latest is older, or the device is unknown and none was
    /// deleted here since (a device deleted while the store was read must
    /// not come back from what was read; a new one waits for the next
    /// refresh). Asked before paying for [`prepare`](Self::prepare).
    pub(crate) fn would_take(
        &self,
        device_id: &str,
        last_seen: OffsetDateTime,
        since: u64,
    ) -> bool {
        match self.lock().get(device_id) {
            Some(entry) => entry.last_seen < last_seen,
            None => self.removed_at.load(Ordering::Acquire) <= since,
        }
    }

    /// Forgets every device `present` says the store no longer has, unless
    /// a report offered it after the generation was `since` (read before the
    /// store was): a report stored and offered while the store was read is
    /// not mistaken for a deletion. `present` is asked with the device id,
    /// the `last_seen` of its latest report and when it was last heard of.
    /// Returns the ids forgotten; live readers and the alert engine are
    /// told of each.
    pub(crate) fn remove_absent(
        &self,
        present: impl Fn(&str, OffsetDateTime, OffsetDateTime) -> bool,
        since: u64,
    ) -> Vec<Arc<str>> {
        let mut devices = self.lock();
        let gone: Vec<Arc<str>> = devices
            .iter()
            .filter(|(id, entry)| {
                entry.offered_at <= since && !present(id, entry.last_seen, entry.seen)
            })
            .map(|(id, _)| id.clone())
            .collect();
        if gone.is_empty() {
            return gone;
        }
        for device_id in &gone {
            devices.remove(device_id);
            self.emit(FleetEvent::Deleted {
                device_id: device_id.clone(),
            });
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        gone
    }

    /// Forgets a device; `true` if it was known.
    pub(crate) fn remove(&self, device_id: &str) -> bool {
        let mut devices = self.lock();
        let Some((device_id, _)) = devices.remove_entry(device_id) else {
            return false;
        };
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.removed_at.store(generation, Ordering::Release);
        self.emit(FleetEvent::Deleted { device_id });
        true
    }

    /// Brings every status up to `now` if one may have changed by itself
    /// since the last check (a device gone offline, a conflict mark
    /// expired): bumps the generation and tells live readers of each change.
    /// Cheap when nothing is due.
    pub(crate) fn check_statuses(&self, now: OffsetDateTime) {
        if nanos(now) <= self.next_check.load(Ordering::Acquire) {
            return;
        }
        let mut devices = self.lock();
        let mut next = i64::MAX;
        let mut changed = false;
        let live = self.listened();
        for (device_id, entry) in devices.iter_mut() {
            let offline = now - entry.seen > self.offline_after;
            let expired = entry
                .id_conflict_at
                .is_some_and(|at| now - at > ID_CONFLICT_KEPT);
            if offline != entry.offline || expired {
                entry.offline = offline;
                if expired {
                    entry.id_conflict_at = None;
                }
                changed = true;
                if live {
                    let mut summary = Vec::with_capacity(entry.report_json.len() + 64);
                    entry.write_summary(&mut summary);
                    self.emit(FleetEvent::Device {
                        device_id: device_id.clone(),
                        summary: summary.into(),
                    });
                }
            }
            if let Some(at) = entry.next_change(self.offline_after) {
                next = next.min(nanos(at));
            }
        }
        self.next_check.store(next, Ordering::Release);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Runs `read` over every device in device id order, under the lock:
    /// keep it to copying.
    pub(crate) fn read<T>(
        &self,
        read: impl FnOnce(&mut dyn Iterator<Item = (&str, &DeviceEntry)>) -> T,
    ) -> T {
        let devices = self.lock();
        let mut all = devices.iter().map(|(id, entry)| (&**id, entry));
        read(&mut all)
    }

    /// How many devices it has.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// One device's summary as JSON, if it is known.
    pub(crate) fn summary_of(&self, device_id: &str) -> Option<Vec<u8>> {
        let devices = self.lock();
        let entry = devices.get(device_id)?;
        let mut out = Vec::with_capacity(entry.report_json.len() + 64);
        entry.write_summary(&mut out);
        Some(out)
    }
}

/// `at` in Unix nanoseconds, saturated to an `i64`.
fn nanos(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 {
        i64::MIN
    } else {
        i64::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn report(id: &str, at: OffsetDateTime, cpu: f64) -> Report {
        let mut report = Report::new(id, at);
        report.cpu_usage = cpu;
        report.ram_used_mb = 1;
        report.ram_total_mb = 4;
        report.received_at = Some(at);
        report
    }

    fn summary_json(fleet: &Fleet, id: &str) -> DeviceSummary {
        serde_json::from_slice(&fleet.summary_of(id).unwrap()).unwrap()
    }

    #[test]
    fn the_summary_bytes_are_what_serde_writes() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::seconds(15), Thresholds::default());
        let r = report("a", t0, 70.0);
        fleet.offer(fleet.prepare(&r), Some("x"), t0);
        fleet.offer(
            fleet.prepare(&report("a", t0 + time::Duration::SECOND, 70.0)),
            Some("y"),
            t0,
        );
        let r = report("a", t0 + time::Duration::seconds(2), 70.0);
        fleet.offer(
            fleet.prepare(&r),
            Some("x"),
            t0 + time::Duration::seconds(2),
        );
        let now = t0 + time::Duration::seconds(30);
        fleet.check_statuses(now);
        let expected =
            DeviceSummary::new(r, now, time::Duration::seconds(15), &Thresholds::default())
                .with_id_conflict(Some(t0 + time::Duration::seconds(2)), now);
        assert_eq!(expected.status, Status::Offline);
        assert_eq!(
            String::from_utf8(fleet.summary_of("a").unwrap()).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
    }

    #[test]
    fn a_clock_skew_is_in_both_answers_and_cleared_by_a_report_within_the_allowance() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::seconds(15), Thresholds::default());
        let r = report("a", t0, 5.0);
        fleet.offer(fleet.prepare(&r).with_clock_skew(Some(612)), None, t0);
        let expected = DeviceSummary::new(
            r.clone(),
            t0,
            time::Duration::seconds(15),
            &Thresholds::default(),
        )
        .with_clock_skew(Some(612));
        assert_eq!(
            String::from_utf8(fleet.summary_of("a").unwrap()).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        let all_metrics = |fleet: &Fleet| {
            fleet.read(|all| {
                let mut out = Vec::new();
                for (_, entry) in all {
                    entry.write_report(&mut out);
                }
                serde_json::from_slice::<serde_json::Value>(&out).unwrap()
            })
        };
        let listed = all_metrics(&fleet);
        assert_eq!(listed["clock_skew_seconds"], 612);
        assert_eq!(listed["device_id"], "a");
        let later = t0 + time::Duration::seconds(5);
        fleet.offer(fleet.prepare(&report("a", later, 5.0)), None, later);
        assert_eq!(summary_json(&fleet, "a").clock_skew_seconds, None);
        assert!(all_metrics(&fleet).get("clock_skew_seconds").is_none());
    }

    #[test]
    fn a_clock_ahead_is_warned_of_once_per_ten_minutes() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::hours(1), Thresholds::default());
        let warned_at = |fleet: &Fleet| fleet.lock().get("a").and_then(|e| e.skew_warned_at);
        for s in 0..5 {
            let at = t0 + time::Duration::seconds(s * 5);
            let skewed = fleet
                .prepare(&report("a", at, 1.0))
                .with_clock_skew(Some(612));
            fleet.offer(skewed, None, at);
        }
        assert_eq!(
            warned_at(&fleet),
            Some(t0),
            "warned at the first report only"
        );
        let later = t0 + CLOCK_SKEW_WARN_EVERY;
        let skewed = fleet
            .prepare(&report("a", later, 1.0))
            .with_clock_skew(Some(612));
        fleet.offer(skewed, None, later);
        assert_eq!(
            warned_at(&fleet),
            Some(later),
            "warned again ten minutes on"
        );
    }

    #[test]
    fn a_refresh_removes_devices_gone_from_the_store_but_not_those_offered_since() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::hours(1), Thresholds::default());
        fleet.offer(fleet.prepare(&report("a", t0, 1.0)), None, t0);
        fleet.offer(fleet.prepare(&report("b", t0, 1.0)), None, t0);
        let since = fleet.generation();
        // Stored and offered while the refresh read the store: not in what
        // it read, yet not deleted.
        fleet.offer(fleet.prepare(&report("c", t0, 1.0)), None, t0);
        let mut live = fleet.subscribe();
        let gone = fleet.remove_absent(|id, _, _| id == "a", since);
        assert_eq!(gone, vec![Arc::<str>::from("b")]);
        assert!(fleet.summary_of("b").is_none());
        assert!(fleet.summary_of("a").is_some() && fleet.summary_of("c").is_some());
        let Ok(FleetEvent::Deleted { device_id }) = live.try_recv() else {
            panic!("a deletion event")
        };
        assert_eq!(&*device_id, "b");
        let generation = fleet.generation();
        assert!(fleet.remove_absent(|_, _, _| true, generation).is_empty());
        assert_eq!(fleet.generation(), generation, "nothing removed: no change");
        let since = fleet.generation();
        assert!(fleet.would_take("a", t0 + time::Duration::SECOND, since));
        assert!(!fleet.would_take("a", t0, since), "the same report again");
        assert!(fleet.would_take("new", t0, since));
        // Deleted here after the refresh read the store: not brought back.
        assert!(fleet.remove("c"));
        assert!(!fleet.would_take("c", t0, since));
        assert!(
            fleet.would_take("c", t0, fleet.generation()),
            "next refresh"
        );
    }

    #[test]
    fn a_back_fill_does_not_replace_the_latest() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::seconds(15), Thresholds::default());
        fleet.offer(fleet.prepare(&report("a", t0, 10.0)), None, t0);
        let generation = fleet.generation();
        fleet.offer(
            fleet.prepare(&report("a", t0 - time::Duration::MINUTE, 90.0)),
            None,
            t0,
        );
        assert_eq!(fleet.generation(), generation);
        assert_eq!(summary_json(&fleet, "a").report.cpu_usage, 10.0);
    }

    #[test]
    fn new_thresholds_change_every_status_at_once() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::seconds(15), Thresholds::default());
        fleet.offer(fleet.prepare(&report("a", t0, 50.0)), None, t0);
        fleet.offer(fleet.prepare(&report("b", t0, 10.0)), None, t0);
        let mut live = fleet.subscribe();
        let generation = fleet.generation();
        let lower = Thresholds {
            cpu_warning: 40.0,
            ..Thresholds::default()
        };
        assert_eq!(fleet.set_thresholds(lower), 1, "only a crosses 40 %");
        assert_eq!(fleet.generation(), generation + 1);
        assert_eq!(summary_json(&fleet, "a").status, Status::Warning);
        assert_eq!(summary_json(&fleet, "b").status, Status::Ok);
        let Ok(FleetEvent::Device { device_id, .. }) = live.try_recv() else {
            panic!("a device event")
        };
        assert_eq!(&*device_id, "a");
        assert!(live.try_recv().is_err(), "b did not change");
        assert_eq!(fleet.set_thresholds(lower), 0);
        assert_eq!(
            fleet.generation(),
            generation + 1,
            "the same ones: no change"
        );
        // Later reports are classified with the thresholds in force.
        fleet.offer(
            fleet.prepare(&report("b", t0 + time::Duration::SECOND, 45.0)),
            None,
            t0,
        );
        assert_eq!(summary_json(&fleet, "b").status, Status::Warning);
    }

    #[test]
    fn going_offline_is_a_change_seen_once() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::seconds(15), Thresholds::default());
        fleet.offer(fleet.prepare(&report("a", t0, 10.0)), None, t0);
        let mut live = fleet.subscribe();
        let generation = fleet.generation();
        fleet.check_statuses(t0 + time::Duration::seconds(15));
        assert_eq!(fleet.generation(), generation, "not yet offline");
        fleet.check_statuses(t0 + time::Duration::seconds(16));
        assert_eq!(fleet.generation(), generation + 1);
        fleet.check_statuses(t0 + time::Duration::seconds(17));
        assert_eq!(fleet.generation(), generation + 1);
        let Ok(FleetEvent::Device { summary, .. }) = live.try_recv() else {
            panic!("a device event")
        };
        let summary: DeviceSummary = serde_json::from_slice(&summary).unwrap();
        assert_eq!(summary.status, Status::Offline);
        assert_eq!(summary.offline_since, Some(t0));
        assert!(live.try_recv().is_err());
    }

    #[test]
    fn two_agents_are_warned_of_once_per_ten_minutes() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::hours(1), Thresholds::default());
        let warned_at = |fleet: &Fleet| fleet.lock().get("a").and_then(|e| e.warned_at);
        for (i, instance) in ["x", "y", "x", "y", "x"].iter().enumerate() {
            let at = t0 + time::Duration::seconds(i as i64);
            fleet.offer(fleet.prepare(&report("a", at, 1.0)), Some(instance), at);
        }
        let first = t0 + time::Duration::seconds(2);
        assert_eq!(
            warned_at(&fleet),
            Some(first),
            "warned at the first alternation only"
        );
        let later = first + ID_CONFLICT_KEPT;
        fleet.offer(fleet.prepare(&report("a", later, 1.0)), Some("y"), later);
        assert_eq!(
            warned_at(&fleet),
            Some(later),
            "warned again ten minutes on"
        );
    }

    #[test]
    fn the_live_buffer_is_made_for_the_first_reader_who_then_gets_every_change() {
        let t0 = datetime!(2025-07-10 14:30:00 UTC);
        let fleet = Fleet::new(time::Duration::hours(1), Thresholds::default());
        fleet.offer(fleet.prepare(&report("a", t0, 1.0)), None, t0);
        assert!(fleet.events.get().is_none(), "nobody watches: no buffer");
        let mut live = fleet.subscribe();
        let mut second = fleet.subscribe();
        let t1 = t0 + time::Duration::seconds(5);
        fleet.offer(fleet.prepare(&report("a", t1, 2.0)), None, t1);
        for live in [&mut live, &mut second] {
            let Ok(FleetEvent::Device { device_id, .. }) = live.try_recv() else {
                panic!("a device event")
            };
            assert_eq!(&*device_id, "a");
            assert!(
                live.try_recv().is_err(),
                "the change before is not replayed"
            );
        }
    }
}
