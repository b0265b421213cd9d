//! The heaviest processes, by CPU and by memory.

use std::time::{Duration, Instant};

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
use tailmon_core::{MAX_LABEL_LEN, ProcessInfo};

use crate::disks::text;

/// How many processes each ranking keeps.
const TOP: usize = 5;

/// Scans the process table at most once per `every` and keeps the result
/// for the reports in between.
pub(crate) struct TopProcesses {
    every: Duration,
    last_scan: Option<Instant>,
    top: Vec<ProcessInfo>,
}

impl TopProcesses {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last_scan: None,
            top: Vec::new(),
        }
    }

    /// The top five by CPU, then the top five by memory not already listed.
    pub(crate) fn sample(&mut self, system: &mut System) -> Vec<ProcessInfo> {
        let now = Instant::now();
        if self
            .last_scan
            .is_none_or(|at| now.duration_since(at) >= self.every)
        {
            self.last_scan = Some(now);
            system.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing().with_cpu().with_memory(),
            );
            let cores = system.cpus().len().max(1) as f64;
            let all: Vec<ProcessInfo> = system
                .processes()
                .values()
                .filter_map(|p| {
                    // A share of the whole machine, in hundredths like every percentage.
                    let cpu = (f64::from(p.cpu_usage()) / cores * 100.0).round() / 100.0;
                    if !cpu.is_finite() {
                        return None;
                    }
                    Some(ProcessInfo {
                        pid: p.pid().as_u32(),
                        name: text(&p.name().to_string_lossy(), MAX_LABEL_LEN)
                            .unwrap_or_else(|| "?".to_owned()),
                        cpu_percent: cpu.clamp(0.0, 100.0),
                        rss_bytes: p.memory(),
                    })
                })
                .collect();
            self.top = rank(all);
        }
        self.top.clone()
    }
}

/// The top [`TOP`] by CPU, then the top [`TOP`] by memory not already listed.
fn rank(mut all: Vec<ProcessInfo>) -> Vec<ProcessInfo> {
    all.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(a.pid.cmp(&b.pid))
    });
    let mut top: Vec<ProcessInfo> = all.iter().take(TOP).cloned().collect();
    all.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
    for p in all {
        if top.len() >= TOP * 2 {
            break;
        }
        if !top.iter().any(|t| t.pid == p.pid) {
            top.push(p);
        }
    }
    top
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, cpu: f64, rss: u64) -> ProcessInfo {
        ProcessInfo {
            pid,
            name: format!("p{pid}"),
            cpu_percent: cpu,
            rss_bytes: rss,
        }
    }

    #[test]
    fn top_five_by_cpu_then_by_memory_without_repeats() {
        let all: Vec<ProcessInfo> = (1..=20)
            .map(|n| p(n, f64::from(n), u64::from(100 - n)))
            .collect();
        let pids: Vec<u32> = rank(all).iter().map(|p| p.pid).collect();
        assert_eq!(pids, [20, 19, 18, 17, 16, 1, 2, 3, 4, 5]);

        // One process heaviest on both counts is listed once.
        let pids: Vec<u32> = rank(vec![p(1, 90.0, 900), p(2, 1.0, 1)])
            .iter()
            .map(|p| p.pid)
            .collect();
        assert_eq!(pids, [1, 2]);
    }
}
