//! The real server binary with its data directory on a small tmpfs, filled
//! by a ballast file until SQLite's writes fail with `ENOSPC` (the real
//! thing; `durability.rs` has the `--max-db-mb` variant): reports are
//! answered `503`, counted and logged once, the server stays up and goes on
//! serving reads; once the ballast is deleted, ingest resumes by itself,
//! and after a SIGKILL and a restart every acknowledged report is there.
//!
//! Mounting takes root (or a user namespace). Under `CI=true` the test
//! must run; elsewhere it is skipped, saying why, where mounting fails.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tailmon_client::Client;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_loadgen::SimulatedHost;
use tailmon_testkit::{RunningBinary, assert_no_panic, eventually};

use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, client_of, scratch_dir, start_in};

/// The tmpfs's size: room for the server's files and a few thousand
/// reports, small enough to fill at once.
const TMPFS_SIZE: &str = "24m";
/// Devices reporting.
const DEVICES: usize = 20;

/// A tmpfs mounted on a directory, unmounted when dropped.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `at`, or says why it cannot.
    fn mount(at: &Path, size: &str) -> Result<Self, String> {
        // A mount left by an earlier run that was cut short.
        let _ = Command::new("umount").arg("--lazy").arg(at).output();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if output.status.success() {
            Ok(Self { at: at.to_owned() })
        } else {
            Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.at).output();
    }
}

/// Fills the file system holding `path` with a file there until a write
/// fails with `ENOSPC`; returns the bytes written.
fn fill_with_ballast(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("create the ballast");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("writing the ballast: {e}"),
        }
    }
    // The last pages, smaller than a chunk.
    while let Ok(1..) = file.write(&chunk[..512]) {
        written += 512;
    }
    written
}

/// `tailmon_reports_refused_total{reason="store_unavailable"}` in `/metrics`.
async fn store_unavailable_total(base: &str) -> u64 {
    let text = get_text(base, "/metrics").await;
    text.lines()
        .find(|l| {
            l.starts_with("tailmon_reports_refused_total")
                && l.contains("reason=\"store_unavailable\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no store_unavailable count in /metrics:\n{text}"))
}

/// A GET over a plain TCP connection (the typed client has no call for
/// `/metrics`); the whole answer, head and body.
async fn get_text(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(base)
        .await
        .expect("connect to the server");
    let request = format!("GET {path} HTTP/1.1\r\nhost: {base}\r\nconnection: close\r\n\r\n");
    socket
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut answer = String::new();
    socket
        .read_to_string(&mut answer)
        .await
        .expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

/// Reports from a fleet of simulated hosts, each one second after the
/// previous of its host.
struct Fleet {
    hosts: Vec<SimulatedHost>,
    start: OffsetDateTime,
    made: i64,
}

impl Fleet {
    fn new() -> Self {
        let start = OffsetDateTime::from_unix_timestamp(
            (OffsetDateTime::now_utc() - time::Duration::hours(1)).unix_timestamp(),
        )
        .expect("in range");
        Self {
            hosts: (0..DEVICES)
                .map(|n| SimulatedHost::new(&format!("full-{n:02}"), n as u64))
                .collect(),
            start,
            made: 0,
        }
    }

    /// One report from every host.
    fn round(&mut self) -> Vec<Report> {
        let at = self.start + time::Duration::seconds(self.made);
        self.made += 1;
        self.hosts.iter_mut().map(|h| h.next(at, 1.0)).collect()
    }
}

type Key = (String, i128);

fn keys(reports: &[Report]) -> impl Iterator<Item = Key> + '_ {
    reports.iter().map(|r| {
        (
            r.device_id.clone(),
            r.last_seen.unix_timestamp_nanos() / 1_000_000,
        )
    })
}

/// A tmpfs of [`TMPFS_SIZE`] on `dir`; `None` (the test is skipped, with
/// the reason printed) where it cannot be mounted, except under `CI=true`.
fn tmpfs_or_skip(dir: &Path) -> Option<Tmpfs> {
    match Tmpfs::mount(dir, TMPFS_SIZE) {
        Ok(tmpfs) => Some(tmpfs),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "skipped: a tmpfs cannot be mounted here ({why}); run as root, or with CI=true to fail instead"
            );
            None
        }
        Err(why) => panic!("CI=true: this test must run, but {why}"),
    }
}

/// Sends a batch of a report per host until one is refused, recording
/// those acknowledged; returns the refusal and how many were stored first.
async fn send_until_refused(
    client: &Client,
    fleet: &mut Fleet,
    acknowledged: &mut BTreeSet<Key>,
) -> (tailmon_client::Error, usize) {
    let mut stored = 0;
    let refusal = eventually("a 503 once the disk is full", async || {
        let reports = fleet.round();
        match client.send_batch(&reports).await {
            Ok(answer) => {
                assert!(answer.rejected.is_empty(), "{answer:?}");
                acknowledged.extend(keys(&reports));
                stored += reports.len();
                Err(format!("{stored} stored in the space left"))
            }
            Err(error) => Ok(error),
        }
    })
    .await;
    assert_eq!(refusal.status(), Some(503), "{refusal}");
    assert!(refusal.is_retryable(), "{refusal}");
    assert_eq!(
        refusal.retry_after(),
        Some(std::time::Duration::from_secs(30)),
        "{refusal}"
    );
    (refusal, stored)
}

/// Every report of the fleet's hosts the server at `client` has stored.
async fn stored_keys(client: &Client, fleet: &Fleet) -> BTreeSet<Key> {
    let mut stored = BTreeSet::new();
    for host in &fleet.hosts {
        match client.export(host.device_id(), None, None).await {
            Ok(history) => stored.extend(keys(&history)),
            // A device the server does not know has nothing stored.
            Err(error) if error.status() == Some(404) => {}
            Err(error) => panic!("export of {}: {error}", host.device_id()),
        }
    }
    stored
}

/// Fails unless every key of `acknowledged` is in `stored`.
fn assert_none_lost(acknowledged: &BTreeSet<Key>, stored: &BTreeSet<Key>) {
    let lost: Vec<&Key> = acknowledged.difference(stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged reports lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_then_ingest_resumes_once_freed_with_nothing_lost() {
    let dir = scratch_dir("disk-full");
    let Some(tmpfs) = tmpfs_or_skip(&dir) else {
        return;
    };
    let args = ["--no-local-agent"];
    let mut server = start_in(&dir, &args, &[]);
    let address = announced_address(&server).await;
    let base = address.to_string();
    let client = client_of(address);
    let mut fleet = Fleet::new();
    let mut acknowledged: BTreeSet<Key> = BTreeSet::new();
    for _ in 0..20 {
        let reports = fleet.round();
        let answer = client.send_batch(&reports).await.expect("stored");
        assert!(answer.rejected.is_empty(), "{answer:?}");
        acknowledged.extend(keys(&reports));
    }
    let refused_before = store_unavailable_total(&base).await;

    // The disk fills up: the reports go on until the store refuses them.
    let ballast = dir.join("ballast");
    let ballast_bytes = fill_with_ballast(&ballast);
    let (_, stored_while_filling) =
        send_until_refused(&client, &mut fleet, &mut acknowledged).await;
    // More requests while full: each 503, single reports too. `/metrics`
    // counts the reports refused, not the requests.
    let mut refused = 1u64;
    let mut refused_reports = DEVICES as u64;
    for n in 0..30 {
        let mut reports = fleet.round();
        if n % 2 == 0 {
            reports.truncate(1);
        }
        let outcome = if reports.len() == 1 {
            client.send(&reports[0]).await
        } else {
            client.send_batch(&reports).await.map(drop)
        };
        match outcome {
            Ok(()) => acknowledged.extend(keys(&reports)),
            Err(error) => {
                assert_eq!(error.status(), Some(503), "{error}");
                refused += 1;
                refused_reports += reports.len() as u64;
            }
        }
    }
    assert!(
        refused >= 25,
        "{refused} of 31 refused while the disk is full"
    );
    assert!(server.is_running(), "{}", server.stderr());
    assert!(
        !client.all_metrics().await.expect("reads go on").is_empty(),
        "the latest reports are still served"
    );
    assert_eq!(
        store_unavailable_total(&base).await - refused_before,
        refused_reports,
        "each refusal counted"
    );
    let stderr = server.stderr();
    let logged: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("the store cannot take requests now"))
        .collect();
    assert_eq!(
        logged.len(),
        1,
        "one line for {refused} refusals:\n{stderr}"
    );
    eprintln!("logged while full: {}", logged[0]);

    // Freed: ingest resumes without a restart.
    std::fs::remove_file(&ballast).expect("delete the ballast");
    eventually("ingest resumes once the disk has room", async || {
        let reports = fleet.round();
        match client.send_batch(&reports).await {
            Ok(answer) => {
                assert!(answer.rejected.is_empty(), "{answer:?}");
                acknowledged.extend(keys(&reports));
                Ok(())
            }
            Err(error) => Err(error.to_string()),
        }
    })
    .await;
    for _ in 0..20 {
        let reports = fleet.round();
        client.send_batch(&reports).await.expect("stored again");
        acknowledged.extend(keys(&reports));
    }
    assert_no_panic(&server.stderr());

    // A crash, a restart: everything acknowledged is there.
    server.kill();
    let server = start_in(&dir, &args, &[]);
    let client = client_of(announced_address(&server).await);
    assert_none_lost(&acknowledged, &stored_keys(&client, &fleet).await);
    eprintln!(
        "disk full: ballast {ballast_bytes} bytes, {stored_while_filling} reports stored in the space left, {refused} refused (503), {} acknowledged, all stored",
        acknowledged.len()
    );
    stop_cleanly(server).await;
    drop(tmpfs);
}

/// Waits until `server` announces its address (`true`) or exits (`false`).
async fn started_or_exited(server: &mut RunningBinary) -> bool {
    eventually("the server to start or to exit", async || {
        if server.stderr().contains(" address=") {
            Ok(true)
        } else if !server.is_running() {
            Ok(false)
        } else {
            Err(server.stderr())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_while_its_disk_is_full_restarts_with_nothing_lost() {
    let dir = scratch_dir("disk-full-kill");
    let Some(tmpfs) = tmpfs_or_skip(&dir) else {
        return;
    };
    let args = ["--no-local-agent"];
    let mut server = start_in(&dir, &args, &[]);
    let client = client_of(announced_address(&server).await);
    let mut fleet = Fleet::new();
    let mut acknowledged: BTreeSet<Key> = BTreeSet::new();
    for _ in 0..20 {
        let reports = fleet.round();
        client.send_batch(&reports).await.expect("stored");
        acknowledged.extend(keys(&reports));
    }
    let ballast = dir.join("ballast");
    fill_with_ballast(&ballast);
    send_until_refused(&client, &mut fleet, &mut acknowledged).await;

    // A crash while the disk is full, and a start on the full disk: the
    // server either starts (reads served, reports refused) or stops with
    // a message; it never panics.
    server.kill();
    let mut full_start = start_in(&dir, &args, &[]);
    let started_on_a_full_disk = started_or_exited(&mut full_start).await;
    if started_on_a_full_disk {
        let client = client_of(announced_address(&full_start).await);
        let stored = stored_keys(&client, &fleet).await;
        assert_none_lost(&acknowledged, &stored);
        let reports = fleet.round();
        match client.send_batch(&reports).await {
            Ok(_) => acknowledged.extend(keys(&reports)),
            Err(error) => assert_eq!(error.status(), Some(503), "{error}"),
        }
        full_start.kill();
    }
    let stderr = full_start.finished().await.stderr;
    assert_no_panic(&stderr);
    eprintln!(
        "started on the full disk: {started_on_a_full_disk}; its last line: {}",
        stderr.lines().last().unwrap_or_default()
    );

    // Freed, started again: everything acknowledged, and new reports taken.
    std::fs::remove_file(&ballast).expect("delete the ballast");
    let server = start_in(&dir, &args, &[]);
    let client = client_of(announced_address(&server).await);
    assert_none_lost(&acknowledged, &stored_keys(&client, &fleet).await);
    let reports = fleet.round();
    client
        .send_batch(&reports)
        .await
        .expect("stored once freed");
    stop_cleanly(server).await;
    drop(tmpfs);
}
