use std::time::Duration;

use tailmon_collect::{Collector, HostCollector, Subsystems};
use tailmon_core::{OffsetDateTime, Report};

async fn collect(collector: &mut HostCollector) -> Report {
    // CPU and rate windows need a real interval; sysinfo's minimum is 200 ms.
    std::thread::sleep(sysinfo_minimum());
    let now = OffsetDateTime::now_utc();
    let mut report = Report::new("it-host", now);
    collector
        .collect(&mut report)
        .await
        .expect("every probe works on the test host");
    assert_eq!(report.validate(now), Ok(()), "the server would accept it");
    report
}

fn sysinfo_minimum() -> Duration {
    Duration::from_millis(250)
}

#[tokio::test]
async fn every_field_is_present_and_sane() {
    let mut collector = HostCollector::new().expect("sysinfo");
    let first = collect(&mut collector).await;
    let report = collect(&mut collector).await;
    if std::env::var_os("TAILMON_PRINT_REPORT").is_some() {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    }

    let cores = report.cpu_per_core.as_ref().expect("cpu_per_core");
    assert!(!cores.is_empty());
    assert!(cores.iter().all(|c| (0.0..=100.0).contains(c)));
    if cfg!(target_os = "linux") {
        let b = report.cpu_breakdown.expect("cpu_breakdown on Linux");
        assert!(b.user + b.system + b.iowait + b.steal <= 100.0 + 1e-6);
        let load = report.load_avg.expect("load_avg on Linux");
        assert!(load.one >= 0.0 && load.five >= 0.0 && load.fifteen >= 0.0);
    }
    let (used, total) = (
        report.swap_used_mb.expect("swap used"),
        report.swap_total_mb.expect("swap total"),
    );
    assert!(used <= total);

    let disks = report.disks.as_ref().expect("disks");
    assert!(!disks.is_empty(), "the test host has a root filesystem");
    assert!(disks.iter().any(|d| d.mount_point == "/"), "{disks:?}");
    for d in disks {
        assert!(d.used_bytes <= d.total_bytes && d.total_bytes > 0, "{d:?}");
        assert!(
            ![
                "tmpfs", "proc", "sysfs", "overlay", "cgroup", "cgroup2", "devpts"
            ]
            .contains(&d.fs_type.as_str()),
            "pseudo fs listed: {d:?}"
        );
    }
    let mounts: Vec<&str> = disks.iter().map(|d| d.mount_point.as_str()).collect();
    let mut unique = mounts.clone();
    unique.dedup();
    assert_eq!(mounts, unique, "sorted, without duplicates");

    let io = report
        .disk_io
        .as_ref()
        .expect("disk_io after the first sample");
    assert!(
        io.iter()
            .all(|d| !d.device.starts_with("loop") && d.read_bytes_per_sec >= 0.0)
    );

    let networks = report.networks.as_ref().expect("networks");
    assert!(
        networks.iter().all(|n| n.interface != "lo"),
        "loopback left out"
    );
    for n in networks {
        assert!(
            n.rx_bytes_per_sec.is_some() && n.tx_bytes_per_sec.is_some(),
            "rates after the first sample: {n:?}"
        );
    }

    assert!(report.temperatures.is_some(), "present, possibly empty");
    let uptime = report.uptime_seconds.expect("uptime");
    assert!(uptime > 0);
    let boot = report.boot_time.expect("boot_time");
    let drift = (OffsetDateTime::now_utc() - boot).whole_seconds() - i64::try_from(uptime).unwrap();
    assert!(
        drift.abs() <= 5,
        "boot time and uptime agree: {drift} s apart"
    );
    assert!(report.process_count.expect("process_count") >= 1);
    let top = report.top_processes.as_ref().expect("top_processes");
    assert!(!top.is_empty() && top.len() <= 10);
    assert!(
        top.iter()
            .all(|p| (0.0..=100.0).contains(&p.cpu_percent) && !p.name.is_empty())
    );

    // The first sample carries no rates rather than false zeros.
    assert!(
        first.disk_io.is_none(),
        "no disk I/O rates on the first sample"
    );
    if let Some(networks) = &first.networks {
        assert!(
            networks
                .iter()
                .all(|n| n.rx_bytes_per_sec.is_none() && n.tx_bytes_per_sec.is_none()),
            "{networks:?}"
        );
    }
}

#[tokio::test]
async fn disabling_a_subsystem_removes_its_fields() {
    let mut none = HostCollector::builder()
        .subsystems(Subsystems::none())
        .build()
        .expect("sysinfo");
    let report = collect(&mut none).await;
    assert!(
        report.ram_total_mb > 0,
        "the original fields are always read"
    );
    let json = serde_json::to_value(&report).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
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

    let mut some = HostCollector::builder()
        .subsystems("load,disks,system".parse().unwrap())
        .build()
        .expect("sysinfo");
    let report = collect(&mut some).await;
    assert!(
        report.disks.is_some() && report.uptime_seconds.is_some() && report.process_count.is_some()
    );
    if cfg!(target_os = "linux") {
        assert!(report.load_avg.is_some());
    }
    assert!(report.cpu_per_core.is_none() && report.cpu_breakdown.is_none());
    assert!(
        report.swap_total_mb.is_none() && report.networks.is_none() && report.disk_io.is_none()
    );
    assert!(report.temperatures.is_none() && report.top_processes.is_none());
}

#[tokio::test]
async fn the_process_scan_runs_at_most_once_per_interval() {
    let mut collector = HostCollector::builder()
        .subsystems("processes".parse().unwrap())
        .process_scan_interval(Duration::from_secs(3600))
        .build()
        .expect("sysinfo");
    let first = collect(&mut collector)
        .await
        .top_processes
        .expect("scanned");
    // Start a process that would rank first by memory if a new scan ran.
    let mut hog = vec![1u8; 64 * 1024 * 1024];
    hog[12345] = 2;
    let second = collect(&mut collector).await.top_processes.expect("cached");
    assert_eq!(first, second, "no rescan within the interval");
    assert_eq!(hog[12345], 2);
}

#[tokio::test]
async fn pseudo_filesystems_are_listed_only_when_asked() {
    let disks = "disks".parse().unwrap();
    let mut real = HostCollector::builder()
        .subsystems(disks)
        .build()
        .expect("sysinfo");
    let mut all = HostCollector::builder()
        .subsystems(disks)
        .all_filesystems(true)
        .build()
        .expect("sysinfo");
    let real = collect(&mut real).await.disks.expect("disks");
    let all = collect(&mut all).await.disks.expect("disks");
    assert!(all.len() >= real.len());
    assert!(real.iter().all(|d| d.fs_type != "tmpfs"));
    let host_has_tmpfs = std::fs::read_to_string("/proc/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split_whitespace().nth(2) == Some("tmpfs"))
        })
        .unwrap_or(false);
    if host_has_tmpfs {
        assert!(all.iter().any(|d| d.fs_type == "tmpfs"), "{all:?}");
    }
}

/// `/` as `df -B1` shows it: used, available, and the percentage (which
/// df rounds up).
fn df_root() -> Option<(u64, u64, f64)> {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=used,avail,pcent", "/"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut fields = text.lines().nth(1)?.split_whitespace();
    let used = fields.next()?.parse().ok()?;
    let available = fields.next()?.parse().ok()?;
    let percent = fields.next()?.trim_end_matches('%').parse().ok()?;
    Some((used, available, percent))
}

#[tokio::test]
async fn root_filesystem_matches_df() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let mut collector = HostCollector::builder()
        .subsystems("disks".parse().unwrap())
        .build()
        .expect("sysinfo");
    let disks = collect(&mut collector).await.disks.expect("disks");
    let Some((df_used, df_available, df_percent)) = df_root() else {
        eprintln!("no GNU df here; skipped");
        return;
    };
    let root = disks
        .iter()
        .find(|d| d.mount_point == "/")
        .expect("a root filesystem");
    let available = root.available_bytes.expect("statvfs gives available");
    // Other processes write meanwhile: allow 1 % of the size.
    let tolerance = root.total_bytes / 100;
    assert!(
        root.used_bytes.abs_diff(df_used) <= tolerance,
        "used {} vs df {df_used}",
        root.used_bytes
    );
    assert!(
        available.abs_diff(df_available) <= tolerance,
        "available {available} vs df {df_available}"
    );
    // df rounds its percentage up to a whole number.
    let percent = root.used_percent().expect("a size");
    assert!(
        (percent - df_percent).abs() <= 2.0,
        "{percent} % vs df's {df_percent} % ({root:?})"
    );
    let reserved = root.total_bytes - root.used_bytes - available;
    eprintln!(
        "/: {percent:.1} % as df ({df_percent} %); {reserved} bytes reserved or unaccounted; \
         counting them as used would show {:.1} %",
        (root.total_bytes - available) as f64 * 100.0 / root.total_bytes as f64
    );
}
