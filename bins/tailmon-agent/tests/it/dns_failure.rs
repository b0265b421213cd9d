//! The real agent binary through a DNS failure that is mended while it
//! runs: its server's name does not resolve, then does. The agent runs in
//! a mount namespace of its own (`unshare --mount`) whose `/etc/hosts` is a
//! file of the test's, bind-mounted; the C library reads that file at each
//! lookup, so adding the name to it mends "DNS" for the agent alone. The
//! reports collected meanwhile, kept in the agent's memory queue, all
//! arrive once.
//!
//! Mounting takes root (or a user namespace). Under `CI=true` the test
//! must run; elsewhere it is skipped, saying why, where it cannot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tailmon_client::Client;
use tailmon_core::OffsetDateTime;
use tailmon_testkit::{RunningBinary, assert_no_panic, clean_command, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::in_process_server::InProcessServer;

const DEVICE: &str = "agent-dns-test";
/// The server's name, which resolves only once the test says so.
const SERVER_NAME: &str = "tailmon-dns-test.invalid";
const INTERVAL: Duration = Duration::from_millis(250);
/// Reports collected while the name does not resolve.
const OUTAGE: Duration = Duration::from_millis(2_500);

/// The script that runs the agent (`$2`) with the file `$1` as its
/// `/etc/hosts`, inside `unshare --mount`.
const WITH_HOSTS_FILE: &str = r#"mount --bind "$1" /etc/hosts && exec "$2""#;

/// Checks a private `/etc/hosts` can be given to a process here.
fn private_hosts_file_works(hosts: &Path) -> Result<(), String> {
    let output = Command::new("unshare")
        .args(["--mount", "sh", "-c", WITH_HOSTS_FILE, "sh"])
        .arg(hosts)
        .arg("true")
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "unshare --mount with a bind mount failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `GET /metrics` from the agent's own listener: the body.
async fn agent_metrics(port: u16) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

/// The `last_seen` of the agent's latest report, from its `/metrics`.
async fn latest_collected(port: u16) -> Result<f64, String> {
    let body = agent_metrics(port).await?;
    body.lines()
        .find(|l| l.starts_with("tailmon_last_seen_timestamp_seconds{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no last_seen yet:\n{body}"))
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    probe.local_addr().expect("local addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_collected_while_the_name_does_not_resolve_arrive_once_it_does() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("agent-dns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n::1 localhost\n").expect("hosts file");
    if let Err(why) = private_hosts_file_works(&hosts) {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("CI=true: this test must run, but {why}");
        }
        eprintln!("skipped: {why}; run as root, or with CI=true to fail instead");
        return;
    }

    let server = InProcessServer::start_answering_to(SERVER_NAME).await;
    let server_port = server.port();
    let metrics_port = free_port();
    let mut command = clean_command("unshare");
    command
        .args(["--mount", "sh", "-c", WITH_HOSTS_FILE, "sh"])
        .arg(&hosts)
        .arg(env!("CARGO_BIN_EXE_tailmon-agent"))
        .current_dir(&dir)
        .env(
            "TAILMON_SERVER_URL",
            format!("http://{SERVER_NAME}:{server_port}/api/metrics"),
        )
        .env("TAILMON_INTERVAL", INTERVAL.as_secs_f64().to_string())
        .env("TAILMON_COLLECTORS", "none")
        .env("TAILMON_DEVICE_ID", DEVICE)
        .env(
            "TAILMON_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        );
    let mut agent = RunningBinary::start(&mut command);

    // The name does not resolve: said so, and the reports are kept.
    let line = agent.stderr_line_containing("does not resolve (DNS)").await;
    assert!(line.contains(SERVER_NAME), "{line}");
    let failed_at = OffsetDateTime::now_utc();
    let first = eventually("the agent's latest report", async || {
        latest_collected(metrics_port).await
    })
    .await;
    eventually(
        "reports collected while the name does not resolve",
        async || {
            let latest = latest_collected(metrics_port).await?;
            if latest >= first + OUTAGE.as_secs_f64() {
                Ok(())
            } else {
                Err(format!("latest report at {latest}, first at {first}"))
            }
        },
    )
    .await;

    // DNS mended: the name resolves (the same file, written in place).
    std::fs::OpenOptions::new()
        .append(true)
        .open(&hosts)
        .and_then(|mut f| writeln!(f, "127.0.0.1 {SERVER_NAME}"))
        .expect("add the name");
    let mended_at = OffsetDateTime::now_utc();
    let recovered = agent.stderr_line_containing("delivery recovered").await;
    let client = Client::builder(server.base_url()).build().expect("client");
    let history = eventually("reports flowing after the fix", async || {
        let history = client
            .export(DEVICE, None, None)
            .await
            .map_err(|e| e.to_string())?;
        let after = history.iter().filter(|r| r.last_seen > mended_at).count();
        if after >= 2 {
            Ok(history)
        } else {
            Err(format!("{} stored, {after} since the fix", history.len()))
        }
    })
    .await;
    agent.terminate();
    let stderr = agent.finished().await.stderr;
    assert_no_panic(&stderr);

    // Every report collected is stored once: from the first, collected
    // before the first failure, with no duplicate and no gap (the agent
    // collects on a fixed grid, so a missing report leaves a gap of two
    // intervals; under 1.5 means none is missing).
    let times: Vec<OffsetDateTime> = history.iter().map(|r| r.last_seen).collect();
    assert!(times.is_sorted(), "in time order");
    let mut distinct = times.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), times.len(), "no report twice");
    assert!(
        times[0] <= failed_at,
        "the first report collected is stored"
    );
    let most = INTERVAL.as_secs_f64() * 1.5;
    for pair in times.windows(2) {
        assert!(
            (pair[1] - pair[0]).as_seconds_f64() < most,
            "a gap of {} after {}; recovered: {recovered}",
            pair[1] - pair[0],
            pair[0]
        );
    }
    let in_outage = times.iter().filter(|t| **t < mended_at).count();
    assert!(in_outage >= 10, "{in_outage} reports from the outage");
    assert!(recovered.contains("sent_from_queue="), "{recovered}");
    eprintln!(
        "{in_outage} reports collected while the name did not resolve, all stored once; {recovered}"
    );
}
