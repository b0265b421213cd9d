//! `tailmon-server backup` and `restore` through the real binary: a backup
//! taken while agents report restores into a fresh data directory, and the
//! server reads everything acknowledged before the backup began, with its
//! tokens and preferences; a restore refuses while a server runs and
//! refuses a damaged or foreign file without touching the data directory.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tailmon_client::Client;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_testkit::{assert_no_panic, clean_command};

use crate::auth_binary::{command, http};
use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, scratch_dir, start_in};

const DEVICES: usize = 3;

/// Runs `tailmon-server ARGS --data-dir DATA` to its end.
async fn run(data: &Path, args: &[&str]) -> Output {
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-server"));
    command.args(args).arg("--data-dir").arg(data);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_no_panic(&String::from_utf8_lossy(&output.stderr));
    output
}

fn report(device: &str, n: usize, start: OffsetDateTime) -> Report {
    let mut report = Report::new(
        device,
        start + time::Duration::milliseconds(i64::try_from(n).unwrap() * 10),
    );
    report.os_info = "Debian 12".into();
    report.cpu_usage = (n % 100) as f64;
    report.ram_used_mb = n as u64;
    report.ram_total_mb = 100_000;
    report
}

fn token_of(out: &str) -> String {
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("tmn_"), "{out}");
    token
}

/// Every file under `dir` (recursively) with its bytes and mode: what
/// "unchanged" means for a data directory.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::metadata(&path).unwrap();
            #[cfg(unix)]
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            #[cfg(not(unix))]
            let mode = 0;
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, (Vec::new(), mode));
            } else {
                out.insert(path.clone(), (std::fs::read(&path).unwrap(), mode));
            }
        }
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_and_reads() {
    let dir = scratch_dir("backup-load");
    let data = dir.join("data");
    // Credentials and preferences made before the backup must come back.
    let agent_token = token_of(&command(&data, &["token", "create", "--name", "load"], ""));
    let read_token = token_of(&command(&data, &["token", "create", "--read-only"], ""));
    let args = ["--auth", "required", "--no-local-agent"];
    let server = start_in(&dir, &args, &[]);
    let address = announced_address(&server).await;
    let read_auth = format!("Bearer {read_token}");
    let (status, _, body) = http(
        address,
        "PUT",
        "/api/v1/preferences",
        &[("Authorization", read_auth.as_str())],
        r#"{"theme":"light"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Probes need no credentials, even under --auth required.
    let (status, _, body) = http(address, "GET", "/readyz", &[], "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"status":"ready"}"#);

    // Agents report as fast as the server acknowledges, one task each.
    let start = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let acknowledged: Arc<Vec<AtomicUsize>> =
        Arc::new((0..DEVICES).map(|_| AtomicUsize::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut agents = Vec::new();
    for k in 0..DEVICES {
        let client = Client::builder(format!("http://{address}"))
            .token(agent_token.clone())
            .build()
            .unwrap();
        let (acknowledged, stop) = (Arc::clone(&acknowledged), Arc::clone(&stop));
        agents.push(tokio::spawn(async move {
            let device = format!("load-{k}");
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                if n % 10 == 9 {
                    let batch: Vec<Report> =
                        (n..n + 20).map(|i| report(&device, i, start)).collect();
                    client.send_batch(&batch).await.expect("batch acknowledged");
                    n += 20;
                } else {
                    client
                        .send(&report(&device, n, start))
                        .await
                        .expect("acknowledged");
                    n += 1;
                }
                acknowledged[k].store(n, Ordering::SeqCst);
            }
        }));
    }
    tailmon_testkit::eventually("agents under way", async || {
        let counts: Vec<usize> = acknowledged
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .collect();
        if counts.iter().all(|n| *n >= 200) {
            Ok(())
        } else {
            Err(format!("acknowledged so far: {counts:?}"))
        }
    })
    .await;

    let file = dir.join("tailmon.backup");
    let before: Vec<usize> = acknowledged
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    let output = run(&data, &["backup", file.to_str().unwrap()]).await;
    let after: Vec<usize> = acknowledged
        .iter()
        .map(|a| a.load(Ordering::SeqCst))
        .collect();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("the history of 3 device(s)"), "{stdout}");
    assert!(stdout.contains("auth.json"), "{stdout}");
    assert!(stdout.contains("preferences.json"), "{stdout}");
    assert!(stdout.contains("alerts.db"), "{stdout}");
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600, "the file holds the credentials' hashes");
    assert!(
        after.iter().zip(&before).any(|(a, b)| a > b),
        "the agents went on while the backup ran: {before:?} {after:?}"
    );

    // No restore under a running server.
    let output = run(&data, &["restore", file.to_str().unwrap()]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is running on"), "{stderr}");
    assert!(stderr.contains("systemctl stop"), "{stderr}");
    assert!(
        !data.join("pre-restore").exists()
            && std::fs::read_dir(&data).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("restor")),
        "nothing moved"
    );

    stop.store(true, Ordering::SeqCst);
    for agent in agents {
        agent.await.unwrap();
    }
    stop_cleanly(server).await;

    // Restored into a fresh data directory, the server reads it all.
    let fresh = scratch_dir("backup-load-restored");
    let restored = fresh.join("data");
    // Run as root into a service's directory, the files go to its owner.
    #[cfg(unix)]
    let service_user = {
        use std::os::unix::fs::MetadataExt;
        let as_root = std::fs::metadata(&fresh).unwrap().uid() == 0;
        if as_root {
            std::fs::create_dir(&restored).unwrap();
            std::fs::set_permissions(
                &restored,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            )
            .unwrap();
            std::os::unix::fs::chown(&restored, Some(65534), Some(65534)).unwrap();
        }
        as_root
    };
    let output = run(&restored, &["restore", file.to_str().unwrap()]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("restored the backup of"), "{stdout}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&restored), 0o700);
        for name in ["tailmon.db", "alerts.db", "auth.json", "preferences.json"] {
            assert_eq!(mode(&restored.join(name)), 0o600, "{name}");
            if service_user {
                use std::os::unix::fs::MetadataExt;
                let meta = std::fs::metadata(restored.join(name)).unwrap();
                assert_eq!((meta.uid(), meta.gid()), (65534, 65534), "{name}");
            }
        }
    }
    let server = start_in(&fresh, &args, &[]);
    let address = announced_address(&server).await;
    let client = Client::builder(format!("http://{address}"))
        .token(read_token.clone())
        .build()
        .unwrap();
    for k in 0..DEVICES {
        let device = format!("load-{k}");
        let stored = client.export(&device, None, None).await.expect("export");
        assert!(
            stored.len() >= before[k] && stored.len() <= after[k],
            "{device}: {} stored, {} acknowledged before the backup, {} after",
            stored.len(),
            before[k],
            after[k]
        );
        for (n, r) in stored.iter().enumerate() {
            assert_eq!(r.ram_used_mb, n as u64, "{device}: every report, in order");
        }
    }
    // The token made before the backup still works; so do the preferences.
    let agent_auth = format!("Bearer {agent_token}");
    let body = serde_json::to_string(&report("load-0", 99_999, start)).unwrap();
    let (status, _, answer) = http(
        address,
        "POST",
        "/api/metrics",
        &[("Authorization", agent_auth.as_str())],
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _, body) = http(
        address,
        "GET",
        "/api/v1/preferences",
        &[("Authorization", read_auth.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["theme"],
        "light"
    );
    stop_cleanly(server).await;

    // Restored over existing data: the old files are kept aside.
    let output = run(&data, &["restore", file.to_str().unwrap()]).await;
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("the previous files are in"), "{stdout}");
    let aside: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("pre-restore-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].join("tailmon.db").is_file());
    assert!(aside[0].join("auth.json").is_file());
    assert!(aside[0].join("initial-admin-password").is_file());
    assert!(!data.join("initial-admin-password").exists());
    assert!(data.join("tailmon.db").is_file() && data.join("auth.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_foreign_file_is_refused_and_nothing_changes() {
    let dir = scratch_dir("backup-refused");
    let data = dir.join("data");
    command(&data, &["token", "create"], "");
    let server = start_in(&dir, &["--no-local-agent"], &[]);
    let address = announced_address(&server).await;
    let body = serde_json::to_string(&report("kept", 1, OffsetDateTime::now_utc())).unwrap();
    assert_eq!(
        http(address, "POST", "/api/metrics", &[], &body).await.0,
        200
    );
    let good = dir.join("good.backup");
    assert!(
        run(&data, &["backup", good.to_str().unwrap()])
            .await
            .status
            .success()
    );
    stop_cleanly(server).await;
    let unchanged = snapshot(&data);

    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a backup at all\n".repeat(300)).unwrap();
    let damaged = dir.join("damaged.backup");
    let mut bytes = std::fs::read(&good).unwrap();
    let page = 4096;
    assert!(bytes.len() > 3 * page);
    bytes[page..2 * page].fill(0xA5);
    std::fs::write(&damaged, &bytes).unwrap();
    let truncated = dir.join("truncated.backup");
    std::fs::write(&truncated, &std::fs::read(&good).unwrap()[..2 * page + 100]).unwrap();
    // A SQLite database, but not a backup: the server's own alerts.db.
    let foreign = data.join("alerts.db");
    let missing = dir.join("missing.backup");
    for (file, why) in [
        (&text, "not a SQLite file"),
        (&damaged, ""),
        (&truncated, ""),
        (&foreign, "not a Tailmon backup"),
        (&missing, "no such file"),
    ] {
        let output = run(&data, &["restore", file.to_str().unwrap()]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{file:?}: {stderr}");
        assert!(stderr.contains("cannot be restored"), "{file:?}: {stderr}");
        assert!(stderr.contains(why), "{file:?}: {stderr}");
        assert!(
            stderr.contains("the data directory was not touched"),
            "{stderr}"
        );
        assert!(
            snapshot(&data) == unchanged,
            "{file:?} changed the data directory"
        );
    }
}
