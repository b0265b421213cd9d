//! The systemd unit shipped in `packaging/systemd/` is one systemd accepts
//! (`systemd-analyze verify`), pointed at this very binary.

#[test]
fn the_packaged_unit_verifies() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/systemd/tailmon-server.service");
    let text = std::fs::read_to_string(&unit).expect("the packaged unit");
    assert!(text.contains("ExecStart=/usr/local/bin/tailmon-server\n"));
    assert!(text.contains("Environment=TAILMON_DATA_DIR=/var/lib/tailmon\n"));
    let Ok(version) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("no systemd-analyze here; only the unit's text was checked");
        return;
    };
    assert!(version.status.success());
    // verify checks that ExecStart names an executable: this one.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("systemd-unit-server");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let local = dir.join("tailmon-server.service");
    std::fs::write(
        &local,
        text.replace(
            "/usr/local/bin/tailmon-server",
            env!("CARGO_BIN_EXE_tailmon-server"),
        ),
    )
    .expect("write");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .expect("run systemd-analyze");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
