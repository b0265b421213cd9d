//! What the API reads and changes in an engine: its alerts and history,
//! acknowledgements, silences, dashboard rules and channels, a channel's
//! test, the counters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{
    AlertEngine, ChannelEntry, ChannelSource, ChannelView, EngineState, EngineStats, NewSilence,
    RuleEntry, RuleView, storage,
};
use crate::alerts::alert_db::Table;
use crate::alerts::alert_state::{Alert, AlertState, alert_id};
use crate::alerts::alerts_error::AlertsError;
use crate::alerts::channels::{self, ChannelConfig};
use crate::alerts::config::NamedChannel;
use crate::alerts::notification::{NotificationKind, Notifier};
use crate::alerts::rule::{RuleConfig, RuleSource, valid_name};
use crate::alerts::silence::Silence;
use tailmon_core::OffsetDateTime;

impl AlertEngine {
    /// The alerts pending or firing, the most serious and oldest first.
    pub fn alerts(&self) -> Vec<Alert> {
        let now = self.inner.clock.now();
        let state = self.lock();
        let mut alerts: Vec<Alert> = state
            .alerts
            .values()
            .map(|a| {
                let mut a = a.clone();
                a.silenced_until = state
                    .silences
                    .iter()
                    .filter(|s| s.covers(&a.rule, &a.device_id, now))
                    .map(|s| s.until)
                    .max();
                a
            })
            .collect();
        alerts.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.since.cmp(&b.since))
                .then(a.id.cmp(&b.id))
        });
        alerts
    }

    /// Alerts that fired, newest first: at most `limit`, started before `before`.
    pub fn history(&self, limit: usize, before: Option<OffsetDateTime>) -> Vec<Alert> {
        let state = self.lock();
        let mut all: Vec<&Alert> = state
            .history
            .iter()
            .filter(|a| before.is_none_or(|b| a.started_at.unwrap_or(a.since) < b))
            .collect();
        all.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
        all.into_iter().take(limit).cloned().collect()
    }

    /// Acknowledges a pending or firing alert: no more repeats nor escalations.
    pub fn acknowledge(&self, id: &str, by: &str) -> Result<Alert, AlertsError> {
        let mut state = self.lock();
        let alert = state.alerts.get_mut(id).ok_or_else(|| {
            AlertsError::NotFound(format!("no alert {id:?} is pending or firing"))
        })?;
        alert.acknowledged_by = Some(by.to_owned());
        let alert = alert.clone();
        self.write(Table::Alerts, id, &alert);
        if alert.state == AlertState::Firing {
            self.record_history(&mut state, &alert);
        }
        Ok(alert)
    }

    /// The silences in force.
    pub fn silences(&self) -> Vec<Silence> {
        let now = self.inner.clock.now();
        self.lock()
            .silences
            .iter()
            .filter(|s| s.until > now)
            .cloned()
            .collect()
    }

    /// Adds a silence.
    pub fn add_silence(&self, new: NewSilence, by: Option<&str>) -> Result<Silence, AlertsError> {
        let now = self.inner.clock.now();
        if new.until <= now {
            return Err(AlertsError::Invalid {
                field: "until",
                message: "must be in the future".into(),
            });
        }
        if new.rule.as_deref().is_some_and(|r| !valid_name(r)) {
            return Err(AlertsError::Invalid {
                field: "rule",
                message: "not a rule name".into(),
            });
        }
        if new
            .device
            .as_deref()
            .is_some_and(|d| d.is_empty() || d.len() > 256)
        {
            return Err(AlertsError::Invalid {
                field: "device",
                message: "a glob of 1 to 256 characters".into(),
            });
        }
        if new.comment.as_deref().is_some_and(|c| c.len() > 1000) {
            return Err(AlertsError::Invalid {
                field: "comment",
                message: "at most 1,000 characters".into(),
            });
        }
        let mut id_bytes = [0u8; 8];
        getrandom::fill(&mut id_bytes).map_err(storage)?;
        let silence = Silence {
            id: id_bytes.iter().map(|b| format!("{b:02x}")).collect(),
            rule: new.rule,
            device: new.device,
            until: new.until,
            comment: new.comment,
            created_by: by.map(str::to_owned),
        };
        self.inner
            .db
            .put(&self.inner.org, Table::Silences, &silence.id, &silence)
            .map_err(storage)?;
        self.lock().silences.push(silence.clone());
        Ok(silence)
    }

    /// Removes a silence.
    pub fn remove_silence(&self, id: &str) -> Result<(), AlertsError> {
        let mut state = self.lock();
        let at = state
            .silences
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| AlertsError::NotFound(format!("no silence {id:?}")))?;
        self.inner
            .db
            .delete(&self.inner.org, Table::Silences, id)
            .map_err(storage)?;
        state.silences.remove(at);
        Ok(())
    }

    /// Every rule, with where it comes from.
    pub fn rules(&self) -> Vec<RuleView> {
        self.lock()
            .rules
            .iter()
            .map(|r| RuleView {
                source: r.source,
                rule: r.config.clone(),
            })
            .collect()
    }

    pub(super) fn check_rule(state: &EngineState, rule: &RuleConfig) -> Result<(), AlertsError> {
        rule.check().map_err(|e| AlertsError::Invalid {
            field: e.field,
            message: e.message,
        })?;
        if let Some(missing) = rule
            .channel_names()
            .find(|c| !state.channels.contains_key(*c))
        {
            return Err(AlertsError::Invalid {
                field: "channels",
                message: format!("no channel is named {missing:?}"),
            });
        }
        Ok(())
    }

    /// Adds a dashboard rule.
    pub fn create_rule(&self, rule: RuleConfig) -> Result<RuleView, AlertsError> {
        let mut state = self.lock();
        Self::check_rule(&state, &rule)?;
        if state.rules.iter().any(|r| r.config.name == rule.name) {
            return Err(AlertsError::Conflict(format!(
                "a rule is named {:?} already",
                rule.name
            )));
        }
        self.inner
            .db
            .put(&self.inner.org, Table::Rules, &rule.name, &rule)
            .map_err(storage)?;
        state
            .rules
            .push(RuleEntry::new(rule.clone(), RuleSource::Dashboard));
        Ok(RuleView {
            source: RuleSource::Dashboard,
            rule,
        })
    }

    fn dashboard_rule(state: &EngineState, name: &str) -> Result<usize, AlertsError> {
        let at = state
            .rules
            .iter()
            .position(|r| r.config.name == name)
            .ok_or_else(|| AlertsError::NotFound(format!("no rule {name:?}")))?;
        if state.rules[at].source != RuleSource::Dashboard {
            return Err(AlertsError::Conflict(format!(
                "rule {name:?} comes from the configuration file or the defaults; change it there"
            )));
        }
        Ok(at)
    }

    /// Replaces a dashboard rule (its alerts under way end quietly when the
    /// rule changes what it watches).
    pub fn replace_rule(&self, name: &str, rule: RuleConfig) -> Result<RuleView, AlertsError> {
        let mut state = self.lock();
        let at = Self::dashboard_rule(&state, name)?;
        if rule.name != name {
            return Err(AlertsError::Invalid {
                field: "name",
                message: format!("must be {name:?}, the rule's name in the path"),
            });
        }
        Self::check_rule(&state, &rule)?;
        self.inner
            .db
            .put(&self.inner.org, Table::Rules, name, &rule)
            .map_err(storage)?;
        state.rules[at] = RuleEntry::new(rule.clone(), RuleSource::Dashboard);
        Ok(RuleView {
            source: RuleSource::Dashboard,
            rule,
        })
    }

    /// Removes a dashboard rule and its alerts under way.
    pub fn delete_rule(&self, name: &str) -> Result<(), AlertsError> {
        let mut state = self.lock();
        let at = Self::dashboard_rule(&state, name)?;
        self.inner
            .db
            .delete(&self.inner.org, Table::Rules, name)
            .map_err(storage)?;
        state.rules.remove(at);
        let ids: Vec<String> = state
            .alerts
            .values()
            .filter(|a| a.rule == name)
            .map(|a| a.id.clone())
            .collect();
        let now = self.inner.clock.now();
        for id in ids {
            // No rule, no alert: ended quietly, its history says so.
            self.advance(&mut state, &id, now);
        }
        Ok(())
    }

    /// Every channel, secrets redacted.
    pub fn channels(&self) -> Vec<ChannelView> {
        self.lock()
            .channels
            .iter()
            .map(|(name, c)| ChannelView {
                name: name.clone(),
                source: c.source,
                config: c.config.as_ref().map(ChannelConfig::redacted),
                delivery: self.inner.queue.channel_stats(name),
            })
            .collect()
    }

    fn channel_view(&self, name: &str, config: &ChannelConfig) -> ChannelView {
        ChannelView {
            name: name.to_owned(),
            source: ChannelSource::Dashboard,
            config: Some(config.redacted()),
            delivery: self.inner.queue.channel_stats(name),
        }
    }

    fn make_notifier(&self, config: &ChannelConfig) -> Result<Arc<dyn Notifier>, AlertsError> {
        channels::notifier(config, &self.inner.http).map_err(|e| AlertsError::Invalid {
            field: "type",
            message: e.to_string(),
        })
    }

    /// Adds a dashboard channel.
    pub fn create_channel(&self, channel: NamedChannel) -> Result<ChannelView, AlertsError> {
        if !valid_name(&channel.name) {
            return Err(AlertsError::Invalid {
                field: "name",
                message: "1 to 64 letters, digits, '-', '_' or '.'".into(),
            });
        }
        let notifier = self.make_notifier(&channel.config)?;
        let mut state = self.lock();
        if state.channels.contains_key(&channel.name) {
            return Err(AlertsError::Conflict(format!(
                "a channel is named {:?} already",
                channel.name
            )));
        }
        self.inner
            .db
            .put(&self.inner.org, Table::Channels, &channel.name, &channel)
            .map_err(storage)?;
        let view = self.channel_view(&channel.name, &channel.config);
        state.channels.insert(
            channel.name,
            ChannelEntry {
                config: Some(channel.config),
                source: ChannelSource::Dashboard,
                notifier,
            },
        );
        Ok(view)
    }

    fn dashboard_channel(state: &EngineState, name: &str) -> Result<(), AlertsError> {
        match state.channels.get(name) {
            None => Err(AlertsError::NotFound(format!("no channel {name:?}"))),
            Some(c) if c.source != ChannelSource::Dashboard => Err(AlertsError::Conflict(format!(
                "channel {name:?} comes from the configuration file or the application; change it there"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Replaces a dashboard channel's settings. A secret sent back as the
    /// listing shows it (with `••••`) keeps the stored one, so that a form
    /// can be saved without typing the secrets again.
    pub fn replace_channel(
        &self,
        name: &str,
        mut channel: NamedChannel,
    ) -> Result<ChannelView, AlertsError> {
        if channel.name != name {
            return Err(AlertsError::Invalid {
                field: "name",
                message: format!("must be {name:?}, the channel's name in the path"),
            });
        }
        let stored = {
            let state = self.lock();
            Self::dashboard_channel(&state, name)?;
            state.channels.get(name).and_then(|c| c.config.clone())
        };
        if let Some(stored) = stored {
            channel.config = keep_redacted(channel.config, &stored);
        }
        let notifier = self.make_notifier(&channel.config)?;
        let mut state = self.lock();
        Self::dashboard_channel(&state, name)?;
        self.inner
            .db
            .put(&self.inner.org, Table::Channels, name, &channel)
            .map_err(storage)?;
        let view = self.channel_view(name, &channel.config);
        state.channels.insert(
            channel.name,
            ChannelEntry {
                config: Some(channel.config),
                source: ChannelSource::Dashboard,
                notifier,
            },
        );
        Ok(view)
    }

    /// Removes a dashboard channel; refused while a rule names it.
    pub fn delete_channel(&self, name: &str) -> Result<(), AlertsError> {
        let mut state = self.lock();
        Self::dashboard_channel(&state, name)?;
        if let Some(rule) = state
            .rules
            .iter()
            .find(|r| r.config.channel_names().any(|c| c == name))
        {
            return Err(AlertsError::Conflict(format!(
                "rule {:?} uses channel {name:?}; change the rule first",
                rule.config.name
            )));
        }
        self.inner
            .db
            .delete(&self.inner.org, Table::Channels, name)
            .map_err(storage)?;
        state.channels.remove(name);
        Ok(())
    }

    /// Sends a `Test` notification through a channel, now, without the queue.
    pub async fn test_channel(&self, name: &str) -> Result<(), AlertsError> {
        let notifier = self
            .lock()
            .channels
            .get(name)
            .map(|c| c.notifier.clone())
            .ok_or_else(|| AlertsError::NotFound(format!("no channel {name:?}")))?;
        let now = self.inner.clock.now();
        let alert = Alert {
            id: alert_id("test", "tailmon", name),
            rule: "test".into(),
            severity: crate::alerts::notification::Severity::Warning,
            device_id: "tailmon".into(),
            metric: "cpu_usage".into(),
            value: Some(0.0),
            op: ">".into(),
            threshold: 0.0,
            state: AlertState::Firing,
            since: now,
            started_at: Some(now),
            resolved_at: None,
            acknowledged_by: None,
            silenced_until: None,
            last_notified: None,
            escalations_sent: 0,
            note: None,
            top_processes: None,
        };
        let notification = self.notification(&alert, NotificationKind::Test, now);
        match tokio::time::timeout(
            crate::alerts::notify_queue::SEND_TIMEOUT,
            notifier.send(&notification),
        )
        .await
        {
            Ok(result) => result.map_err(AlertsError::Delivery),
            Err(_) => Err(AlertsError::Delivery(
                crate::alerts::notification::NotifyError::Unreachable(
                    "no answer within 30s".into(),
                ),
            )),
        }
    }

    /// The engine's counters.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            reports_seen: self.inner.reports_seen.load(Ordering::Relaxed),
            delivery: self.inner.queue.stats(),
        }
    }
}

/// `new` with each field that still holds the redaction mark taken from
/// `stored` (same type only).
fn keep_redacted(new: ChannelConfig, stored: &ChannelConfig) -> ChannelConfig {
    let (Ok(serde_json::Value::Object(mut fields)), Ok(serde_json::Value::Object(old))) =
        (serde_json::to_value(&new), serde_json::to_value(stored))
    else {
        return new;
    };
    if fields.get("type") != old.get("type") {
        return new;
    }
    for (key, value) in fields.iter_mut() {
        if value
            .as_str()
            .is_some_and(|v| v.contains(channels::REDACTED))
            && let Some(kept) = old.get(key)
        {
            *value = kept.clone();
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).unwrap_or(new)
}
