//! The agent with `--queue-dir`: reports queued while the server is down
//! survive the agent's SIGKILL, and a restarted agent delivers every one of
//! them, once, when the server comes up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tailmon_client::{Client, queued_reports};
use tailmon_testkit::{RunningBinary, assert_no_panic, clean_command, eventually};

use crate::in_process_server::InProcessServer;

const DEVICE: &str = "agent-queue-dir-test";

/// The agent reporting to `server_url` every 0.2 s, its queue in `dir`.
fn start_agent(server_url: &str, dir: &Path) -> RunningBinary {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-agent"));
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("TAILMON_SERVER_URL", server_url)
        .env("TAILMON_INTERVAL", "0.2")
        .env("TAILMON_DEVICE_ID", DEVICE)
        .env("TAILMON_QUEUE_DIR", dir);
    RunningBinary::start(&mut command)
}

/// A loopback port nobody listens on: bound, noted, released.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    probe.local_addr().expect("local addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_reports_survive_a_sigkill_and_arrive_once_after_a_restart() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("queue-dir-sigkill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/metrics");

    // The server is down: reports pile up in the directory.
    let mut agent = start_agent(&url, &dir);
    eventually("five reports queued on disk", async || {
        let queued = queued_reports(&dir).map_err(|e| e.to_string())?;
        if queued.len() >= 5 {
            Ok(())
        } else {
            Err(format!(
                "{} queued; stderr:\n{}",
                queued.len(),
                agent.stderr()
            ))
        }
    })
    .await;
    agent.kill();
    assert_no_panic(&agent.stderr());
    let left = queued_reports(&dir).expect("the queue is readable after a SIGKILL");
    assert!(left.len() >= 5, "{}", left.len());
    let left_times: HashSet<_> = left.iter().map(|r| r.last_seen).collect();
    assert_eq!(left_times.len(), left.len(), "each report queued once");

    // The server comes up, the agent restarts: everything left is delivered.
    let server = InProcessServer::start(port).await;
    let agent = start_agent(&url, &dir);
    let client = Client::builder(server.base_url()).build().expect("client");
    eventually("every report left in the queue stored", async || {
        let stored = client
            .export(DEVICE, None, None)
            .await
            .map_err(|e| format!("{e}; agent stderr:\n{}", agent.stderr()))?;
        let times: HashSet<_> = stored.iter().map(|r| r.last_seen).collect();
        let missing = left_times.difference(&times).count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} of {} not stored yet", left.len()))
        }
    })
    .await;
    let stderr = agent.stderr();
    assert!(
        stderr.contains("reports kept in the queue directory from an earlier run"),
        "{stderr}"
    );

    // Delivered reports leave the directory: a later start sends none again.
    eventually("the queue directory emptied", async || {
        let queued = queued_reports(&dir).map_err(|e| e.to_string())?;
        if queued.is_empty() {
            Ok(())
        } else {
            Err(format!("{} still queued", queued.len()))
        }
    })
    .await;
    let mut agent = agent;
    agent.terminate();
    let finished = agent.finished().await;
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_no_panic(&finished.stderr);
    let farewell = finished
        .stderr
        .lines()
        .find(|line| line.contains("agent stopped"))
        .unwrap_or_else(|| panic!("no farewell:\n{}", finished.stderr));
    assert_eq!(field(farewell, "dropped"), 0, "{farewell}");

    // None twice: everything stored came from the restarted agent (the
    // first delivered nothing), each report once; it sent no more than that
    // (the server would take a report sent again as a duplicate).
    let stored = client.export(DEVICE, None, None).await.expect("export");
    let times: HashSet<_> = stored.iter().map(|r| r.last_seen).collect();
    assert_eq!(times.len(), stored.len(), "none stored twice");
    assert!(left_times.is_subset(&times));
    assert_eq!(
        field(farewell, "sent"),
        stored.len() as u64,
        "each report sent once: {farewell}"
    );
    let _ = std::fs::remove_dir_all(&dir);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_agent_on_the_same_directory_refuses_to_start() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("queue-dir-shared-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("http://127.0.0.1:{}/api/metrics", free_port());
    let first = start_agent(&url, &dir);
    first.stderr_line_containing("agent started").await;

    let second = start_agent(&url, &dir).finished().await;
    assert!(!second.status.success(), "{}", second.stderr);
    assert!(
        second.stderr.contains("TAILMON_QUEUE_DIR")
            && second.stderr.contains("another process holds it"),
        "{}",
        second.stderr
    );
    assert_no_panic(&second.stderr);
    first.stop_cleanly("agent stopped").await;

    // A path that cannot be a directory: refused at start, naming it.
    let file = dir.join("lock");
    let refused = start_agent(&url, &file).finished().await;
    assert!(!refused.status.success(), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains(&format!("queue directory {}", file.display())),
        "{}",
        refused.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
