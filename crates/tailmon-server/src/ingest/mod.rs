//! The one way reports enter the server, for HTTP handlers and in-process
//! agents alike: validate, stamp the receive time, admit the device under
//! the device cap, store.
//!
//! May use: `store`, `clock`, `telemetry` (counts and timings).

mod agent_instances;
pub(crate) mod clock_skew;
pub(crate) mod device_admission;
pub(crate) mod fleet;
mod fleet_refresh;
pub(crate) mod fleets;
mod ingest_error;

pub use fleet_refresh::{FLEET_REFRESH_WINDOW, FLEET_SWEEP_EVERY, FLEET_WIDEN_EVERY, FleetRefresh};
pub use ingest_error::IngestError;

use std::sync::Arc;

use tailmon_core::{BatchResult, OffsetDateTime, OrgId, RejectedReport, Report};

use crate::ingest::device_admission::{Admission, DeviceAdmission};
use crate::ingest::fleet::{Fleet, OrgFleetEvent};
use crate::ingest::fleets::Fleets;
use crate::telemetry::ServerMetrics;
use crate::telemetry::server_metrics::Source;
use crate::{Clock, Store, StoreError};

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
    /// Every organisation's devices' latest state for readers; filled from
    /// the store's latest reports on first use, then kept up to date here.
    fleets: Fleets,
    fleet_loaded: tokio::sync::OnceCell<()>,
    /// When the previous fleet refreshes ran (see [`Ingest::refresh_fleet`]).
    fleet_marks: std::sync::Mutex<fleet_refresh::RefreshMarks>,
    /// Reports received and refused, ingest and store-write timings.
    metrics: Arc<ServerMetrics>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("now", &self.inner.clock.now())
            .finish_non_exhaustive()
    }
}

impl Ingest {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        max_devices: usize,
        offline_after: time::Duration,
        thresholds: tailmon_core::Thresholds,
        metrics: Arc<ServerMetrics>,
    ) -> Self {
        Self {
            inner: Arc::new(IngestInner {
                store,
                clock,
                admission: DeviceAdmission::new(max_devices),
                fleets: Fleets::new(offline_after, thresholds),
                fleet_loaded: tokio::sync::OnceCell::new(),
                fleet_marks: std::sync::Mutex::default(),
                metrics,
            }),
        }
    }

    /// Validates and stores one report in the `default` organisation; see
    /// [`ingest_in`](Self::ingest_in).
    pub async fn ingest(&self, report: Report) -> Result<(), IngestError> {
        self.ingest_in(&OrgId::default(), report).await
    }

    /// Validates and stores one report of `org`'s. `Ok` means the store has it. A
    /// report stamped beyond the allowed clock skew ahead is stored at the
    /// receive time and its device flagged (`clock_skew_seconds`).
    ///
    /// A refusal is counted in `GET /metrics` and logged (at most once a
    /// minute per reason) as coming from the server's own process.
    pub async fn ingest_in(&self, org: &OrgId, report: Report) -> Result<(), IngestError> {
        let result = self.take(org, report).await;
        if let Err(error) = &result {
            self.inner
                .metrics
                .refused(error.refusal_reason(), None, 1, &error.to_string());
        }
        result
    }

    /// [`ingest`](Self::ingest) for the HTTP handlers, whose refusals the
    /// API counts with the client's address.
    pub(crate) async fn take(&self, org: &OrgId, mut report: Report) -> Result<(), IngestError> {
        let started = std::time::Instant::now();
        let now = self.inner.clock.now();
        let skew = clock_skew::beyond_allowance(report.last_seen, now);
        if let Some(skew) = skew {
            clock_skew::move_back(&mut report, skew);
        }
        self.admit(org, &mut report, now).await?;
        let fleet = self.fleet(org).await?;
        let instance = report.agent_instance.take();
        tracing::debug!(device_id = %report.device_id, cpu = report.cpu_usage, "report accepted");
        let prepared = fleet
            .prepare(&report)
            .with_clock_skew(skew.map(clock_skew::seconds));
        let writing = std::time::Instant::now();
        self.inner.store.insert(org, report).await?;
        self.inner.metrics.store_write.observe(writing.elapsed());
        fleet.offer(prepared, instance.as_deref(), now);
        self.inner.metrics.received(1);
        self.inner.metrics.ingest.observe(started.elapsed());
        Ok(())
    }

    /// The server's own counters.
    pub(crate) fn metrics(&self) -> &Arc<ServerMetrics> {
        &self.inner.metrics
    }

    /// `org`'s fleet as readers see it; every fleet is filled from the
    /// store's latest reports on first use.
    pub(crate) async fn fleet(&self, org: &OrgId) -> Result<Arc<Fleet>, StoreError> {
        self.load_fleets().await?;
        Ok(self.inner.fleets.of(org))
    }

    /// Every organisation's fleet, filled from the store on first use.
    pub(crate) async fn fleets(&self) -> Result<&Fleets, StoreError> {
        self.load_fleets().await?;
        Ok(&self.inner.fleets)
    }

    async fn load_fleets(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .fleet_loaded
            .get_or_try_init(|| async {
                let now = inner.clock.now();
                for (org, report) in inner.store.latest().await? {
                    let fleet = inner.fleets.of(&org);
                    fleet.offer(fleet.prepare(&report), None, now);
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        Ok(())
    }

    /// Validates every report and stores those that pass, all in one
    /// write, in the `default` organisation.
    /// `Ok` means the accepted ones are stored; the answer says why the
    /// others were refused (for good). A new device over the device cap
    /// refuses the whole batch with [`IngestError::TooManyDevices`] (429), so
    /// that the agent keeps its reports and retries. A device whose newest
    /// report in the batch is stamped beyond the allowed clock skew ahead
    /// has all its reports of the batch moved back by that skew (order and
    /// spacing kept, the newest at the receive time) and is flagged.
    ///
    /// Refusals are counted in `GET /metrics` and logged (at most once a
    /// minute per reason) as coming from the server's own process.
    pub async fn ingest_batch(&self, reports: Vec<Report>) -> Result<BatchResult, IngestError> {
        self.ingest_batch_in(&OrgId::default(), reports).await
    }

    /// [`ingest_batch`](Self::ingest_batch) into `org`.
    pub async fn ingest_batch_in(
        &self,
        org: &OrgId,
        reports: Vec<Report>,
    ) -> Result<BatchResult, IngestError> {
        let len = reports.len() as u64;
        let result = self.take_batch(org, reports, None).await;
        if let Err(error) = &result {
            self.inner
                .metrics
                .refused(error.refusal_reason(), None, len, &error.to_string());
        }
        result
    }

    /// [`ingest_batch`](Self::ingest_batch) for the HTTP handler: the
    /// reports refused one by one are counted here, from `source`; a
    /// refusal of the whole batch is the API's to count.
    pub(crate) async fn take_batch(
        &self,
        org: &OrgId,
        mut reports: Vec<Report>,
        source: Source,
    ) -> Result<BatchResult, IngestError> {
        let started = std::time::Instant::now();
        let now = self.inner.clock.now();
        let skews = clock_skew::correct_batch(&mut reports, now);
        let mut accepted = Vec::with_capacity(reports.len());
        let mut rejected = Vec::new();
        for (index, mut report) in reports.into_iter().enumerate() {
            match self.admit(org, &mut report, now).await {
                Ok(()) => accepted.push(report),
                // Worth retrying later: the whole batch is refused, nothing stored.
                Err(error @ (IngestError::Store(_) | IngestError::TooManyDevices { .. })) => {
                    return Err(error);
                }
                Err(error) => {
                    self.inner.metrics.refused(
                        error.refusal_reason(),
                        source,
                        1,
                        &format!("report {index} of a batch: {error}"),
                    );
                    rejected.push(RejectedReport {
                        index,
                        field: match &error {
                            IngestError::Invalid(rule) => Some(rule.field().to_owned()),
                            _ => None,
                        },
                        error: error.to_string(),
                    });
                }
            }
        }
        let result = BatchResult {
            accepted: accepted.len(),
            rejected,
        };
        if !accepted.is_empty() {
            let fleet = self.fleet(org).await?;
            let mut instances: Vec<Option<String>> = accepted
                .iter_mut()
                .map(|report| report.agent_instance.take())
                .collect();
            // The fleet takes the newest of each device; a copy of those only.
            let mut newest: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::new();
            for (index, report) in accepted.iter().enumerate() {
                let slot = newest.entry(report.device_id.as_str()).or_insert(index);
                if accepted[*slot].last_seen < report.last_seen {
                    *slot = index;
                }
            }
            let mut offers: Vec<usize> = newest.into_values().collect();
            offers.sort_unstable();
            let prepared: Vec<_> = offers
                .into_iter()
                .map(|index| {
                    let report = &accepted[index];
                    let skew = skews.get(&report.device_id).copied();
                    (
                        fleet
                            .prepare(report)
                            .with_clock_skew(skew.map(clock_skew::seconds)),
                        instances[index].take(),
                    )
                })
                .collect();
            let writing = std::time::Instant::now();
            self.inner.store.insert_many(org, accepted).await?;
            self.inner.metrics.store_write.observe(writing.elapsed());
            for (report, instance) in prepared {
                fleet.offer(report, instance.as_deref(), now);
            }
            self.inner.metrics.received(result.accepted as u64);
        }
        self.inner.metrics.ingest.observe(started.elapsed());
        tracing::debug!(
            accepted = result.accepted,
            rejected = result.rejected.len(),
            "batch stored"
        );
        Ok(result)
    }

    /// Removes a device of the `default` organisation and its history;
    /// `false` if it was unknown.
    pub async fn delete_device(&self, device_id: &str) -> Result<bool, IngestError> {
        self.delete_device_in(&OrgId::default(), device_id).await
    }

    /// Removes a device of `org` and its history; `false` if it was unknown.
    pub async fn delete_device_in(
        &self,
        org: &OrgId,
        device_id: &str,
    ) -> Result<bool, IngestError> {
        let fleet = self.fleet(org).await?;
        let existed = self.inner.store.delete_device(org, device_id).await?;
        fleet.remove(device_id);
        self.inner.admission.forget(org, device_id);
        Ok(existed)
    }

    /// Removes every device of `org` and its history, as an organisation's
    /// removal asks; returns how many there were. Reports of the
    /// organisation still arriving (a token not yet revoked) make devices
    /// anew: revoke its tokens first.
    pub async fn delete_org_devices(&self, org: &OrgId) -> Result<usize, IngestError> {
        let devices: Vec<String> = self
            .inner
            .store
            .devices()
            .await?
            .into_iter()
            .filter(|(of, _)| of == org)
            .map(|(_, device_id)| device_id)
            .collect();
        let mut removed = 0;
        for device_id in &devices {
            if self.delete_device_in(org, device_id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Every organisation's fleet changes from now on (the fleets are
    /// filled from the store on first use, and those first offers are
    /// changes too).
    pub(crate) fn subscribe_all(&self) -> tokio::sync::broadcast::Receiver<OrgFleetEvent> {
        self.inner.fleets.subscribe_all()
    }

    /// Makes `thresholds` those behind every device's status, at once (see
    /// `Fleet::set_thresholds`); returns how many statuses changed.
    pub(crate) fn set_thresholds(&self, thresholds: tailmon_core::Thresholds) -> usize {
        self.inner.fleets.set_thresholds(thresholds)
    }

    /// Makes `caps` where an organisation's own device cap is read (the
    /// owner's limits, asked when a device is new); organisations without
    /// one have the server-wide cap only, which also bounds the total.
    /// Devices over a lowered cap stay; new ones are refused (429) until
    /// there is room. Set once, by the builder.
    pub(crate) fn set_device_caps(
        &self,
        caps: impl Fn(&OrgId) -> Option<usize> + Send + Sync + 'static,
    ) {
        self.inner.admission.set_org_caps(Box::new(caps));
    }

    /// The clock the server reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Validates, stamps and admits one report.
    async fn admit(
        &self,
        org: &OrgId,
        report: &mut Report,
        now: OffsetDateTime,
    ) -> Result<(), IngestError> {
        report.validate(now)?;
        report.received_at = Some(now);
        let store = self.inner.store.as_ref();
        match self
            .inner
            .admission
            .admit(org, &report.device_id, store)
            .await?
        {
            Admission::Admitted => Ok(()),
            Admission::OverCap { cap } => Err(IngestError::TooManyDevices { cap }),
        }
    }

    /// The store reports go to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }
}
