//! The examples' binaries, as cargo builds them beside this test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The example `name`'s binary, up to date: the examples are built once
/// per test run (`cargo test` builds them before the tests, unless told
/// `--test it`; then the build here does it, else it finds nothing to do).
pub(crate) fn example_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "tailmon-examples", "--examples"])
            .status()
            .expect("running cargo");
        assert!(status.success(), "building the examples: {status}");
    });
    // This test runs as target/<profile>/deps/it-<hash>; examples are in
    // target/<profile>/examples.
    let exe = std::env::current_exe().expect("the test's own path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/it-<hash>")
        .join("examples")
        .join(name);
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}
