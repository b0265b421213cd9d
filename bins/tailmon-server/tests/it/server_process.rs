//! Starting the server binary and finding it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tailmon_client::Client;
use tailmon_testkit::{RunningBinary, clean_command};

/// A fresh directory for one test's server state under Cargo's scratch space,
/// also used as its working directory so nothing lands in the source tree.
pub(crate) fn scratch_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tailmon-server-bin-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Starts the binary on 127.0.0.1:0 with `extra` arguments and `env`.
pub(crate) fn start_server(test: &str, extra: &[&str], env: &[(&str, &str)]) -> RunningBinary {
    start_in(&scratch_dir(test), extra, env)
}

/// Starts the binary on 127.0.0.1:0 with its state in `dir/data`, keeping
/// whatever is there (for restarts). Unless `extra` says otherwise, with
/// authentication and the per-address rate limit off: the tests that need
/// them (`auth_binary`) turn them on.
pub(crate) fn start_in(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> RunningBinary {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command
        .current_dir(dir)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"));
    if !extra.contains(&"--auth") {
        command.args(["--auth", "none"]);
    }
    if !extra.contains(&"--rate-limit-per-address") {
        command.args(["--rate-limit-per-address", "0"]);
    }
    command.args(extra).envs(env.iter().copied());
    RunningBinary::start(&mut command)
}

/// The address the server announced in its startup line (`address=…`).
pub(crate) async fn announced_address(server: &RunningBinary) -> SocketAddr {
    let line = server.stderr_line_containing(" address=").await;
    assert!(
        !line.contains('\x1b'),
        "no ANSI colours when stderr is not a terminal: {line:?}"
    );
    let (_, rest) = line.split_once(" address=").expect("found above");
    let address = rest.split_whitespace().next().unwrap_or_default();
    let address: SocketAddr = address
        .parse()
        .unwrap_or_else(|e| panic!("address {address:?} in {line:?}: {e}"));
    assert!(address.ip().is_loopback(), "{address}");
    assert_ne!(address.port(), 0, "the real port is announced, not 0");
    address
}

pub(crate) fn client_of(address: SocketAddr) -> Client {
    Client::builder(format!("http://{address}"))
        .build()
        .expect("valid URL")
}
