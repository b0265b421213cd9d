//! The data directory and everything in it are private to the server's
//! user, whatever the umask it was started with.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tailmon_testkit::{RunningBinary, clean_command};

use crate::server_process::{announced_address, scratch_dir};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The server binary under `umask 022`, as a service manager or a shell
/// commonly starts it, with its data in `data`.
fn start_with_umask_022(dir: &Path, data: &Path) -> RunningBinary {
    let mut command = clean_command("sh");
    command
        .current_dir(dir)
        .arg("-c")
        .arg(r#"umask 022; exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_tailmon-server"))
        .args(["--listen", "127.0.0.1:0", "--no-local-agent", "--data-dir"])
        .arg(data);
    RunningBinary::start(&mut command)
}

#[tokio::test]
async fn a_new_data_directory_and_its_files_are_private() {
    let dir = scratch_dir("private-data");
    let data = dir.join("data");
    let server = start_with_umask_022(&dir, &data);
    announced_address(&server).await;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for file in [
        "tailmon.db",
        "tailmon.db-wal",
        "tailmon.db-shm",
        "tailmon.lock",
        "auth.json",
        "auth.lock",
        "initial-admin-password",
    ] {
        let path = data.join(file);
        if file != "auth.lock" || path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert!(
        !server.stderr().contains("open to other users"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn an_existing_directory_open_to_others_is_warned_of() {
    let dir = scratch_dir("open-data");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = start_with_umask_022(&dir, &data);
    let line = server.stderr_line_containing("open to other users").await;
    assert!(line.contains("chmod 700"), "{line}");
    announced_address(&server).await;
    // The files it creates are private all the same.
    assert_eq!(mode(&data.join("tailmon.db")), 0o600);
}
