//! Where CPU time went, from the first line of Linux's `/proc/stat`.

use tailmon_core::CpuBreakdown;

/// Jiffy counters of the aggregate `cpu` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    user: u64,
    nice: u64,
    system: u64,
    idle: u64,
    iowait: u64,
    irq: u64,
    softirq: u64,
    steal: u64,
}

impl CpuTimes {
    fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// Parses the aggregate `cpu` line of `/proc/stat`.
pub(crate) fn parse(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().next()?;
    let mut fields = line.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let mut next = || fields.next().and_then(|f| f.parse::<u64>().ok());
    Some(CpuTimes {
        user: next()?,
        nice: next()?,
        system: next()?,
        idle: next()?,
        iowait: next()?,
        irq: next()?,
        softirq: next()?,
        steal: next().unwrap_or(0),
    })
}

/// The breakdown between two readings; `None` when no time passed or a
/// counter went backwards.
pub(crate) fn between(before: &CpuTimes, now: &CpuTimes) -> Option<CpuBreakdown> {
    let total = now.total().checked_sub(before.total()).filter(|t| *t > 0)? as f64;
    let delta = |a: u64, b: u64| {
        a.checked_sub(b)
            .map(|d| (d as f64 * 10_000.0 / total).round() / 100.0)
    };
    Some(CpuBreakdown {
        user: delta(now.user + now.nice, before.user + before.nice)?.min(100.0),
        system: delta(
            now.system + now.irq + now.softirq,
            before.system + before.irq + before.softirq,
        )?
        .min(100.0),
        iowait: delta(now.iowait, before.iowait)?.min(100.0),
        steal: delta(now.steal, before.steal)?.min(100.0),
    })
}

/// Keeps the previous reading to turn counters into a breakdown.
#[derive(Debug, Default)]
pub(crate) struct BreakdownState {
    previous: Option<CpuTimes>,
}

impl BreakdownState {
    /// Reads `/proc/stat`; the first call only records a baseline.
    pub(crate) fn sample(&mut self) -> Result<Option<CpuBreakdown>, String> {
        let stat = std::fs::read_to_string("/proc/stat").map_err(|e| e.to_string())?;
        let now = parse(&stat).ok_or("unexpected /proc/stat format")?;
        let breakdown = self.previous.and_then(|before| between(&before, &now));
        self.previous = Some(now);
        Ok(breakdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdown_of_known_counters() {
        let before = parse("cpu  100 0 50 800 10 0 0 0 0 0\ncpu0 1 2 3\n").unwrap();
        let now = parse("cpu  160 20 70 880 30 5 5 10 0 0\n").unwrap();
        // Deltas: user 60 + nice 20, system 20 + irq 5 + softirq 5, idle 80, iowait 20, steal 10: total 220.
        let b = between(&before, &now).unwrap();
        // Rounded to hundredths of a percent.
        assert_eq!(b.user, 36.36);
        assert_eq!(b.system, 13.64);
        assert_eq!(b.iowait, 9.09);
        assert_eq!(b.steal, 4.55);
        assert_eq!(between(&now, &now), None, "no time passed");
        assert_eq!(between(&now, &before), None, "counters went backwards");
    }

    #[test]
    fn refuses_other_formats() {
        assert_eq!(parse("intr 1 2 3"), None);
        assert_eq!(parse("cpu  1 2"), None);
        assert_eq!(parse(""), None);
    }
}
