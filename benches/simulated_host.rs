//! The benchmarks' simulated host: `tailmon-loadgen`'s
//! [`SimulatedHost`](tailmon_loadgen::SimulatedHost) (values that move like
//! a real host's), its reports meant 5 s apart and without an
//! `agent_instance`, as the figures in BENCHMARKS.md were measured.

use tailmon_core::{OffsetDateTime, Report};

/// Seconds between two reports, as the byte counters and uptime grow: the
/// agent's default interval.
const INTERVAL_SECS: f64 = 5.0;

/// A small server: 2 cores, one disk, one interface, one sensor, ten top
/// processes (26 metrics).
#[derive(Debug)]
pub struct SimulatedHost(tailmon_loadgen::SimulatedHost);

impl SimulatedHost {
    /// A host called `device_id`; the same id and seed give the same reports.
    pub fn new(device_id: &str, seed: u64) -> Self {
        Self(tailmon_loadgen::SimulatedHost::new(device_id, seed))
    }

    /// The next report, stamped `at` (reports are meant 5 s apart).
    pub fn next(&mut self, at: OffsetDateTime) -> Report {
        let mut report = self.0.next(at, INTERVAL_SECS);
        report.agent_instance = None;
        report
    }
}
