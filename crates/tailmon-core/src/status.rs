use serde::{Deserialize, Serialize};

/// CPU usage in percent above which a device is in [`Status::Warning`]. Defaults to 60.
pub const DEFAULT_CPU_WARNING: f64 = 60.0;
/// CPU usage in percent above which a device is in [`Status::Critical`]. Defaults to 80.
pub const DEFAULT_CPU_CRITICAL: f64 = 80.0;
/// RAM usage in percent above which a device is in [`Status::Warning`]. Defaults to 70.
pub const DEFAULT_RAM_WARNING: f64 = 70.0;
/// RAM usage in percent above which a device is in [`Status::Critical`]. Defaults to 90.
pub const DEFAULT_RAM_CRITICAL: f64 = 90.0;

/// How healthy a device looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// Every value is under its warning threshold.
    Ok,
    /// Some value is over its warning threshold.
    Warning,
    /// Some value is over its critical threshold.
    Critical,
    /// No report came for three reporting intervals.
    Offline,
}

/// The thresholds that turn a report into a [`Status`]; a value strictly above
/// a threshold crosses it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thresholds {
    /// Defaults to [`DEFAULT_CPU_WARNING`].
    pub cpu_warning: f64,
    /// Defaults to [`DEFAULT_CPU_CRITICAL`].
    pub cpu_critical: f64,
    /// Defaults to [`DEFAULT_RAM_WARNING`].
    pub ram_warning: f64,
    /// Defaults to [`DEFAULT_RAM_CRITICAL`].
    pub ram_critical: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cpu_warning: DEFAULT_CPU_WARNING,
            cpu_critical: DEFAULT_CPU_CRITICAL,
            ram_warning: DEFAULT_RAM_WARNING,
            ram_critical: DEFAULT_RAM_CRITICAL,
        }
    }
}

impl Thresholds {
    /// The status of a device using `cpu_percent` of its CPU and `ram_percent`
    /// of its memory (`None` when unknown).
    pub fn classify(&self, cpu_percent: f64, ram_percent: Option<f64>) -> Status {
        let ram = ram_percent.unwrap_or(0.0);
        if cpu_percent > self.cpu_critical || ram > self.ram_critical {
            Status::Critical
        } else if cpu_percent > self.cpu_warning || ram > self.ram_warning {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_thresholds_are_strict() {
        let t = Thresholds::default();
        assert_eq!(t.classify(60.0, Some(70.0)), Status::Ok);
        assert_eq!(t.classify(60.1, Some(10.0)), Status::Warning);
        assert_eq!(t.classify(10.0, Some(70.1)), Status::Warning);
        assert_eq!(t.classify(80.0, Some(90.0)), Status::Warning);
        assert_eq!(t.classify(80.1, Some(10.0)), Status::Critical);
        assert_eq!(t.classify(10.0, Some(90.1)), Status::Critical);
        assert_eq!(t.classify(10.0, None), Status::Ok);
    }

    #[test]
    fn status_serialises_lowercase() {
        assert_eq!(
            serde_json::to_string(&Status::Critical).unwrap(),
            r#""critical""#
        );
    }
}
