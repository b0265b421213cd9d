//! One person's saved choices: the body of `GET` and `PUT /api/v1/preferences`.

use serde::{Deserialize, Serialize};

use crate::views::preferences_error::PreferencesError;

/// Most entries in [`Preferences::fleet_metrics`]: 16.
pub const MAX_FLEET_METRICS: usize = 16;
/// Most entries in [`Preferences::device_charts`]: 32.
pub const MAX_DEVICE_CHARTS: usize = 32;

/// What one person chose; every part optional (absent: the dashboard's
/// default). Unknown keys and values are refused.
///
/// ```
/// use tailmon_server::views::{FleetMetric, Preferences, Theme};
///
/// let prefs: Preferences =
///     serde_json::from_str(r#"{"fleet_metrics": ["cpu", "disk"], "theme": "dark"}"#)?;
/// assert_eq!(prefs.fleet_metrics, Some(vec![FleetMetric::Cpu, FleetMetric::Disk]));
/// assert_eq!(prefs.theme, Some(Theme::Dark));
/// assert!(serde_json::from_str::<Preferences>(r#"{"colour": "red"}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Preferences {
    /// What each fleet card shows, in this order; at most
    /// [`MAX_FLEET_METRICS`], each once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_metrics: Option<Vec<FleetMetric>>,
    /// The charts of a device page, in this order; at most
    /// [`MAX_DEVICE_CHARTS`], each once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_charts: Option<Vec<DeviceChart>>,
    /// Light, dark, or as the system says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
}

/// A value a fleet card can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FleetMetric {
    /// CPU usage.
    Cpu,
    /// RAM usage.
    Ram,
    /// The fullest disk.
    Disk,
    /// Swap usage.
    Swap,
    /// Load averages.
    Load,
    /// Network rates.
    Network,
    /// The hottest sensor.
    Temperature,
    /// Uptime.
    Uptime,
    /// Process count.
    Processes,
}

/// A chart a device page can draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeviceChart {
    /// CPU usage.
    Cpu,
    /// Each core's usage.
    CpuCores,
    /// User, system, iowait, steal.
    CpuBreakdown,
    /// RAM.
    Memory,
    /// Swap.
    Swap,
    /// Load averages.
    Load,
    /// Each filesystem's usage.
    DiskUsage,
    /// Each block device's throughput.
    DiskIo,
    /// Each interface's rates.
    Network,
    /// Each sensor.
    Temperatures,
    /// Custom metrics.
    Custom,
}

/// The dashboard's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Theme {
    /// As the operating system or browser prefers.
    System,
    /// Light.
    Light,
    /// Dark.
    Dark,
}

impl Preferences {
    /// Checks what serde cannot: list lengths, and each entry at most once.
    pub fn check(&self) -> Result<(), PreferencesError> {
        if let Some(list) = &self.fleet_metrics {
            check_list("fleet_metrics", list, MAX_FLEET_METRICS)?;
        }
        if let Some(list) = &self.device_charts {
            check_list("device_charts", list, MAX_DEVICE_CHARTS)?;
        }
        Ok(())
    }
}

fn check_list<T: Eq + std::hash::Hash + std::fmt::Debug>(
    field: &'static str,
    list: &[T],
    max: usize,
) -> Result<(), PreferencesError> {
    if list.len() > max {
        return Err(PreferencesError::Invalid {
            field,
            message: format!("{field} holds at most {max} entries; got {}", list.len()),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for item in list {
        if !seen.insert(item) {
            return Err(PreferencesError::Invalid {
                field,
                message: format!("{field} names {item:?} twice"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Preferences, String> {
        let prefs: Preferences = serde_json::from_str(json).map_err(|e| e.to_string())?;
        prefs.check().map_err(|e| e.to_string())?;
        Ok(prefs)
    }

    #[test]
    fn the_contract_example_round_trips() {
        let json = r#"{"fleet_metrics":["cpu","ram","disk"],"device_charts":["cpu","memory","load"],"theme":"system"}"#;
        let prefs = parse(json).expect("valid");
        assert_eq!(serde_json::to_string(&prefs).expect("encode"), json);
        assert_eq!(parse("{}"), Ok(Preferences::default()));
        assert_eq!(
            serde_json::to_string(&Preferences::default()).unwrap(),
            "{}"
        );
        let every = r#"{"fleet_metrics":["cpu","ram","disk","swap","load","network","temperature","uptime","processes"],
            "device_charts":["cpu","cpu_cores","cpu_breakdown","memory","swap","load","disk_usage","disk_io","network","temperatures","custom"],
            "theme":"dark"}"#;
        assert!(parse(every).is_ok());
        assert!(
            parse(r#"{"fleet_metrics":[]}"#).is_ok(),
            "nothing shown is a choice"
        );
    }

    #[test]
    fn unknown_keys_values_and_repeats_are_refused() {
        for bad in [
            r#"{"colour":"red"}"#,
            r#"{"theme":"blue"}"#,
            r#"{"fleet_metrics":["cpu","gpu"]}"#,
            r#"{"device_charts":"cpu"}"#,
            r#"{"fleet_metrics":["cpu","cpu"]}"#,
            r#"{"device_charts":["load","custom","load"]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let long = Preferences {
            fleet_metrics: Some(vec![FleetMetric::Cpu; MAX_FLEET_METRICS + 1]),
            ..Preferences::default()
        };
        assert_eq!(
            long.check().map_err(|e| e.field()),
            Err("fleet_metrics"),
            "too long"
        );
    }
}
