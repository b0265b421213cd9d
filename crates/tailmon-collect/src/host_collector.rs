use async_trait::async_trait;
use sysinfo::System;
use tailmon_core::Report;

use crate::{CollectError, Collector, cpu, memory, os_info};

/// The stock collector: this host's CPU, memory and OS, read through one
/// long-lived sysinfo [`System`] that refreshes only what it reports (no
/// process scan, no `new_all()` per cycle).
///
/// CPU usage is measured over the window since the previous collection (the
/// first window starts at [`HostCollector::new`]), so collect at least
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] apart.
pub struct HostCollector {
    system: System,
    os_info: String,
}

impl HostCollector {
    /// A collector whose first CPU window starts now.
    ///
    /// Fails only when the OS offers no way to read its health at all.
    pub fn new() -> Result<Self, CollectError> {
        let mut system = System::new().map_err(|error| CollectError::Probe {
            probe: "system",
            message: error.to_string(),
        })?;
        system.refresh_cpu_usage();
        Ok(Self {
            system,
            os_info: os_info::describe(),
        })
    }
}

#[async_trait]
impl Collector for HostCollector {
    fn name(&self) -> &str {
        "host"
    }

    async fn collect(&mut self, report: &mut Report) -> Result<(), CollectError> {
        report.os_info.clone_from(&self.os_info);
        let cpu = cpu::usage(&mut self.system);
        if let Some(cpu) = cpu {
            report.cpu_usage = cpu;
        }
        let memory = memory::usage_mb(&mut self.system);
        if let Some((used, total)) = memory {
            report.ram_used_mb = used;
            report.ram_total_mb = total;
        }
        match (cpu, memory) {
            (Some(_), Some(_)) => Ok(()),
            (None, _) => Err(CollectError::Probe {
                probe: "cpu",
                message: "the OS reported no CPU usage".into(),
            }),
            (_, None) => Err(CollectError::Probe {
                probe: "memory",
                message: "the OS reported no memory total".into(),
            }),
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
            .expect("host probes work here");
        assert_eq!(report.validate(now), Ok(()));
        assert!(report.ram_total_mb > 0);
        assert!(report.ram_used_mb <= report.ram_total_mb);
        assert!((0.0..=100.0).contains(&report.cpu_usage));
        assert!(!report.os_info.is_empty());
    }
}
