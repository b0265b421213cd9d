//! The systemd unit shipped in `packaging/systemd/` is one systemd accepts
//! (`systemd-analyze verify`), pointed at this very binary.

use std::path::Path;

#[test]
fn the_packaged_unit_verifies() {
    let text = tailmon_testkit::verify_systemd_unit(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../packaging/systemd/tailmon-server.service"),
        "/usr/local/bin/tailmon-server",
        Path::new(env!("CARGO_BIN_EXE_tailmon-server")),
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("systemd-unit-server"),
    );
    assert!(
        text.contains("Environment=TAILMON_DATA_DIR=/var/lib/tailmon\n"),
        "{text}"
    );
}
