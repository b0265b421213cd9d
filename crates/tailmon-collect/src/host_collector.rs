use std::time::Duration;

use async_trait::async_trait;
use sysinfo::System;
use tailmon_core::Report;

use crate::disk_io::DiskIoState;
use crate::disks::DiskState;
use crate::network::NetworkState;
use crate::processes::TopProcesses;
use crate::temperatures::TemperatureState;
use crate::{CollectError, Collector, Subsystems, cpu, load, memory, os_info, system_info};

/// How often the process table is scanned for `top_processes`: 30 s.
pub const DEFAULT_PROCESS_SCAN_INTERVAL: Duration = Duration::from_secs(30);

/// The stock collector: this host's health, read through long-lived state
/// (one sysinfo [`System`], disk, network and sensor lists) that refreshes only
/// the [`Subsystems`] enabled; no `new_all()` per cycle, and the process table
/// only for `top_processes`, at most every 30 s.
///
/// CPU usage and rates are measured over the window since the previous
/// collection (the first window starts at construction), so collect at least
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] apart. Rates are absent from the
/// first collection rather than a false zero.
///
/// ```no_run
/// use tailmon_collect::{HostCollector, Subsystems};
///
/// let collector = HostCollector::builder()
///     .subsystems("cpu,load,disks".parse()?)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HostCollector {
    subsystems: Subsystems,
    system: System,
    os_info: String,
    #[cfg(target_os = "linux")]
    breakdown: crate::cpu_breakdown::BreakdownState,
    disks: Option<DiskState>,
    disk_io: Option<DiskIoState>,
    network: Option<NetworkState>,
    temperatures: Option<TemperatureState>,
    processes: TopProcesses,
    boot_time: Option<tailmon_core::OffsetDateTime>,
}

/// Builds a [`HostCollector`]; every setting has a documented default.
#[must_use]
#[derive(Debug, Clone)]
pub struct HostCollectorBuilder {
    subsystems: Subsystems,
    all_filesystems: bool,
    process_scan_interval: Duration,
}

impl HostCollectorBuilder {
    /// Which subsystems to read. Defaults to [`Subsystems::all`].
    pub fn subsystems(mut self, subsystems: Subsystems) -> Self {
        self.subsystems = subsystems;
        self
    }

    /// Also list pseudo filesystems (tmpfs, overlay, …) and bind mounts of a
    /// device already listed. Defaults to `false`.
    pub fn all_filesystems(mut self, all: bool) -> Self {
        self.all_filesystems = all;
        self
    }

    /// Least time between two process scans for `top_processes`. Defaults to
    /// [`DEFAULT_PROCESS_SCAN_INTERVAL`].
    pub fn process_scan_interval(mut self, every: Duration) -> Self {
        self.process_scan_interval = every;
        self
    }

    /// The collector, its first CPU and rate window starting now. Fails only
    /// when the OS offers no way to read its health at all; a subsystem that
    /// cannot start is left out and reported by each collection.
    pub fn build(self) -> Result<HostCollector, CollectError> {
        let mut system = System::new().map_err(|error| CollectError::Probe {
            probe: "system",
            message: error.to_string(),
        })?;
        system.refresh_cpu_usage();
        let s = self.subsystems;
        let mut collector = HostCollector {
            subsystems: s,
            system,
            os_info: os_info::describe(),
            #[cfg(target_os = "linux")]
            breakdown: Default::default(),
            disks: s
                .disks
                .then(|| DiskState::new(self.all_filesystems).ok())
                .flatten(),
            disk_io: s.disk_io.then(|| DiskIoState::new().ok()).flatten(),
            network: s.network.then(|| NetworkState::new().ok()).flatten(),
            temperatures: s
                .temperature
                .then(|| TemperatureState::new().ok())
                .flatten(),
            processes: TopProcesses::new(self.process_scan_interval),
            boot_time: s.system.then(system_info::boot_time).flatten(),
        };
        // The CPU breakdown shares the CPU usage's first window; counters
        // of disks and interfaces start with the first collection, whose
        // report therefore carries no rates rather than false zeros.
        #[cfg(target_os = "linux")]
        if s.cpu {
            let _ = collector.breakdown.sample();
        }
        Ok(collector)
    }
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCollector")
            .field("subsystems", &self.subsystems)
            .field("os_info", &self.os_info)
            .finish_non_exhaustive()
    }
}

impl HostCollector {
    /// A collector of every subsystem, its first CPU window starting now.
    pub fn new() -> Result<Self, CollectError> {
        Self::builder().build()
    }

    /// A builder to choose subsystems and options.
    pub fn builder() -> HostCollectorBuilder {
        HostCollectorBuilder {
            subsystems: Subsystems::all(),
            all_filesystems: false,
            process_scan_interval: DEFAULT_PROCESS_SCAN_INTERVAL,
        }
    }

    /// The subsystems this collector reads.
    pub fn subsystems(&self) -> Subsystems {
        self.subsystems
    }
}

#[async_trait]
impl Collector for HostCollector {
    fn name(&self) -> &str {
        "host"
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        let s = self.subsystems;
        let mut failed: Vec<&'static str> = Vec::new();
        report.os_info.clone_from(&self.os_info);

        match cpu::usage(&mut self.system) {
            Some(usage) => report.cpu_usage = usage,
            None => failed.push("cpu"),
        }
        if s.cpu {
            report.cpu_per_core = cpu::per_core(&self.system);
            #[cfg(target_os = "linux")]
            match self.breakdown.sample() {
                Ok(breakdown) => report.cpu_breakdown = breakdown,
                Err(_) => failed.push("cpu_breakdown"),
            }
        }

        memory::refresh(&mut self.system, s.swap);
        match memory::ram_mb(&self.system) {
            Some((used, total)) => {
                report.ram_used_mb = used;
                report.ram_total_mb = total;
            }
            None => failed.push("memory"),
        }
        if s.swap {
            let (used, total) = memory::swap_mb(&self.system);
            report.swap_used_mb = Some(used);
            report.swap_total_mb = Some(total);
        }
        if s.load {
            report.load_avg = load::average();
        }
        if s.disks {
            match &mut self.disks {
                Some(disks) => report.disks = Some(disks.sample()),
                None => failed.push("disks"),
            }
        }
        if s.disk_io {
            match self.disk_io.as_mut().map(DiskIoState::sample) {
                Some(Ok(rates)) => report.disk_io = rates,
                _ => failed.push("diskio"),
            }
        }
        if s.network {
            match self.network.as_mut().map(NetworkState::sample) {
                Some(Ok(interfaces)) => report.networks = Some(interfaces),
                _ => failed.push("network"),
            }
        }
        if s.temperature {
            report.temperatures = Some(
                self.temperatures
                    .as_mut()
                    .map(TemperatureState::sample)
                    .unwrap_or_default(),
            );
        }
        if s.processes {
            report.top_processes = Some(self.processes.sample(&mut self.system));
        }
        if s.system {
            report.uptime_seconds = self.boot_time.and_then(system_info::uptime_seconds);
            report.boot_time = self.boot_time;
            report.process_count = system_info::process_count(&self.system);
        }

        if failed.is_empty() {
            Ok(())
        } else {
            Err(CollectError::Probe {
                probe: "host",
                message: format!("no reading from: {}", failed.join(", ")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::OffsetDateTime;

    #[tokio::test]
    async fn fills_a_report_the_server_accepts() {
        let mut collector = HostCollector::new().expect("sysinfo works here");
        std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
        let now = OffsetDateTime::now_utc();
        let mut report = Report::new("test-host", now);
        collector
            .collect(&mut report)
            .await
            .expect("host probes work");
        assert_eq!(report.validate(now), Ok(()));
        assert!(report.ram_total_mb > 0);
        assert!(report.ram_used_mb <= report.ram_total_mb);
        assert!((0.0..=100.0).contains(&report.cpu_usage));
        assert!(!report.os_info.is_empty());
    }
}
