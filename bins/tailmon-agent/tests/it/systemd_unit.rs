//! The systemd unit shipped in `packaging/systemd/` is one systemd accepts
//! (`systemd-analyze verify`), pointed at this very binary.

use std::path::Path;

#[test]
fn the_packaged_unit_verifies() {
    let text = tailmon_testkit::verify_systemd_unit(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../packaging/systemd/tailmon-agent.service"),
        "/usr/local/bin/tailmon-agent",
        Path::new(env!("CARGO_BIN_EXE_tailmon-agent")),
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("systemd-unit-agent"),
    );
    assert!(
        text.contains("EnvironmentFile=/etc/tailmon/agent.env\n"),
        "{text}"
    );
}
