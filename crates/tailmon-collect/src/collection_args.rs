use std::time::Duration;

use crate::{CollectError, HostCollector, Subsystems, parse_interval};

/// The collection settings both Tailmon binaries take, with one name per
/// setting across flag and environment variable. Flatten it into a clap
/// parser with `#[command(flatten)]` (feature `cli`).
#[derive(Debug, Clone, clap::Args)]
pub struct CollectionArgs {
    /// Seconds between reports (fractions allowed, at least 0.2).
    #[arg(long, env = "TAILMON_INTERVAL", default_value = "5", value_parser = parse_interval)]
    pub interval: Duration,
    /// The id to report under; defaults to the host name.
    #[arg(long, env = "TAILMON_DEVICE_ID")]
    pub device_id: Option<String>,
    /// Subsystems to collect beside CPU, RAM and OS: a comma list of cpu,
    /// load, swap, disks, diskio, network, temperature, system, processes;
    /// or all, or none.
    #[arg(long, env = "TAILMON_COLLECTORS", default_value = "all")]
    pub collectors: Subsystems,
    /// Also list pseudo filesystems (tmpfs, overlay, …) and bind mounts of a
    /// device already listed (the environment variable takes 1/0, true/false).
    #[arg(
        long,
        env = "TAILMON_ALL_FILESYSTEMS",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub all_filesystems: bool,
}

impl CollectionArgs {
    /// The host collector these settings describe.
    pub fn host_collector(&self) -> Result<HostCollector, CollectError> {
        HostCollector::builder()
            .subsystems(self.collectors)
            .all_filesystems(self.all_filesystems)
            .build()
    }

    /// The device id: `--device-id` / `TAILMON_DEVICE_ID`, else the host name.
    pub fn device_id(&self) -> String {
        self.device_id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(crate::default_device_id)
    }
}
