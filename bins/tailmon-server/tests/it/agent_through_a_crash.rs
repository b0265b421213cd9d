//! The agent runtime through a crash of the real server binary: SIGKILL
//! while the agent reports every 250 ms, a restart on the same data
//! directory and port, and a history with neither gap nor duplicate.
//!
//! It lives here rather than in the agent's tests because only this
//! package's tests are given the `tailmon-server` executable; the agent is
//! the `tailmon-client` runtime the `tailmon-agent` binary runs.

use std::path::Path;
use std::time::Duration;

use tailmon_client::{Agent, AgentStatus, Client, Drops};
use tailmon_collect::{HostCollector, Subsystems};
use tailmon_core::OffsetDateTime;
use tailmon_testkit::{RunningBinary, clean_command, eventually};
use tokio::sync::{oneshot, watch};

use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, scratch_dir};

const INTERVAL: Duration = Duration::from_millis(250);
const DEVICE: &str = "crash-agent";

/// The server binary on 127.0.0.1:`port` with its state in `dir/data`, no
/// authentication, no rate limit, and no agent of its own.
pub(crate) async fn start_server(dir: &Path, port: u16) -> RunningBinary {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command
        .current_dir(dir)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.join("data"))
        .args(["--auth", "none", "--rate-limit-per-address", "0"])
        .arg("--no-local-agent");
    let server = RunningBinary::start(&mut command);
    assert_eq!(announced_address(&server).await.port(), port);
    server
}

/// Waits until the agent's status satisfies `what`, and returns it.
pub(crate) async fn status_where(
    status: &watch::Receiver<AgentStatus>,
    what: &str,
    test: impl Fn(&AgentStatus) -> bool,
) -> AgentStatus {
    eventually(what, async || {
        let now = *status.borrow();
        if test(&now) {
            Ok(now)
        } else {
            Err(format!("{now:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_history_has_no_gap_or_duplicate_across_a_server_kill_9() {
    let dir = scratch_dir("agent-crash");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("a free loopback port")
        .port();
    let mut server = start_server(&dir, port).await;

    // The agent, with its default backoff, reporting the original fields only.
    let client = Client::builder(format!("http://127.0.0.1:{port}/api/metrics"))
        .build()
        .expect("valid URL");
    let collector = HostCollector::builder()
        .subsystems(Subsystems::none())
        .build()
        .expect("sysinfo");
    let agent = Agent::builder(client.clone(), Box::new(collector))
        .device_id(DEVICE)
        .interval(INTERVAL)
        .warmup(INTERVAL)
        .build();
    let status = agent.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    status_where(&status, "reports flowing", |s| s.sent >= 4).await;

    // A crash: no shutdown, no flush, a request perhaps under way.
    server.kill();
    let killed_at = OffsetDateTime::now_utc();
    let down = status_where(&status, "reports queued while down", |s| s.queued >= 8).await;
    let server = start_server(&dir, port).await;
    let restarted_at = OffsetDateTime::now_utc();

    // Back-filled, then two more reports sent straight away.
    let drained = status_where(&status, "the queue back-filled", |s| {
        s.queued == 0 && s.consecutive_failures == 0 && s.sent >= down.sent + 8
    })
    .await;
    status_where(&status, "reports flowing again", |s| {
        s.sent >= drained.sent + 2
    })
    .await;
    stop.send(()).expect("agent running");
    running.await.expect("the agent did not panic");
    let last = *status.borrow();
    assert_eq!(last.drops, Drops::default(), "{last:?}");

    let history = client.export(DEVICE, None, None).await.expect("export");
    stop_cleanly(server).await;
    let times: Vec<OffsetDateTime> = history.iter().map(|r| r.last_seen).collect();

    // Every report acknowledged is stored, once; one more may be stored if
    // the agent stopped while its request was under way.
    let stored = times.len() as u64;
    assert!(
        (last.sent..=last.sent + 1).contains(&stored),
        "{stored} stored, {last:?}"
    );
    assert!(times.is_sorted(), "the export is in time order");
    let mut distinct = times.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), times.len(), "no duplicate last_seen");

    // No gap. The agent collects on a fixed 250 ms grid and stamps each
    // report when its tick wakes it, so consecutive samples are one
    // interval apart give or take the wake-up delays; a missing sample
    // would leave about two. So: every gap is under 1.5 intervals.
    let most = time::Duration::try_from(INTERVAL.mul_f64(1.5)).expect("small");
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] < most,
            "a gap of {} from {} (killed at {killed_at}, restarted at {restarted_at})",
            pair[1] - pair[0],
            pair[0]
        );
    }
    // And the outage is covered: samples from while the server was down.
    let in_outage = times
        .iter()
        .filter(|t| **t > killed_at && **t < restarted_at)
        .count();
    assert!(in_outage >= 6, "{in_outage} samples from the outage");
}
