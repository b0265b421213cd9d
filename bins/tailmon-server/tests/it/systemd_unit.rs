//! The systemd unit shipped in `packaging/systemd/` is one systemd accepts
//! (`systemd-analyze verify`), pointed at this very binary, and hardened:
//! its own system user (made by the sysusers.d file beside it), only the
//! data directory writable, no privilege.

use std::path::{Path, PathBuf};

use tailmon_testkit::{systemd_exposure, unit_has_line, verify_systemd_unit};

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/systemd")
        .join(file)
}

/// The unit's text, verified; and the scratch directory of its copy.
/// (Each test its own `scratch`: tests run at once.)
fn verified_unit(scratch: &str) -> (String, PathBuf) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(scratch);
    let text = verify_systemd_unit(
        &packaging("tailmon-server.service"),
        "/usr/local/bin/tailmon-server",
        Path::new(env!("CARGO_BIN_EXE_tailmon-server")),
        &scratch,
    );
    (text, scratch)
}

#[test]
fn the_packaged_unit_verifies() {
    let (text, _) = verified_unit("systemd-unit-server");
    assert!(
        text.contains("Environment=TAILMON_DATA_DIR=/var/lib/tailmon\n"),
        "{text}"
    );
    assert!(
        text.contains("EnvironmentFile=-/etc/tailmon/server.env\n"),
        "{text}"
    );
    assert!(
        text.contains("ExecReload=/bin/kill -HUP $MAINPID\n"),
        "{text}"
    );
}

#[test]
fn the_unit_is_hardened_and_writes_only_its_data_directory() {
    let (text, scratch) = verified_unit("systemd-unit-server-hardening");
    for directive in [
        "User=tailmon",
        "StateDirectory=tailmon",
        "StateDirectoryMode=0700",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "RestrictNamespaces=yes",
        "RestrictSUIDSGID=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit_has_line(&text, directive), "missing {directive}");
    }
    // Nothing writable but the state directory (ProtectSystem=strict makes
    // the rest read-only), and the data directory is that one.
    for forbidden in [
        "ReadWritePaths=",
        "DynamicUser=",
        "ProtectProc=",
        "WorkingDirectory=",
    ] {
        assert!(
            !text.lines().any(|l| l.starts_with(forbidden)),
            "{forbidden} in the unit"
        );
    }
    if let Some(exposure) = systemd_exposure(&packaging("tailmon-server.service"), &scratch) {
        assert!(
            exposure <= 2.0,
            "systemd-analyze security rates it {exposure}"
        );
    }
}

#[test]
fn the_sysusers_file_makes_the_units_user() {
    let file = packaging("tailmon.sysusers");
    let text = std::fs::read_to_string(&file).expect("the sysusers.d file");
    assert!(
        text.lines()
            .any(|l| l.starts_with("u tailmon - ")
                && l.ends_with(" /var/lib/tailmon /usr/sbin/nologin")),
        "{text}"
    );
    // systemd-sysusers itself, into a scratch root: it makes the user and
    // its group, no login.
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sysusers-root");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("etc")).expect("scratch root");
    let Ok(out) = std::process::Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.display()))
        .arg(&file)
        .output()
    else {
        eprintln!("no systemd-sysusers here; only the file's text was checked");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    let user = passwd
        .lines()
        .find(|l| l.starts_with("tailmon:"))
        .unwrap_or_else(|| panic!("no tailmon user in:\n{passwd}"));
    assert!(
        user.ends_with(":/var/lib/tailmon:/usr/sbin/nologin"),
        "{user}"
    );
    let group = std::fs::read_to_string(root.join("etc/group")).expect("group");
    assert!(group.lines().any(|l| l.starts_with("tailmon:")), "{group}");
}
