//! `top_processes` against a known load: a child burning one core (on one of
//! its several threads) and a burner started between two scans.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sysinfo::{CpuRefreshKind, RefreshKind, System};
use tailmon_collect::{Collector, HostCollector, Subsystems};
use tailmon_core::{OffsetDateTime, ProcessInfo, Report};

/// Set in the child's environment: how long `burner_child` burns, in seconds.
const BURN_ENV: &str = "TAILMON_IT_BURN_SECS";

/// The span between the two scans.
const SCAN: Duration = Duration::from_secs(2);

/// Not a test on its own: the body of the child process that
/// `top_processes_match_a_known_load` starts. One thread burns a core for
/// the time in [`BURN_ENV`] while two more idle, so the process has several.
#[test]
#[ignore = "run as a child process by top_processes_match_a_known_load"]
fn burner_child() {
    let Some(secs) = std::env::var(BURN_ENV).ok().and_then(|s| s.parse().ok()) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let idle: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        })
        .collect();
    let burn = std::thread::spawn(move || {
        let mut n = 0_u64;
        while Instant::now() < deadline {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    });
    burn.join().expect("burner thread");
    for thread in idle {
        thread.join().expect("idle thread");
    }
}

/// A child process, killed when the test ends however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command) -> Killed {
    Killed(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a burner"),
    )
}

/// The thread ids of `pid`, from `/proc/<pid>/task`.
fn threads(pid: u32) -> Vec<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The process a pid or thread id belongs to (`Tgid` in `/proc/<id>/status`).
fn thread_group(id: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{id}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))?
        .trim()
        .parse()
        .ok()
}

/// The CPU time `pid` has used so far, in seconds, from `/proc/<pid>/stat`
/// (user and system ticks): the ground truth the shares are checked against.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name, which ends with the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 =
        fields[11].parse::<f64>().expect("utime") + fields[12].parse::<f64>().expect("stime");
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn top_processes(collector: &mut HostCollector) -> Vec<ProcessInfo> {
    let now = OffsetDateTime::now_utc();
    let mut report = Report::new("it-host", now);
    collector.collect(&mut report).await.expect("collect");
    assert_eq!(report.validate(now), Ok(()), "the server would accept it");
    report.top_processes.expect("top_processes")
}

fn entries(top: &[ProcessInfo], pid: u32) -> Vec<&ProcessInfo> {
    top.iter().filter(|p| p.pid == pid).collect()
}

#[tokio::test]
async fn top_processes_match_a_known_load() {
    // The machine's logical CPUs, as the collector counts them.
    let cpus = RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing());
    let cores = System::new_with_specifics(cpus)
        .expect("sysinfo")
        .cpus()
        .len()
        .max(1);
    // One busy core, as a share of the whole machine (what each burner gets
    // on a machine otherwise idle; the checks use what it really got).
    let expected = 100.0 / cores as f64;

    let exe = std::env::current_exe().expect("the test binary");
    let old = spawn(
        Command::new(exe)
            .args(["processes::burner_child", "--exact", "--ignored"])
            .env(BURN_ENV, "10"),
    );
    let old_pid = old.0.id();
    // Bounded: the child starts its threads at once.
    let started = Instant::now();
    while threads(old_pid).len() < 4 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let old_threads = threads(old_pid);
    assert!(old_threads.len() >= 4, "child threads: {old_threads:?}");

    let mut collector = HostCollector::builder()
        .subsystems(Subsystems {
            processes: true,
            ..Subsystems::none()
        })
        .process_scan_interval(SCAN)
        .build()
        .expect("sysinfo");
    let old_cpu_before = cpu_seconds(old_pid);
    let first_at = Instant::now();
    let first = top_processes(&mut collector).await;
    assert!(
        first.iter().all(|p| p.cpu_percent == 0.0),
        "a baseline: {first:?}"
    );

    let new = spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    let new_pid = new.0.id();
    let new_started = Instant::now();
    let scanned = Instant::now();
    // A report between the scans, as the agent sends them: it must not
    // change the shares (they were scaled by scan / report interval).
    std::thread::sleep(SCAN / 2);
    let between = top_processes(&mut collector).await;
    assert_eq!(between, first, "no scan between scans");
    std::thread::sleep(SCAN.saturating_sub(scanned.elapsed()));
    let second = top_processes(&mut collector).await;
    let span = first_at.elapsed().as_secs_f64();
    // What each burner really used, as a share of the machine: on a busy
    // machine they get less than a core each, and the shares must say so.
    let old_truth = (cpu_seconds(old_pid) - old_cpu_before) / span / cores as f64 * 100.0;
    let new_truth =
        cpu_seconds(new_pid) / new_started.elapsed().as_secs_f64() / cores as f64 * 100.0;

    if std::env::var_os("TAILMON_PRINT_REPORT").is_some() {
        println!("{cores} cores, {expected:.1} % expected: {second:#?}");
    }
    // Against /proc's own count, within timing tolerances. (Before the
    // fix, a share was the scan's CPU over the last report interval: here
    // twice what /proc says.)
    let listed = entries(&second, old_pid);
    assert_eq!(listed.len(), 1, "the child once: {second:?}");
    let share = listed[0].cpu_percent;
    assert!(
        (0.8 * old_truth - 2.0..=1.15 * old_truth + 2.0).contains(&share),
        "{share} % reported, {old_truth:.1} % used by /proc (one core of {cores} is {expected:.1} %): {second:?}"
    );
    // Since it started; a start time known only to the second can make it
    // read low, never high.
    let listed = entries(&second, new_pid);
    assert_eq!(listed.len(), 1, "started after the first scan: {second:?}");
    let share = listed[0].cpu_percent;
    assert!(
        share > 0.0 && share <= 1.15 * new_truth + 2.0 && share >= 0.4 * new_truth - 2.0,
        "{share} % reported, {new_truth:.1} % used by /proc since it started: {second:?}"
    );

    // Processes only: none of the child's threads, and no thread of anything.
    for thread in old_threads.iter().filter(|&&t| t != old_pid) {
        assert!(
            entries(&second, *thread).is_empty(),
            "thread {thread} listed"
        );
    }
    for p in &second {
        if let Some(group) = thread_group(p.pid) {
            assert_eq!(group, p.pid, "a thread listed as a process: {p:?}");
        }
    }
    drop((old, new));
}
