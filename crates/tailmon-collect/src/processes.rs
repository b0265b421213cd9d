//! The heaviest processes, by CPU and by memory.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sysinfo::{Process, ProcessRefreshKind, ProcessesToUpdate, System};
use tailmon_core::{MAX_LABEL_LEN, ProcessInfo};

use crate::disks::text;

/// How many processes each ranking keeps.
const TOP: usize = 5;

/// What one scan saw of a process: enough to tell the next scan how much CPU
/// it used in between, and whether the pid is still the same process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// User plus system CPU time so far, in CPU-milliseconds.
    cpu_ms: u64,
    /// When it started, in seconds since the epoch (a reused pid differs).
    start_time: u64,
}

/// Scans the process table at most once per `every` and keeps the result
/// for the reports in between.
///
/// A process's `cpu_percent` is its CPU time between two scans over the wall
/// time between them, as a share of the whole machine; a process that started
/// after the previous scan gets its share since it started. The report
/// interval plays no part. Threads are not listed: they are part of their
/// process's CPU time and memory.
pub(crate) struct TopProcesses {
    every: Duration,
    last_scan: Option<Instant>,
    seen: HashMap<u32, Seen>,
    top: Vec<ProcessInfo>,
}

impl TopProcesses {
    pub(crate) fn new(every: Duration) -> Self {
        Self {
            every,
            last_scan: None,
            seen: HashMap::new(),
            top: Vec::new(),
        }
    }

    /// The top five by CPU, then the top five by memory not already listed.
    ///
    /// The first scan only sets the baseline: every share is 0 until the next.
    pub(crate) fn sample(&mut self, system: &mut System) -> Vec<ProcessInfo> {
        let now = Instant::now();
        if self
            .last_scan
            .is_none_or(|at| now.duration_since(at) >= self.every)
        {
            // Processes only: on Linux sysinfo would list every thread too.
            system.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .without_tasks(),
            );
            let since_last = self.last_scan.map(|at| now.duration_since(at));
            let wall_now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let cores = system.cpus().len();
            let mut seen = HashMap::with_capacity(self.seen.len());
            let all: Vec<ProcessInfo> = system
                .processes()
                .values()
                .filter(|p| p.thread_kind().is_none())
                .map(|p| {
                    let pid = p.pid().as_u32();
                    let now_seen = Seen {
                        cpu_ms: p.accumulated_cpu_time(),
                        start_time: p.start_time(),
                    };
                    seen.insert(pid, now_seen);
                    let cpu = since_last.map_or(0.0, |span| {
                        let (cpu_ms, span) =
                            usage_since(self.seen.get(&pid).copied(), now_seen, span, wall_now);
                        cpu_share(cpu_ms, span, cores)
                    });
                    info(p, cpu)
                })
                .collect();
            self.seen = seen;
            self.last_scan = Some(now);
            self.top = rank(all);
        }
        self.top.clone()
    }
}

fn info(p: &Process, cpu_percent: f64) -> ProcessInfo {
    ProcessInfo {
        pid: p.pid().as_u32(),
        name: text(&p.name().to_string_lossy(), MAX_LABEL_LEN).unwrap_or_else(|| "?".to_owned()),
        cpu_percent,
        rss_bytes: p.memory(),
    }
}

/// The CPU time a process used since the previous scan, and over what wall
/// time: `since_last` for a process that scan saw, or the time since it
/// started (at most `since_last`) for one that appeared since, or whose pid
/// now belongs to a newer process. `wall_now` is the time since the epoch.
fn usage_since(
    before: Option<Seen>,
    now: Seen,
    since_last: Duration,
    wall_now: Duration,
) -> (u64, Duration) {
    match before {
        Some(before) if before.start_time == now.start_time => {
            (now.cpu_ms.saturating_sub(before.cpu_ms), since_last)
        }
        _ => {
            // The start time is whole seconds, rounded down: the age is at
            // most a second long, so the share at most a little low.
            let age = wall_now.saturating_sub(Duration::from_secs(now.start_time));
            (now.cpu_ms, age.min(since_last))
        }
    }
}

/// `cpu_ms` of CPU time over `span` of wall time as a percentage of a machine
/// with `cores` logical CPUs, in hundredths, within 0..=100; 0 for an empty
/// span or no CPUs.
fn cpu_share(cpu_ms: u64, span: Duration, cores: usize) -> f64 {
    let capacity_ms = span.as_secs_f64() * 1000.0 * cores as f64;
    if capacity_ms <= 0.0 {
        return 0.0;
    }
    let share = (cpu_ms as f64 / capacity_ms * 100.0).clamp(0.0, 100.0);
    (share * 100.0).round() / 100.0
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

    const SECOND: Duration = Duration::from_secs(1);

    /// 1 % of a 4-core machine, for every scan interval: the CPU time delta
    /// over the same span, nothing else.
    #[test]
    fn share_is_cpu_time_over_the_scan_span_of_the_machine() {
        for secs in [1_u64, 5, 30, 300] {
            let span = Duration::from_secs(secs);
            let before = Seen {
                cpu_ms: 7_000,
                start_time: 100,
            };
            // 1 % of 4 cores is 40 CPU-ms per second.
            let now = Seen {
                cpu_ms: 7_000 + 40 * secs,
                start_time: 100,
            };
            let (cpu_ms, over) = usage_since(Some(before), now, span, SECOND * 10_000);
            assert_eq!((cpu_ms, over), (40 * secs, span));
            assert_eq!(cpu_share(cpu_ms, over, 4), 1.0, "scan every {secs} s");
        }
        // A whole machine busy, and more than it (rounding of the clocks), is 100.
        assert_eq!(cpu_share(4 * 30_000, SECOND * 30, 4), 100.0);
        assert_eq!(cpu_share(4 * 31_000, SECOND * 30, 4), 100.0);
        assert_eq!(cpu_share(10, Duration::ZERO, 4), 0.0);
        assert_eq!(cpu_share(10, SECOND, 0), 0.0);
    }

    /// A 15 s burner using half of a 2-core machine, started 15 s before a
    /// scan that comes 30 s after the previous one: 50 %, not 25 % nor absent.
    #[test]
    fn a_process_younger_than_a_scan_gets_its_share_since_it_started() {
        let wall_now = SECOND * 1_000_000;
        let now = Seen {
            cpu_ms: 15_000,
            start_time: 1_000_000 - 15,
        };
        let (cpu_ms, over) = usage_since(None, now, SECOND * 30, wall_now);
        assert_eq!((cpu_ms, over), (15_000, SECOND * 15));
        assert_eq!(cpu_share(cpu_ms, over, 2), 50.0);

        // A pid reused by a newer process: its own time, since it started.
        let old = Seen {
            cpu_ms: 900_000,
            start_time: 10,
        };
        let (cpu_ms, over) = usage_since(Some(old), now, SECOND * 30, wall_now);
        assert_eq!((cpu_ms, over), (15_000, SECOND * 15));

        // Older than the scan but unseen (the previous scan missed it): the scan span.
        let now = Seen {
            cpu_ms: 3_000,
            start_time: 1_000_000 - 300,
        };
        let (_, over) = usage_since(None, now, SECOND * 30, wall_now);
        assert_eq!(over, SECOND * 30);
    }

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
