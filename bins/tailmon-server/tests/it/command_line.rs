//! The server binary's command line: help, version, and refused settings.

use std::net::TcpListener;

use tailmon_testkit::{Finished, RunningBinary, assert_no_panic, clean_command};

/// Runs the binary with `args` to completion.
async fn run(args: &[&str]) -> Finished {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command.current_dir(env!("CARGO_TARGET_TMPDIR")).args(args);
    RunningBinary::start(&mut command).finished().await
}

#[tokio::test]
async fn help_names_every_flag_and_its_environment_variable() {
    let help = run(&["--help"]).await;
    assert!(help.status.success(), "{help:?}");
    for name in [
        "--listen",
        "--data-dir",
        "--no-local-agent",
        "TAILMON_LISTEN",
        "TAILMON_DATA_DIR",
    ] {
        assert!(
            help.stdout.contains(name),
            "--help lacks {name}:\n{}",
            help.stdout
        );
    }
}

#[tokio::test]
async fn version_prints_the_package_version() {
    let version = run(&["--version"]).await;
    assert!(version.status.success(), "{version:?}");
    assert!(
        version.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        version.stdout
    );
}

#[tokio::test]
async fn a_bad_listen_address_is_refused_with_a_message() {
    let refused = run(&["--listen", "not-an-address"]).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(refused.stderr.contains("--listen"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not-an-address"),
        "{}",
        refused.stderr
    );
    assert_no_panic(&refused.stderr);
}

#[tokio::test]
async fn an_address_in_use_is_refused_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = taken.local_addr().expect("local addr").to_string();
    let refused = run(&[
        "--no-local-agent",
        "--store",
        "memory",
        "--listen",
        &address,
    ])
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        refused.stderr.contains(&format!("listening on {address}")),
        "{}",
        refused.stderr
    );
    assert_no_panic(&refused.stderr);
    drop(taken);
}
