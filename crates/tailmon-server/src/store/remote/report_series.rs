//! A report as the series the remote store writes: every sample `/metrics`
//! exposes (the one enumeration, [`exposition::for_each_sample`]), with the
//! labels `org` and `device_id`, plus the few series only the store needs
//! to give a report back ([`DEVICE_INFO`], [`RECEIVED_AT`]). Every sample
//! is stamped with the report's `last_seen`, in Unix milliseconds.

use tailmon_core::exposition::{self, DEVICE_FAMILIES};
use tailmon_core::{OffsetDateTime, OrgId, Report};

use super::write_request::{Label, Sample, TimeSeries};

/// The label holding the organisation's id.
pub(crate) const ORG_LABEL: &str = "org";
/// The label holding the device id, as `/metrics` names it.
pub(crate) const DEVICE_LABEL: &str = "device_id";
/// The metric name label.
pub(crate) const NAME_LABEL: &str = "__name__";
/// The info series: value 1, the report's text fields as labels
/// ([`OS_INFO_LABEL`], [`AGENT_INSTANCE_LABEL`]).
pub(crate) const DEVICE_INFO: &str = "tailmon_device_info";
/// The label of [`DEVICE_INFO`] holding `os_info`.
pub(crate) const OS_INFO_LABEL: &str = "os_info";
/// The label of [`DEVICE_INFO`] holding `agent_instance`.
pub(crate) const AGENT_INSTANCE_LABEL: &str = "agent_instance";
/// When the server received the report (`received_at`), in Unix seconds.
pub(crate) const RECEIVED_AT: &str = "tailmon_received_timestamp_seconds";
/// The series written beyond those of [`DEVICE_FAMILIES`].
#[cfg(test)]
pub(crate) const STORE_ONLY: &[&str] = &[DEVICE_INFO, RECEIVED_AT];

/// The PromQL matcher of every series the store writes.
pub(crate) const ALL_SERIES: &str = "__name__=~\"tailmon_.+\"";

/// `at` in Unix milliseconds (rounded down), as the series are stamped.
pub(crate) fn unix_millis(at: OffsetDateTime) -> i64 {
    let millis = at.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

/// Unix seconds of `at`, with its fraction.
pub(crate) fn unix_seconds(at: OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

/// Appends the series of `report` of `org` to `out`: one sample each.
pub(crate) fn push_report_series(out: &mut Vec<TimeSeries>, org: &OrgId, report: &Report) {
    let timestamp = unix_millis(report.last_seen);
    let mut push = |name: &str, extra: &[(&str, &str)], value: f64| {
        let mut labels = Vec::with_capacity(3 + extra.len());
        for (label, value) in [
            (NAME_LABEL, name),
            (ORG_LABEL, org.as_str()),
            (DEVICE_LABEL, report.device_id.as_str()),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            // An empty value is no label at all to the engines.
            if !value.is_empty() {
                labels.push(Label {
                    name: label.to_owned(),
                    value: value.to_owned(),
                });
            }
        }
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(TimeSeries {
            labels,
            samples: vec![Sample { value, timestamp }],
        });
    };
    exposition::for_each_sample(report, |sample| {
        push(
            DEVICE_FAMILIES[sample.family].name,
            sample.labels,
            sample.value.as_f64(),
        );
    });
    push(
        DEVICE_INFO,
        &[
            (OS_INFO_LABEL, report.os_info.as_str()),
            (
                AGENT_INSTANCE_LABEL,
                report.agent_instance.as_deref().unwrap_or_default(),
            ),
        ],
        1.0,
    );
    if let Some(received_at) = report.received_at {
        push(RECEIVED_AT, &[], unix_seconds(received_at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_named_labelled_sorted_and_stamped() {
        let mut report = Report::new(
            "web-1",
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap(),
        );
        report.os_info = "Debian 12".into();
        report.disks = Some(vec![tailmon_core::Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 10,
            used_bytes: 5,
            available_bytes: None,
        }]);
        let mut series = Vec::new();
        push_report_series(&mut series, &OrgId::new("acme").unwrap(), &report);
        for s in &series {
            let names: Vec<&str> = s.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort_unstable();
            assert_eq!(names, sorted);
            assert!(names.contains(&"__name__") && names.contains(&"org"));
            assert_eq!(s.samples[0].timestamp, 1_700_000_000_123);
        }
        let disk = series
            .iter()
            .find(|s| s.labels[0].value == "tailmon_disk_used_bytes")
            .unwrap();
        let labels: Vec<(&str, &str)> = disk
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("__name__", "tailmon_disk_used_bytes"),
                ("device_id", "web-1"),
                ("fs_type", "ext4"),
                ("mount", "/"),
                ("org", "acme"),
            ]
        );
        let info = series
            .iter()
            .find(|s| s.labels[0].value == DEVICE_INFO)
            .unwrap();
        // No agent_instance: no empty label.
        assert_eq!(info.labels.len(), 4);
    }

    /// The figure docs/remote-store.md gives.
    #[test]
    fn a_typical_host_is_46_samples() {
        use tailmon_core::{CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, Temperature};
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut r = Report::new("web-1", at);
        r.ram_total_mb = 8;
        r.received_at = Some(at);
        r.cpu_per_core = Some(vec![1.0; 4]);
        r.cpu_breakdown = Some(CpuBreakdown {
            user: 1.0,
            system: 1.0,
            iowait: 1.0,
            steal: 1.0,
        });
        r.load_avg = Some(LoadAvg {
            one: 1.0,
            five: 1.0,
            fifteen: 1.0,
        });
        r.swap_used_mb = Some(1);
        r.swap_total_mb = Some(2);
        let disk = |mount: &str| Disk {
            mount_point: mount.into(),
            fs_type: "ext4".into(),
            total_bytes: 10,
            used_bytes: 5,
            available_bytes: Some(5),
        };
        r.disks = Some(vec![disk("/"), disk("/home")]);
        r.disk_io = Some(vec![DiskIo {
            device: "sda".into(),
            read_bytes_per_sec: 1.0,
            write_bytes_per_sec: 1.0,
        }]);
        let net = |name: &str| NetworkInterface {
            interface: name.into(),
            rx_bytes_per_sec: Some(1.0),
            tx_bytes_per_sec: Some(1.0),
            rx_bytes_total: 1,
            tx_bytes_total: 1,
            rx_errors: 0,
            tx_errors: 0,
        };
        r.networks = Some(vec![net("eth0"), net("eth1")]);
        r.temperatures = Some(vec![Temperature {
            label: "cpu".into(),
            celsius: 50.0,
        }]);
        r.uptime_seconds = Some(1);
        r.boot_time = Some(at);
        r.process_count = Some(1);
        let mut series = Vec::new();
        push_report_series(&mut series, &OrgId::default(), &r);
        assert_eq!(series.len(), 46);
    }
}
