//! The process's own figures, read from `/proc/self` (Linux; elsewhere
//! nothing is written): the `process_*` families every Prometheus client
//! library exposes, with the same names.

use tailmon_core::exposition::{Family, Kind, write_header, write_sample, write_sample_u64};

/// Clock ticks per second of `/proc`'s CPU times: `USER_HZ`, which Linux
/// fixes at 100 for every program whatever the kernel's own tick.
const USER_HZ: f64 = 100.0;

/// What `/proc/self` said, once read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ProcessMetrics {
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl ProcessMetrics {
    /// Reads `/proc/self` now; what cannot be read is left out.
    pub(crate) fn read() -> Self {
        Self::read_from(std::path::Path::new("/proc"))
    }

    /// Reads `proc/self` and `proc/stat` under `proc` (a fake one in tests).
    pub(crate) fn read_from(proc: &std::path::Path) -> Self {
        let text = |name: &str| std::fs::read_to_string(proc.join(name)).ok();
        let status = text("self/status").unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .map(|n| n.saturating_mul(1024))
        };
        // Fields after the command's closing parenthesis, from field 3 on.
        let stat = text("self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let cpu_seconds = match (field(14), field(15)) {
            (Some(user), Some(system)) => Some((user + system) as f64 / USER_HZ),
            _ => None,
        };
        let boot = text("stat").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        let start_time_seconds = match (boot, field(22)) {
            (Some(boot), Some(ticks)) => Some(boot as f64 + ticks as f64 / USER_HZ),
            _ => None,
        };
        let open_fds = std::fs::read_dir(proc.join("self/fd"))
            .ok()
            .map(|dir| dir.count() as u64);
        let max_fds = text("self/limits").and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
        });
        Self {
            resident_bytes: kb("VmRSS:"),
            virtual_bytes: kb("VmSize:"),
            cpu_seconds,
            start_time_seconds,
            open_fds,
            max_fds,
        }
    }

    /// Writes the families it has figures for.
    pub(crate) fn write(&self, out: &mut String) {
        let mut u64_family = |name, kind, help, value: Option<u64>| {
            if let Some(value) = value {
                write_header(out, &Family { name, kind, help });
                write_sample_u64(out, name, &[], value);
            }
        };
        u64_family(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            self.resident_bytes,
        );
        u64_family(
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
            self.virtual_bytes,
        );
        u64_family(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            self.open_fds,
        );
        u64_family(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
            self.max_fds,
        );
        let mut f64_family = |name, kind, help, value: Option<f64>| {
            if let Some(value) = value {
                write_header(out, &Family { name, kind, help });
                write_sample(out, name, &[], value);
            }
        };
        f64_family(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds,
        );
        f64_family(
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_proc_gives_its_figures() {
        let dir = std::env::temp_dir().join(format!("tailmon-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("self/fd")).unwrap();
        for fd in ["0", "1", "2"] {
            std::fs::write(dir.join("self/fd").join(fd), "").unwrap();
        }
        std::fs::write(
            dir.join("self/status"),
            "Name:\tx\nVmSize:\t  2000 kB\nVmRSS:\t  1000 kB\n",
        )
        .unwrap();
        // pid (comm with ) space) state ppid … utime=14 stime=15 … starttime=22
        let mut stat = String::from("42 (a) b) S");
        for n in 4..=22 {
            let v = match n {
                14 => 250,
                15 => 50,
                22 => 1000,
                _ => 0,
            };
            stat.push_str(&format!(" {v}"));
        }
        std::fs::write(dir.join("self/stat"), stat).unwrap();
        std::fs::write(dir.join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        std::fs::write(
            dir.join("self/limits"),
            "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n",
        )
        .unwrap();
        let m = ProcessMetrics::read_from(&dir);
        assert_eq!(
            m,
            ProcessMetrics {
                resident_bytes: Some(1_024_000),
                virtual_bytes: Some(2_048_000),
                cpu_seconds: Some(3.0),
                start_time_seconds: Some(1_700_000_010.0),
                open_fds: Some(3),
                max_fds: Some(1024),
            }
        );
        let mut out = String::new();
        m.write(&mut out);
        assert!(out.contains("process_cpu_seconds_total 3\n"), "{out}");
        assert!(
            out.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{out}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
