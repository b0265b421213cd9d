//! The real thing: a server on 127.0.0.1:0, the real agent runtime and host
//! collector sending to it, and the typed client reading back.

use std::time::Duration;

use tailmon_client::{Agent, Client};
use tailmon_collect::HostCollector;
use tailmon_server::ServerBuilder;

use crate::support::{Running, report, within};
use tailmon_testkit::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reports_and_client_reads_back() {
    let running = Running::start(ServerBuilder::new().open_access().build().expect("valid")).await;
    let client = Client::builder(format!("{}/api/metrics", running.url()))
        .build()
        .expect("valid URL");
    let agent = Agent::builder(
        client.clone(),
        Box::new(HostCollector::new().expect("sysinfo")),
    )
    .device_id("e2e-host")
    .interval(Duration::from_millis(250))
    .warmup(Duration::from_millis(250))
    .build();
    let mut status = agent.status();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    // Two acknowledged reports: the agent keeps its cadence after a success.
    within(status.wait_for(|s| s.sent >= 2))
        .await
        .expect("agent alive");
    assert_eq!(status.borrow().failed, 0);

    let devices = client.all_metrics().await.expect("list devices");
    let device = devices
        .iter()
        .find(|d| d.device_id == "e2e-host")
        .expect("device listed");
    assert!(device.ram_total_mb > 0);
    assert!(device.ram_used_mb <= device.ram_total_mb);
    assert!((0.0..=100.0).contains(&device.cpu_usage));
    assert!(device.os_info.len() > 3, "{}", device.os_info);
    assert!(device.received_at.is_some());
    // The whole health picture crosses the wire and the server's validation.
    assert!(device.disks.as_ref().is_some_and(|d| !d.is_empty()));
    assert!(device.cpu_per_core.is_some() && device.networks.is_some());
    assert!(device.uptime_seconds.is_some() && device.top_processes.is_some());

    stop.send(()).expect("agent listening");
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("agent stops promptly")
        .expect("agent task did not panic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_carry_status_and_server_message() {
    let running = Running::start(
        ServerBuilder::new()
            .open_access()
            .max_devices(1)
            .build()
            .expect("valid"),
    )
    .await;
    let client = Client::builder(running.url()).build().expect("valid URL");
    client
        .send(&report("first", 1.0, 1))
        .await
        .expect("accepted");

    let error = client
        .send(&report("second", 1.0, 1))
        .await
        .expect_err("over the cap");
    assert!(error.is_status());
    assert_eq!(error.status(), Some(429));
    assert!(error.is_retryable());
    assert!(
        error
            .server_message()
            .unwrap_or_default()
            .contains("device limit")
    );

    let mut bad = report("first", 1.0, 1);
    bad.cpu_usage = 101.0;
    let error = client.send(&bad).await.expect_err("invalid");
    assert_eq!(error.status(), Some(422));
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("cpu_usage"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reports_an_unreachable_server_as_connect_error() {
    // A port nobody listens on: bind, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback")
        .port();
    let client = Client::builder(format!("http://127.0.0.1:{port}"))
        .build()
        .expect("valid URL");
    let error = client.all_metrics().await.expect_err("nothing listens");
    assert!(error.is_connect(), "{error:?}");
    assert!(error.is_connection_refused(), "{error:?}");
    assert!(error.is_retryable());
    assert!(!error.is_timeout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_retries_until_the_server_comes_up() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let client = Client::builder(format!("http://{addr}"))
        .build()
        .expect("valid URL");
    let agent = Agent::builder(
        client.clone(),
        Box::new(HostCollector::new().expect("sysinfo")),
    )
    .device_id("late-server")
    .interval(Duration::from_millis(250))
    .warmup(Duration::from_millis(250))
    .retry_base(Duration::from_millis(50))
    .max_backoff(Duration::from_millis(200))
    .build();
    let mut status = agent.status();
    let run = tokio::spawn(agent.run(std::future::pending()));

    within(status.wait_for(|s| s.consecutive_failures >= 3))
        .await
        .expect("agent alive");
    let server = ServerBuilder::new().open_access().build().expect("valid");
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the same port");
    tokio::spawn(server.serve(listener, std::future::pending()));

    within(status.wait_for(|s| s.sent >= 1))
        .await
        .expect("agent alive");
    assert_eq!(
        status.borrow().consecutive_failures,
        0,
        "back to normal cadence"
    );
    let devices = eventually("device listed", async || match client.all_metrics().await {
        Ok(devices) if !devices.is_empty() => Ok(devices),
        other => Err(format!("{other:?}")),
    })
    .await;
    assert_eq!(devices[0].device_id, "late-server");
    run.abort();
}
