//! The alert engine of one organisation: rules evaluated on every live
//! report and on a timer, alerts' states, notifications through the queue.
//! Beside it: `engine/api_operations.rs`, the changes the API makes (acks,
//! silences, dashboard rules and channels) and what it reads;
//! `engine/reconfigure.rs`, the `[alerts]` section swapped in a running
//! engine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tailmon_core::{DeviceSummary, HistoryQuery, OffsetDateTime, OrgId, ProcessInfo, Report};
use wildmatch::WildMatch;

use crate::Clock;
use crate::Store;
use crate::alerts::alert_db::{AlertDb, Table};
use crate::alerts::alert_state::{Alert, AlertState, alert_id};
use crate::alerts::alerts_error::AlertsError;
use crate::alerts::channels::{self, ChannelConfig};
use crate::alerts::config::{AlertsConfig, NamedChannel};
use crate::alerts::duration_text;
use crate::alerts::notification::{Notification, NotificationKind, Notifier};
use crate::alerts::notify_queue::{DeliveryStats, NotifyQueue};
use crate::alerts::predict::LinearFit;
use crate::alerts::rule::{
    DEFAULT_DISK_FULL_WINDOW, DEFAULT_DISK_FULL_WITHIN, RuleConfig, RuleKind, RuleSource,
    default_rules,
};
use crate::alerts::silence::Silence;

mod api_operations;
mod reconfigure;

/// How often offline and predictive rules are checked by default: 5 s.
pub const DEFAULT_EVALUATE_EVERY: Duration = Duration::from_secs(5);
/// Predictive rules are checked at most this often: 1 minute.
pub const PREDICT_EVERY: Duration = Duration::from_secs(60);
/// Alerts of the history kept in memory (and answered): 10,000.
pub const HISTORY_KEPT: usize = 10_000;
/// The public URL used when none is set: `http://localhost:3000/`.
pub const FALLBACK_PUBLIC_URL: &str = "http://localhost:3000/";

/// A rule as the API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// `file`, `default` or `dashboard`.
    pub source: RuleSource,
    /// The rule.
    #[serde(flatten)]
    pub rule: RuleConfig,
}

/// Where a channel comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelSource {
    /// The configuration file: read-only.
    File,
    /// Made in the dashboard: stored in the database.
    Dashboard,
    /// Given by the embedding application in code: read-only.
    Application,
}

/// A channel as the API lists it: secrets redacted.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    /// Its name.
    pub name: String,
    /// Where it comes from.
    pub source: ChannelSource,
    /// Its settings, redacted; absent for an application's own channel.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub config: Option<ChannelConfig>,
    /// What was delivered through it since the server started.
    pub delivery: DeliveryStats,
}

/// A new silence, as `POST /api/v1/silences` takes it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// The rule; every rule when absent.
    #[serde(default)]
    pub rule: Option<String>,
    /// A glob on device ids; every device when absent.
    #[serde(default)]
    pub device: Option<String>,
    /// Until when.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    /// Why.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The engine's counters.
#[derive(Debug, Clone, Serialize)]
pub struct EngineStats {
    /// Live reports evaluated.
    pub reports_seen: u64,
    /// Notification delivery, every channel together.
    pub delivery: DeliveryStats,
}

struct RuleEntry {
    config: RuleConfig,
    source: RuleSource,
    devices: WildMatch,
    metric: Option<WildMatch>,
}

impl RuleEntry {
    fn new(config: RuleConfig, source: RuleSource) -> Self {
        Self {
            devices: WildMatch::new(&config.devices),
            metric: config.metric.as_deref().map(WildMatch::new),
            config,
            source,
        }
    }

    /// Whether an alert of this rule's name on `device` and `metric` is
    /// one this rule raises.
    fn watches(&self, device: &str, metric: &str) -> bool {
        self.devices.matches(device)
            && match self.config.kind {
                RuleKind::Threshold => self.metric.as_ref().is_some_and(|m| m.matches(metric)),
                RuleKind::Offline => metric == "offline",
                RuleKind::DiskFull => metric.starts_with("disk_used_percent:"),
            }
    }
}

/// An `[alerts]` section checked and ready to swap in (see
/// [`AlertEngine::prepare`] and [`AlertEngine::reconfigure`]).
pub(crate) struct PreparedAlerts {
    config: AlertsConfig,
    public_url: reqwest::Url,
    file_channels: Vec<(NamedChannel, Arc<dyn Notifier>)>,
}

struct ChannelEntry {
    config: Option<ChannelConfig>,
    source: ChannelSource,
    notifier: Arc<dyn Notifier>,
}

#[derive(Default)]
struct DeviceSeen {
    seen: Option<OffsetDateTime>,
    disks: Vec<String>,
    /// The top processes of its latest report, kept only while one of its
    /// threshold rules holds: a firing alert tells them, and keeping every
    /// device's would cost some 1 KB a device.
    top_processes: Option<Vec<ProcessInfo>>,
}

#[derive(Default)]
struct EngineState {
    rules: Vec<RuleEntry>,
    channels: BTreeMap<String, ChannelEntry>,
    alerts: HashMap<String, Alert>,
    history: VecDeque<Alert>,
    silences: Vec<Silence>,
    devices: HashMap<String, DeviceSeen>,
    /// The device whose report [`AlertEngine::observe`] is evaluating, and
    /// that report's top processes: an alert it fires at once tells them.
    /// Its buffers are reused from one report to the next.
    observing: (String, Option<Vec<ProcessInfo>>),
    last_prediction: Option<OffsetDateTime>,
    /// How often a firing alert is told again, unless its rule says.
    repeat: Duration,
    /// Whether the default rules are in force.
    default_rules: bool,
}

/// Evaluates the rules and tells the channels. Cheap to clone; built by
/// [`ServerBuilder::alerts`](crate::ServerBuilder::alerts) and reached
/// through [`Server::alerts`](crate::Server::alerts).
#[derive(Clone)]
pub struct AlertEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    clock: Arc<dyn Clock>,
    store: Arc<dyn Store>,
    offline_after: time::Duration,
    /// The timer's period; the alert task follows its changes.
    evaluate_every: tokio::sync::watch::Sender<Duration>,
    /// The dashboard's address, shared by every organisation's engine.
    public_url: Arc<arc_swap::ArcSwap<reqwest::Url>>,
    http: reqwest::Client,
    /// The alerts database, shared by every organisation's engine; this
    /// engine reads and writes its organisation's rows only.
    db: Arc<AlertDb>,
    /// The organisation whose rules, channels, alerts and devices these are.
    org: OrgId,
    queue: NotifyQueue,
    state: Mutex<EngineState>,
    reports_seen: AtomicU64,
    loaded: tokio::sync::OnceCell<()>,
}

impl std::fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertEngine").finish_non_exhaustive()
    }
}

/// What the engine is built from (the builder's settings).
pub(crate) struct EngineParts {
    pub(crate) config: AlertsConfig,
    pub(crate) app_channels: Vec<(String, Arc<dyn Notifier>)>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) offline_after: time::Duration,
    pub(crate) db: AlertDb,
}

fn storage(error: impl std::fmt::Display) -> AlertsError {
    AlertsError::Storage(error.to_string())
}

impl AlertEngine {
    /// Checks the configuration, loads what the database keeps, and makes
    /// the channels' notifiers.
    pub(crate) fn new(parts: EngineParts) -> Result<Self, String> {
        let EngineParts {
            config,
            app_channels,
            clock,
            store,
            offline_after,
            db,
        } = parts;
        let names: Vec<&str> = app_channels.iter().map(|(n, _)| n.as_str()).collect();
        config.check_with(&names).map_err(|e| e.to_string())?;
        let public_url = config.public_url.as_deref().unwrap_or(FALLBACK_PUBLIC_URL);
        let public_url =
            reqwest::Url::parse(public_url).map_err(|e| format!("alerts.public_url: {e}"))?;
        let http = channels::http_client().map_err(|e| e.to_string())?;
        let mut state = EngineState {
            repeat: config.repeat,
            default_rules: config.default_rules,
            ..EngineState::default()
        };
        if config.default_rules {
            for rule in default_rules() {
                state.rules.push(RuleEntry::new(rule, RuleSource::Default));
            }
        }
        for rule in &config.rules {
            state
                .rules
                .push(RuleEntry::new(rule.clone(), RuleSource::File));
        }
        for (name, notifier) in app_channels {
            state.channels.insert(
                name,
                ChannelEntry {
                    config: None,
                    source: ChannelSource::Application,
                    notifier,
                },
            );
        }
        for channel in &config.channels {
            let notifier = channels::notifier(&channel.config, &http)
                .map_err(|e| format!("alerts.channels {:?}: {e}", channel.name))?;
            state.channels.insert(
                channel.name.clone(),
                ChannelEntry {
                    config: Some(channel.config.clone()),
                    source: ChannelSource::File,
                    notifier,
                },
            );
        }
        let org = OrgId::default();
        let db = Arc::new(db);
        load_stored(&db, &org, &http, &mut state)?;
        Ok(Self {
            inner: Arc::new(EngineInner {
                clock,
                store,
                offline_after,
                evaluate_every: tokio::sync::watch::Sender::new(
                    config.evaluate_every.unwrap_or(DEFAULT_EVALUATE_EVERY),
                ),
                public_url: Arc::new(arc_swap::ArcSwap::from_pointee(public_url)),
                http,
                db,
                org,
                queue: NotifyQueue::new(),
                state: Mutex::new(state),
                reports_seen: AtomicU64::new(0),
                loaded: tokio::sync::OnceCell::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, EngineState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An engine for `org` with no rule and no channel, sharing this one's
    /// clock, store, offline delay, HTTP client, database and public URL.
    fn sibling_with(&self, org: OrgId, state: EngineState) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(EngineInner {
                clock: inner.clock.clone(),
                store: inner.store.clone(),
                offline_after: inner.offline_after,
                evaluate_every: tokio::sync::watch::Sender::new(self.evaluate_every()),
                public_url: inner.public_url.clone(),
                http: inner.http.clone(),
                db: inner.db.clone(),
                org,
                queue: NotifyQueue::new(),
                state: Mutex::new(state),
                reports_seen: AtomicU64::new(0),
                loaded: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The state another organisation's engine starts from: no rule, no
    /// channel, the default repeat.
    fn empty_state() -> EngineState {
        EngineState {
            repeat: crate::alerts::config::DEFAULT_REPEAT,
            default_rules: false,
            ..EngineState::default()
        }
    }

    /// `org`'s engine (see [`sibling_with`](Self::sibling_with)) with what
    /// the database keeps of it.
    pub(crate) fn sibling(&self, org: OrgId) -> Result<Self, String> {
        let mut state = Self::empty_state();
        load_stored(&self.inner.db, &org, &self.inner.http, &mut state)?;
        Ok(self.sibling_with(org, state))
    }

    /// `org`'s engine, empty (the database keeps nothing of it); when
    /// `devices_loaded`, it does not read the store's latest reports
    /// itself (its devices arrive as reports).
    pub(crate) fn sibling_empty(&self, org: OrgId, devices_loaded: bool) -> Self {
        let engine = self.sibling_with(org, Self::empty_state());
        if devices_loaded {
            let _ = engine.inner.loaded.set(());
        }
        engine
    }

    /// The organisation this engine alerts for.
    pub fn organisation(&self) -> &OrgId {
        &self.inner.org
    }

    /// The alerts database (every organisation's).
    pub(crate) fn database(&self) -> &AlertDb {
        &self.inner.db
    }

    /// How often the timer evaluates.
    pub fn evaluate_every(&self) -> Duration {
        *self.inner.evaluate_every.borrow()
    }

    /// The timer's period and its changes, for the alert task.
    pub(crate) fn evaluate_every_changes(&self) -> tokio::sync::watch::Receiver<Duration> {
        self.inner.evaluate_every.subscribe()
    }

    /// Learns every device's latest report from the store, once, so that
    /// a device silent since before a restart still goes offline.
    pub(crate) async fn load_devices(&self) {
        let _ = self
            .inner
            .loaded
            .get_or_init(|| async {
                match self.inner.store.latest().await {
                    Ok(reports) => {
                        let mut state = self.lock();
                        for (org, report) in &reports {
                            if *org == self.inner.org {
                                remember(&mut state, report);
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "alerts could not read the latest reports")
                    }
                }
            })
            .await;
    }

    /// Learns the latest `reports` of this engine's organisation, read
    /// from the store by [`OrgAlerts::load_devices`](crate::alerts::OrgAlerts),
    /// unless it has learnt them already.
    pub(crate) fn load_devices_from(&self, reports: &[Report]) {
        let mut state = self.lock();
        if self.inner.loaded.set(()).is_ok() {
            for report in reports {
                remember(&mut state, report);
            }
        }
    }

    /// Evaluates the threshold rules on a device's latest report, as it
    /// arrives (on the engine's own task, never ingest's).
    pub fn observe(&self, report: &Report) {
        self.inner.reports_seen.fetch_add(1, Ordering::Relaxed);
        let now = self.inner.clock.now();
        let mut state = self.lock();
        remember(&mut state, report);
        state.observing.0.clone_from(&report.device_id);
        state.observing.1.clone_from(&report.top_processes);
        let device = report.device_id.as_str();
        let mut held = false;
        let mut found: Vec<(usize, String, f64)> = Vec::new();
        for (index, rule) in state.rules.iter().enumerate() {
            if rule.config.kind != RuleKind::Threshold || !rule.devices.matches(device) {
                continue;
            }
            let Some(metric) = &rule.config.metric else {
                continue;
            };
            for (name, value) in metric_values(metric, rule.metric.as_ref(), report) {
                found.push((index, name, value));
            }
        }
        for (index, metric, value) in found {
            let rule = &state.rules[index].config;
            let (Some(op), Some(threshold)) = (rule.op, rule.threshold) else {
                continue;
            };
            let id = alert_id(&rule.name, device, &metric);
            let holds = match state.alerts.get(&id) {
                Some(_) => op.still_holds(value, threshold, rule.hysteresis_or_default()),
                None => op.breaks(value, threshold),
            };
            held |= holds;
            let rule = rule.clone();
            self.condition(
                &mut state,
                &rule,
                Condition {
                    id,
                    device,
                    metric: &metric,
                    value: Some(value),
                    op: op.symbol(),
                    threshold,
                    note: None,
                },
                holds,
                now,
            );
        }
        // Back from offline.
        let back = DeviceSummary::seen(report) + self.inner.offline_after > now;
        if back {
            let offline: Vec<RuleConfig> = state
                .rules
                .iter()
                .filter(|r| r.config.kind == RuleKind::Offline)
                .map(|r| r.config.clone())
                .collect();
            for rule in offline {
                let id = alert_id(&rule.name, device, "offline");
                if state.alerts.contains_key(&id) {
                    self.condition(
                        &mut state,
                        &rule,
                        self.offline_condition(id, device),
                        false,
                        now,
                    );
                }
            }
        }
        let state = &mut *state;
        let kept = held.then(|| state.observing.1.clone()).flatten();
        if let Some(entry) = state.devices.get_mut(device) {
            entry.top_processes = kept;
        }
        state.observing.0.clear();
    }

    /// A device was deleted: its alerts end without a notification.
    pub fn forget_device(&self, device_id: &str) {
        let mut state = self.lock();
        state.devices.remove(device_id);
        let ids: Vec<String> = state
            .alerts
            .values()
            .filter(|a| a.device_id == device_id)
            .map(|a| a.id.clone())
            .collect();
        for id in ids {
            state.alerts.remove(&id);
            self.write_delete(Table::Alerts, &id);
        }
    }

    fn offline_condition<'a>(&self, id: String, device: &'a str) -> Condition<'a> {
        Condition {
            id,
            device,
            metric: "offline",
            value: None,
            op: ">",
            threshold: self.inner.offline_after.whole_seconds() as f64,
            note: None,
        }
    }

    /// The timer's work: offline rules, pending alerts whose `for` has
    /// passed, repeats, escalations, and (at most once a minute) the
    /// predictive rules.
    pub async fn evaluate(&self) {
        self.evaluate_with(false).await;
    }

    /// [`evaluate`](Self::evaluate), the predictive rules included whenever
    /// it is called: for tests and tools.
    pub async fn evaluate_now(&self) {
        self.evaluate_with(true).await;
    }

    async fn evaluate_with(&self, predict_now: bool) {
        self.load_devices().await;
        let now = self.inner.clock.now();
        {
            let mut state = self.lock();
            // Offline rules.
            let offline: Vec<RuleConfig> = state
                .rules
                .iter()
                .filter(|r| r.config.kind == RuleKind::Offline)
                .map(|r| r.config.clone())
                .collect();
            for rule in &offline {
                let devices = WildMatch::new(&rule.devices);
                let silent: Vec<(String, bool)> = state
                    .devices
                    .iter()
                    .filter(|(id, _)| devices.matches(id))
                    .filter_map(|(id, d)| {
                        d.seen.map(|seen| (id.clone(), self.is_offline(seen, now)))
                    })
                    .collect();
                for (device, is_offline) in silent {
                    let id = alert_id(&rule.name, &device, "offline");
                    if is_offline || state.alerts.contains_key(&id) {
                        let condition = self.offline_condition(id, &device);
                        self.condition(&mut state, rule, condition, is_offline, now);
                    }
                }
            }
            // Time passing: pending alerts, repeats, escalations.
            let ids: Vec<String> = state.alerts.keys().cloned().collect();
            for id in ids {
                self.advance(&mut state, &id, now);
            }
            state.silences.retain(|s| {
                s.until > now || {
                    let _ = self
                        .inner
                        .db
                        .delete(&self.inner.org, Table::Silences, &s.id);
                    false
                }
            });
        }
        let due = {
            let state = self.lock();
            predict_now
                || state
                    .last_prediction
                    .is_none_or(|at| now - at >= PREDICT_EVERY)
        };
        if due {
            self.predict(now).await;
        }
    }

    /// The predictive rules: a least-squares fit over each disk's history.
    async fn predict(&self, now: OffsetDateTime) {
        let work: Vec<(RuleConfig, String, String)> = {
            let mut state = self.lock();
            state.last_prediction = Some(now);
            let mut work = Vec::new();
            for rule in state
                .rules
                .iter()
                .filter(|r| r.config.kind == RuleKind::DiskFull)
            {
                for (device, seen) in &state.devices {
                    if rule.devices.matches(device) {
                        for disk in &seen.disks {
                            work.push((rule.config.clone(), device.clone(), disk.clone()));
                        }
                    }
                }
            }
            work
        };
        for (rule, device, metric) in work {
            let within = rule.within.unwrap_or(DEFAULT_DISK_FULL_WITHIN);
            let Some(DiskForecast { value, left }) =
                self.disk_forecast(&rule, &device, &metric, now).await
            else {
                continue;
            };
            let id = alert_id(&rule.name, &device, &metric);
            let mut state = self.lock();
            let under_way = state.alerts.contains_key(&id);
            // Hysteresis: once under way, it holds until the fit says 10 % later.
            let limit = if under_way {
                within.mul_f64(1.1)
            } else {
                within
            };
            let holds = left.is_some_and(|left| left <= limit);
            if !holds && !under_way {
                continue;
            }
            let note = left.map(|left| {
                format!(
                    "full in about {}",
                    duration_text::format(Duration::from_secs(left.as_secs() / 60 * 60))
                )
            });
            self.condition(
                &mut state,
                &rule,
                Condition {
                    id,
                    device: &device,
                    metric: &metric,
                    value,
                    op: ">=",
                    threshold: 100.0,
                    note,
                },
                holds,
                now,
            );
        }
    }

    /// Whether a device last seen at `seen` is offline at `now` (no report
    /// for three reporting intervals).
    pub(super) fn is_offline(&self, seen: OffsetDateTime, now: OffsetDateTime) -> bool {
        seen + self.inner.offline_after <= now
    }

    /// The engine's clock's time.
    pub(super) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The store the engine reads.
    pub(super) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Checks a rule as [`create_rule`](Self::create_rule) does (its
    /// fields and the channels it names), without adding it.
    pub(super) fn check_new_rule(&self, rule: &RuleConfig) -> Result<(), AlertsError> {
        Self::check_rule(&self.lock(), rule)
    }

    /// A `disk_full` rule's fit over one disk's history: `None` when the
    /// history cannot be read.
    pub(super) async fn disk_forecast(
        &self,
        rule: &RuleConfig,
        device: &str,
        metric: &str,
        now: OffsetDateTime,
    ) -> Option<DiskForecast> {
        let window = rule.window.unwrap_or(DEFAULT_DISK_FULL_WINDOW);
        let window = time::Duration::try_from(window).ok()?;
        let query = HistoryQuery::new(device, metric, now - window, now).with_max_points(500);
        let points: Vec<(OffsetDateTime, f64)> = match self
            .inner
            .store
            .history(&self.inner.org, &query)
            .await
        {
            Ok(Some(history)) => history.points.iter().map(|p| (p.at, p.avg)).collect(),
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%error, device, metric, "the predictive rule could not read history");
                return None;
            }
        };
        let left = LinearFit::of(&points).and_then(|f| f.time_to(100.0, now));
        Some(DiskForecast {
            value: points.last().map(|(_, v)| *v),
            left,
        })
    }

    /// Applies one evaluation of `rule`'s condition.
    fn condition(
        &self,
        state: &mut EngineState,
        rule: &RuleConfig,
        c: Condition<'_>,
        holds: bool,
        now: OffsetDateTime,
    ) {
        if holds {
            if let Some(alert) = state.alerts.get_mut(&c.id) {
                alert.value = c.value;
                if c.note.is_some() {
                    alert.note = c.note;
                }
            } else {
                let alert = Alert {
                    id: c.id.clone(),
                    rule: rule.name.clone(),
                    severity: rule.severity,
                    device_id: c.device.to_owned(),
                    metric: c.metric.to_owned(),
                    value: c.value,
                    op: c.op.to_owned(),
                    threshold: c.threshold,
                    state: AlertState::Pending,
                    since: now,
                    started_at: None,
                    resolved_at: None,
                    acknowledged_by: None,
                    silenced_until: None,
                    last_notified: None,
                    escalations_sent: 0,
                    note: c.note,
                    top_processes: None,
                };
                self.write(Table::Alerts, &alert.id, &alert);
                state.alerts.insert(c.id.clone(), alert);
            }
            self.advance(state, &c.id, now);
            return;
        }
        let Some(mut alert) = state.alerts.remove(&c.id) else {
            return;
        };
        self.write_delete(Table::Alerts, &alert.id);
        if alert.state != AlertState::Firing {
            return;
        }
        alert.value = c.value;
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(now);
        let mut told: Vec<String> = rule.channels.clone();
        for step in rule.escalate.iter().take(alert.escalations_sent) {
            told.extend(step.channels.iter().cloned());
        }
        self.notify(state, &alert, NotificationKind::Resolved, &told, now);
        self.record_history(state, &alert);
    }

    /// Moves one alert on with time: pending to firing once `for` has
    /// passed; repeats and escalations while firing.
    fn advance(&self, state: &mut EngineState, id: &str, now: OffsetDateTime) {
        let Some(alert) = state.alerts.get(id) else {
            return;
        };
        let Some(rule) = state
            .rules
            .iter()
            .find(|r| r.config.name == alert.rule)
            .map(|r| r.config.clone())
        else {
            // Its rule is gone: the alert ends quietly (its history says so).
            if let Some(mut gone) = state.alerts.remove(id) {
                self.write_delete(Table::Alerts, id);
                if gone.state == AlertState::Firing {
                    gone.state = AlertState::Resolved;
                    gone.resolved_at = Some(now);
                    self.record_history(state, &gone);
                }
            }
            return;
        };
        let mut alert = alert.clone();
        let mut changed = false;
        let hold_for = time::Duration::try_from(rule.hold_for).unwrap_or(time::Duration::MAX);
        if alert.state == AlertState::Pending && now - alert.since >= hold_for {
            alert.state = AlertState::Firing;
            alert.started_at = Some(now);
            alert.last_notified = Some(now);
            alert.top_processes = if state.observing.0 == alert.device_id {
                state.observing.1.clone()
            } else {
                state
                    .devices
                    .get(&alert.device_id)
                    .and_then(|d| d.top_processes.clone())
            };
            self.notify(state, &alert, NotificationKind::Firing, &rule.channels, now);
            self.record_history(state, &alert);
            changed = true;
        } else if alert.state == AlertState::Firing && alert.acknowledged_by.is_none() {
            let repeat = rule.repeat.unwrap_or(state.repeat);
            let repeat = time::Duration::try_from(repeat).unwrap_or(time::Duration::MAX);
            if alert.last_notified.is_none_or(|at| now - at >= repeat) {
                alert.last_notified = Some(now);
                self.notify(state, &alert, NotificationKind::Repeat, &rule.channels, now);
                changed = true;
            }
            let started = alert.started_at.unwrap_or(alert.since);
            while let Some(step) = rule.escalate.get(alert.escalations_sent) {
                let after = time::Duration::try_from(step.after).unwrap_or(time::Duration::MAX);
                if now - started < after {
                    break;
                }
                alert.escalations_sent += 1;
                self.notify(
                    state,
                    &alert,
                    NotificationKind::Escalation,
                    &step.channels,
                    now,
                );
                changed = true;
            }
        }
        if changed {
            self.write(Table::Alerts, &alert.id, &alert);
            state.alerts.insert(alert.id.clone(), alert);
        }
    }

    fn record_history(&self, state: &mut EngineState, alert: &Alert) {
        let mut entry = alert.clone();
        entry.top_processes = None;
        entry.silenced_until = None;
        let key = history_key(&entry);
        if let Some(slot) = state
            .history
            .iter_mut()
            .rev()
            .find(|h| history_key(h) == key)
        {
            *slot = entry.clone();
        } else {
            state.history.push_back(entry.clone());
            while state.history.len() > HISTORY_KEPT {
                state.history.pop_front();
            }
        }
        self.write(Table::History, &key, &entry);
    }

    /// Queues `kind` about `alert` for `names` (every channel when empty),
    /// unless a silence covers it.
    fn notify(
        &self,
        state: &EngineState,
        alert: &Alert,
        kind: NotificationKind,
        names: &[String],
        now: OffsetDateTime,
    ) {
        if let Some(silence) = state
            .silences
            .iter()
            .find(|s| s.covers(&alert.rule, &alert.device_id, now))
        {
            tracing::debug!(alert = %alert.id, silence = %silence.id, "notification held back by a silence");
            return;
        }
        let notification = self.notification(alert, kind, now);
        let every: Vec<String>;
        let names = if names.is_empty() {
            every = state.channels.keys().cloned().collect();
            &every
        } else {
            names
        };
        for name in names {
            match state.channels.get(name) {
                Some(channel) => {
                    self.inner
                        .queue
                        .send(name, channel.notifier.clone(), notification.clone());
                }
                None => {
                    tracing::warn!(channel = %name, rule = %alert.rule, "a rule names a channel that no longer exists")
                }
            }
        }
    }

    fn notification(
        &self,
        alert: &Alert,
        kind: NotificationKind,
        now: OffsetDateTime,
    ) -> Notification {
        let held = duration_text::format(Duration::from_secs(
            (now - alert.since).whole_seconds().max(0) as u64,
        ));
        let value = alert
            .value
            .map(|v| format!("{} {v}", alert.metric))
            .unwrap_or_else(|| "no report".to_owned());
        let severity = match alert.severity {
            crate::alerts::notification::Severity::Warning => "WARNING",
            crate::alerts::notification::Severity::Critical => "CRITICAL",
        };
        let mut summary = match kind {
            NotificationKind::Resolved => format!(
                "RESOLVED {} on {}: {value} (was {} {} for {held})",
                alert.rule, alert.device_id, alert.op, alert.threshold
            ),
            NotificationKind::Test => format!("TEST from Tailmon: {} channel check", alert.rule),
            _ => format!(
                "{severity} {} on {}: {value} {} {} for {held}",
                alert.rule, alert.device_id, alert.op, alert.threshold
            ),
        };
        if let Some(note) = &alert.note
            && kind != NotificationKind::Resolved
        {
            summary.push_str(" (");
            summary.push_str(note);
            summary.push(')');
        }
        Notification {
            kind,
            alert_id: alert.id.clone(),
            rule: alert.rule.clone(),
            severity: alert.severity,
            device_id: alert.device_id.clone(),
            org: self.inner.org.clone(),
            metric: alert.metric.clone(),
            value: alert.value,
            op: alert.op.clone(),
            threshold: alert.threshold,
            since: alert.since,
            at: now,
            url: self.device_url(&alert.device_id),
            top_processes: alert.top_processes.clone(),
            summary,
        }
    }

    /// The device's page on the dashboard.
    pub fn device_url(&self, device_id: &str) -> String {
        let public_url = self.inner.public_url.load();
        let mut url = public_url
            .join("device.html")
            .unwrap_or_else(|_| (**public_url).clone());
        url.query_pairs_mut().append_pair("id", device_id);
        url.to_string()
    }

    fn write<T: Serialize>(&self, table: Table, key: &str, doc: &T) {
        if let Err(error) = self.inner.db.put(&self.inner.org, table, key, doc) {
            tracing::warn!(%error, "alerts: a change could not be saved");
        }
    }

    fn write_delete(&self, table: Table, key: &str) {
        if let Err(error) = self.inner.db.delete(&self.inner.org, table, key) {
            tracing::warn!(%error, "alerts: a change could not be saved");
        }
    }
}

/// Adds to `state` what the database keeps of `org`: its dashboard
/// channels and rules (those whose names the file's and the application's
/// leave free), its alerts under way, history and silences.
fn load_stored(
    db: &AlertDb,
    org: &OrgId,
    http: &reqwest::Client,
    state: &mut EngineState,
) -> Result<(), String> {
    let load = |e: crate::alerts::alert_db::AlertDbError| e.to_string();
    for channel in db
        .load::<NamedChannel>(org, Table::Channels)
        .map_err(load)?
    {
        if state.channels.contains_key(&channel.name) {
            tracing::warn!(channel = %channel.name, "a dashboard channel has the name of a file channel; the file's is used");
            continue;
        }
        match channels::notifier(&channel.config, http) {
            Ok(notifier) => {
                state.channels.insert(
                    channel.name.clone(),
                    ChannelEntry {
                        config: Some(channel.config),
                        source: ChannelSource::Dashboard,
                        notifier,
                    },
                );
            }
            Err(error) => {
                tracing::warn!(channel = %channel.name, %error, "a stored channel is unusable; skipped");
            }
        }
    }
    for rule in db.load::<RuleConfig>(org, Table::Rules).map_err(load)? {
        if state.rules.iter().any(|r| r.config.name == rule.name) {
            tracing::warn!(rule = %rule.name, "a dashboard rule has the name of a file rule; the file's is used");
            continue;
        }
        state
            .rules
            .push(RuleEntry::new(rule, RuleSource::Dashboard));
    }
    for alert in db.load::<Alert>(org, Table::Alerts).map_err(load)? {
        state.alerts.insert(alert.id.clone(), alert);
    }
    state.history = db.load::<Alert>(org, Table::History).map_err(load)?.into();
    state.silences = db.load::<Silence>(org, Table::Silences).map_err(load)?;
    Ok(())
}

/// One evaluation's facts.
struct Condition<'a> {
    id: String,
    device: &'a str,
    metric: &'a str,
    value: Option<f64>,
    op: &'static str,
    threshold: f64,
    note: Option<String>,
}

fn history_key(alert: &Alert) -> String {
    let started = alert.started_at.unwrap_or(alert.since);
    format!("{}@{}", alert.id, started.unix_timestamp_nanos())
}

/// Keeps what the timer needs of a device's latest report.
/// What a `disk_full` rule's fit says of one disk.
pub(super) struct DiskForecast {
    /// The disk's latest use, in percent.
    pub(super) value: Option<f64>,
    /// How long until it is full; `None` when it is not filling.
    pub(super) left: Option<Duration>,
}

/// The values a threshold rule's `metric` picks from a report: one for a
/// plain name, each matching key for a glob (`pattern` is its matcher).
pub(super) fn metric_values(
    metric: &str,
    pattern: Option<&WildMatch>,
    report: &Report,
) -> Vec<(String, f64)> {
    let mut found = Vec::new();
    if metric.contains(['*', '?']) {
        tailmon_core::metric::for_each(report, |name, value| {
            if pattern.is_some_and(|p| p.matches(name)) {
                found.push((name.to_owned(), value));
            }
        });
    } else if let Some(value) = tailmon_core::metric::value(report, metric) {
        found.push((metric.to_owned(), value));
    }
    found
}

/// The history metric of each of a report's disks (`disk_used_percent:/`).
pub(super) fn disk_metrics(report: &Report) -> Vec<String> {
    report
        .disks
        .iter()
        .flatten()
        .map(|disk| format!("disk_used_percent:{}", disk.mount_point))
        .collect()
}

fn remember(state: &mut EngineState, report: &Report) {
    let seen = DeviceSummary::seen(report);
    let entry = state.devices.entry(report.device_id.clone()).or_default();
    if entry.seen.is_some_and(|s| s > seen) {
        return;
    }
    entry.seen = Some(seen);
    let mounts = report
        .disks
        .iter()
        .flatten()
        .map(|d| d.mount_point.as_str());
    let same = entry.disks.len() == mounts.clone().count()
        && entry
            .disks
            .iter()
            .zip(mounts)
            .all(|(kept, mount)| kept.strip_prefix("disk_used_percent:") == Some(mount));
    if !same {
        entry.disks = disk_metrics(report);
    }
}
