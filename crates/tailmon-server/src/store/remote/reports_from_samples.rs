//! Reports given back from the samples the remote store wrote
//! ([`report_series`](super::report_series)): the samples of one device
//! stamped with one time are one report.
//!
//! Lists come back sorted by their key (cores by number; disks by mount;
//! block devices, interfaces, sensors and custom metrics by name), derived
//! series (`tailmon_memory_used_percent`, `tailmon_disk_used_percent`) are
//! not read, times are kept to the millisecond, and `top_processes` is not
//! kept at all.

use std::collections::{BTreeMap, HashMap};

use tailmon_core::{
    CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, OffsetDateTime, Report, Temperature,
};

use super::prom_query::Series;
use super::report_series::{
    AGENT_INSTANCE_LABEL, DEVICE_INFO, DEVICE_LABEL, NAME_LABEL, OS_INFO_LABEL, RECEIVED_AT,
};

/// Bytes in a MiB, the unit reports count memory in.
const MIB: f64 = 1024.0 * 1024.0;

/// What the samples of one report said, gathered series by series.
#[derive(Debug, Default)]
struct Parts {
    /// Whether `tailmon_last_seen_timestamp_seconds` was among them: every
    /// report writes it, so a time without it is no whole report.
    last_seen: bool,
    cpu_usage: Option<f64>,
    cores: BTreeMap<u64, f64>,
    modes: [Option<f64>; 4],
    ram_used: Option<f64>,
    ram_total: Option<f64>,
    swap_used: Option<f64>,
    swap_total: Option<f64>,
    load: [Option<f64>; 3],
    /// By (mount, fs_type): used, available, total.
    disks: BTreeMap<(String, String), [Option<f64>; 3]>,
    /// By device: read, write.
    io: BTreeMap<String, [Option<f64>; 2]>,
    /// By interface: rx rate, tx rate, rx total, tx total, rx errors, tx errors.
    nets: BTreeMap<String, [Option<f64>; 6]>,
    temperatures: BTreeMap<String, f64>,
    uptime: Option<f64>,
    boot_time: Option<f64>,
    processes: Option<f64>,
    custom: BTreeMap<String, f64>,
    info: Option<(String, Option<String>)>,
    received_at: Option<f64>,
}

/// Whether the reader knows series `name`: every family of
/// `DEVICE_FAMILIES` and the store's own series (a test holds it to that).
#[cfg(test)]
fn knows(name: &str) -> bool {
    let mut parts = Parts::default();
    parts.add(name, &BTreeMap::new(), 1.0)
}

impl Parts {
    /// Takes in one sample of series `name` with `labels`; `false` for a
    /// name it does not know.
    fn add(&mut self, name: &str, labels: &BTreeMap<String, String>, value: f64) -> bool {
        let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
        match name {
            "tailmon_cpu_usage_percent" => self.cpu_usage = Some(value),
            "tailmon_cpu_core_usage_percent" => {
                if let Ok(core) = label("core").parse() {
                    self.cores.insert(core, value);
                }
            }
            "tailmon_cpu_mode_percent" => {
                let slot = match label("mode").as_str() {
                    "user" => 0,
                    "system" => 1,
                    "iowait" => 2,
                    "steal" => 3,
                    _ => return true,
                };
                self.modes[slot] = Some(value);
            }
            "tailmon_memory_used_bytes" => self.ram_used = Some(value),
            "tailmon_memory_total_bytes" => self.ram_total = Some(value),
            "tailmon_swap_used_bytes" => self.swap_used = Some(value),
            "tailmon_swap_total_bytes" => self.swap_total = Some(value),
            "tailmon_load1" => self.load[0] = Some(value),
            "tailmon_load5" => self.load[1] = Some(value),
            "tailmon_load15" => self.load[2] = Some(value),
            "tailmon_disk_used_bytes"
            | "tailmon_disk_available_bytes"
            | "tailmon_disk_total_bytes" => {
                let slot = match name {
                    "tailmon_disk_used_bytes" => 0,
                    "tailmon_disk_available_bytes" => 1,
                    _ => 2,
                };
                self.disks
                    .entry((label("mount"), label("fs_type")))
                    .or_default()[slot] = Some(value);
            }
            "tailmon_disk_read_bytes_per_second" | "tailmon_disk_write_bytes_per_second" => {
                let slot = usize::from(name == "tailmon_disk_write_bytes_per_second");
                self.io.entry(label("device")).or_default()[slot] = Some(value);
            }
            "tailmon_network_receive_bytes_per_second"
            | "tailmon_network_transmit_bytes_per_second"
            | "tailmon_network_receive_bytes_total"
            | "tailmon_network_transmit_bytes_total"
            | "tailmon_network_receive_errors_total"
            | "tailmon_network_transmit_errors_total" => {
                let slot = match name {
                    "tailmon_network_receive_bytes_per_second" => 0,
                    "tailmon_network_transmit_bytes_per_second" => 1,
                    "tailmon_network_receive_bytes_total" => 2,
                    "tailmon_network_transmit_bytes_total" => 3,
                    "tailmon_network_receive_errors_total" => 4,
                    _ => 5,
                };
                self.nets.entry(label("interface")).or_default()[slot] = Some(value);
            }
            "tailmon_temperature_celsius" => {
                self.temperatures.insert(label("sensor"), value);
            }
            "tailmon_uptime_seconds" => self.uptime = Some(value),
            "tailmon_boot_time_seconds" => self.boot_time = Some(value),
            "tailmon_processes" => self.processes = Some(value),
            "tailmon_custom" => {
                self.custom.insert(label("name"), value);
            }
            "tailmon_last_seen_timestamp_seconds" => self.last_seen = true,
            // Derived from the others: nothing to read back.
            "tailmon_memory_used_percent" | "tailmon_disk_used_percent" => {}
            DEVICE_INFO => {
                let instance = labels.get(AGENT_INSTANCE_LABEL).cloned();
                self.info = Some((label(OS_INFO_LABEL), instance));
            }
            RECEIVED_AT => self.received_at = Some(value),
            _ => return false,
        }
        true
    }

    /// The report of `device_id` at `last_seen`, if the samples make one.
    fn into_report(self, device_id: &str, last_seen: OffsetDateTime) -> Option<Report> {
        if !self.last_seen {
            return None;
        }
        let mut r = Report::new(device_id, last_seen);
        let (os_info, agent_instance) = self.info.unwrap_or_default();
        r.os_info = os_info;
        r.agent_instance = agent_instance;
        r.cpu_usage = self.cpu_usage.unwrap_or_default();
        r.ram_used_mb = self.ram_used.map(mib).unwrap_or_default();
        r.ram_total_mb = self.ram_total.map(mib).unwrap_or_default();
        r.received_at = self.received_at.and_then(at_millis);
        r.cpu_per_core = some_if_any(self.cores.into_values().collect());
        if let [Some(user), Some(system), Some(iowait), Some(steal)] = self.modes {
            r.cpu_breakdown = Some(CpuBreakdown {
                user,
                system,
                iowait,
                steal,
            });
        }
        if let [Some(one), Some(five), Some(fifteen)] = self.load {
            r.load_avg = Some(LoadAvg { one, five, fifteen });
        }
        r.swap_used_mb = self.swap_used.map(mib);
        r.swap_total_mb = self.swap_total.map(mib);
        r.disks = some_if_any(
            self.disks
                .into_iter()
                .map(|((mount_point, fs_type), [used, available, total])| Disk {
                    mount_point,
                    fs_type,
                    total_bytes: whole(total.unwrap_or_default()),
                    used_bytes: whole(used.unwrap_or_default()),
                    available_bytes: available.map(whole),
                })
                .collect(),
        );
        r.disk_io = some_if_any(
            self.io
                .into_iter()
                .map(|(device, [read, write])| DiskIo {
                    device,
                    read_bytes_per_sec: read.unwrap_or_default(),
                    write_bytes_per_sec: write.unwrap_or_default(),
                })
                .collect(),
        );
        r.networks = some_if_any(
            self.nets
                .into_iter()
                .map(
                    |(interface, [rx, tx, rx_total, tx_total, rx_err, tx_err])| NetworkInterface {
                        interface,
                        rx_bytes_per_sec: rx,
                        tx_bytes_per_sec: tx,
                        rx_bytes_total: whole(rx_total.unwrap_or_default()),
                        tx_bytes_total: whole(tx_total.unwrap_or_default()),
                        rx_errors: whole(rx_err.unwrap_or_default()),
                        tx_errors: whole(tx_err.unwrap_or_default()),
                    },
                )
                .collect(),
        );
        r.temperatures = some_if_any(
            self.temperatures
                .into_iter()
                .map(|(label, celsius)| Temperature { label, celsius })
                .collect(),
        );
        r.uptime_seconds = self.uptime.map(whole);
        r.boot_time = self.boot_time.and_then(at_millis);
        r.process_count = self.processes.map(whole);
        r.custom = (!self.custom.is_empty()).then_some(self.custom);
        Some(r)
    }
}

fn some_if_any<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn whole(value: f64) -> u64 {
    // Saturating: a negative or NaN value is 0.
    value.round() as u64
}

fn mib(bytes: f64) -> u64 {
    whole(bytes / MIB)
}

/// Unix seconds as a time, to the millisecond.
fn at_millis(seconds: f64) -> Option<OffsetDateTime> {
    let millis = (seconds * 1000.0).round();
    if !millis.is_finite() {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos(millis as i128 * 1_000_000).ok()
}

/// The reports the samples of `series` make, oldest first (by device id
/// for one time). Unknown series are skipped.
pub(crate) fn reports_from_samples(series: &[Series]) -> Vec<Report> {
    let mut by_time: BTreeMap<(i64, &str), Parts> = BTreeMap::new();
    for s in series {
        let (Some(name), Some(device)) = (s.labels.get(NAME_LABEL), s.labels.get(DEVICE_LABEL))
        else {
            continue;
        };
        for &(millis, value) in &s.samples {
            by_time
                .entry((millis, device.as_str()))
                .or_default()
                .add(name, &s.labels, value);
        }
    }
    by_time
        .into_iter()
        .filter_map(|((millis, device), parts)| {
            let last_seen =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).ok()?;
            parts.into_report(device, last_seen)
        })
        .collect()
}

/// The newest report of each device among `series`, by device id.
pub(crate) fn newest_by_device(series: &[Series]) -> HashMap<String, Report> {
    let mut newest: HashMap<String, Report> = HashMap::new();
    for report in reports_from_samples(series) {
        // Oldest first: a later one replaces an earlier.
        newest.insert(report.device_id.clone(), report);
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::remote::report_series::{STORE_ONLY, push_report_series};
    use tailmon_core::OrgId;
    use tailmon_core::exposition::DEVICE_FAMILIES;

    #[test]
    fn every_series_written_is_read() {
        for family in DEVICE_FAMILIES {
            assert!(knows(family.name), "{} is not read back", family.name);
        }
        for name in STORE_ONLY {
            assert!(knows(name), "{name} is not read back");
        }
        assert!(!knows("tailmon_something_else"));
    }

    #[test]
    fn a_report_comes_back_from_its_series() {
        let mut r = Report::new(
            "web-1",
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_250_000_000).unwrap(),
        );
        r.os_info = "Debian 12".into();
        r.agent_instance = Some("f00d-1".into());
        r.cpu_usage = 12.5;
        r.ram_used_mb = 1000;
        r.ram_total_mb = 4000;
        r.received_at = Some(r.last_seen + time::Duration::milliseconds(1500));
        r.cpu_per_core = Some(vec![1.0, 2.0, 3.5]);
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 1_000_000,
            used_bytes: 250_000,
            available_bytes: Some(700_000),
        }]);
        r.custom = Some([("queue.depth".to_owned(), 7.0)].into());
        let mut written = Vec::new();
        push_report_series(&mut written, &OrgId::default(), &r);
        let series: Vec<Series> = written
            .into_iter()
            .map(|ts| Series {
                labels: ts.labels.into_iter().map(|l| (l.name, l.value)).collect(),
                samples: ts
                    .samples
                    .into_iter()
                    .map(|s| (s.timestamp, s.value))
                    .collect(),
            })
            .collect();
        assert_eq!(reports_from_samples(&series), [r]);
    }
}
