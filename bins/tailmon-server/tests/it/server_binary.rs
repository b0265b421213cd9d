//! The server binary serving: the in-process agent, `--no-local-agent`, and a
//! clean stop on SIGTERM.

use tailmon_core::{OffsetDateTime, Report};

use tailmon_testkit::RunningBinary;
use tailmon_testkit::eventually;

use crate::server_process::{announced_address, client_of, start_server};

/// SIGTERM, then a clean exit with status 0.
pub(crate) async fn stop_cleanly(server: RunningBinary) {
    server.stop_cleanly("server stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitors_its_own_host_and_stops_on_sigterm() {
    let server = start_server(
        "local-agent",
        &[],
        &[
            ("TAILMON_INTERVAL", "1"),
            ("TAILMON_DEVICE_ID", "bin-test-host"),
        ],
    );
    let client = client_of(announced_address(&server).await);

    let device = eventually("device bin-test-host listed", async || {
        let devices = client.all_metrics().await.map_err(|e| e.to_string())?;
        devices
            .iter()
            .find(|d| d.device_id == "bin-test-host")
            .cloned()
            .ok_or_else(|| format!("devices {devices:?}; stderr:\n{}", server.stderr()))
    })
    .await;

    // Shapes, not this machine's values.
    assert!(device.ram_total_mb > 0, "{device:?}");
    assert!(device.ram_used_mb <= device.ram_total_mb, "{device:?}");
    assert!((0.0..=100.0).contains(&device.cpu_usage), "{device:?}");
    assert!(!device.os_info.trim().is_empty(), "{device:?}");
    let received_at = device.received_at.expect("the server stamps receipt");
    assert!(received_at <= OffsetDateTime::now_utc(), "{device:?}");
    assert_eq!(
        client.all_metrics().await.expect("list").len(),
        1,
        "only this host reports"
    );

    stop_cleanly(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_agent_lists_only_what_was_posted() {
    // The environment form the README documents, with a fast interval the
    // local agent would have used.
    let server = start_server(
        "no-local-agent",
        &[],
        &[
            ("TAILMON_NO_LOCAL_AGENT", "1"),
            ("TAILMON_INTERVAL", "0.2"),
            ("TAILMON_DEVICE_ID", "bin-test-host"),
        ],
    );
    let client = client_of(announced_address(&server).await);
    server.stderr_line_containing("local agent disabled").await;
    assert!(!server.stderr().contains("monitoring this host in-process"));

    let mut report = Report::new("posted-by-test", OffsetDateTime::now_utc());
    report.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
    report.cpu_usage = 12.5;
    report.ram_used_mb = 1024;
    report.ram_total_mb = 4096;
    client.send(&report).await.expect("report accepted");

    let devices = client.all_metrics().await.expect("list devices");
    let ids: Vec<&str> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["posted-by-test"], "the host must not report itself");
    let stored = &devices[0];
    assert_eq!(stored.os_info, report.os_info);
    assert_eq!(stored.cpu_usage, 12.5);
    assert_eq!((stored.ram_used_mb, stored.ram_total_mb), (1024, 4096));
    assert!(stored.received_at.is_some());

    stop_cleanly(server).await;
}
