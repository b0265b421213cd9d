//! Alerting per organisation: one [`AlertEngine`] per organisation, made
//! when first needed, each with its own rules, channels, silences, alerts
//! and history, reading only its organisation's devices.
//!
//! The `default` organisation's engine is the one
//! [`ServerBuilder::alerts`](crate::ServerBuilder::alerts) configures: the
//! `[alerts]` section's rules, channels and settings and the application's
//! channels are its own. Another organisation's engine starts with no rule
//! and no channel (its admins make them through the API) and shares the
//! server-wide settings: the public URL for links, the evaluation period,
//! the offline delay.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tailmon_core::{OrgId, Report};

use crate::alerts::alerts_error::AlertsError;
use crate::alerts::engine::AlertEngine;

/// Every organisation's alert engine. Cheap to clone; built by
/// [`ServerBuilder::build`](crate::ServerBuilder::build) and reached
/// through [`Server::org_alerts`](crate::Server::org_alerts).
#[derive(Clone)]
pub struct OrgAlerts {
    inner: Arc<OrgAlertsInner>,
}

struct OrgAlertsInner {
    /// The `default` organisation's engine.
    default: AlertEngine,
    /// The others', by organisation.
    others: RwLock<HashMap<OrgId, AlertEngine>>,
    /// Set once [`OrgAlerts::load_devices`] has read the store.
    loaded: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for OrgAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgAlerts")
            .field("organisations", &self.organisations())
            .finish_non_exhaustive()
    }
}

impl OrgAlerts {
    /// `default`'s engine, and one for each other organisation that the
    /// alerts database keeps something of (its rules, channels, silences,
    /// alerts and history loaded).
    pub(crate) fn new(default: AlertEngine) -> Result<Self, String> {
        let mut others = HashMap::new();
        let stored = default
            .database()
            .organisations()
            .map_err(|e| e.to_string())?;
        for org in stored.into_iter().filter(|org| !org.is_default()) {
            let engine = default.sibling(org.clone())?;
            others.insert(org, engine);
        }
        Ok(Self {
            inner: Arc::new(OrgAlertsInner {
                default,
                others: RwLock::new(others),
                loaded: tokio::sync::OnceCell::new(),
            }),
        })
    }

    /// The `default` organisation's engine.
    pub fn default_engine(&self) -> &AlertEngine {
        &self.inner.default
    }

    /// `org`'s engine, made (empty) when it has none yet.
    pub fn engine(&self, org: &OrgId) -> AlertEngine {
        if org.is_default() {
            return self.inner.default.clone();
        }
        if let Some(engine) = self.existing(org) {
            return engine;
        }
        let mut others = self.inner.others.write().unwrap_or_else(|p| p.into_inner());
        others
            .entry(org.clone())
            .or_insert_with(|| {
                // Once the store was read, a new organisation's devices
                // arrive as reports.
                self.inner
                    .default
                    .sibling_empty(org.clone(), self.inner.loaded.initialized())
            })
            .clone()
    }

    /// `org`'s engine if it has one.
    fn existing(&self, org: &OrgId) -> Option<AlertEngine> {
        if org.is_default() {
            return Some(self.inner.default.clone());
        }
        self.inner
            .others
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(org)
            .cloned()
    }

    /// Every engine, `default`'s first.
    fn engines(&self) -> Vec<AlertEngine> {
        let others = self.inner.others.read().unwrap_or_else(|p| p.into_inner());
        std::iter::once(self.inner.default.clone())
            .chain(others.values().cloned())
            .collect()
    }

    /// The organisations that have an engine, `default` first.
    pub fn organisations(&self) -> Vec<OrgId> {
        let others = self.inner.others.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<OrgId> = others.keys().cloned().collect();
        names.sort();
        std::iter::once(OrgId::default()).chain(names).collect()
    }

    /// Evaluates `org`'s threshold rules on one of its devices' latest
    /// report, as it arrives (see [`AlertEngine::observe`]).
    pub fn observe(&self, org: &OrgId, report: &Report) {
        self.engine(org).observe(report);
    }

    /// A device of `org` was deleted: its alerts end without a
    /// notification (see [`AlertEngine::forget_device`]).
    pub fn forget_device(&self, org: &OrgId, device_id: &str) {
        if let Some(engine) = self.existing(org) {
            engine.forget_device(device_id);
        }
    }

    /// The timer's work (see [`AlertEngine::evaluate`]), for every
    /// organisation in turn.
    pub async fn evaluate(&self) {
        for engine in self.engines() {
            engine.evaluate().await;
        }
    }

    /// [`evaluate`](Self::evaluate), the predictive rules included: for
    /// tests and tools.
    pub async fn evaluate_now(&self) {
        for engine in self.engines() {
            engine.evaluate_now().await;
        }
    }

    /// Learns every device's latest report from the store, once, each into
    /// its organisation's engine (one read of the store for all), so that a
    /// device silent since before a restart still goes offline.
    pub(crate) async fn load_devices(&self) {
        let _ = self
            .inner
            .loaded
            .get_or_init(|| async {
                match self.default_engine().store().latest().await {
                    Ok(reports) => {
                        let mut by_org: HashMap<OrgId, Vec<Report>> = HashMap::new();
                        for (org, report) in reports {
                            by_org.entry(org).or_default().push(report);
                        }
                        for (org, reports) in &by_org {
                            self.engine(org).load_devices_from(reports);
                        }
                        // The engines of organisations without a device
                        // have nothing to learn: none reads the store again.
                        for engine in self.engines() {
                            engine.load_devices_from(&[]);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "alerts could not read the latest reports")
                    }
                }
            })
            .await;
    }

    /// Removes `org`'s engine and everything alerting keeps of it (rules,
    /// channels, silences, alerts, history), for when the organisation is
    /// removed; its notifications already queued are still delivered.
    /// `default` is refused.
    pub fn remove_organisation(&self, org: &OrgId) -> Result<(), AlertsError> {
        if org.is_default() {
            return Err(AlertsError::Conflict(
                "the default organisation cannot be removed".into(),
            ));
        }
        let mut others = self.inner.others.write().unwrap_or_else(|p| p.into_inner());
        self.inner
            .default
            .database()
            .remove_organisation(org)
            .map_err(|e| AlertsError::Storage(e.to_string()))?;
        others.remove(org);
        Ok(())
    }
}
