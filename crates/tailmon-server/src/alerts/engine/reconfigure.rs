//! Reloading the `[alerts]` section in a running engine: checked first
//! ([`AlertEngine::prepare`]), then swapped in ([`AlertEngine::reconfigure`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{
    AlertEngine, ChannelEntry, ChannelSource, DEFAULT_EVALUATE_EVERY, FALLBACK_PUBLIC_URL,
    PreparedAlerts, RuleEntry,
};
use crate::alerts::alert_db::Table;
use crate::alerts::alert_state::AlertState;
use crate::alerts::channels;
use crate::alerts::config::{AlertsConfig, NamedChannel};
use crate::alerts::config_change::{ConfigChange, NameChanges};
use crate::alerts::notification::{NotificationKind, Notifier};
use crate::alerts::rule::{RuleConfig, RuleKind, RuleSource, default_rules};

impl AlertEngine {
    /// The names of the application's own channels.
    pub(crate) fn application_channels(&self) -> Vec<String> {
        self.lock()
            .channels
            .iter()
            .filter(|(_, c)| c.source == ChannelSource::Application)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Checks `config` as [`ServerBuilder::build`](crate::ServerBuilder::build)
    /// does and makes its channels' notifiers, without changing anything:
    /// `Err` says what is wrong.
    pub(crate) fn prepare(&self, config: AlertsConfig) -> Result<PreparedAlerts, String> {
        let names = self.application_channels();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        config.check_with(&names).map_err(|e| e.to_string())?;
        let public_url = config.public_url.as_deref().unwrap_or(FALLBACK_PUBLIC_URL);
        let public_url =
            reqwest::Url::parse(public_url).map_err(|e| format!("alerts.public_url: {e}"))?;
        let mut file_channels = Vec::with_capacity(config.channels.len());
        for channel in &config.channels {
            let notifier = channels::notifier(&channel.config, &self.inner.http)
                .map_err(|e| format!("alerts.channels {:?}: {e}", channel.name))?;
            file_channels.push((channel.clone(), notifier));
        }
        Ok(PreparedAlerts {
            config,
            public_url,
            file_channels,
        })
    }

    /// Swaps in a prepared `[alerts]` section, at once for every later
    /// report and timer tick:
    ///
    /// - the rules become the default ones (if on), the file's, then the
    ///   dashboard's whose names the others leave free, as at start;
    /// - an alert pending or firing keeps its state (since, acknowledgement,
    ///   repeats and escalations sent) while a rule of its name still
    ///   watches its device and metric; a changed threshold or severity is
    ///   shown on it and applies at its next evaluation;
    /// - any other alert ends: a firing one is resolved, its channels told
    ///   (`resolved`, as when its condition clears) and its history entry
    ///   closed; a pending one, never told, is dropped;
    /// - the channels become the application's, the file's, then the
    ///   dashboard's whose names are free; notifications already queued are
    ///   delivered through the channel as it was when they were queued;
    /// - silences and the alert history are kept as they are.
    pub(crate) fn reconfigure(&self, prepared: PreparedAlerts) -> ConfigChange {
        let PreparedAlerts {
            config,
            public_url,
            file_channels,
        } = prepared;
        let now = self.inner.clock.now();
        let mut state = self.lock();
        // The dashboard's rules and channels: those in use, then those of
        // the database that a file rule or channel of the same name hid
        // (read under the lock, which the API's changes hold while they
        // write them, so both agree).
        let mut stored_rules: Vec<RuleConfig> = state
            .rules
            .iter()
            .filter(|r| r.source == RuleSource::Dashboard)
            .map(|r| r.config.clone())
            .collect();
        match self
            .inner
            .db
            .load::<RuleConfig>(&self.inner.org, Table::Rules)
        {
            Ok(rules) => {
                for rule in rules {
                    if !stored_rules.iter().any(|r| r.name == rule.name) {
                        stored_rules.push(rule);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "alerts: the dashboard's hidden rules could not be read")
            }
        }
        let mut stored_channels: Vec<(NamedChannel, Option<Arc<dyn Notifier>>)> = state
            .channels
            .iter()
            .filter(|(_, c)| c.source == ChannelSource::Dashboard)
            .filter_map(|(name, c)| {
                let config = c.config.clone()?;
                Some((
                    NamedChannel {
                        name: name.clone(),
                        config,
                    },
                    Some(c.notifier.clone()),
                ))
            })
            .collect();
        match self
            .inner
            .db
            .load::<NamedChannel>(&self.inner.org, Table::Channels)
        {
            Ok(channels) => {
                for channel in channels {
                    if !stored_channels.iter().any(|(c, _)| c.name == channel.name) {
                        stored_channels.push((channel, None));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "alerts: the dashboard's hidden channels could not be read")
            }
        }
        // The rules, as `new` makes them.
        let mut rules: Vec<RuleEntry> = Vec::new();
        if config.default_rules {
            for rule in default_rules() {
                rules.push(RuleEntry::new(rule, RuleSource::Default));
            }
        }
        for rule in &config.rules {
            rules.push(RuleEntry::new(rule.clone(), RuleSource::File));
        }
        for rule in stored_rules {
            if !rules.iter().any(|r| r.config.name == rule.name) {
                rules.push(RuleEntry::new(rule, RuleSource::Dashboard));
            }
        }
        // Alerts whose rule no longer watches them end, told through the
        // channels as they were.
        let mut ended = 0;
        let ids: Vec<String> = state.alerts.keys().cloned().collect();
        for id in ids {
            let Some(alert) = state.alerts.get(&id) else {
                continue;
            };
            if let Some(rule) = rules.iter().find(|r| r.config.name == alert.rule)
                && rule.watches(&alert.device_id, &alert.metric)
            {
                let mut kept = alert.clone();
                kept.severity = rule.config.severity;
                if rule.config.kind == RuleKind::Threshold
                    && let Some(threshold) = rule.config.threshold
                {
                    kept.threshold = threshold;
                }
                if kept != *alert {
                    self.write(Table::Alerts, &id, &kept);
                    state.alerts.insert(id, kept);
                }
                continue;
            }
            ended += 1;
            let Some(mut alert) = state.alerts.remove(&id) else {
                continue;
            };
            self.write_delete(Table::Alerts, &id);
            if alert.state != AlertState::Firing {
                continue;
            }
            alert.state = AlertState::Resolved;
            alert.resolved_at = Some(now);
            let old_rule = state
                .rules
                .iter()
                .find(|r| r.config.name == alert.rule)
                .map(|r| r.config.clone());
            let mut told: Vec<String> = Vec::new();
            if let Some(rule) = &old_rule {
                told.extend(rule.channels.iter().cloned());
                for step in rule.escalate.iter().take(alert.escalations_sent) {
                    told.extend(step.channels.iter().cloned());
                }
            }
            self.notify(&state, &alert, NotificationKind::Resolved, &told, now);
            self.record_history(&mut state, &alert);
        }
        // The channels, as `new` makes them.
        let mut channels: BTreeMap<String, ChannelEntry> = BTreeMap::new();
        for (name, channel) in &state.channels {
            if channel.source == ChannelSource::Application {
                channels.insert(
                    name.clone(),
                    ChannelEntry {
                        config: None,
                        source: ChannelSource::Application,
                        notifier: channel.notifier.clone(),
                    },
                );
            }
        }
        for (channel, notifier) in file_channels {
            channels.insert(
                channel.name,
                ChannelEntry {
                    config: Some(channel.config),
                    source: ChannelSource::File,
                    notifier,
                },
            );
        }
        for (channel, notifier) in stored_channels {
            if channels.contains_key(&channel.name) {
                continue;
            }
            let notifier = match notifier {
                Some(notifier) => Ok(notifier),
                None => channels::notifier(&channel.config, &self.inner.http),
            };
            match notifier {
                Ok(notifier) => {
                    channels.insert(
                        channel.name,
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
        let change = ConfigChange {
            rules: NameChanges::between(
                state
                    .rules
                    .iter()
                    .map(|r| (r.config.name.as_str(), (&r.config, r.source))),
                rules
                    .iter()
                    .map(|r| (r.config.name.as_str(), (&r.config, r.source))),
            ),
            channels: NameChanges::between(
                state
                    .channels
                    .iter()
                    .map(|(n, c)| (n.as_str(), (&c.config, c.source))),
                channels
                    .iter()
                    .map(|(n, c)| (n.as_str(), (&c.config, c.source))),
            ),
            settings: state.repeat != config.repeat
                || state.default_rules != config.default_rules
                || **self.inner.public_url.load() != public_url
                || self.evaluate_every() != config.evaluate_every.unwrap_or(DEFAULT_EVALUATE_EVERY),
            alerts_ended: ended,
        };
        state.rules = rules;
        state.channels = channels;
        state.repeat = config.repeat;
        state.default_rules = config.default_rules;
        self.inner.public_url.store(Arc::new(public_url));
        self.inner.evaluate_every.send_if_modified(|period| {
            let new = config.evaluate_every.unwrap_or(DEFAULT_EVALUATE_EVERY);
            std::mem::replace(period, new) != new
        });
        change
    }
}
