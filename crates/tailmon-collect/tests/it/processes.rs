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

/// A burner may be missing from the list only on a machine so busy that
/// the five heaviest by CPU each used more than the burner's least share.
fn crowded_out(top: &[ProcessInfo], least_share: f64, what: &str) {
    let mut shares: Vec<f64> = top.iter().map(|p| p.cpu_percent).collect();
    shares.sort_by(|a, b| b.total_cmp(a));
    assert!(
        shares.len() >= 5 && shares[..5].iter().all(|&s| s >= least_share),
        "{what} is missing though it used at least {least_share:.1} %: {top:?}"
    );
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
    // /proc's count of each burner's CPU time is read just before and just
    // after each scan, so the scan's own span lies between an inner and an
    // outer window whatever the machine's load: the share it reports is
    // bounded by what /proc counted over them.
    let tick = 1.0 / clock_ticks_per_second();
    let before_first = (Instant::now(), cpu_seconds(old_pid));
    let first = top_processes(&mut collector).await;
    let after_first = (Instant::now(), cpu_seconds(old_pid));
    assert!(
        first.iter().all(|p| p.cpu_percent == 0.0),
        "a baseline: {first:?}"
    );

    let spawned_before = Instant::now();
    let new = spawn(Command::new("sh").args(["-c", "while :; do :; done"]));
    let new_pid = new.0.id();
    let spawned_after = Instant::now();
    // A report between the scans, as the agent sends them: it must not
    // change the shares (they were scaled by scan / report interval).
    std::thread::sleep(SCAN / 2);
    let between = top_processes(&mut collector).await;
    assert_eq!(between, first, "no scan between scans");
    std::thread::sleep(SCAN.saturating_sub(after_first.0.elapsed()));
    let before_second = (Instant::now(), cpu_seconds(old_pid), cpu_seconds(new_pid));
    let second = top_processes(&mut collector).await;
    let after_second = (Instant::now(), cpu_seconds(old_pid), cpu_seconds(new_pid));
    let percent =
        |seconds: f64, span: Duration| seconds / span.as_secs_f64() / cores as f64 * 100.0;

    if std::env::var_os("TAILMON_PRINT_REPORT").is_some() {
        println!("{cores} cores, {expected:.1} % expected: {second:#?}");
    }
    // Against /proc's own count. (Before the fix, a share was the scan's
    // CPU over the last report interval: here twice what /proc says.)
    let low = percent(
        (before_second.1 - after_first.1 - tick).max(0.0),
        after_second.0 - before_first.0,
    );
    let high = percent(
        after_second.1 - before_first.1 + tick,
        before_second.0 - after_first.0,
    );
    let listed = entries(&second, old_pid);
    if listed.is_empty() {
        crowded_out(&second, low, "the child");
    } else {
        assert_eq!(listed.len(), 1, "the child once: {second:?}");
        let share = listed[0].cpu_percent;
        assert!(
            (0.95 * low - 0.5..=1.05 * high + 0.5).contains(&share),
            "{share} % reported, /proc says {low:.1}..{high:.1} % (one core of {cores} is {expected:.1} %): {second:?}"
        );
    }
    // Since it started; a start time known only to the second can make it
    // read low, never high.
    let high = percent(after_second.2 + tick, before_second.0 - spawned_after);
    let low = percent(
        (before_second.2 - tick).max(0.0),
        after_second.0 - spawned_before,
    );
    let listed = entries(&second, new_pid);
    if listed.is_empty() {
        crowded_out(
            &second,
            0.4 * low - 2.0,
            "the burner started after the first scan",
        );
    } else {
        assert_eq!(listed.len(), 1, "started after the first scan: {second:?}");
        let share = listed[0].cpu_percent;
        assert!(
            share > 0.0 && share <= 1.05 * high + 0.5 && share >= 0.4 * low - 2.0,
            "{share} % reported, /proc says {low:.1}..{high:.1} % since it started: {second:?}"
        );
    }

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
