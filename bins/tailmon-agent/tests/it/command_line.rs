//! The agent binary's command line: help and refused settings.

use tailmon_testkit::{Finished, RunningBinary, assert_no_panic, clean_command};

/// Runs the binary with `env` to completion; `args` are passed as given.
async fn run(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-agent"));
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .args(args)
        .envs(env.iter().copied());
    RunningBinary::start(&mut command).finished().await
}

#[tokio::test]
async fn help_names_every_environment_variable() {
    let help = run(&["--help"], &[]).await;
    assert!(help.status.success(), "{help:?}");
    for name in [
        "TAILMON_SERVER_URL",
        "TAILMON_INTERVAL",
        "TAILMON_DEVICE_ID",
        "TAILMON_TOKEN",
        "TAILMON_CA_CERT",
    ] {
        assert!(
            help.stdout.contains(name),
            "--help lacks {name}:\n{}",
            help.stdout
        );
    }
}

#[tokio::test]
async fn a_zero_interval_is_refused() {
    let refused = run(&[], &[("TAILMON_INTERVAL", "0")]).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(refused.stderr.contains("interval"), "{}", refused.stderr);
    assert_no_panic(&refused.stderr);
}

#[tokio::test]
async fn a_server_url_that_is_not_http_is_refused() {
    let refused = run(
        &[],
        &[("TAILMON_SERVER_URL", "ftp://127.0.0.1/api/metrics")],
    )
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        refused.stderr.contains("TAILMON_SERVER_URL"),
        "{}",
        refused.stderr
    );
    assert_no_panic(&refused.stderr);
}

#[tokio::test]
async fn help_never_shows_the_token() {
    let help = run(&["--help"], &[("TAILMON_TOKEN", "agent-secret-value")]).await;
    assert!(help.status.success(), "{help:?}");
    assert!(help.stdout.contains("--token"), "{}", help.stdout);
    assert!(
        !help.stdout.contains("agent-secret-value"),
        "{}",
        help.stdout
    );
}

#[tokio::test]
async fn an_unreadable_ca_certificate_is_refused() {
    let refused = run(
        &["--ca-cert", "/nonexistent/tailmon-ca.pem"],
        &[("TAILMON_TOKEN", "agent-secret-value")],
    )
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("cannot read the CA certificate file /nonexistent/tailmon-ca.pem"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains("agent-secret-value"),
        "{}",
        refused.stderr
    );
    assert_no_panic(&refused.stderr);
}
