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
    // One busy core, as a share of the whole machine.
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
    let first = top_processes(&mut collector).await;
    assert!(
        first.iter().all(|p| p.cpu_percent == 0.0),
        "a baseline: {first:?}"
    );

    let new = spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    let new_pid = new.0.id();
    let scanned = Instant::now();
    // A report between the scans, as the agent sends them: it must not
    // change the shares (they were scaled by scan / report interval).
    std::thread::sleep(SCAN / 2);
    let between = top_processes(&mut collector).await;
    assert_eq!(between, first, "no scan between scans");
    std::thread::sleep(SCAN.saturating_sub(scanned.elapsed()));
    let second = top_processes(&mut collector).await;

    if std::env::var_os("TAILMON_PRINT_REPORT").is_some() {
        println!("{cores} cores, {expected:.1} % expected: {second:#?}");
    }
    // Within a tolerance: the burners share the machine with whatever else runs.
    let near = |share: f64| (0.5 * expected..=1.15 * expected).contains(&share);
    let listed = entries(&second, old_pid);
    assert_eq!(listed.len(), 1, "the child once: {second:?}");
    assert!(
        near(listed[0].cpu_percent),
        "one core of {cores} is about {expected:.1} %: {second:?}"
    );
    let listed = entries(&second, new_pid);
    assert_eq!(listed.len(), 1, "started after the first scan: {second:?}");
    assert!(
        near(listed[0].cpu_percent),
        "one core of {cores} since it started, about {expected:.1} %: {second:?}"
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
