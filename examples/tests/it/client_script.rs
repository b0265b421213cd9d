//! `client_script` lists the devices of the default secure server with a
//! read-only `TAILMON_TOKEN` and `TAILMON_CA_CERT`.

use std::sync::Arc;
use tailmon_core::{OffsetDateTime, Report};

use tailmon_server::ManualClock;
use tailmon_server::auth::NewToken;
use tailmon_testkit::{RunningBinary, clean_command};

use crate::example_binary::example_binary;
use crate::secure_server::SecureServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_devices_with_a_read_token_and_a_private_ca() {
    let now = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(now - time::Duration::minutes(5)));
    let server = SecureServer::start_with_clock("client-script", clock.clone()).await;
    // A device that stopped reporting five minutes ago.
    let mut gone = Report::new("db-2", now - time::Duration::minutes(5));
    gone.ram_used_mb = 1024;
    gone.ram_total_mb = 4096;
    server.ingest.ingest(gone).await.unwrap();
    clock.set(now);
    let mut report = Report::new("web-1", now);
    report.cpu_usage = 72.5;
    report.ram_used_mb = 2048;
    report.ram_total_mb = 8192;
    server.ingest.ingest(report).await.unwrap();
    let token = server.token(NewToken::read("script"));
    let example = RunningBinary::start(
        clean_command(example_binary("client_script").to_str().unwrap())
            .env("TAILMON_SERVER_URL", &server.url)
            .env("TAILMON_TOKEN", token)
            .env("TAILMON_CA_CERT", &server.ca_cert),
    );
    let finished = example.finished().await;
    assert!(finished.status.success(), "{}", finished.stderr);
    let lines: Vec<&str> = finished.stdout.lines().collect();
    assert!(lines[0].starts_with("DEVICE"), "{}", finished.stdout);
    // Sorted by device id; the status is the server's.
    let fields: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &fields[..6],
        ["db-2", "offline", "0.0", "1024", "/", "4096"]
    );
    assert!(lines[1].ends_with("(offline since then)"), "{}", lines[1]);
    let fields: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        &fields[..6],
        ["web-1", "warning", "72.5", "2048", "/", "8192"]
    );
}
