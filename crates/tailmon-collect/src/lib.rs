//! How Tailmon learns a machine's health: the [`Collector`] trait, the
//! sysinfo-backed [`HostCollector`], and [`Collectors`] to run several as one.
//!
//! ```no_run
//! use tailmon_collect::{Collector, HostCollector};
//! use tailmon_core::{OffsetDateTime, Report};
//!
//! # async fn run() -> Result<(), tailmon_collect::CollectError> {
//! let mut collector = HostCollector::new()?;
//! let mut report = Report::new(tailmon_collect::default_device_id(), OffsetDateTime::now_utc());
//! collector.collect(&mut report).await?;
//! println!("{} uses {:.1} % CPU", report.device_id, report.cpu_usage);
//! # Ok(())
//! # }
//! ```
//!
//! A collector of your own implements [`Collector`] and is composed beside the
//! stock one with [`Collectors`]; one that fails leaves its part of the report
//! out and never fails the others.

mod collect_error;
#[cfg(feature = "cli")]
mod collection_args;
mod collector;
mod collectors;
mod cpu;
#[cfg(target_os = "linux")]
mod cpu_breakdown;
mod device_id;
mod disk_io;
mod disks;
mod host_collector;
mod interval;
mod load;
mod memory;
mod network;
mod os_info;
pub mod plugins;
mod processes;
mod rate;
mod subsystems;
mod system_info;
mod temperatures;

pub use collect_error::CollectError;
#[cfg(feature = "cli")]
pub use collection_args::CollectionArgs;
pub use collector::Collector;
pub use collectors::Collectors;
pub use device_id::{DEVICE_ID_ENV, default_device_id};
pub use host_collector::{DEFAULT_PROCESS_SCAN_INTERVAL, HostCollector, HostCollectorBuilder};
pub use interval::{MAX_INTERVAL, MIN_INTERVAL, parse_interval};
pub use subsystems::{COLLECTORS_ENV, Subsystems, UnknownSubsystem};
