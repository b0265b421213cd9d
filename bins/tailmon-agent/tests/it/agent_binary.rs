//! The agent binary delivering: to a server that is up, to one that comes up
//! late, and a clean stop on SIGTERM.

use tailmon_core::OffsetDateTime;

use crate::in_process_server::InProcessServer;
use tailmon_testkit::eventually;
use tailmon_testkit::{RunningBinary, assert_no_panic, clean_command};

const DEVICE: &str = "agent-bin-test";

/// Starts the agent reporting to `server_url` every 0.2 s as [`DEVICE`].
fn start_agent(server_url: &str) -> RunningBinary {
    start_agent_with(server_url, &[])
}

/// As [`start_agent`], with more environment.
fn start_agent_with(server_url: &str, env: &[(&str, &str)]) -> RunningBinary {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-agent"));
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("TAILMON_SERVER_URL", server_url)
        .env("TAILMON_INTERVAL", "0.2")
        .env("TAILMON_DEVICE_ID", DEVICE)
        .envs(env.iter().copied());
    RunningBinary::start(&mut command)
}

/// A loopback port nobody listens on: bound, noted, released.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    probe.local_addr().expect("local addr").port()
}

/// The value of `field=` in a log line, as a number.
fn field(line: &str, name: &str) -> u64 {
    let (_, rest) = line
        .split_once(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name}= in {line}"));
    let value: String = rest.chars().take_while(char::is_ascii_digit).collect();
    value
        .parse()
        .unwrap_or_else(|e| panic!("{name}={value:?} in {line}: {e}"))
}

/// SIGTERM, then a clean exit with status 0.
async fn stop_cleanly(agent: RunningBinary) {
    agent.stop_cleanly("agent stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_this_host_and_stops_on_sigterm() {
    let server = InProcessServer::start(0).await;
    let agent = start_agent(&server.ingest_url());

    let first = eventually("the agent's first report stored", async || {
        server
            .latest_of(DEVICE)
            .await
            .map_err(|seen| format!("{seen}; agent stderr:\n{}", agent.stderr()))
    })
    .await;
    // Shapes, not this machine's values.
    assert!(first.ram_total_mb > 0, "{first:?}");
    assert!(first.ram_used_mb <= first.ram_total_mb, "{first:?}");
    assert!((0.0..=100.0).contains(&first.cpu_usage), "{first:?}");
    assert!(!first.os_info.trim().is_empty(), "{first:?}");
    assert!(first.last_seen <= OffsetDateTime::now_utc(), "{first:?}");
    assert!(first.received_at.is_some(), "{first:?}");

    // It keeps its cadence: a later sample replaces the first.
    eventually("a second report stored", async || {
        let latest = server.latest_of(DEVICE).await?;
        if latest.last_seen > first.last_seen {
            Ok(())
        } else {
            Err(format!("still the sample of {}", first.last_seen))
        }
    })
    .await;

    let stderr = agent.stderr();
    assert!(stderr.contains("agent started"), "{stderr}");
    assert!(
        !stderr.contains("retrying") && !stderr.contains("kept and retried"),
        "no failed delivery expected:\n{stderr}"
    );
    stop_cleanly(agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_a_late_server_comes_up() {
    let port = free_port();
    let mut agent = start_agent(&format!("http://127.0.0.1:{port}/api/metrics"));

    // The cause, in its own words.
    let warning = agent
        .stderr_line_containing(&format!(
            "connection refused by 127.0.0.1:{port}: is tailmon-server running and listening there?"
        ))
        .await;
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        agent.is_running(),
        "a refused connection must not stop the agent"
    );

    // The server comes up on that very port; the agent's next retry lands.
    let server = InProcessServer::start(port).await;
    let delivered = eventually("the retried report stored", async || {
        server
            .latest_of(DEVICE)
            .await
            .map_err(|seen| format!("{seen}; agent stderr:\n{}", agent.stderr()))
    })
    .await;
    assert!(delivered.ram_total_mb > 0, "{delivered:?}");

    // Back on its normal cadence after the success.
    eventually("a report after the recovery", async || {
        let latest = server.latest_of(DEVICE).await?;
        if latest.last_seen > delivered.last_seen {
            Ok(())
        } else {
            Err(format!("still the sample of {}", delivered.last_seen))
        }
    })
    .await;

    assert_no_panic(&agent.stderr());
    stop_cleanly(agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn says_what_it_dropped_and_when_delivery_recovers() {
    let port = free_port();
    let agent = start_agent_with(
        &format!("http://127.0.0.1:{port}/api/metrics"),
        &[("TAILMON_QUEUE_CAPACITY", "3")],
    );

    // A queue of 3 overflows within a second: the first drop is told at once.
    let dropped = agent.stderr_line_containing("reports dropped").await;
    assert!(dropped.contains("WARN"), "{dropped}");
    assert!(field(&dropped, "dropped") >= 1, "{dropped}");
    assert_eq!(
        field(&dropped, "queue_full"),
        field(&dropped, "dropped"),
        "{dropped}"
    );
    assert_eq!(field(&dropped, "refused"), 0, "{dropped}");

    let server = InProcessServer::start(port).await;
    let recovered = agent.stderr_line_containing("delivery recovered").await;
    assert!(recovered.contains("INFO"), "{recovered}");
    assert!(field(&recovered, "sent_from_queue") >= 3, "{recovered}");
    assert!(field(&recovered, "dropped_meanwhile") >= 1, "{recovered}");
    server.latest_of(DEVICE).await.expect("delivered");

    // Its last words count every report it dropped.
    let mut agent = agent;
    agent.terminate();
    let finished = agent.finished().await;
    assert!(finished.status.success(), "{finished:?}");
    let stopped = finished
        .stderr
        .lines()
        .find(|line| line.contains("agent stopped"))
        .unwrap_or_else(|| panic!("no stop line:\n{}", finished.stderr));
    assert!(field(stopped, "dropped") >= 1, "{stopped}");
    assert_no_panic(&finished.stderr);
}
