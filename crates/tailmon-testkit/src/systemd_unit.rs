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

/// The unit's overall exposure level as `systemd-analyze security
/// --offline=yes` rates it (0 safest, 10 most exposed), for a unit already
/// checked by [`verify_systemd_unit`] with the same `scratch` (whose copy
/// names a binary that exists). `None` where no `systemd-analyze` can rate
/// a unit file (before systemd 250).
pub fn systemd_exposure(unit: &Path, scratch: &Path) -> Option<f64> {
    let local = scratch.join(unit.file_name().expect("a unit file name"));
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&local)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "systemd-analyze security --offline=yes is not available here: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let said = String::from_utf8_lossy(&out.stdout);
    let line = said
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    let (_, rest) = line.split_once(": ").expect("level after a colon");
    let level = rest.split_whitespace().next().expect("a number");
    Some(level.parse().unwrap_or_else(|e| panic!("{level:?}: {e}")))
}

/// Whether `text` (a unit file) has `directive` as a whole line, e.g.
/// `"ProtectSystem=strict"`.
pub fn unit_has_line(text: &str, directive: &str) -> bool {
    text.lines().any(|line| line.trim() == directive)
}
