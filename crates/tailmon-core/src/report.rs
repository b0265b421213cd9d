use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, ProcessInfo, Status, Temperature,
    Thresholds, ValidationError, validation,
};

/// One health report of one device, as an agent sends it to `POST /api/metrics`.
///
/// The JSON is exactly the original Tailmon's (`device_id`, `os_info`,
/// `cpu_usage`, `ram_used_mb`, `ram_total_mb`, `last_seen` as RFC 3339), so the
/// original agent and scripts written against it keep working. Unknown fields
/// are ignored, so newer and older agents interoperate.
///
/// Every field after `received_at` is optional: absent when the agent does not
/// collect it (an older agent, a disabled collector, a probe that failed, or a
/// rate on the first sample), and left out of the JSON then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    /// Which device this report describes: 1 to 128 characters of letters,
    /// digits, `.`, `_`, `-` and `:`.
    pub device_id: String,
    /// Operating system, in the style `Ubuntu 22.04 (Kernel: 5.15.0)`.
    pub os_info: String,
    /// Overall CPU usage in percent, 0 to 100.
    pub cpu_usage: f64,
    /// Memory in use, in MiB.
    pub ram_used_mb: u64,
    /// Memory installed, in MiB.
    pub ram_total_mb: u64,
    /// When the agent took this sample, by the agent's clock.
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// When the server received this report, by the server's clock.
    ///
    /// Set by the server on receipt; whatever an agent sends here is replaced,
    /// so a skewed agent clock cannot corrupt what the server shows.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub received_at: Option<OffsetDateTime>,
    /// Usage of each logical core in percent, 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_per_core: Option<Vec<f64>>,
    /// Where CPU time went (Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_breakdown: Option<CpuBreakdown>,
    /// Load averages, where the platform has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_avg: Option<LoadAvg>,
    /// Swap in use, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_used_mb: Option<u64>,
    /// Swap configured, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_total_mb: Option<u64>,
    /// Real mounted filesystems (no pseudo or duplicate mounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<Disk>>,
    /// Throughput per block device; absent on the first sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_io: Option<Vec<DiskIo>>,
    /// Network interfaces except loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Vec<NetworkInterface>>,
    /// Temperature sensors; empty where the host exposes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperatures: Option<Vec<Temperature>>,
    /// Seconds since boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    /// When the host booted.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_time: Option<OffsetDateTime>,
    /// Processes running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_count: Option<u64>,
    /// The heaviest processes: the top five by CPU and the top five by memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_processes: Option<Vec<ProcessInfo>>,
    /// Values from custom collectors, by name (names follow the device id rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<BTreeMap<String, f64>>,
    /// A random id the agent draws at start (1 to [`MAX_AGENT_INSTANCE_LEN`](crate::MAX_AGENT_INSTANCE_LEN)
    /// characters of the device id alphabet), so that the server can tell
    /// two agents reporting under one device id. The server takes it out
    /// before it stores the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_instance: Option<String>,
}

impl Report {
    /// An empty report for `device_id`, sampled at `last_seen`; collectors fill the rest.
    pub fn new(device_id: impl Into<String>, last_seen: OffsetDateTime) -> Self {
        Self {
            device_id: device_id.into(),
            os_info: String::new(),
            cpu_usage: 0.0,
            ram_used_mb: 0,
            ram_total_mb: 0,
            last_seen,
            received_at: None,
            cpu_per_core: None,
            cpu_breakdown: None,
            load_avg: None,
            swap_used_mb: None,
            swap_total_mb: None,
            disks: None,
            disk_io: None,
            networks: None,
            temperatures: None,
            uptime_seconds: None,
            boot_time: None,
            process_count: None,
            top_processes: None,
            custom: None,
            agent_instance: None,
        }
    }

    /// Checks every rule a server enforces on a report received at `now`.
    ///
    /// Returns the first rule broken; its [`ValidationError::field`] names the
    /// field to blame.
    pub fn validate(&self, now: OffsetDateTime) -> Result<(), ValidationError> {
        validation::validate_device_id(&self.device_id)?;
        validation::validate_os_info(&self.os_info)?;
        validation::validate_cpu_usage(self.cpu_usage)?;
        validation::validate_ram(self.ram_used_mb, self.ram_total_mb)?;
        validation::validate_last_seen(self.last_seen, now)?;
        if let Some(instance) = &self.agent_instance {
            validation::validate_agent_instance(instance)?;
        }
        validation::validate_parts(self, now)
    }

    /// Memory in use as a percentage of memory installed; `None` when the total is zero.
    pub fn ram_used_percent(&self) -> Option<f64> {
        (self.ram_total_mb > 0).then(|| self.ram_used_mb as f64 * 100.0 / self.ram_total_mb as f64)
    }

    /// How healthy this report looks under `thresholds`.
    pub fn status(&self, thresholds: &Thresholds) -> Status {
        thresholds.classify(self.cpu_usage, self.ram_used_percent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn json_matches_the_original_shape() {
        let json = r#"{"device_id":"my-laptop","os_info":"Ubuntu 22.04 (Kernel: 5.15.0)","cpu_usage":15.7,"ram_used_mb":4096,"ram_total_mb":16384,"last_seen":"2025-07-10T14:30:00Z"}"#;
        let report: Report = serde_json::from_str(json).unwrap();
        assert_eq!(report.device_id, "my-laptop");
        assert_eq!(report.cpu_usage, 15.7);
        assert_eq!(report.last_seen, datetime!(2025-07-10 14:30:00 UTC));
        assert_eq!(report.received_at, None);
        assert_eq!(serde_json::to_string(&report).unwrap(), json);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let json = r#"{"device_id":"a","os_info":"","cpu_usage":1,"ram_used_mb":1,"ram_total_mb":2,"last_seen":"2025-07-10T14:30:00Z","gpu_usage":3,"extra":{"x":[1]}}"#;
        let report: Report = serde_json::from_str(json).unwrap();
        assert_eq!(report.ram_total_mb, 2);
    }

    #[test]
    fn received_at_round_trips_when_set() {
        let mut report = Report::new("a", datetime!(2025-07-10 14:30:00 UTC));
        report.received_at = Some(datetime!(2025-07-10 14:30:01 UTC));
        let json = serde_json::to_string(&report).unwrap();
        assert!(
            json.ends_with(r#""received_at":"2025-07-10T14:30:01Z"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), report);
    }

    #[test]
    fn agent_instance_is_omitted_when_none_and_checked_when_set() {
        let mut report = Report::new("a", datetime!(2025-07-10 14:30:00 UTC));
        report.ram_total_mb = 1;
        assert!(
            !serde_json::to_string(&report)
                .unwrap()
                .contains("agent_instance")
        );
        let now = datetime!(2025-07-10 14:30:00 UTC);
        report.agent_instance = Some("f00d-1".into());
        assert_eq!(report.validate(now), Ok(()));
        assert!(
            serde_json::to_string(&report)
                .unwrap()
                .ends_with(r#""agent_instance":"f00d-1"}"#)
        );
        for bad in ["", "a b", &"a".repeat(65)] {
            report.agent_instance = Some(bad.to_owned());
            assert_eq!(
                report.validate(now).unwrap_err().field(),
                "agent_instance",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ram_percent_guards_zero_total() {
        let mut report = Report::new("a", datetime!(2025-07-10 14:30:00 UTC));
        assert_eq!(report.ram_used_percent(), None);
        report.ram_used_mb = 1;
        report.ram_total_mb = 4;
        assert_eq!(report.ram_used_percent(), Some(25.0));
    }
}
