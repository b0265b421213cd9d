//! Metric names: every numeric field of a [`Report`] as a named series, the
//! unit of history queries and exports to time-series engines.
//!
//! A name is a base and, for fields of a list or map, a key after a colon:
//!
//! | name | value |
//! |---|---|
//! | `cpu_usage`, `ram_used_mb`, `ram_total_mb`, `ram_used_percent` | the original fields, and RAM used in percent (derived percentages are rounded to hundredths) |
//! | `cpu_core:N` | `cpu_per_core[N]` |
//! | `cpu_user`, `cpu_system`, `cpu_iowait`, `cpu_steal` | `cpu_breakdown` |
//! | `load_one`, `load_five`, `load_fifteen` | `load_avg` |
//! | `swap_used_mb`, `swap_total_mb` | swap |
//! | `disk_used_percent:MOUNT`, `disk_used_bytes:MOUNT`, `disk_available_bytes:MOUNT`, `disk_total_bytes:MOUNT` | each of `disks`, e.g. `disk_used_percent:/`; the percentage is [`Disk::used_percent`](crate::Disk::used_percent), as `df` shows it; available bytes only from agents that send them |
//! | `disk_read_bytes_per_sec:DEVICE`, `disk_write_bytes_per_sec:DEVICE` | each of `disk_io` |
//! | `net_rx_bytes_per_sec:IF`, `net_tx_bytes_per_sec:IF`, `net_rx_errors:IF`, `net_tx_errors:IF` | each of `networks` |
//! | `temperature:LABEL` | each of `temperatures` |
//! | `uptime_seconds`, `process_count` | system |
//! | `custom:NAME` | each of `custom` |

use crate::Report;

/// Calls `each(name, value)` for every numeric value `report` holds, in a
/// fixed order; absent fields and rates yield nothing.
///
/// ```
/// use tailmon_core::{OffsetDateTime, Report, metric};
///
/// let mut report = Report::new("a", OffsetDateTime::UNIX_EPOCH);
/// report.cpu_usage = 12.5;
/// report.ram_used_mb = 1;
/// report.ram_total_mb = 4;
/// let mut seen = Vec::new();
/// metric::for_each(&report, |name, value| seen.push((name.to_owned(), value)));
/// assert_eq!(seen[0], ("cpu_usage".to_owned(), 12.5));
/// assert!(seen.contains(&("ram_used_percent".to_owned(), 25.0)));
/// ```
pub fn for_each(report: &Report, mut each: impl FnMut(&str, f64)) {
    let mut keyed = String::new();
    let mut with_key = |base: &str, key: &str, value: f64, each: &mut dyn FnMut(&str, f64)| {
        keyed.clear();
        keyed.push_str(base);
        keyed.push(':');
        keyed.push_str(key);
        each(&keyed, value);
    };
    each("cpu_usage", report.cpu_usage);
    each("ram_used_mb", report.ram_used_mb as f64);
    each("ram_total_mb", report.ram_total_mb as f64);
    if let Some(percent) = report.ram_used_percent() {
        each("ram_used_percent", hundredths(percent));
    }
    if let Some(cores) = &report.cpu_per_core {
        for (i, value) in cores.iter().enumerate() {
            with_key("cpu_core", &i.to_string(), *value, &mut each);
        }
    }
    if let Some(b) = &report.cpu_breakdown {
        each("cpu_user", b.user);
        each("cpu_system", b.system);
        each("cpu_iowait", b.iowait);
        each("cpu_steal", b.steal);
    }
    if let Some(l) = &report.load_avg {
        each("load_one", l.one);
        each("load_five", l.five);
        each("load_fifteen", l.fifteen);
    }
    if let Some(used) = report.swap_used_mb {
        each("swap_used_mb", used as f64);
    }
    if let Some(total) = report.swap_total_mb {
        each("swap_total_mb", total as f64);
    }
    for d in report.disks.iter().flatten() {
        if let Some(percent) = d.used_percent() {
            with_key(
                "disk_used_percent",
                &d.mount_point,
                hundredths(percent),
                &mut each,
            );
        }
        with_key(
            "disk_used_bytes",
            &d.mount_point,
            d.used_bytes as f64,
            &mut each,
        );
        if let Some(available) = d.available_bytes {
            with_key(
                "disk_available_bytes",
                &d.mount_point,
                available as f64,
                &mut each,
            );
        }
        with_key(
            "disk_total_bytes",
            &d.mount_point,
            d.total_bytes as f64,
            &mut each,
        );
    }
    for d in report.disk_io.iter().flatten() {
        with_key(
            "disk_read_bytes_per_sec",
            &d.device,
            d.read_bytes_per_sec,
            &mut each,
        );
        with_key(
            "disk_write_bytes_per_sec",
            &d.device,
            d.write_bytes_per_sec,
            &mut each,
        );
    }
    for n in report.networks.iter().flatten() {
        if let Some(rate) = n.rx_bytes_per_sec {
            with_key("net_rx_bytes_per_sec", &n.interface, rate, &mut each);
        }
        if let Some(rate) = n.tx_bytes_per_sec {
            with_key("net_tx_bytes_per_sec", &n.interface, rate, &mut each);
        }
        with_key("net_rx_errors", &n.interface, n.rx_errors as f64, &mut each);
        with_key("net_tx_errors", &n.interface, n.tx_errors as f64, &mut each);
    }
    for t in report.temperatures.iter().flatten() {
        with_key("temperature", &t.label, t.celsius, &mut each);
    }
    if let Some(uptime) = report.uptime_seconds {
        each("uptime_seconds", uptime as f64);
    }
    if let Some(count) = report.process_count {
        each("process_count", count as f64);
    }
    for (name, value) in report.custom.iter().flatten() {
        with_key("custom", name, *value, &mut each);
    }
}

/// The value of metric `name` in `report`, if it holds one.
///
/// ```
/// use tailmon_core::{OffsetDateTime, Report, metric};
///
/// let mut report = Report::new("a", OffsetDateTime::UNIX_EPOCH);
/// report.cpu_usage = 40.0;
/// assert_eq!(metric::value(&report, "cpu_usage"), Some(40.0));
/// assert_eq!(metric::value(&report, "disk_used_percent:/"), None);
/// ```
pub fn value(report: &Report, name: &str) -> Option<f64> {
    let mut found = None;
    for_each(report, |n, v| {
        if found.is_none() && n == name {
            found = Some(v);
        }
    });
    found
}

/// A derived percentage rounded to hundredths, as the agent rounds those it
/// measures: the digits beyond are noise, and decimal values keep stored
/// history small.
fn hundredths(percent: f64) -> f64 {
    (percent * 100.0).round() / 100.0
}

/// Whether `name` has the shape of a metric name: a known base, with a
/// non-empty key exactly where the base takes one.
pub fn is_known(name: &str) -> bool {
    const PLAIN: &[&str] = &[
        "cpu_usage",
        "ram_used_mb",
        "ram_total_mb",
        "ram_used_percent",
        "cpu_user",
        "cpu_system",
        "cpu_iowait",
        "cpu_steal",
        "load_one",
        "load_five",
        "load_fifteen",
        "swap_used_mb",
        "swap_total_mb",
        "uptime_seconds",
        "process_count",
    ];
    const KEYED: &[&str] = &[
        "cpu_core",
        "disk_used_percent",
        "disk_used_bytes",
        "disk_available_bytes",
        "disk_total_bytes",
        "disk_read_bytes_per_sec",
        "disk_write_bytes_per_sec",
        "net_rx_bytes_per_sec",
        "net_tx_bytes_per_sec",
        "net_rx_errors",
        "net_tx_errors",
        "temperature",
        "custom",
    ];
    match name.split_once(':') {
        Some((base, key)) => !key.is_empty() && KEYED.contains(&base),
        None => PLAIN.contains(&name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Disk, NetworkInterface};
    use time::OffsetDateTime;

    #[test]
    fn names_of_a_rich_report_are_all_known() {
        let mut r = Report::new("a", OffsetDateTime::UNIX_EPOCH);
        r.ram_total_mb = 10;
        r.cpu_per_core = Some(vec![1.0, 2.0]);
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 4,
            used_bytes: 1,
            available_bytes: None,
        }]);
        r.networks = Some(vec![NetworkInterface {
            interface: "eth0".into(),
            rx_bytes_per_sec: None,
            tx_bytes_per_sec: Some(5.0),
            rx_bytes_total: 0,
            tx_bytes_total: 0,
            rx_errors: 1,
            tx_errors: 2,
        }]);
        r.custom = Some([("q".to_owned(), 7.0)].into());
        let mut names = Vec::new();
        for_each(&r, |n, _| names.push(n.to_owned()));
        assert!(names.iter().all(|n| is_known(n)), "{names:?}");
        assert_eq!(value(&r, "cpu_core:1"), Some(2.0));
        assert_eq!(value(&r, "disk_used_percent:/"), Some(25.0));
        assert_eq!(
            value(&r, "net_rx_bytes_per_sec:eth0"),
            None,
            "absent rates yield nothing"
        );
        assert_eq!(value(&r, "net_tx_bytes_per_sec:eth0"), Some(5.0));
        assert_eq!(value(&r, "custom:q"), Some(7.0));
        assert!(!is_known("cpu_core") && !is_known("disk_used_percent:") && !is_known("bogus"));
        assert_eq!(value(&r, "disk_available_bytes:/"), None, "not sent");
    }

    #[test]
    fn disk_percent_is_as_df_shows_it() {
        // The issue's disk: df says 22 % full; counting root's reserved
        // blocks as used made it 70 %.
        let mut r = Report::new("a", OffsetDateTime::UNIX_EPOCH);
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 1000,
            used_bytes: 220,
            available_bytes: Some(780),
        }]);
        assert_eq!(value(&r, "disk_used_percent:/"), Some(22.0));
        assert_eq!(value(&r, "disk_available_bytes:/"), Some(780.0));
        assert!(is_known("disk_available_bytes:/"));
        let mut names = Vec::new();
        for_each(&r, |n, _| {
            if n.starts_with("disk_") {
                names.push(n.to_owned());
            }
        });
        assert_eq!(
            names,
            [
                "disk_used_percent:/",
                "disk_used_bytes:/",
                "disk_available_bytes:/",
                "disk_total_bytes:/"
            ]
            .map(str::to_owned)
        );
    }
}
