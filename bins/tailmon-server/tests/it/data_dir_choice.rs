//! Without `--data-dir`, the server finds a place it may write (systemd's
//! `$STATE_DIRECTORY`, `./tailmon-data`, then the user's state directory),
//! says which, and when there is none stops with one error that names the
//! fix. This is the original Tailmon's unit (`User=tailmon`, no data
//! directory, working directory `/`): it must run, not restart-loop.
//!
//! Tests run as root, whom no permission stops, so "a directory the server
//! may not write" is a path under a plain file: nobody can make that.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::path::Path;

use tailmon_testkit::{RunningBinary, assert_no_panic, clean_command};

use crate::server_process::{announced_address, scratch_dir};

/// The server started in `cwd` without `--data-dir`, with only `env` of
/// the variables the choice reads.
fn start_without_data_dir(cwd: &Path, env: &[(&str, &Path)]) -> RunningBinary {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command
        .current_dir(cwd)
        .env_remove("STATE_DIRECTORY")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--no-local-agent",
            "--auth",
            "none",
        ]);
    for (name, value) in env {
        command.env(name, value);
    }
    RunningBinary::start(&mut command)
}

/// A working directory where `./tailmon-data` cannot be made: its place is
/// taken by a plain file.
fn unwritable_working_directory(base: &Path) -> std::path::PathBuf {
    let cwd = base.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(cwd.join("tailmon-data"), b"not a directory").unwrap();
    cwd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_in_an_unwritable_directory_keeps_its_data_in_the_users_state_directory() {
    let base = scratch_dir("data-dir-user-state");
    let cwd = unwritable_working_directory(&base);
    let home = base.join("home");
    let server = start_without_data_dir(&cwd, &[("HOME", &home)]);
    let line = server.stderr_line_containing("data directory").await;
    let expected = home.join(".local/state/tailmon");
    assert!(
        line.contains(&format!("data_dir={}", expected.display())),
        "the absolute path is logged: {line}"
    );
    assert!(line.contains("user's state directory"), "{line}");
    announced_address(&server).await;
    assert!(
        expected.join("tailmon.db").is_file(),
        "the database is there"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xdg_state_home_is_preferred_to_home() {
    let base = scratch_dir("data-dir-xdg");
    let cwd = unwritable_working_directory(&base);
    let state = base.join("xdg-state");
    let server = start_without_data_dir(
        &cwd,
        &[("HOME", &base.join("home")), ("XDG_STATE_HOME", &state)],
    );
    let line = server.stderr_line_containing("data directory").await;
    assert!(
        line.contains(&format!("data_dir={}", state.join("tailmon").display())),
        "{line}"
    );
    announced_address(&server).await;
    assert!(state.join("tailmon/tailmon.db").is_file());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemds_state_directory_comes_before_the_working_directory() {
    let base = scratch_dir("data-dir-systemd");
    let state = base.join("var-lib-tailmon");
    let server = start_without_data_dir(&base, &[("STATE_DIRECTORY", &state)]);
    let line = server.stderr_line_containing("data directory").await;
    assert!(
        line.contains(&format!("data_dir={}", state.display())),
        "{line}"
    );
    assert!(line.contains("$STATE_DIRECTORY"), "{line}");
    announced_address(&server).await;
    assert!(state.join("tailmon.db").is_file());
    assert!(
        !base.join("tailmon-data").exists(),
        "nothing in the working directory"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_working_directory_is_used_when_it_can_be() {
    let base = scratch_dir("data-dir-cwd");
    let server = start_without_data_dir(&base, &[("HOME", &base.join("home"))]);
    let line = server.stderr_line_containing("data directory").await;
    assert!(
        line.contains(&format!("data_dir={}", base.join("tailmon-data").display())),
        "the absolute path, not ./tailmon-data: {line}"
    );
    announced_address(&server).await;
    assert!(base.join("tailmon-data/tailmon.db").is_file());
    assert!(!base.join("home").exists());
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nowhere_to_write_is_one_clear_error() {
    let base = scratch_dir("data-dir-nowhere");
    let cwd = unwritable_working_directory(&base);
    // $HOME under the plain file too: ~/.local/state cannot be made either.
    let home = cwd.join("tailmon-data/home");
    let finished = start_without_data_dir(&cwd, &[("HOME", &home)])
        .finished()
        .await;
    assert!(!finished.status.success());
    assert_no_panic(&finished.stderr);
    let stderr = finished.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(
        stderr.contains(&cwd.join("tailmon-data").display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains(&home.join(".local/state/tailmon").display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("--data-dir DIR"), "{stderr}");
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_may_not_write_credentials_into_a_services_data_directory() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("not root: nothing to check");
        return;
    }
    let base = scratch_dir("data-dir-admin-owner");
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The service's user: an id with no name, so the message shows it.
    let uid = 54_321;
    std::os::unix::fs::chown(&data, Some(uid), Some(uid)).unwrap();
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command
        .current_dir(&base)
        .args(["token", "create", "--name", "x", "--data-dir"])
        .arg(&data);
    let finished = RunningBinary::start(&mut command).finished().await;
    assert!(!finished.status.success(), "{}", finished.stdout);
    assert_no_panic(&finished.stderr);
    assert!(
        finished
            .stderr
            .contains(&format!("sudo -u '#{uid}' tailmon-server")),
        "{}",
        finished.stderr
    );
    assert!(!data.join("auth.json").exists(), "nothing written");
    // Owned by root (the user running it), the same command works.
    std::os::unix::fs::chown(&data, Some(0), Some(0)).unwrap();
    let finished = RunningBinary::start(&mut command).finished().await;
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(data.join("auth.json").exists());
}
