//! The SQLite store behind the real binary: acknowledged reports survive
//! `kill -9`, and a database that cannot be used stops the server at start
//! with a clear message instead of a panic.

use tailmon_core::{OffsetDateTime, Report};
use tailmon_testkit::{RunningBinary, assert_no_panic};

use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, client_of, scratch_dir, start_in};

fn report(device: &str, n: u32) -> Report {
    let mut report = Report::new(
        device,
        OffsetDateTime::now_utc() - time::Duration::seconds(600)
            + time::Duration::seconds(i64::from(n)),
    );
    report.os_info = "Debian 12".into();
    report.cpu_usage = f64::from(n % 100);
    report.ram_used_mb = u64::from(n);
    report.ram_total_mb = 100_000;
    report
}

/// Waits for the process to exit by itself and returns what it said.
async fn exits_with_error(server: RunningBinary) -> String {
    let finished = server.finished().await;
    assert!(
        !finished.status.success(),
        "should refuse to start; stderr:\n{}",
        finished.stderr
    );
    assert_no_panic(&finished.stderr);
    finished.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reports_survive_kill_9() {
    let dir = scratch_dir("kill-9");
    let mut server = start_in(&dir, &["--no-local-agent"], &[]);
    let client = client_of(announced_address(&server).await);
    let mut acknowledged = Vec::new();
    for n in 0..200 {
        let r = report("crash-test", n);
        client.send(&r).await.expect("acknowledged");
        acknowledged.push(r.last_seen);
    }
    let batch: Vec<Report> = (200..450).map(|n| report("crash-test", n)).collect();
    let answer = client.send_batch(&batch).await.expect("batch acknowledged");
    assert_eq!(answer.accepted, 250);
    acknowledged.extend(batch.iter().map(|r| r.last_seen));

    // A crash: no shutdown, no flush.
    server.kill();

    let server = start_in(&dir, &["--no-local-agent"], &[]);
    let client = client_of(announced_address(&server).await);
    let export = client
        .export("crash-test", None, None)
        .await
        .expect("export");
    let stored: Vec<OffsetDateTime> = export.iter().map(|r| r.last_seen).collect();
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "every acknowledged report is back"
    );
    let millis = |t: &OffsetDateTime| t.unix_timestamp_nanos() / 1_000_000;
    assert!(
        stored
            .iter()
            .map(millis)
            .eq(acknowledged.iter().map(millis)),
        "same reports, same order"
    );
    let latest = client.all_metrics().await.expect("list");
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].ram_used_mb, 449);

    // The minute rollups were rebuilt too: each bucket's avg/min/max is
    // that of the acknowledged reports it covers, each counted once.
    let (first, last) = (
        batch_start(&acknowledged),
        *acknowledged.last().expect("some"),
    );
    let minutes = client
        .history(
            &tailmon_core::HistoryQuery::new("crash-test", "ram_used_mb", first, last)
                .with_max_points(20),
        )
        .await
        .expect("history");
    assert_eq!(minutes.tier, tailmon_core::Tier::Minute);
    let mut expected: Vec<(i64, f64, f64, f64, f64)> = Vec::new();
    for (n, at) in acknowledged.iter().enumerate() {
        let bucket = at.unix_timestamp().div_euclid(60) * 60;
        let value = n as f64;
        match expected.last_mut() {
            Some(e) if e.0 == bucket => {
                e.1 += value;
                e.2 += 1.0;
                e.4 = e.4.max(value);
            }
            _ => expected.push((bucket, value, 1.0, value, value)),
        }
    }
    let got: Vec<(i64, f64, f64, f64)> = minutes
        .points
        .iter()
        .map(|p| (p.at.unix_timestamp(), p.avg, p.min, p.max))
        .collect();
    let want: Vec<(i64, f64, f64, f64)> = expected
        .iter()
        .map(|&(bucket, sum, count, min, max)| (bucket, sum / count, min, max))
        .collect();
    assert_eq!(got, want);
    stop_cleanly(server).await;
}

/// The start of the minute holding the first report.
fn batch_start(acknowledged: &[OffsetDateTime]) -> OffsetDateTime {
    let first = acknowledged.first().expect("some").unix_timestamp();
    OffsetDateTime::from_unix_timestamp(first.div_euclid(60) * 60).expect("in range")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_database_is_refused_at_start() {
    let dir = scratch_dir("corrupt");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("data/tailmon.db"), vec![0x42; 64 * 1024]).expect("write garbage");
    let stderr = exits_with_error(start_in(&dir, &["--no-local-agent"], &[])).await;
    assert!(
        stderr.contains("is not a readable Tailmon database"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_is_refused() {
    let dir = scratch_dir("locked");
    let first = start_in(&dir, &["--no-local-agent"], &[]);
    announced_address(&first).await;
    let stderr = exits_with_error(start_in(&dir, &["--no-local-agent"], &[])).await;
    assert!(
        stderr.contains("in use by another Tailmon server"),
        "{stderr}"
    );
    stop_cleanly(first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_data_directory_is_refused() {
    let dir = scratch_dir("unwritable");
    // The data directory's place is taken by a plain file.
    std::fs::write(dir.join("data"), b"not a directory").expect("write file");
    let stderr = exits_with_error(start_in(&dir, &["--no-local-agent"], &[])).await;
    assert!(stderr.contains("cannot use"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_answers_503_and_the_server_keeps_running() {
    let dir = scratch_dir("full");
    let mut server = start_in(&dir, &["--no-local-agent", "--max-db-mb", "1"], &[]);
    let client = client_of(announced_address(&server).await);
    // Batches of distinct, valid reports until the database is full.
    let mut refused = None;
    let base = OffsetDateTime::now_utc() - time::Duration::days(1);
    for round in 0..200i64 {
        let batch: Vec<Report> = (0..500i64)
            .map(|i| {
                let mut r = report(&format!("filler-{}", i % 50), 0);
                r.last_seen = base + time::Duration::seconds(round * 500 + i);
                r.os_info = format!("{i:0>200}");
                r
            })
            .collect();
        if let Err(error) = client.send_batch(&batch).await {
            refused = Some(error);
            break;
        }
    }
    let error = refused.expect("a 1 MiB database fills up");
    assert_eq!(error.status(), Some(503), "{error}");
    assert!(error.is_retryable());
    // Still serving reads and health.
    assert!(server.is_running());
    assert!(
        !client
            .all_metrics()
            .await
            .expect("reads still work")
            .is_empty()
    );
    stop_cleanly(server).await;
}
