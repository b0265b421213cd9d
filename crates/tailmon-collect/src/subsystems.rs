use std::fmt;
use std::str::FromStr;

/// The environment variable listing the subsystems to collect: `TAILMON_COLLECTORS`.
pub const COLLECTORS_ENV: &str = "TAILMON_COLLECTORS";

/// Which parts of a host's health [`HostCollector`](crate::HostCollector)
/// reads. The original fields (CPU usage, RAM, OS) are always read; each
/// subsystem here adds its own fields, and a disabled one costs nothing.
///
/// Parsed from a comma list of names (`TAILMON_COLLECTORS`), `all` or `none`:
///
/// ```
/// use tailmon_collect::Subsystems;
///
/// let some: Subsystems = "cpu,load,disks".parse()?;
/// assert!(some.load && !some.processes);
/// assert_eq!("all".parse::<Subsystems>()?, Subsystems::all());
/// assert!("cpu,gpu".parse::<Subsystems>().is_err());
/// # Ok::<(), tailmon_collect::UnknownSubsystem>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Subsystems {
    /// `cpu`: `cpu_per_core`, and `cpu_breakdown` on Linux.
    pub cpu: bool,
    /// `load`: `load_avg`.
    pub load: bool,
    /// `swap`: `swap_used_mb`, `swap_total_mb`.
    pub swap: bool,
    /// `disks`: `disks`.
    pub disks: bool,
    /// `diskio`: `disk_io`.
    pub disk_io: bool,
    /// `network`: `networks`.
    pub network: bool,
    /// `temperature`: `temperatures`.
    pub temperature: bool,
    /// `system`: `uptime_seconds`, `boot_time`, `process_count`.
    pub system: bool,
    /// `processes`: `top_processes` (a process scan, at most every 30 s).
    pub processes: bool,
}

impl Subsystems {
    /// Every subsystem's name, as `TAILMON_COLLECTORS` takes them, in order.
    pub const NAMES: [&'static str; 9] = NAMES;
}

/// The names accepted, in the order they are listed.
const NAMES: [&str; 9] = [
    "cpu",
    "load",
    "swap",
    "disks",
    "diskio",
    "network",
    "temperature",
    "system",
    "processes",
];

impl Subsystems {
    /// Every subsystem: the default.
    pub fn all() -> Self {
        Self::from_fn(|_| true)
    }

    /// Only the original fields.
    pub fn none() -> Self {
        Self::from_fn(|_| false)
    }

    /// Reads `TAILMON_COLLECTORS`; every subsystem when it is unset or empty.
    pub fn from_env() -> Result<Self, UnknownSubsystem> {
        match std::env::var(COLLECTORS_ENV) {
            Ok(list) if !list.trim().is_empty() => list.parse(),
            _ => Ok(Self::all()),
        }
    }

    fn from_fn(on: impl Fn(&str) -> bool) -> Self {
        Self {
            cpu: on("cpu"),
            load: on("load"),
            swap: on("swap"),
            disks: on("disks"),
            disk_io: on("diskio"),
            network: on("network"),
            temperature: on("temperature"),
            system: on("system"),
            processes: on("processes"),
        }
    }

    fn flags(&self) -> [bool; 9] {
        [
            self.cpu,
            self.load,
            self.swap,
            self.disks,
            self.disk_io,
            self.network,
            self.temperature,
            self.system,
            self.processes,
        ]
    }
}

impl Default for Subsystems {
    fn default() -> Self {
        Self::all()
    }
}

impl FromStr for Subsystems {
    type Err = UnknownSubsystem;

    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        match names.as_slice() {
            ["all"] => return Ok(Self::all()),
            ["none"] => return Ok(Self::none()),
            _ => {}
        }
        if let Some(unknown) = names.iter().find(|n| !NAMES.contains(n)) {
            return Err(UnknownSubsystem((*unknown).to_owned()));
        }
        Ok(Self::from_fn(|name| names.contains(&name)))
    }
}

impl fmt::Display for Subsystems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<&str> = NAMES
            .iter()
            .zip(self.flags())
            .filter_map(|(name, on)| on.then_some(*name))
            .collect();
        if on.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&on.join(","))
        }
    }
}

/// A subsystem name that is not one of Tailmon's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown collector {0:?}; known: cpu, load, swap, disks, diskio, network, temperature, system, processes (or all, none)"
)]
pub struct UnknownSubsystem(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_round_trips() {
        for text in ["cpu,load", "none", "swap,processes"] {
            let parsed: Subsystems = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(Subsystems::all().to_string().split(',').count(), 9);
        assert_eq!(
            " cpu , diskio ,".parse::<Subsystems>().unwrap().to_string(),
            "cpu,diskio"
        );
    }
}
