//! A rule's dry run: which devices it would match now, without storing the
//! rule or notifying anyone (`POST /api/v1/alert-rules/test`). It uses the
//! engine's own evaluation: the engine's metric lookup and
//! [`Op::breaks`](crate::alerts::comparison::Op::breaks) for threshold
//! rules, its offline test, and its disk fit.

use serde::Serialize;
use tailmon_core::DeviceSummary;
use wildmatch::WildMatch;

use crate::alerts::alerts_error::AlertsError;
use crate::alerts::engine::{AlertEngine, DiskForecast, disk_metrics, metric_values};
use crate::alerts::rule::{DEFAULT_DISK_FULL_WITHIN, RuleConfig, RuleKind};

/// One device (and metric) a rule looks at.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DryRunMatch {
    /// The device.
    pub device_id: String,
    /// The metric: its key for a globbed one, `offline` for an offline rule.
    pub metric: String,
    /// The current value: the metric's, the seconds since the last report
    /// for an offline rule, the disk's use for a `disk_full` rule.
    pub value: Option<f64>,
    /// Whether the condition holds now (`for` is not waited for).
    pub holds: bool,
    /// For an offline rule, `offline` or `online`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// For a `disk_full` rule, the hours until the disk is full (`null`
    /// when it is not filling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours_to_full: Option<Option<f64>>,
}

/// What a dry run answers.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// The rule's name.
    pub rule: String,
    /// Each device (and metric) the rule would evaluate now.
    pub matches: Vec<DryRunMatch>,
    /// How many devices the rule's `devices` glob matches.
    pub devices_checked: usize,
}

impl AlertEngine {
    /// Checks `rule` as [`create_rule`](AlertEngine::create_rule) does and
    /// evaluates it on the latest report of every device of the engine's
    /// organisation, changing nothing.
    pub async fn dry_run(&self, rule: &RuleConfig) -> Result<DryRun, AlertsError> {
        self.check_new_rule(rule)?;
        let reports = self
            .store()
            .latest()
            .await
            .map_err(|e| AlertsError::Storage(e.to_string()))?
            .into_iter()
            .filter(|(org, _)| org == self.organisation())
            .map(|(_, report)| report)
            .collect::<Vec<_>>();
        let now = self.now();
        let devices = WildMatch::new(&rule.devices);
        let pattern = rule.metric.as_deref().map(WildMatch::new);
        let mut run = DryRun {
            rule: rule.name.clone(),
            matches: Vec::new(),
            devices_checked: 0,
        };
        for report in reports.iter().filter(|r| devices.matches(&r.device_id)) {
            run.devices_checked += 1;
            let device_id = &report.device_id;
            let row = |metric: String, value: Option<f64>, holds: bool| DryRunMatch {
                device_id: device_id.clone(),
                metric,
                value,
                holds,
                status: None,
                hours_to_full: None,
            };
            match rule.kind {
                RuleKind::Threshold => {
                    let (Some(metric), Some(op), Some(threshold)) =
                        (rule.metric.as_deref(), rule.op, rule.threshold)
                    else {
                        continue;
                    };
                    for (name, value) in metric_values(metric, pattern.as_ref(), report) {
                        let holds = op.breaks(value, threshold);
                        run.matches.push(row(name, Some(value), holds));
                    }
                }
                RuleKind::Offline => {
                    let seen = DeviceSummary::seen(report);
                    let offline = self.is_offline(seen, now);
                    run.matches.push(DryRunMatch {
                        status: Some(if offline { "offline" } else { "online" }),
                        ..row(
                            "offline".to_owned(),
                            Some((now - seen).whole_seconds() as f64),
                            offline,
                        )
                    });
                }
                RuleKind::DiskFull => {
                    let within = rule.within.unwrap_or(DEFAULT_DISK_FULL_WITHIN);
                    for disk in disk_metrics(report) {
                        let DiskForecast { value, left } = self
                            .disk_forecast(rule, device_id, &disk, now)
                            .await
                            .unwrap_or(DiskForecast {
                                value: None,
                                left: None,
                            });
                        run.matches.push(DryRunMatch {
                            hours_to_full: Some(left.map(|l| l.as_secs_f64() / 3600.0)),
                            ..row(disk, value, left.is_some_and(|l| l <= within))
                        });
                    }
                }
            }
        }
        Ok(run)
    }
}
