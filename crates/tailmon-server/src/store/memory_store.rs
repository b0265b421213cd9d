use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use tailmon_core::{History, OffsetDateTime, OrgId, Point, Report, Tier, metric};

use crate::store::downsample::{bucket_start, bucket_tier, downsample};
use crate::store::metric_set::{distinct_names, in_asked_order};
use crate::{HistoryQuery, ReportStream, Store, StoreError};

/// How much history the in-memory store keeps per device: 1 hour.
pub const DEFAULT_MEMORY_HISTORY: Duration = Duration::from_secs(3600);

/// A lock-free in-memory [`Store`] on a [`DashMap`]: for tests, embedding and
/// short-lived servers. It keeps a bounded recent history per device (see
/// [`MemoryStore::with_history`]) and answers every tier from it; everything
/// is lost when the process ends.
///
/// ```
/// use std::sync::Arc;
/// use tailmon_server::{MemoryStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    /// By organisation, then device id.
    orgs: DashMap<OrgId, DashMap<String, DeviceHistory>>,
    keep: time::Duration,
    /// The newest retention cutoff applied, in Unix nanoseconds: reports
    /// stamped before it are dropped, as [`Store::apply_retention`] says.
    horizon: AtomicI64,
}

#[derive(Debug)]
struct DeviceHistory {
    /// Oldest first, by `last_seen`.
    reports: VecDeque<Report>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_history(DEFAULT_MEMORY_HISTORY)
    }
}

impl MemoryStore {
    /// An empty store keeping [`DEFAULT_MEMORY_HISTORY`] per device.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping `keep` of history per device, counted back from
    /// each device's newest report.
    pub fn with_history(keep: Duration) -> Self {
        Self {
            orgs: DashMap::new(),
            keep: time::Duration::try_from(keep).unwrap_or(time::Duration::MAX),
            horizon: AtomicI64::new(i64::MIN),
        }
    }

    fn insert_one(&self, devices: &DashMap<String, DeviceHistory>, report: Report) {
        if nanos(report.last_seen) < self.horizon.load(Ordering::Acquire) {
            return;
        }
        if let Some(mut history) = devices.get_mut(report.device_id.as_str()) {
            history.insert(report, self.keep);
            return;
        }
        devices
            .entry(report.device_id.clone())
            .or_insert_with(|| DeviceHistory {
                reports: VecDeque::new(),
            })
            .insert(report, self.keep);
    }

    /// One device's [`Store::history`] answer.
    fn history_of(history: &DeviceHistory, query: &HistoryQuery) -> History {
        let values: Vec<(OffsetDateTime, f64)> = history
            .in_range(query.from, query.to)
            .filter_map(|r| Some((r.last_seen, metric::value(r, &query.metric)?)))
            .collect();
        let (tier, points) = if values.len() <= query.max_points {
            (Tier::Raw, downsample(Tier::Raw, values))
        } else {
            // Whole buckets, the first and last included.
            let tier = bucket_tier(query.from, query.to, query.max_points);
            let width = time::Duration::seconds(tier.bucket_seconds().unwrap_or(1));
            let from = bucket_start(tier, query.from);
            let to = bucket_start(tier, query.to)
                .checked_add(width - time::Duration::NANOSECOND)
                .unwrap_or(query.to);
            let values = history
                .in_range(from, to)
                .filter_map(|r| Some((r.last_seen, metric::value(r, &query.metric)?)));
            (tier, downsample(tier, values))
        };
        History {
            device_id: query.device_id.clone(),
            metric: query.metric.clone(),
            tier,
            points,
        }
    }

    /// `f` of the device `device_id` of `org`, if there is one.
    fn device<T>(
        &self,
        org: &OrgId,
        device_id: &str,
        f: impl FnOnce(&DeviceHistory) -> T,
    ) -> Option<T> {
        let devices = self.orgs.get(org)?;
        let history = devices.get(device_id)?;
        Some(f(&history))
    }
}

impl DeviceHistory {
    fn insert(&mut self, report: Report, keep: time::Duration) {
        // Usually the newest: appended. A back-filled one goes in its place,
        // and one already held (an agent's retry) is not kept twice.
        let at = self
            .reports
            .partition_point(|r| r.last_seen < report.last_seen);
        if self
            .reports
            .get(at)
            .is_some_and(|r| r.last_seen == report.last_seen)
        {
            return;
        }
        self.reports.insert(at, report);
        if let Some(newest) = self.reports.back().map(|r| r.last_seen) {
            while self
                .reports
                .front()
                .is_some_and(|r| newest - r.last_seen > keep)
            {
                self.reports.pop_front();
            }
        }
    }

    fn in_range(&self, from: OffsetDateTime, to: OffsetDateTime) -> impl Iterator<Item = &Report> {
        let start = self.reports.partition_point(|r| r.last_seen < from);
        self.reports
            .range(start..)
            .take_while(move |r| r.last_seen <= to)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert_many(&self, org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError> {
        if let Some(devices) = self.orgs.get(org) {
            for report in reports {
                self.insert_one(&devices, report);
            }
            return Ok(());
        }
        let devices = self.orgs.entry(org.clone()).or_default().downgrade();
        for report in reports {
            self.insert_one(&devices, report);
        }
        Ok(())
    }

    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError> {
        let mut all: Vec<(OrgId, Report)> = Vec::new();
        for org in &self.orgs {
            all.extend(
                org.value()
                    .iter()
                    .filter_map(|e| e.value().reports.back().cloned())
                    .map(|r| (org.key().clone(), r)),
            );
        }
        all.sort_unstable_by(|a, b| (&a.0, &a.1.device_id).cmp(&(&b.0, &b.1.device_id)));
        Ok(all)
    }

    async fn latest_of(&self, org: &OrgId, device_id: &str) -> Result<Option<Report>, StoreError> {
        Ok(self
            .device(org, device_id, |h| h.reports.back().cloned())
            .flatten())
    }

    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        let mut all = Vec::new();
        for org in &self.orgs {
            all.extend(
                org.value()
                    .iter()
                    .map(|e| (org.key().clone(), e.key().clone())),
            );
        }
        Ok(all)
    }

    async fn history(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        Ok(self.device(org, &query.device_id, |history| {
            Self::history_of(history, query)
        }))
    }

    /// Walks the range once for every metric; a metric with more values
    /// than `max_points` (answered from buckets over whole buckets) is
    /// answered as [`history`](Store::history) answers it.
    async fn histories(
        &self,
        org: &OrgId,
        device_id: &str,
        metrics: &[String],
        from: OffsetDateTime,
        to: OffsetDateTime,
        max_points: usize,
    ) -> Result<Option<Vec<History>>, StoreError> {
        let (slots, of) = distinct_names(metrics);
        let mut values: Vec<Vec<Point>> = vec![Vec::new(); slots.len()];
        {
            let Some(devices) = self.orgs.get(org) else {
                return Ok(None);
            };
            let Some(history) = devices.get(device_id) else {
                return Ok(None);
            };
            // The last report each name was taken from: as with
            // `metric::value`, the first value of a name in a report counts.
            let mut taken = vec![usize::MAX; slots.len()];
            for (row, report) in history.in_range(from, to).enumerate() {
                metric::for_each(report, |name, value| {
                    if let Some(&slot) = slots.get(name)
                        && taken[slot] != row
                    {
                        taken[slot] = row;
                        values[slot].push(Point {
                            at: report.last_seen,
                            avg: value,
                            min: value,
                            max: value,
                        });
                    }
                });
            }
        }
        let mut out = Vec::with_capacity(metrics.len());
        for (metric, points) in metrics.iter().zip(in_asked_order(values, &of)) {
            if points.len() <= max_points {
                out.push(History {
                    device_id: device_id.to_owned(),
                    metric: metric.clone(),
                    tier: Tier::Raw,
                    points,
                });
                continue;
            }
            let query =
                HistoryQuery::new(device_id, metric.as_str(), from, to).with_max_points(max_points);
            match self.history(org, &query).await? {
                Some(history) => out.push(history),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    async fn reports(
        &self,
        org: &OrgId,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError> {
        // Memory holds at most the configured history: copying it out keeps
        // the map unlocked while the answer streams.
        let Some(reports) = self.device(org, device_id, |history| {
            history
                .in_range(from, to)
                .cloned()
                .map(Ok)
                .collect::<Vec<Result<Report, StoreError>>>()
        }) else {
            return Ok(None);
        };
        Ok(Some(Box::pin(futures_util::stream::iter(reports))))
    }

    async fn delete_device(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .orgs
            .get(org)
            .is_some_and(|devices| devices.remove(device_id).is_some()))
    }

    async fn apply_retention(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        if let Some(cutoff) = now.checked_sub(self.keep) {
            self.horizon.fetch_max(nanos(cutoff), Ordering::AcqRel);
        }
        // A device's latest report stays, however old: it is what the
        // dashboard and the device list show.
        for devices in &self.orgs {
            for mut history in devices.iter_mut() {
                while history.reports.len() > 1
                    && history
                        .reports
                        .front()
                        .is_some_and(|r| now - r.last_seen > self.keep)
                {
                    history.reports.pop_front();
                }
            }
        }
        Ok(())
    }
}

/// `at` in Unix nanoseconds, saturated to what an `i64` holds (the years
/// 1677 to 2262).
fn nanos(at: OffsetDateTime) -> i64 {
    let nanos = at.unix_timestamp_nanos();
    i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
}
