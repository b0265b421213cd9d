//! `--store prometheus`: the binary keeps reports in a real engine
//! (Prometheus and VictoriaMetrics, started by `tailmon_testkit::Engine`)
//! and reads them back, across a restart of the server.

use tailmon_core::{HistoryQuery, OffsetDateTime, Report};
use tailmon_testkit::{Engine, EngineKind, RunningBinary, assert_no_panic, clean_command};

use crate::server_process::{announced_address, client_of, scratch_dir, start_in};

/// The remote store with both of its URLs (nothing listens there).
pub(crate) const URLS: [&str; 6] = [
    "--store",
    "prometheus",
    "--remote-write-url",
    "http://127.0.0.1:9/api/v1/write",
    "--query-url",
    "http://127.0.0.1:9",
];

#[tokio::test]
async fn check_config_refuses_prometheus_without_both_urls() {
    let dir = scratch_dir("remote-check-config");
    let run = |args: Vec<&'static str>| {
        let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
        command.current_dir(&dir).args(args);
        async move {
            let finished = RunningBinary::start(&mut command).finished().await;
            assert_no_panic(&finished.stderr);
            finished
        }
    };
    let missing = run(vec!["--store", "prometheus", "--check-config"]).await;
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    for key in ["remote_write_url", "query_url"] {
        assert!(missing.stderr.contains(key), "{key}: {}", missing.stderr);
    }
    let half = run(vec![
        "--store",
        "prometheus",
        "--remote-write-url",
        "http://127.0.0.1:9/api/v1/write",
        "--check-config",
    ])
    .await;
    assert_eq!(half.status.code(), Some(2), "{half:?}");
    assert!(half.stderr.contains("query_url"), "{}", half.stderr);
    assert!(
        !half.stderr.contains("remote_write_url ("),
        "{}",
        half.stderr
    );
    let bad_header = run([
        URLS.as_slice(),
        &["--remote-header", "no colon here", "--check-config"],
    ]
    .concat())
    .await;
    assert_eq!(bad_header.status.code(), Some(2), "{bad_header:?}");
    assert!(
        bad_header.stderr.contains("remote_header"),
        "{}",
        bad_header.stderr
    );
    let both = run([
        URLS.as_slice(),
        &[
            "--remote-header",
            "X-Scope-OrgID: acme",
            "--remote-tenant-header",
            "x-scope-orgid",
            "--check-config",
        ],
    ]
    .concat())
    .await;
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    assert!(
        both.stderr.contains("remote_tenant_header"),
        "{}",
        both.stderr
    );
    let whole = run([
        URLS.as_slice(),
        &["--remote-header", "X-Scope-OrgID: acme", "--check-config"],
    ]
    .concat())
    .await;
    assert_eq!(whole.status.code(), Some(0), "{whole:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_reach_the_engine_and_outlive_the_server() {
    for kind in EngineKind::ALL {
        let Some(engine) = Engine::start(kind).await else {
            continue;
        };
        let dir = scratch_dir(&format!("remote-{}", kind.name()));
        // Engines on loopback ask for no credentials and have no tenants:
        // the token file and headers go along unread, which is enough to
        // see them accepted.
        std::fs::write(dir.join("token"), "s3cret\n").unwrap();
        let (write_url, query_url) = (engine.remote_write_url(), engine.query_url());
        let args = [
            "--store",
            "prometheus",
            "--remote-write-url",
            write_url.as_str(),
            "--query-url",
            query_url.as_str(),
            "--remote-bearer-token-file",
            "token",
            "--remote-header",
            "X-Environment: test",
            "--remote-tenant-header",
            "X-Scope-OrgID",
            "--no-local-agent",
        ];
        let mut server = start_in(&dir, &args, &[]);
        let client = client_of(announced_address(&server).await);
        let at =
            OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::minutes(5);
        let mut report = Report::new("remote-host", at);
        report.os_info = "Debian 12".into();
        report.cpu_usage = 42.5;
        report.ram_used_mb = 100;
        report.ram_total_mb = 200;
        client.send(&report).await.unwrap();
        engine.flush().await;
        let query = HistoryQuery::new(
            "remote-host",
            "cpu_usage",
            at - time::Duration::minutes(1),
            at + time::Duration::minutes(1),
        );
        let history = client.history(&query).await.unwrap();
        let points: Vec<(OffsetDateTime, f64)> =
            history.points.iter().map(|p| (p.at, p.avg)).collect();
        assert_eq!(points, [(at, 42.5)], "{kind:?}");

        // A new server over the same engine knows the device at once.
        server.terminate();
        let finished = server.finished().await;
        assert_no_panic(&finished.stderr);
        let server = start_in(&dir, &args, &[]);
        let client = client_of(announced_address(&server).await);
        let devices = client.devices().await.unwrap();
        assert_eq!(devices.len(), 1, "{kind:?}: {devices:?}");
        assert_eq!(devices[0].report.cpu_usage, 42.5, "{kind:?}");
        let exported = client.export("remote-host", None, None).await.unwrap();
        assert_eq!(exported.len(), 1, "{kind:?}");
        assert_eq!(exported[0].os_info, "Debian 12", "{kind:?}");
    }
}
