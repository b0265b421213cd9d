//! Alert rules: the shape written in the configuration file and sent to
//! the API ([`RuleConfig`]), its checks, and the default rules.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alerts::comparison::{Op, default_hysteresis};
use crate::alerts::duration_text::{serde_text, serde_text_opt};
use crate::alerts::notification::Severity;

/// Longest rule or channel name: 64 characters.
pub const MAX_NAME_LEN: usize = 64;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A metric compared to a threshold (the default).
    #[default]
    Threshold,
    /// No report from the device for three reporting intervals.
    Offline,
    /// A disk that a linear fit over its history says is full within `within`.
    DiskFull,
}

/// A further step of notifications for an alert still firing and not
/// acknowledged after `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// How long after the alert fired.
    #[serde(with = "serde_text")]
    #[schema(value_type = String, example = "30m")]
    pub after: Duration,
    /// The channels told then.
    pub channels: Vec<String>,
}

/// One rule, as written in `[[alerts.rules]]` or sent to
/// `POST /api/v1/alert-rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Its unique name, e.g. `cpu-high`: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// What it watches; defaults to `threshold`.
    #[serde(default)]
    pub kind: RuleKind,
    /// For a threshold rule, the metric: any history metric name
    /// (`cpu_usage`, `disk_used_percent:/`, `custom:queue`), or a glob on
    /// the name (`disk_used_percent:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// For a threshold rule, the comparison: `>`, `>=`, `<` or `<=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Op>,
    /// For a threshold rule, the threshold, in the metric's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// How long the condition must hold before the alert fires; defaults to `0s`.
    #[serde(rename = "for", default, with = "serde_text")]
    #[schema(value_type = String, example = "1m")]
    pub hold_for: Duration,
    /// `warning` (the default) or `critical`.
    #[serde(default = "default_severity")]
    pub severity: Severity,
    /// A glob on the device id; defaults to `*`.
    #[serde(default = "default_devices")]
    pub devices: String,
    /// The channels told; none means every channel.
    #[serde(default)]
    pub channels: Vec<String>,
    /// How far back past the threshold the value must come for a firing
    /// alert to resolve, in the metric's unit; defaults to 5 % of the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hysteresis: Option<f64>,
    /// How often a firing alert is told again; defaults to `[alerts] repeat`.
    #[serde(
        default,
        with = "serde_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, example = "1h")]
    pub repeat: Option<Duration>,
    /// Further channels told while the alert fires unacknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalate: Vec<Escalation>,
    /// For a `disk_full` rule: fire when the disk is full within this; defaults to `24h`.
    #[serde(
        default,
        with = "serde_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, example = "1h")]
    pub within: Option<Duration>,
    /// For a `disk_full` rule: how much history the fit uses; defaults to `6h`.
    #[serde(
        default,
        with = "serde_text_opt",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, example = "1h")]
    pub window: Option<Duration>,
}

fn default_severity() -> Severity {
    Severity::Warning
}

fn default_devices() -> String {
    "*".to_owned()
}

/// A rule refused, with the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    /// The field, e.g. `threshold`.
    pub field: &'static str,
    /// Why.
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        field,
        message: message.into(),
    }
}

/// Whether `name` may name a rule or a channel.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Default `within` of a `disk_full` rule: 24 hours.
pub const DEFAULT_DISK_FULL_WITHIN: Duration = Duration::from_secs(24 * 3600);
/// Default `window` of a `disk_full` rule: 6 hours.
pub const DEFAULT_DISK_FULL_WINDOW: Duration = Duration::from_secs(6 * 3600);

impl RuleConfig {
    /// A threshold rule with the other fields at their defaults.
    pub fn threshold(name: &str, metric: &str, op: Op, threshold: f64) -> Self {
        Self {
            name: name.to_owned(),
            kind: RuleKind::Threshold,
            metric: Some(metric.to_owned()),
            op: Some(op),
            threshold: Some(threshold),
            hold_for: Duration::ZERO,
            severity: Severity::Warning,
            devices: default_devices(),
            channels: Vec::new(),
            hysteresis: None,
            repeat: None,
            escalate: Vec::new(),
            within: None,
            window: None,
        }
    }

    /// A rule of another kind (`offline`, `disk_full`) with every field at its default.
    pub fn of_kind(name: &str, kind: RuleKind) -> Self {
        Self {
            kind,
            metric: None,
            op: None,
            threshold: None,
            ..Self::threshold(name, "", Op::Above, 0.0)
        }
    }

    /// Checks the rule on its own (the channels it names are checked by
    /// the engine, which knows them).
    pub fn check(&self) -> Result<(), RuleError> {
        if !valid_name(&self.name) {
            return Err(refuse("name", "1 to 64 letters, digits, '-', '_' or '.'"));
        }
        if self.devices.is_empty() || self.devices.len() > 256 {
            return Err(refuse("devices", "a glob of 1 to 256 characters"));
        }
        match self.kind {
            RuleKind::Threshold => {
                let metric = self.metric.as_deref().unwrap_or_default();
                if metric.is_empty() || metric.len() > 256 {
                    return Err(refuse("metric", "a threshold rule names its metric"));
                }
                if !metric.contains(['*', '?']) && !tailmon_core::metric::is_known(metric) {
                    return Err(refuse(
                        "metric",
                        format!("{metric:?} is not a metric name (see the history metrics)"),
                    ));
                }
                if self.op.is_none() {
                    return Err(refuse("op", "one of >, >=, <, <="));
                }
                match self.threshold {
                    Some(t) if t.is_finite() => {}
                    _ => {
                        return Err(refuse(
                            "threshold",
                            "a threshold rule needs a finite threshold",
                        ));
                    }
                }
                if let Some(h) = self.hysteresis
                    && !(h.is_finite() && h >= 0.0)
                {
                    return Err(refuse("hysteresis", "must be a finite number, 0 or more"));
                }
            }
            RuleKind::Offline | RuleKind::DiskFull => {
                for (field, set) in [
                    ("metric", self.metric.is_some()),
                    ("op", self.op.is_some()),
                    ("threshold", self.threshold.is_some()),
                    ("hysteresis", self.hysteresis.is_some()),
                ] {
                    if set {
                        return Err(refuse(field, "only threshold rules take it"));
                    }
                }
            }
        }
        if self.kind != RuleKind::DiskFull && (self.within.is_some() || self.window.is_some()) {
            let field = if self.within.is_some() {
                "within"
            } else {
                "window"
            };
            return Err(refuse(field, "only disk_full rules take it"));
        }
        if self.kind == RuleKind::DiskFull {
            if self.within.is_some_and(|d| d.is_zero()) {
                return Err(refuse("within", "must be more than 0s"));
            }
            if self.window.is_some_and(|d| d < Duration::from_secs(600)) {
                return Err(refuse("window", "must be at least 10m"));
            }
        }
        if self.repeat.is_some_and(|d| d < Duration::from_secs(60)) {
            return Err(refuse("repeat", "must be at least 1m"));
        }
        for step in &self.escalate {
            if step.after.is_zero() {
                return Err(refuse(
                    "escalate",
                    "each step's `after` must be more than 0s",
                ));
            }
            if step.channels.is_empty() {
                return Err(refuse("escalate", "each step names at least one channel"));
            }
        }
        Ok(())
    }

    /// The hysteresis in force.
    pub fn hysteresis_or_default(&self) -> f64 {
        self.hysteresis
            .unwrap_or_else(|| default_hysteresis(self.threshold.unwrap_or_default()))
    }

    /// Every channel name the rule uses, its escalation's included.
    pub fn channel_names(&self) -> impl Iterator<Item = &str> {
        self.channels
            .iter()
            .chain(self.escalate.iter().flat_map(|s| s.channels.iter()))
            .map(String::as_str)
    }
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// The configuration file: read-only in the dashboard.
    File,
    /// The built-in defaults (`default_rules = true`): read-only.
    Default,
    /// Made in the dashboard (or the API): stored in the database.
    Dashboard,
}

/// The default rules, after the status colours: CPU 60 / 80 %, RAM 70 / 90 %,
/// each disk 80 / 90 % (CPU and RAM holding for a minute), and offline.
pub fn default_rules() -> Vec<RuleConfig> {
    let minute = Duration::from_secs(60);
    let rule = |name: &str, metric: &str, threshold: f64, severity, hold_for| RuleConfig {
        severity,
        hold_for,
        ..RuleConfig::threshold(name, metric, Op::Above, threshold)
    };
    vec![
        rule("cpu-warning", "cpu_usage", 60.0, Severity::Warning, minute),
        rule(
            "cpu-critical",
            "cpu_usage",
            80.0,
            Severity::Critical,
            minute,
        ),
        rule(
            "ram-warning",
            "ram_used_percent",
            70.0,
            Severity::Warning,
            minute,
        ),
        rule(
            "ram-critical",
            "ram_used_percent",
            90.0,
            Severity::Critical,
            minute,
        ),
        rule(
            "disk-warning",
            "disk_used_percent:*",
            80.0,
            Severity::Warning,
            Duration::ZERO,
        ),
        rule(
            "disk-critical",
            "disk_used_percent:*",
            90.0,
            Severity::Critical,
            Duration::ZERO,
        ),
        RuleConfig {
            severity: Severity::Critical,
            ..RuleConfig::of_kind("offline", RuleKind::Offline)
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_pass_their_own_checks() {
        for rule in default_rules() {
            rule.check().expect(&rule.name);
        }
    }

    #[test]
    fn bad_rules_name_their_field() {
        let mut rule = RuleConfig::threshold("x", "cpu_usage", Op::Above, f64::NAN);
        assert_eq!(rule.check().map_err(|e| e.field), Err("threshold"));
        rule.threshold = Some(1.0);
        rule.metric = Some("cpu_usag".into());
        assert_eq!(rule.check().map_err(|e| e.field), Err("metric"));
        rule.metric = Some("disk_used_percent:*".into());
        assert_eq!(rule.check(), Ok(()));
        rule.name = "a b".into();
        assert_eq!(rule.check().map_err(|e| e.field), Err("name"));
    }
}
