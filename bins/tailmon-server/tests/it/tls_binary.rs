//! The server binary over HTTPS: `--tls-cert` and `--tls-key` (or their
//! environment variables), and clear refusals of incomplete or unusable
//! TLS settings.

use tailmon_client::Client;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_testkit::{Finished, RunningBinary, TestCertificates, assert_no_panic, clean_command};

use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, scratch_dir, start_server};

fn certificates(test: &str) -> TestCertificates {
    TestCertificates::generate(&scratch_dir(test).join("certs"))
}

/// Runs the binary with `args` and `env` to completion.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory",
            "--no-local-agent",
        ])
        .args(args)
        .envs(env.iter().copied());
    RunningBinary::start(&mut command).finished().await
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_given_certificate() {
    let certs = certificates("tls-serves");
    let server = start_server(
        "tls-serves-run",
        &[
            "--store",
            "memory",
            "--no-local-agent",
            "--tls-cert",
            path(&certs.cert_path),
            "--tls-key",
            path(&certs.key_path),
        ],
        &[],
    );
    let address = announced_address(&server).await;
    let line = server.stderr_line_containing(" address=").await;
    assert!(line.contains(&format!("https://{address}/")), "{line}");

    let client = Client::builder(format!("https://{address}"))
        .ca_cert_file(&certs.ca_path)
        .build()
        .expect("valid client");
    let mut report = Report::new("tls-binary-host", OffsetDateTime::now_utc());
    report.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
    report.cpu_usage = 3.5;
    report.ram_used_mb = 100;
    report.ram_total_mb = 200;
    client
        .send(&report)
        .await
        .expect("report accepted over TLS");
    let devices = client.all_metrics().await.expect("read back over TLS");
    let ids: Vec<&str> = devices.iter().map(|d| d.device_id.as_str()).collect();
    assert_eq!(ids, ["tls-binary-host"]);

    let plain = Client::builder(format!("http://{address}"))
        .build()
        .expect("valid client");
    assert!(
        plain.all_metrics().await.is_err(),
        "plain HTTP is not served"
    );

    stop_cleanly(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_form_works_too() {
    let certs = certificates("tls-env");
    let server = start_server(
        "tls-env-run",
        &["--store", "memory", "--no-local-agent"],
        &[
            ("TAILMON_TLS_CERT", path(&certs.cert_path)),
            ("TAILMON_TLS_KEY", path(&certs.key_path)),
        ],
    );
    let address = announced_address(&server).await;
    let client = Client::builder(format!("https://{address}"))
        .ca_cert_pem(certs.ca_pem.as_bytes())
        .build()
        .expect("valid client");
    assert!(client.all_metrics().await.expect("over TLS").is_empty());
    stop_cleanly(server).await;
}

#[tokio::test]
async fn a_bad_key_path_is_refused_with_a_message() {
    let certs = certificates("tls-bad-key");
    let refused = run(
        &[
            "--tls-cert",
            path(&certs.cert_path),
            "--tls-key",
            "/nonexistent/tailmon-key.pem",
        ],
        &[],
    )
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    for needle in [
        "--tls-key",
        "cannot read the private key file /nonexistent/tailmon-key.pem",
    ] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    assert_no_panic(&refused.stderr);
}

#[tokio::test]
async fn a_key_that_is_not_the_certificates_is_refused() {
    let certs = certificates("tls-other-key");
    let refused = run(
        &[
            "--tls-cert",
            path(&certs.cert_path),
            "--tls-key",
            path(&certs.other_key_path),
        ],
        &[],
    )
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        refused.stderr.contains("does not match the certificate"),
        "{}",
        refused.stderr
    );
    assert_no_panic(&refused.stderr);
}

#[tokio::test]
async fn a_certificate_without_its_key_is_refused() {
    let certs = certificates("tls-half");
    let refused = run(&["--tls-cert", path(&certs.cert_path)], &[]).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(refused.stderr.contains("--tls-key"), "{}", refused.stderr);
    assert_no_panic(&refused.stderr);

    let refused = run(&[], &[("TAILMON_TLS_KEY", path(&certs.key_path))]).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(refused.stderr.contains("--tls-cert"), "{}", refused.stderr);
    assert_no_panic(&refused.stderr);
}
