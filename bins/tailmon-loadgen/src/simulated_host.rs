//! A simulated host whose reports move like a real one's: every value a
//! seeded random walk at the precision the stock agent reports (percentages
//! and temperatures in hundredths, rates in whole units, byte counters
//! growing), and the top processes changing every 30 s as the agent rescans
//! them. Storage figures measured on constant or periodic values would
//! flatter any compression; these do not. The benchmarks (`benches/`) use
//! it too.

use tailmon_core::{
    CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, OffsetDateTime, ProcessInfo, Report,
    Temperature,
};

/// A small server: 2 cores, one disk, one interface, one sensor, ten top
/// processes; or, [`small`](Self::small), the original Tailmon's report
/// (CPU and memory only).
#[derive(Debug)]
pub struct SimulatedHost {
    device_id: String,
    agent_instance: String,
    small: bool,
    rng: fastrand::Rng,
    n: u64,
    uptime_secs: f64,
    cpu: [f64; 2],
    ram_used_mb: u64,
    disk_used: u64,
    rx_total: u64,
    tx_total: u64,
    load: f64,
    celsius: f64,
    processes: u32,
    pool: Vec<ProcessInfo>,
    top: Vec<ProcessInfo>,
}

/// Mixed into the seed of the agent instance's id.
const INSTANCE_SEED: u64 = 0x1d5a_9e3b_77c4_2f61;

/// How the agent rounds: to `1 / scale`.
fn round(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

impl SimulatedHost {
    /// A host called `device_id` sending full reports; the same id and seed
    /// give the same reports.
    pub fn new(device_id: &str, seed: u64) -> Self {
        // Drawn apart from the values' walk, so that a seed gives the same
        // values as it did before agents had instances (the benchmarks'
        // figures were measured on them).
        let agent_instance = format!(
            "loadgen-{:016x}",
            fastrand::Rng::with_seed(seed ^ INSTANCE_SEED).u64(..)
        );
        Self {
            device_id: device_id.to_owned(),
            agent_instance,
            small: false,
            rng: fastrand::Rng::with_seed(seed),
            n: 0,
            uptime_secs: 1_000_000.0,
            cpu: [12.0, 8.0],
            ram_used_mb: 3_000,
            disk_used: 120_000_000_000,
            rx_total: 9_000_000_000,
            tx_total: 4_000_000_000,
            load: 0.4,
            celsius: 45.0,
            processes: 180,
            pool: (0..30u32)
                .map(|i| ProcessInfo {
                    pid: 1000 + i * 7,
                    name: format!("worker-{i}"),
                    cpu_percent: 0.0,
                    rss_bytes: 4096 * (1_000 + u64::from(i) * 3_000),
                })
                .collect(),
            top: Vec::new(),
        }
    }

    /// The same host sending the original Tailmon's small reports: device,
    /// OS, CPU and memory, nothing else.
    #[must_use]
    pub fn small(mut self) -> Self {
        self.small = true;
        self
    }

    /// The device id this host reports as.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// A step of a random walk kept within `low..=high`.
    fn walk(&mut self, value: f64, step: f64, low: f64, high: f64) -> f64 {
        (value + (self.rng.f64() * 2.0 - 1.0) * step).clamp(low, high)
    }

    /// The next report, stamped `at`; `elapsed_secs` is the time since the
    /// previous one (what the byte counters grow by; the agent's interval).
    pub fn next(&mut self, at: OffsetDateTime, elapsed_secs: f64) -> Report {
        self.n += 1;
        for i in 0..2 {
            self.cpu[i] = self.walk(self.cpu[i], 6.0, 0.0, 100.0);
        }
        let cores = [round(self.cpu[0], 100.0), round(self.cpu[1], 100.0)];
        let cpu = round((cores[0] + cores[1]) / 2.0, 100.0);
        self.ram_used_mb = self
            .ram_used_mb
            .saturating_add_signed(self.rng.i64(-40..=40))
            .clamp(500, 15_000);
        let mut r = Report::new(&self.device_id, at);
        r.os_info = "Debian GNU/Linux 12 (Kernel: 6.1.0-18-amd64)".into();
        r.cpu_usage = cpu;
        r.ram_used_mb = self.ram_used_mb;
        r.ram_total_mb = 16_000;
        if self.small {
            return r;
        }
        r.agent_instance = Some(self.agent_instance.clone());

        self.disk_used += 4096 * self.rng.u64(0..64);
        let rx_rate = (self.rng.f64() * 40_000.0).round();
        let tx_rate = (self.rng.f64() * 12_000.0).round();
        let elapsed = elapsed_secs.max(0.0);
        self.uptime_secs += elapsed;
        self.rx_total += (rx_rate * elapsed) as u64;
        self.tx_total += (tx_rate * elapsed) as u64;
        // Disk traffic is bursty: mostly a trickle, sometimes a burst.
        let burst = if self.rng.u8(0..10) == 0 {
            5_000_000.0
        } else {
            50_000.0
        };
        let read_rate = (self.rng.f64() * burst).round();
        let write_rate = (self.rng.f64() * burst).round();
        self.load = self.walk(self.load, 0.05, 0.0, 8.0);
        self.celsius = self.walk(self.celsius, 0.5, 30.0, 90.0);
        self.processes = self
            .processes
            .saturating_add_signed(self.rng.i32(-2..=2))
            .clamp(50, 500);
        if self.n % 6 == 1 {
            self.rescan_processes();
        }
        let user = round(cpu * 0.7, 100.0);
        let system = round(cpu * 0.25, 100.0);

        r.cpu_per_core = Some(cores.to_vec());
        r.cpu_breakdown = Some(CpuBreakdown {
            user,
            system,
            iowait: round(self.rng.f64() * 2.0, 100.0),
            steal: 0.0,
        });
        r.load_avg = Some(LoadAvg {
            one: round(self.load, 100.0),
            five: round(self.load * 0.9, 100.0),
            fifteen: round(self.load * 0.8, 100.0),
        });
        r.swap_used_mb = Some(0);
        r.swap_total_mb = Some(2048);
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 250_000_000_000,
            used_bytes: self.disk_used,
            // 5 % reserved for root, as ext4 keeps by default.
            available_bytes: Some(237_500_000_000u64.saturating_sub(self.disk_used)),
        }]);
        r.disk_io = Some(vec![DiskIo {
            device: "nvme0n1".into(),
            read_bytes_per_sec: read_rate,
            write_bytes_per_sec: write_rate,
        }]);
        r.networks = Some(vec![NetworkInterface {
            interface: "eth0".into(),
            rx_bytes_per_sec: Some(rx_rate),
            tx_bytes_per_sec: Some(tx_rate),
            rx_bytes_total: self.rx_total,
            tx_bytes_total: self.tx_total,
            rx_errors: 0,
            tx_errors: 0,
        }]);
        r.temperatures = Some(vec![Temperature {
            label: "coretemp Package id 0".into(),
            celsius: round(self.celsius, 100.0),
        }]);
        r.uptime_seconds = Some(self.uptime_secs as u64);
        r.boot_time = Some(OffsetDateTime::UNIX_EPOCH);
        r.process_count = Some(u64::from(self.processes));
        r.top_processes = Some(self.top.clone());
        r
    }

    /// A new top ten of the 30 processes: five by CPU, five by memory; CPU
    /// shares jump from scan to scan, memory drifts.
    fn rescan_processes(&mut self) {
        let mut pool = std::mem::take(&mut self.pool);
        for p in &mut pool {
            p.cpu_percent = round(self.rng.f64() * self.rng.f64() * 50.0, 100.0);
            let drift = 4096 * self.rng.i64(-256..=256);
            p.rss_bytes = (p.rss_bytes as i64 + drift).max(4096) as u64;
        }
        let mut ranked = pool.clone();
        ranked.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(a.pid.cmp(&b.pid))
        });
        let mut top: Vec<ProcessInfo> = ranked.drain(..5).collect();
        ranked.sort_by(|a, b| b.rss_bytes.cmp(&a.rss_bytes).then(a.pid.cmp(&b.pid)));
        top.extend(ranked.into_iter().take(5));
        self.top = top;
        self.pool = pool;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_780_000_000 + secs).unwrap()
    }

    #[test]
    fn full_reports_are_valid_and_move_over_time() {
        let mut host = SimulatedHost::new("lg-0", 7);
        let reports: Vec<Report> = (0..20).map(|k| host.next(at(5 * k), 5.0)).collect();
        for r in &reports {
            r.validate(r.last_seen)
                .unwrap_or_else(|e| panic!("{e}: {r:?}"));
            assert_eq!(r.top_processes.as_ref().map(Vec::len), Some(10));
            assert!(r.temperatures.is_some() && r.disks.is_some());
            assert!(r.agent_instance.is_some());
        }
        let rx = |r: &Report| r.networks.as_ref().unwrap()[0].rx_bytes_total;
        assert!(reports.windows(2).all(|w| rx(&w[1]) >= rx(&w[0])));
        assert!(rx(&reports[19]) > rx(&reports[0]));
        let cpus: std::collections::BTreeSet<u64> =
            reports.iter().map(|r| r.cpu_usage.to_bits()).collect();
        assert!(cpus.len() > 5, "CPU barely moves: {cpus:?}");
        // Same id and seed, same reports.
        let mut again = SimulatedHost::new("lg-0", 7);
        assert_eq!(again.next(at(0), 5.0), reports[0]);
    }

    #[test]
    fn small_reports_carry_only_the_original_fields() {
        let mut host = SimulatedHost::new("lg-1", 7).small();
        let r = host.next(at(0), 5.0);
        r.validate(r.last_seen).unwrap();
        assert!(r.ram_total_mb > 0 && !r.os_info.is_empty());
        let json = serde_json::to_value(&r).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "cpu_usage",
                "device_id",
                "last_seen",
                "os_info",
                "ram_total_mb",
                "ram_used_mb"
            ]
        );
    }
}
