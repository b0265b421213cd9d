//! The systemd unit shipped in `packaging/systemd/` is one systemd accepts
//! (`systemd-analyze verify`), pointed at this very binary, and hardened
//! while still reading the host's /proc and /sys.

use std::path::{Path, PathBuf};

use tailmon_testkit::{systemd_exposure, unit_has_line, verify_systemd_unit};

fn unit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd/tailmon-agent.service")
}

/// (Each test its own `scratch`: tests run at once.)
fn verified_unit(scratch: &str) -> (String, PathBuf) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(scratch);
    let text = verify_systemd_unit(
        &unit(),
        "/usr/local/bin/tailmon-agent",
        Path::new(env!("CARGO_BIN_EXE_tailmon-agent")),
        &scratch,
    );
    (text, scratch)
}

#[test]
fn the_packaged_unit_verifies() {
    let (text, _) = verified_unit("systemd-unit-agent");
    assert!(
        text.contains("EnvironmentFile=/etc/tailmon/agent.env\n"),
        "{text}"
    );
}

#[test]
fn the_unit_is_hardened_and_still_reads_proc_and_sys() {
    let (text, scratch) = verified_unit("systemd-unit-agent-hardening");
    for directive in [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit_has_line(&text, directive), "missing {directive}");
    }
    // The heaviest processes, CPU, disks and sensors come from /proc and
    // /sys: neither may be hidden nor cut down.
    for forbidden in [
        "ProtectProc=",
        "ProcSubset=",
        "InaccessiblePaths=",
        "StateDirectory=",
    ] {
        assert!(
            !text.lines().any(|l| l.starts_with(forbidden)),
            "{forbidden} in the unit"
        );
    }
    if let Some(exposure) = systemd_exposure(&unit(), &scratch) {
        assert!(
            exposure <= 2.0,
            "systemd-analyze security rates it {exposure}"
        );
    }
}
