//! Checks a packaged systemd unit with `systemd-analyze verify`.

use std::path::Path;
use std::process::Command;

/// Reads the unit at `unit`, checks it names `installed` (e.g.
/// `/usr/local/bin/tailmon-agent`) as its `ExecStart`, and, where
/// `systemd-analyze` exists, verifies a copy of it pointed at `built` (the
/// binary under test) in `scratch`, without a warning. The unit's text.
pub fn verify_systemd_unit(unit: &Path, installed: &str, built: &Path, scratch: &Path) -> String {
    let text = std::fs::read_to_string(unit).expect("the packaged unit");
    assert!(
        text.contains(&format!("ExecStart={installed}\n")),
        "{} does not start {installed}",
        unit.display()
    );
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("no systemd-analyze here; only the unit's text was checked");
        return text;
    };
    assert!(version.status.success());
    // verify checks that ExecStart names an executable: the one under test.
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).expect("scratch dir");
    let local = scratch.join(unit.file_name().expect("a unit file name"));
    let built = built.to_str().expect("a UTF-8 path");
    std::fs::write(&local, text.replace(installed, built)).expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .output()
        .expect("run systemd-analyze");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    text
}
