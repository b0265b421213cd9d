//! A [`Report`] as Prometheus metrics, in the text exposition format 0.0.4:
//! the one place that names them, shared by the server's `GET /metrics` and
//! the agent's `--metrics-listen`.
//!
//! Every sample carries `device_id`; units are in the names. The families,
//! in the order they are written, are [`DEVICE_FAMILIES`]. The format asks
//! that the samples of one family stand together, so a fleet is written
//! family by family ([`write_devices`]) from each device's samples cut by
//! family ([`DeviceSamples`]), which a reader of many devices can keep and
//! reuse while a device's report does not change.
//!
//! ```
//! use tailmon_core::{OffsetDateTime, Report, exposition};
//!
//! let mut report = Report::new("web-1", OffsetDateTime::UNIX_EPOCH);
//! report.cpu_usage = 12.5;
//! let mut text = String::new();
//! exposition::write_report(&mut text, &report);
//! assert!(text.contains("# TYPE tailmon_cpu_usage_percent gauge\n"));
//! assert!(text.contains("tailmon_cpu_usage_percent{device_id=\"web-1\"} 12.5\n"));
//! ```

use std::fmt::Write as _;

use crate::Report;

/// The `Content-Type` of the text exposition format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as its `# TYPE` line says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A count that only goes up (its name ends in `_total`).
    Counter,
    /// Observations counted into buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// The word of the `# TYPE` line.
    pub fn word(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Counter => "counter",
            Self::Histogram => "histogram",
        }
    }
}

/// A metric family: its name, type and help text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its `# HELP` text, with the labels beyond `device_id`.
    pub help: &'static str,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Gauge,
        help,
    }
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Kind::Counter,
        help,
    }
}

/// Every family a report gives, in the order they are written. Each sample
/// has the label `device_id`; the help text names the others.
pub const DEVICE_FAMILIES: &[Family] = &[
    gauge(
        "tailmon_cpu_usage_percent",
        "CPU usage of the whole device, 0 to 100.",
    ),
    gauge(
        "tailmon_cpu_core_usage_percent",
        "CPU usage of one logical core (label core), 0 to 100.",
    ),
    gauge(
        "tailmon_cpu_mode_percent",
        "Share of CPU time by mode (label mode: user, system, iowait, steal), in percent of all cores.",
    ),
    gauge("tailmon_memory_used_bytes", "Memory in use."),
    gauge("tailmon_memory_total_bytes", "Memory installed."),
    gauge(
        "tailmon_memory_used_percent",
        "Memory in use, in percent of memory installed.",
    ),
    gauge("tailmon_swap_used_bytes", "Swap in use."),
    gauge("tailmon_swap_total_bytes", "Swap configured."),
    gauge("tailmon_load1", "Load average over 1 minute."),
    gauge("tailmon_load5", "Load average over 5 minutes."),
    gauge("tailmon_load15", "Load average over 15 minutes."),
    gauge(
        "tailmon_disk_used_bytes",
        "Bytes in use on a filesystem (labels mount, fs_type), as df counts Used.",
    ),
    gauge(
        "tailmon_disk_available_bytes",
        "Bytes an unprivileged user may still write on a filesystem (labels mount, fs_type), as df counts Avail.",
    ),
    gauge(
        "tailmon_disk_total_bytes",
        "Size of a filesystem (labels mount, fs_type).",
    ),
    gauge(
        "tailmon_disk_used_percent",
        "How full a filesystem is (labels mount, fs_type), as df shows it.",
    ),
    gauge(
        "tailmon_disk_read_bytes_per_second",
        "Bytes read per second from a block device (label device) since the previous sample.",
    ),
    gauge(
        "tailmon_disk_write_bytes_per_second",
        "Bytes written per second to a block device (label device) since the previous sample.",
    ),
    gauge(
        "tailmon_network_receive_bytes_per_second",
        "Bytes received per second on an interface (label interface) since the previous sample.",
    ),
    gauge(
        "tailmon_network_transmit_bytes_per_second",
        "Bytes sent per second on an interface (label interface) since the previous sample.",
    ),
    counter(
        "tailmon_network_receive_bytes_total",
        "Bytes received on an interface (label interface) since it came up.",
    ),
    counter(
        "tailmon_network_transmit_bytes_total",
        "Bytes sent on an interface (label interface) since it came up.",
    ),
    counter(
        "tailmon_network_receive_errors_total",
        "Receive errors on an interface (label interface) since it came up.",
    ),
    counter(
        "tailmon_network_transmit_errors_total",
        "Send errors on an interface (label interface) since it came up.",
    ),
    gauge(
        "tailmon_temperature_celsius",
        "Reading of a temperature sensor (label sensor).",
    ),
    gauge("tailmon_uptime_seconds", "Seconds since the device booted."),
    gauge(
        "tailmon_boot_time_seconds",
        "When the device booted, in Unix seconds.",
    ),
    gauge("tailmon_processes", "Processes running."),
    gauge(
        "tailmon_custom",
        "A custom metric of the agent's plugins or collectors (label name).",
    ),
    gauge(
        "tailmon_last_seen_timestamp_seconds",
        "When the agent took the latest report, by its clock, in Unix seconds.",
    ),
];

/// Bytes in a MiB, the unit reports count memory in.
const MIB: u64 = 1024 * 1024;

/// Writes a family's `# HELP` and `# TYPE` lines.
pub fn write_header(out: &mut String, family: &Family) {
    out.push_str("# HELP ");
    out.push_str(family.name);
    out.push(' ');
    for c in family.help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(family.name);
    out.push(' ');
    out.push_str(family.kind.word());
    out.push('\n');
}

/// Writes one sample line: `name{labels} value`. Label values are escaped
/// (`\\`, `\"`, `\n`); names must be valid already.
pub fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    write_name_and_labels(out, name, labels);
    write_value(out, value);
    out.push('\n');
}

/// [`write_sample`] of a whole number, written exactly.
pub fn write_sample_u64(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    write_name_and_labels(out, name, labels);
    let _ = write!(out, "{value}");
    out.push('\n');
}

fn write_name_and_labels(out: &mut String, name: &str, labels: &[(&str, &str)]) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, value);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
}

/// Appends `value` escaped for a label value: `\` `"` and line feeds.
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a sample value as the format spells it (`NaN`, `+Inf`, `-Inf`).
pub fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// A sample's value: whole numbers are kept apart so that the text format
/// writes them exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleValue {
    /// A value with a fraction (or a percentage).
    Float(f64),
    /// A whole number (bytes, counts, seconds).
    Whole(u64),
}

impl SampleValue {
    /// The value as a float (exact for whole numbers below 2^53).
    pub fn as_f64(self) -> f64 {
        match self {
            Self::Float(value) => value,
            Self::Whole(value) => value as f64,
        }
    }
}

/// One sample of a report: its family, its labels beyond `device_id` and
/// its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    /// Its index in [`DEVICE_FAMILIES`].
    pub family: usize,
    /// Its labels beyond `device_id` (`core`, `mount`, …), in order.
    pub labels: &'a [(&'a str, &'a str)],
    /// Its value.
    pub value: SampleValue,
}

impl Sample<'_> {
    /// The metric name: that of its family.
    pub fn name(&self) -> &'static str {
        DEVICE_FAMILIES[self.family].name
    }
}

/// Every sample of `report`, family by family in the order of
/// [`DEVICE_FAMILIES`]: the one enumeration the text format and the
/// server's remote store both write.
///
/// ```
/// use tailmon_core::{OffsetDateTime, Report, exposition};
///
/// let mut names = Vec::new();
/// exposition::for_each_sample(&Report::new("a", OffsetDateTime::UNIX_EPOCH), |sample| {
///     names.push(sample.name());
/// });
/// assert_eq!(names.first(), Some(&"tailmon_cpu_usage_percent"));
/// assert_eq!(names.last(), Some(&"tailmon_last_seen_timestamp_seconds"));
/// ```
pub fn for_each_sample(report: &Report, each: impl FnMut(Sample<'_>)) {
    let mut samples = Enumerator { family: 0, each };
    samples.fill(report);
}

/// One device's samples, cut by family of [`DEVICE_FAMILIES`]: made once
/// per report, copied into every exposition of the fleet until the device
/// sends another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceSamples {
    text: String,
    /// Where each family's samples end in `text`.
    ends: Vec<usize>,
}

impl DeviceSamples {
    /// The samples of `report`.
    pub fn new(report: &Report) -> Self {
        let mut text = String::with_capacity(2048);
        let mut ends = Vec::with_capacity(DEVICE_FAMILIES.len());
        for_each_sample(report, |sample| {
            while ends.len() < sample.family {
                ends.push(text.len());
            }
            let mut labels = Vec::with_capacity(1 + sample.labels.len());
            labels.push(("device_id", report.device_id.as_str()));
            labels.extend_from_slice(sample.labels);
            match sample.value {
                SampleValue::Float(value) => write_sample(&mut text, sample.name(), &labels, value),
                SampleValue::Whole(value) => {
                    write_sample_u64(&mut text, sample.name(), &labels, value);
                }
            }
        });
        while ends.len() < DEVICE_FAMILIES.len() {
            ends.push(text.len());
        }
        DeviceSamples { text, ends }
    }

    /// The sample lines of family `index` of [`DEVICE_FAMILIES`] (empty
    /// when the report has none).
    pub fn family(&self, index: usize) -> &str {
        let start = match index {
            0 => 0,
            i => self.ends.get(i - 1).copied().unwrap_or(self.text.len()),
        };
        let end = self.ends.get(index).copied().unwrap_or(self.text.len());
        self.text.get(start..end).unwrap_or_default()
    }

    /// The length of all its lines, in bytes.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// Whether it holds no sample at all.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }
}

/// Walks a report family by family in table order, handing each sample on.
struct Enumerator<F> {
    /// The family the next samples belong to.
    family: usize,
    each: F,
}

impl<F: FnMut(Sample<'_>)> Enumerator<F> {
    /// Ends the current family; the next samples belong to the next one.
    fn next(&mut self) {
        self.family += 1;
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        (self.each)(Sample {
            family: self.family,
            labels,
            value: SampleValue::Float(value),
        });
    }

    fn sample_u64(&mut self, labels: &[(&str, &str)], value: u64) {
        (self.each)(Sample {
            family: self.family,
            labels,
            value: SampleValue::Whole(value),
        });
    }

    /// One family of one value, if present.
    fn single(&mut self, value: Option<f64>) {
        if let Some(value) = value {
            self.sample(&[], value);
        }
        self.next();
    }

    fn single_u64(&mut self, value: Option<u64>) {
        if let Some(value) = value {
            self.sample_u64(&[], value);
        }
        self.next();
    }

    fn fill(&mut self, r: &Report) {
        self.single(Some(r.cpu_usage));
        let mut core = String::new();
        for (i, value) in r.cpu_per_core.iter().flatten().enumerate() {
            core.clear();
            let _ = write!(core, "{i}");
            self.sample(&[("core", &core)], *value);
        }
        self.next();
        if let Some(b) = &r.cpu_breakdown {
            for (mode, value) in [
                ("user", b.user),
                ("system", b.system),
                ("iowait", b.iowait),
                ("steal", b.steal),
            ] {
                self.sample(&[("mode", mode)], value);
            }
        }
        self.next();
        self.single_u64(Some(r.ram_used_mb.saturating_mul(MIB)));
        self.single_u64(Some(r.ram_total_mb.saturating_mul(MIB)));
        self.single(r.ram_used_percent());
        self.single_u64(r.swap_used_mb.map(|mb| mb.saturating_mul(MIB)));
        self.single_u64(r.swap_total_mb.map(|mb| mb.saturating_mul(MIB)));
        self.single(r.load_avg.map(|l| l.one));
        self.single(r.load_avg.map(|l| l.five));
        self.single(r.load_avg.map(|l| l.fifteen));
        let disks = r.disks.as_deref().unwrap_or_default();
        for part in 0..4 {
            for d in disks {
                let labels = [
                    ("mount", d.mount_point.as_str()),
                    ("fs_type", d.fs_type.as_str()),
                ];
                match part {
                    0 => self.sample_u64(&labels, d.used_bytes),
                    1 => {
                        if let Some(available) = d.available_bytes {
                            self.sample_u64(&labels, available);
                        }
                    }
                    2 => self.sample_u64(&labels, d.total_bytes),
                    _ => {
                        if let Some(percent) = d.used_percent() {
                            self.sample(&labels, percent);
                        }
                    }
                }
            }
            self.next();
        }
        let io = r.disk_io.as_deref().unwrap_or_default();
        for d in io {
            self.sample(&[("device", &d.device)], d.read_bytes_per_sec);
        }
        self.next();
        for d in io {
            self.sample(&[("device", &d.device)], d.write_bytes_per_sec);
        }
        self.next();
        let nets = r.networks.as_deref().unwrap_or_default();
        for n in nets {
            if let Some(rate) = n.rx_bytes_per_sec {
                self.sample(&[("interface", &n.interface)], rate);
            }
        }
        self.next();
        for n in nets {
            if let Some(rate) = n.tx_bytes_per_sec {
                self.sample(&[("interface", &n.interface)], rate);
            }
        }
        self.next();
        for part in 0..4 {
            for n in nets {
                let value = match part {
                    0 => n.rx_bytes_total,
                    1 => n.tx_bytes_total,
                    2 => n.rx_errors,
                    _ => n.tx_errors,
                };
                self.sample_u64(&[("interface", &n.interface)], value);
            }
            self.next();
        }
        for t in r.temperatures.iter().flatten() {
            self.sample(&[("sensor", &t.label)], t.celsius);
        }
        self.next();
        self.single_u64(r.uptime_seconds);
        self.single(r.boot_time.map(unix_seconds));
        self.single_u64(r.process_count);
        for (name, value) in r.custom.iter().flatten() {
            self.sample(&[("name", name)], *value);
        }
        self.next();
        self.single(Some(unix_seconds(r.last_seen)));
        debug_assert_eq!(self.family, DEVICE_FAMILIES.len());
    }
}

/// Unix seconds of `at`, with its fraction.
fn unix_seconds(at: time::OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

/// Writes the samples of many devices, family by family: each family's
/// `# HELP` and `# TYPE` once (only when some device has a sample of it),
/// then its samples, device after device in the order given.
pub fn write_devices<'a, I>(out: &mut String, devices: I)
where
    I: IntoIterator<Item = &'a DeviceSamples>,
    I::IntoIter: Clone,
{
    let devices = devices.into_iter();
    for (index, family) in DEVICE_FAMILIES.iter().enumerate() {
        let mut header = false;
        for device in devices.clone() {
            let lines = device.family(index);
            if lines.is_empty() {
                continue;
            }
            if !header {
                write_header(out, family);
                header = true;
            }
            out.push_str(lines);
        }
    }
}

/// Writes one report's samples, with their families' headers.
pub fn write_report(out: &mut String, report: &Report) {
    write_devices(out, [&DeviceSamples::new(report)]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuBreakdown, Disk, LoadAvg, NetworkInterface, Temperature};
    use time::OffsetDateTime;

    fn rich(id: &str) -> Report {
        let mut r = Report::new(
            id,
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        );
        r.cpu_usage = 42.5;
        r.ram_used_mb = 1024;
        r.ram_total_mb = 4096;
        r.cpu_per_core = Some(vec![10.0, 20.0]);
        r.cpu_breakdown = Some(CpuBreakdown {
            user: 1.0,
            system: 2.0,
            iowait: 3.0,
            steal: 0.0,
        });
        r.load_avg = Some(LoadAvg {
            one: 0.5,
            five: 0.25,
            fifteen: 0.125,
        });
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 1000,
            used_bytes: 220,
            available_bytes: Some(780),
        }]);
        r.networks = Some(vec![NetworkInterface {
            interface: "eth0".into(),
            rx_bytes_per_sec: Some(5.5),
            tx_bytes_per_sec: None,
            rx_bytes_total: 123,
            tx_bytes_total: 456,
            rx_errors: 0,
            tx_errors: 1,
        }]);
        r.temperatures = Some(vec![Temperature {
            label: "coretemp \"Package\" id 0".into(),
            celsius: 55.0,
        }]);
        r.uptime_seconds = Some(3600);
        r.custom = Some([("queue_depth".to_owned(), 7.0)].into());
        r
    }

    #[test]
    fn a_rich_report_gives_exact_lines() {
        let mut text = String::new();
        write_report(&mut text, &rich("a"));
        for line in [
            "tailmon_cpu_usage_percent{device_id=\"a\"} 42.5",
            "tailmon_cpu_core_usage_percent{device_id=\"a\",core=\"1\"} 20",
            "tailmon_cpu_mode_percent{device_id=\"a\",mode=\"iowait\"} 3",
            "tailmon_memory_used_bytes{device_id=\"a\"} 1073741824",
            "tailmon_memory_used_percent{device_id=\"a\"} 25",
            "tailmon_load15{device_id=\"a\"} 0.125",
            "tailmon_disk_used_percent{device_id=\"a\",mount=\"/\",fs_type=\"ext4\"} 22",
            "tailmon_disk_available_bytes{device_id=\"a\",mount=\"/\",fs_type=\"ext4\"} 780",
            "tailmon_network_receive_bytes_per_second{device_id=\"a\",interface=\"eth0\"} 5.5",
            "tailmon_network_transmit_errors_total{device_id=\"a\",interface=\"eth0\"} 1",
            "tailmon_temperature_celsius{device_id=\"a\",sensor=\"coretemp \\\"Package\\\" id 0\"} 55",
            "tailmon_uptime_seconds{device_id=\"a\"} 3600",
            "tailmon_custom{device_id=\"a\",name=\"queue_depth\"} 7",
            "tailmon_last_seen_timestamp_seconds{device_id=\"a\"} 1700000000",
            "# TYPE tailmon_network_receive_bytes_total counter",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("tailmon_network_transmit_bytes_per_second{"),
            "absent rate"
        );
        assert!(
            !text.contains("tailmon_swap_used_bytes"),
            "no header without samples"
        );
    }

    #[test]
    fn a_fleet_is_written_family_by_family() {
        let a = DeviceSamples::new(&rich("a"));
        let b = DeviceSamples::new(&Report::new("b", OffsetDateTime::UNIX_EPOCH));
        let mut text = String::new();
        write_devices(&mut text, [&a, &b]);
        let names: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap())
            .collect();
        let mut seen: Vec<&str> = Vec::new();
        for name in names {
            if seen.last() != Some(&name) {
                assert!(!seen.contains(&name), "{name} is split in\n{text}");
                seen.push(name);
            }
        }
        assert_eq!(text.matches("# TYPE tailmon_cpu_usage_percent ").count(), 1);
        assert!(text.contains("tailmon_cpu_usage_percent{device_id=\"b\"} 0\n"));
    }

    #[test]
    fn odd_values_are_spelled_as_the_format_asks() {
        let mut out = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5] {
            write_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf -Inf -0.5 ");
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd");
        assert_eq!(out, "a\\\\b\\\"c\\nd");
    }
}
