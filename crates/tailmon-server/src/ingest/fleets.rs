//! Every organisation's fleet: one [`Fleet`] each, made when first needed,
//! so that an organisation's readers, caches and live stream never see
//! another's devices, and the cost of tenancy is one map lookup.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use tailmon_core::{OrgId, Thresholds};
use tokio::sync::broadcast;

use crate::ingest::fleet::{Fleet, LIVE_EVENT_BUFFER, OrgFleetEvent};

/// Every organisation's fleet. See the module documentation.
#[derive(Debug)]
pub(crate) struct Fleets {
    offline_after: time::Duration,
    /// The thresholds in force (for fleets made from now on) and the fleets;
    /// both changed under the write lock, so that no fleet misses a change.
    state: RwLock<(Thresholds, HashMap<OrgId, Arc<Fleet>>)>,
    /// Every organisation's changes, for the alert engine.
    all: broadcast::Sender<OrgFleetEvent>,
}

impl Fleets {
    /// No fleet yet; devices go offline after `offline_after`.
    pub(crate) fn new(offline_after: time::Duration, thresholds: Thresholds) -> Self {
        Self {
            offline_after,
            state: RwLock::new((thresholds, HashMap::new())),
            // Sized for every organisation together.
            all: broadcast::channel(LIVE_EVENT_BUFFER).0,
        }
    }

    /// The fleet of `org`, made empty if it has none yet.
    pub(crate) fn of(&self, org: &OrgId) -> Arc<Fleet> {
        if let Some(fleet) = self.get(org.as_str()) {
            return fleet;
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let (thresholds, fleets) = &mut *state;
        fleets
            .entry(org.clone())
            .or_insert_with(|| {
                Arc::new(Fleet::of(
                    org.clone(),
                    self.offline_after,
                    *thresholds,
                    self.all.clone(),
                ))
            })
            .clone()
    }

    /// The fleet of `org`, if it has one.
    pub(crate) fn get(&self, org: &str) -> Option<Arc<Fleet>> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.1.get(org).cloned()
    }

    /// Every organisation's fleet made so far.
    pub(crate) fn all(&self) -> Vec<(OrgId, Arc<Fleet>)> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state
            .1
            .iter()
            .map(|(org, fleet)| (org.clone(), fleet.clone()))
            .collect()
    }

    /// Every organisation's changes from now on.
    pub(crate) fn subscribe_all(&self) -> broadcast::Receiver<OrgFleetEvent> {
        self.all.subscribe()
    }

    /// Makes `thresholds` those of every fleet (see
    /// [`Fleet::set_thresholds`]); returns how many statuses changed.
    pub(crate) fn set_thresholds(&self, thresholds: Thresholds) -> usize {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        state.0 = thresholds;
        state
            .1
            .values()
            .map(|fleet| fleet.set_thresholds(thresholds))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::{OffsetDateTime, Report};

    fn report(id: &str, cpu: f64) -> Report {
        let mut report = Report::new(id, OffsetDateTime::now_utc());
        report.cpu_usage = cpu;
        report.ram_used_mb = 1;
        report.ram_total_mb = 2;
        report
    }

    #[test]
    fn organisations_have_their_own_fleets_and_share_the_thresholds() {
        let fleets = Fleets::new(time::Duration::minutes(1), Thresholds::default());
        let acme = OrgId::new("acme").expect("name");
        let mut all = fleets.subscribe_all();
        let a = fleets.of(&acme);
        let d = fleets.of(&OrgId::default());
        let now = OffsetDateTime::now_utc();
        a.offer(a.prepare(&report("web-1", 95.0)), None, now);
        assert!(
            d.summary_of("web-1").is_none(),
            "default sees acme's device"
        );
        assert!(a.summary_of("web-1").is_some());
        let event = all.try_recv().expect("an event");
        assert_eq!(event.org, acme);
        assert!(Arc::ptr_eq(&fleets.of(&acme), &a), "one fleet per org");

        // Thresholds reach fleets made before and after the change.
        let strict = Thresholds {
            cpu_warning: 10.0,
            cpu_critical: 20.0,
            ..Thresholds::default()
        };
        assert_eq!(
            fleets.set_thresholds(strict),
            0,
            "web-1 was already critical"
        );
        let later = fleets.of(&OrgId::new("later").expect("name"));
        later.offer(later.prepare(&report("db-1", 15.0)), None, now);
        let summary = String::from_utf8(later.summary_of("db-1").expect("db-1")).expect("utf-8");
        assert!(summary.starts_with("{\"status\":\"warning\""), "{summary}");
    }
}
