//! Validation of the optional report parts: finite numbers, sane ranges,
//! bounded lists and texts.

use time::OffsetDateTime;

use crate::validation::{
    MAX_CORES, MAX_CUSTOM_METRICS, MAX_CUSTOM_VALUE, MAX_DISK_IO, MAX_DISKS, MAX_FUTURE_SKEW,
    MAX_INTERFACES, MAX_LABEL_LEN, MAX_MOUNT_POINT_LEN, MAX_SENSORS, MAX_TOP_PROCESSES,
};
use crate::{Report, ValidationError, validate_device_id};

/// Lowest temperature accepted: absolute zero.
const MIN_CELSIUS: f64 = -273.15;
/// Highest temperature accepted.
const MAX_CELSIUS: f64 = 1000.0;
/// Largest rate accepted, in bytes per second (1 PB/s: far beyond any link).
const MAX_RATE: f64 = 1e15;

type Result = std::result::Result<(), ValidationError>;

pub(crate) fn validate_parts(report: &Report, now: OffsetDateTime) -> Result {
    if let Some(cores) = &report.cpu_per_core {
        count("cpu_per_core", cores.len(), MAX_CORES)?;
        for (i, &value) in cores.iter().enumerate() {
            in_range(|| format!("cpu_per_core[{i}]"), value, 0.0, 100.0)?;
        }
    }
    if let Some(b) = &report.cpu_breakdown {
        for (name, value) in [
            ("user", b.user),
            ("system", b.system),
            ("iowait", b.iowait),
            ("steal", b.steal),
        ] {
            in_range(|| format!("cpu_breakdown.{name}"), value, 0.0, 100.0)?;
        }
    }
    if let Some(l) = &report.load_avg {
        for (name, value) in [("one", l.one), ("five", l.five), ("fifteen", l.fifteen)] {
            in_range(|| format!("load_avg.{name}"), value, 0.0, 1e6)?;
        }
    }
    match (report.swap_used_mb, report.swap_total_mb) {
        (Some(used), Some(total)) => within("swap_used_mb", used, total)?,
        (Some(_), None) => {
            return Err(ValidationError::MissingTotal {
                field: "swap_used_mb".into(),
            });
        }
        _ => {}
    }
    if let Some(disks) = &report.disks {
        count("disks", disks.len(), MAX_DISKS)?;
        for (i, d) in disks.iter().enumerate() {
            text(
                || format!("disks[{i}].mount_point"),
                &d.mount_point,
                MAX_MOUNT_POINT_LEN,
            )?;
            text(|| format!("disks[{i}].fs_type"), &d.fs_type, MAX_LABEL_LEN)?;
            if d.used_bytes > d.total_bytes {
                within(
                    &format!("disks[{i}].used_bytes"),
                    d.used_bytes,
                    d.total_bytes,
                )?;
            }
            if let Some(available) = d.available_bytes
                && d.used_bytes.saturating_add(available) > d.total_bytes
            {
                return Err(ValidationError::SpaceExceedsTotal {
                    field: format!("disks[{i}].available_bytes"),
                    used: d.used_bytes,
                    available,
                    total: d.total_bytes,
                });
            }
        }
    }
    if let Some(io) = &report.disk_io {
        count("disk_io", io.len(), MAX_DISK_IO)?;
        for (i, d) in io.iter().enumerate() {
            text(|| format!("disk_io[{i}].device"), &d.device, MAX_LABEL_LEN)?;
            rate(
                || format!("disk_io[{i}].read_bytes_per_sec"),
                d.read_bytes_per_sec,
            )?;
            rate(
                || format!("disk_io[{i}].write_bytes_per_sec"),
                d.write_bytes_per_sec,
            )?;
        }
    }
    if let Some(networks) = &report.networks {
        count("networks", networks.len(), MAX_INTERFACES)?;
        for (i, n) in networks.iter().enumerate() {
            text(
                || format!("networks[{i}].interface"),
                &n.interface,
                MAX_LABEL_LEN,
            )?;
            if let Some(r) = n.rx_bytes_per_sec {
                rate(|| format!("networks[{i}].rx_bytes_per_sec"), r)?;
            }
            if let Some(r) = n.tx_bytes_per_sec {
                rate(|| format!("networks[{i}].tx_bytes_per_sec"), r)?;
            }
        }
    }
    if let Some(sensors) = &report.temperatures {
        count("temperatures", sensors.len(), MAX_SENSORS)?;
        for (i, t) in sensors.iter().enumerate() {
            text(
                || format!("temperatures[{i}].label"),
                &t.label,
                MAX_LABEL_LEN,
            )?;
            in_range(
                || format!("temperatures[{i}].celsius"),
                t.celsius,
                MIN_CELSIUS,
                MAX_CELSIUS,
            )?;
        }
    }
    if let Some(boot) = report.boot_time
        && boot - now > MAX_FUTURE_SKEW
    {
        return Err(ValidationError::InFuture {
            field: "boot_time".into(),
        });
    }
    if let Some(top) = &report.top_processes {
        count("top_processes", top.len(), MAX_TOP_PROCESSES)?;
        for (i, p) in top.iter().enumerate() {
            text(
                || format!("top_processes[{i}].name"),
                &p.name,
                MAX_LABEL_LEN,
            )?;
            in_range(
                || format!("top_processes[{i}].cpu_percent"),
                p.cpu_percent,
                0.0,
                100.0,
            )?;
        }
    }
    if let Some(custom) = &report.custom {
        count("custom", custom.len(), MAX_CUSTOM_METRICS)?;
        for (name, &value) in custom {
            if validate_device_id(name).is_err() {
                return Err(ValidationError::BadMetricName {
                    name: name.chars().take(128).collect(),
                });
            }
            in_range(
                || format!("custom.{name}"),
                value,
                -MAX_CUSTOM_VALUE,
                MAX_CUSTOM_VALUE,
            )?;
        }
    }
    Ok(())
}

fn count(field: &str, len: usize, max: usize) -> Result {
    if len > max {
        return Err(ValidationError::TooManyItems {
            field: field.into(),
            len,
            max,
        });
    }
    Ok(())
}

fn in_range(field: impl FnOnce() -> String, value: f64, min: f64, max: f64) -> Result {
    if !value.is_finite() {
        return Err(ValidationError::NotFinite { field: field() });
    }
    if !(min..=max).contains(&value) {
        return Err(ValidationError::OutOfRange {
            field: field(),
            value,
            min,
            max,
        });
    }
    Ok(())
}

fn rate(field: impl FnOnce() -> String, value: f64) -> Result {
    in_range(field, value, 0.0, MAX_RATE)
}

fn within(field: &str, used: u64, total: u64) -> Result {
    if used > total {
        return Err(ValidationError::UsedExceedsTotal {
            field: field.into(),
            used,
            total,
        });
    }
    Ok(())
}

fn text(field: impl Fn() -> String, value: &str, max: usize) -> Result {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(ValidationError::BadText { field: field() });
    }
    let len = value.chars().count();
    if len > max {
        return Err(ValidationError::TextTooLong {
            field: field(),
            len,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::macros::datetime;

    use super::*;
    use crate::{CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, ProcessInfo, Temperature};

    const NOW: OffsetDateTime = datetime!(2025-07-10 14:30:00 UTC);

    /// A report with every optional part present and valid.
    fn full() -> Report {
        let mut r = Report::new("host", NOW);
        r.os_info = "Linux".into();
        r.ram_used_mb = 1;
        r.ram_total_mb = 2;
        r.cpu_per_core = Some(vec![0.0, 50.0, 100.0]);
        r.cpu_breakdown = Some(CpuBreakdown {
            user: 10.0,
            system: 5.0,
            iowait: 1.0,
            steal: 0.0,
        });
        r.load_avg = Some(LoadAvg {
            one: 0.5,
            five: 0.25,
            fifteen: 0.1,
        });
        r.swap_used_mb = Some(0);
        r.swap_total_mb = Some(0);
        r.disks = Some(vec![Disk {
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total_bytes: 10,
            used_bytes: 10,
            available_bytes: Some(0),
        }]);
        r.disk_io = Some(vec![DiskIo {
            device: "sda".into(),
            read_bytes_per_sec: 0.0,
            write_bytes_per_sec: 1e9,
        }]);
        r.networks = Some(vec![NetworkInterface {
            interface: "eth0".into(),
            rx_bytes_per_sec: None,
            tx_bytes_per_sec: Some(10.0),
            rx_bytes_total: 1,
            tx_bytes_total: 2,
            rx_errors: 0,
            tx_errors: 0,
        }]);
        r.temperatures = Some(vec![Temperature {
            label: "cpu".into(),
            celsius: -10.0,
        }]);
        r.uptime_seconds = Some(100);
        r.boot_time = Some(NOW - time::Duration::seconds(100));
        r.process_count = Some(120);
        r.top_processes = Some(vec![ProcessInfo {
            pid: 1,
            name: "init".into(),
            cpu_percent: 0.1,
            rss_bytes: 4096,
        }]);
        r.custom = Some(BTreeMap::from([("queue.depth".to_owned(), 3.0)]));
        r
    }

    fn broken(edit: impl FnOnce(&mut Report)) -> ValidationError {
        let mut r = full();
        edit(&mut r);
        r.validate(NOW).expect_err("should be refused")
    }

    #[test]
    fn a_full_report_passes_and_round_trips() {
        let r = full();
        assert_eq!(r.validate(NOW), Ok(()));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Report>(&json).unwrap(), r);
        // A rate absent on the first sample stays absent on the wire.
        assert!(!json.contains("rx_bytes_per_sec"));
    }

    #[test]
    fn only_the_original_fields_are_still_accepted() {
        let json = r#"{"device_id":"old","os_info":"x","cpu_usage":1.5,"ram_used_mb":1,"ram_total_mb":2,"last_seen":"2025-07-10T14:30:00Z"}"#;
        let r: Report = serde_json::from_str(json).unwrap();
        assert_eq!(r.validate(NOW), Ok(()));
        assert_eq!(r.disks, None);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            json,
            "no new keys appear"
        );
    }

    #[test]
    fn cpu_parts() {
        assert_eq!(
            broken(|r| r.cpu_per_core = Some(vec![1.0, 100.5])).field(),
            "cpu_per_core[1]"
        );
        assert_eq!(
            broken(|r| r.cpu_per_core = Some(vec![f64::NAN])),
            ValidationError::NotFinite {
                field: "cpu_per_core[0]".into()
            }
        );
        assert_eq!(
            broken(|r| r.cpu_per_core = Some(vec![1.0; MAX_CORES + 1])).field(),
            "cpu_per_core"
        );
        assert_eq!(
            broken(|r| r.cpu_breakdown.as_mut().unwrap().steal = -1.0).field(),
            "cpu_breakdown.steal"
        );
        assert_eq!(
            broken(|r| r.load_avg.as_mut().unwrap().five = f64::INFINITY).field(),
            "load_avg.five"
        );
        assert_eq!(
            broken(|r| r.load_avg.as_mut().unwrap().one = -0.5).field(),
            "load_avg.one"
        );
    }

    #[test]
    fn swap_parts() {
        assert_eq!(
            broken(|r| r.swap_used_mb = Some(5)),
            ValidationError::UsedExceedsTotal {
                field: "swap_used_mb".into(),
                used: 5,
                total: 0
            }
        );
        assert_eq!(broken(|r| r.swap_total_mb = None).field(), "swap_used_mb");
    }

    #[test]
    fn disk_parts() {
        let error = broken(|r| {
            let d = &mut r.disks.as_mut().unwrap()[0];
            d.used_bytes = 6;
            d.available_bytes = Some(5);
        });
        assert_eq!(error.field(), "disks[0].available_bytes");
        assert_eq!(
            error.to_string(),
            "disks[0].available_bytes: used (6) plus available (5) bytes must not exceed the total (10)"
        );
        let mut r = full();
        r.disks.as_mut().unwrap()[0].used_bytes = 3;
        r.disks.as_mut().unwrap()[0].available_bytes = Some(7);
        assert_eq!(r.validate(NOW), Ok(()), "used + available = total is fine");
        r.disks.as_mut().unwrap()[0].available_bytes = Some(u64::MAX);
        assert_eq!(
            r.validate(NOW).map_err(|e| e.field().to_owned()),
            Err("disks[0].available_bytes".to_owned()),
            "no overflow"
        );
        assert_eq!(
            broken(|r| r.disks.as_mut().unwrap()[0].used_bytes = 11).field(),
            "disks[0].used_bytes"
        );
        assert_eq!(
            broken(|r| r.disks.as_mut().unwrap()[0].mount_point = "/a\nb".into()).field(),
            "disks[0].mount_point"
        );
        assert_eq!(
            broken(|r| r.disks.as_mut().unwrap()[0].fs_type.clear()).field(),
            "disks[0].fs_type"
        );
        assert_eq!(
            broken(
                |r| r.disks.as_mut().unwrap()[0].mount_point = "/".repeat(MAX_MOUNT_POINT_LEN + 1)
            )
            .field(),
            "disks[0].mount_point"
        );
        assert_eq!(
            broken(|r| {
                let one = r.disks.as_ref().unwrap()[0].clone();
                r.disks = Some(vec![one; MAX_DISKS + 1]);
            }),
            ValidationError::TooManyItems {
                field: "disks".into(),
                len: MAX_DISKS + 1,
                max: MAX_DISKS
            }
        );
        assert_eq!(
            broken(|r| r.disk_io.as_mut().unwrap()[0].read_bytes_per_sec = -1.0).field(),
            "disk_io[0].read_bytes_per_sec"
        );
        assert_eq!(
            broken(|r| r.disk_io.as_mut().unwrap()[0].write_bytes_per_sec = f64::NAN).field(),
            "disk_io[0].write_bytes_per_sec"
        );
    }

    #[test]
    fn network_and_sensor_parts() {
        assert_eq!(
            broken(|r| r.networks.as_mut().unwrap()[0].rx_bytes_per_sec = Some(-5.0)).field(),
            "networks[0].rx_bytes_per_sec"
        );
        assert_eq!(
            broken(|r| r.networks.as_mut().unwrap()[0].interface = "x".repeat(257)).field(),
            "networks[0].interface"
        );
        assert_eq!(
            broken(|r| r.temperatures.as_mut().unwrap()[0].celsius = -300.0).field(),
            "temperatures[0].celsius"
        );
        assert_eq!(
            broken(|r| r.temperatures.as_mut().unwrap()[0].celsius = f64::NAN).field(),
            "temperatures[0].celsius"
        );
        assert_eq!(
            broken(|r| r.temperatures = Some(vec![
                Temperature {
                    label: "t".into(),
                    celsius: 1.0
                };
                MAX_SENSORS + 1
            ]))
            .field(),
            "temperatures"
        );
        assert_eq!(
            broken(|r| r.networks = Some(vec![
                r.networks.as_ref().unwrap()[0].clone();
                MAX_INTERFACES + 1
            ]))
            .field(),
            "networks"
        );
        let mut r = full();
        r.temperatures = Some(vec![]);
        assert_eq!(
            r.validate(NOW),
            Ok(()),
            "a host without sensors reports an empty list"
        );
    }

    #[test]
    fn system_and_process_parts() {
        assert_eq!(
            broken(|r| r.boot_time = Some(NOW + time::Duration::hours(1))).field(),
            "boot_time"
        );
        assert_eq!(
            broken(|r| r.top_processes.as_mut().unwrap()[0].cpu_percent = 150.0).field(),
            "top_processes[0].cpu_percent"
        );
        assert_eq!(
            broken(|r| r.top_processes.as_mut().unwrap()[0].name = "a\u{0}b".into()).field(),
            "top_processes[0].name"
        );
        assert_eq!(
            broken(|r| r.top_processes = Some(vec![
                r.top_processes.as_ref().unwrap()[0].clone();
                MAX_TOP_PROCESSES + 1
            ]))
            .field(),
            "top_processes"
        );
    }

    #[test]
    fn custom_parts() {
        assert_eq!(
            broken(|r| {
                r.custom.as_mut().unwrap().insert("bad name".into(), 1.0);
            }),
            ValidationError::BadMetricName {
                name: "bad name".into()
            }
        );
        assert_eq!(
            broken(|r| {
                r.custom.as_mut().unwrap().insert("x".into(), f64::NAN);
            })
            .field(),
            "custom.x"
        );
        for too_large in [1.7e308, -1e301] {
            assert_eq!(
                broken(|r| {
                    r.custom.as_mut().unwrap().insert("x".into(), too_large);
                })
                .field(),
                "custom.x"
            );
        }
        let mut at_the_bound = full();
        at_the_bound
            .custom
            .as_mut()
            .unwrap()
            .insert("x".into(), -MAX_CUSTOM_VALUE);
        assert_eq!(at_the_bound.validate(NOW), Ok(()));
        assert_eq!(
            broken(|r| r.custom = Some(
                (0..=MAX_CUSTOM_METRICS)
                    .map(|n| (format!("m{n}"), 1.0))
                    .collect()
            ))
            .field(),
            "custom"
        );
    }
}
