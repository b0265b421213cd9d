//! Tailmon's wire types: the [`Report`] an agent sends, its validation rules and
//! the [`Status`] thresholds the dashboard and alerts share.
//!
//! ```
//! use tailmon_core::{OffsetDateTime, Report, Status, Thresholds};
//!
//! let now = OffsetDateTime::now_utc();
//! let mut report = Report::new("web-1", now);
//! report.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
//! report.cpu_usage = 72.5;
//! report.ram_used_mb = 2048;
//! report.ram_total_mb = 8192;
//!
//! report.validate(now)?;
//! assert_eq!(report.status(&Thresholds::default()), Status::Warning);
//!
//! // The JSON is exactly the original Tailmon's.
//! let json = serde_json::to_string(&report).unwrap();
//! assert!(json.starts_with(r#"{"device_id":"web-1","os_info":"Ubuntu 22.04 (Kernel: 5.15.0)","cpu_usage":72.5"#));
//! # Ok::<(), tailmon_core::ValidationError>(())
//! ```
//!
//! This crate holds data types only: no runtime, no I/O, no HTTP.

mod batch_result;
mod device_summary;
mod error_body;
pub mod exposition;
mod history;
mod history_query;
pub mod metric;
mod org_id;
mod part_validation;
mod report;
mod report_parts;
mod status;
mod validation;

pub use batch_result::{BatchResult, MAX_BATCH_REPORTS, RejectedReport};
pub use device_summary::{DeviceSummary, ID_CONFLICT_KEPT};
pub use error_body::ErrorBody;
pub use history::{History, Point, Tier};
pub use history_query::{DEFAULT_HISTORY_POINTS, HistoryQuery, MAX_HISTORY_POINTS};
pub use org_id::{DEFAULT_ORG, OrgId};
pub use report::Report;
pub use report_parts::{
    CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, ProcessInfo, Temperature,
};
pub use status::{
    DEFAULT_CPU_CRITICAL, DEFAULT_CPU_WARNING, DEFAULT_RAM_CRITICAL, DEFAULT_RAM_WARNING, Status,
    Thresholds,
};
pub use time::OffsetDateTime;
pub use validation::{
    MAX_AGENT_INSTANCE_LEN, MAX_CORES, MAX_CUSTOM_METRICS, MAX_CUSTOM_VALUE, MAX_DEVICE_ID_LEN,
    MAX_DISK_IO, MAX_DISKS, MAX_FUTURE_SKEW, MAX_INTERFACES, MAX_LABEL_LEN, MAX_MOUNT_POINT_LEN,
    MAX_OS_INFO_LEN, MAX_SENSORS, MAX_TOP_PROCESSES, ValidationError, validate_device_id,
};
