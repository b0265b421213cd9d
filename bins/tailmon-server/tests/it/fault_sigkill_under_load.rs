//! The real server binary with its default SQLite store (`--sync disk`),
//! killed with SIGKILL while 32 clients send full reports and batches flat
//! out for 256 devices, restarted on the same data directory, three times:
//! every report the server acknowledged (2xx) is in the devices' history,
//! once; nothing the clients did not send is there. Reports whose request
//! was cut by the kill may or may not be stored: nothing is required of
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tailmon_client::Client;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_loadgen::SimulatedHost;
use tailmon_testkit::{assert_no_panic, eventually};

use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, client_of, scratch_dir, start_in};

/// Clients sending at once.
const TASKS: usize = 32;
/// Devices each client reports for.
const DEVICES_PER_TASK: usize = 8;
/// Kills, each followed by a restart.
const KILLS: usize = 3;
/// Every this many requests a client sends a batch instead of one report.
const BATCH_EVERY: u64 = 4;
/// Reports in a batch.
const BATCH_LEN: u64 = 10;

/// A report's identity in the history: its device and `last_seen` in ms.
type Key = (String, i128);

fn key(report: &Report) -> Key {
    (
        report.device_id.clone(),
        report.last_seen.unix_timestamp_nanos() / 1_000_000,
    )
}

/// One simulated device and how many reports it has made so far, kept
/// across the server's restarts so that no two reports share a time.
struct Device {
    host: SimulatedHost,
    made: i64,
}

impl Device {
    /// The device's next report: one second after its previous one, from
    /// a start two hours ago.
    fn next(&mut self, start: OffsetDateTime) -> Report {
        let at = start + time::Duration::seconds(self.made);
        self.made += 1;
        self.host.next(at, 1.0)
    }
}

/// What the clients saw in all rounds.
#[derive(Default)]
struct Ledger {
    /// Answered 2xx: must be stored.
    acknowledged: BTreeSet<Key>,
    /// Sent, answer unknown (the request failed): may be stored.
    unanswered: BTreeSet<Key>,
    /// Failures before the kill: there must be none.
    early_failures: Vec<String>,
}

/// One client's loop: sends for its devices until a request fails, which
/// it does once the server is killed.
async fn send_until_cut(
    client: Client,
    mut devices: Vec<Device>,
    start: OffsetDateTime,
    ledger: Arc<Mutex<Ledger>>,
    acknowledged: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
) -> Vec<Device> {
    let mut request = 0u64;
    loop {
        request += 1;
        let device = &mut devices[(request as usize) % DEVICES_PER_TASK];
        let reports: Vec<Report> = if request.is_multiple_of(BATCH_EVERY) {
            (0..BATCH_LEN).map(|_| device.next(start)).collect()
        } else {
            vec![device.next(start)]
        };
        let outcome = if reports.len() == 1 {
            client.send(&reports[0]).await.map(|()| Vec::new())
        } else {
            client.send_batch(&reports).await.map(|b| b.rejected)
        };
        let mut ledger = ledger.lock().expect("not poisoned");
        match outcome {
            Ok(rejected) if rejected.is_empty() => {
                ledger.acknowledged.extend(reports.iter().map(key));
                acknowledged.fetch_add(reports.len() as u64, Ordering::SeqCst);
            }
            Ok(rejected) => {
                ledger
                    .early_failures
                    .push(format!("valid reports refused: {rejected:?}"));
                return devices;
            }
            Err(error) => {
                ledger.unanswered.extend(reports.iter().map(key));
                if !killed.load(Ordering::SeqCst) {
                    ledger.early_failures.push(error.to_string());
                }
                return devices;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_report_survives_sigkill_under_load() {
    let dir = scratch_dir("sigkill-under-load");
    let args = ["--no-local-agent"];
    let start = OffsetDateTime::from_unix_timestamp(
        (OffsetDateTime::now_utc() - time::Duration::hours(2)).unix_timestamp(),
    )
    .expect("in range");
    let mut fleet: Vec<Vec<Device>> = (0..TASKS)
        .map(|task| {
            (0..DEVICES_PER_TASK)
                .map(|d| {
                    let n = task * DEVICES_PER_TASK + d;
                    Device {
                        host: SimulatedHost::new(&format!("load-{n:03}"), n as u64),
                        made: 0,
                    }
                })
                .collect()
        })
        .collect();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);

    for round in 0..KILLS {
        let mut server = start_in(&dir, &args, &[]);
        let client = client_of(announced_address(&server).await);
        let acknowledged = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = fleet
            .drain(..)
            .map(|devices| {
                tokio::spawn(send_until_cut(
                    client.clone(),
                    devices,
                    start,
                    ledger.clone(),
                    acknowledged.clone(),
                    killed.clone(),
                ))
            })
            .collect();
        // A random-ish moment: after 500 to 3,000 acknowledged reports.
        let kill_after = rng.u64(500..3_000);
        eventually("reports acknowledged under load", async || {
            let n = acknowledged.load(Ordering::SeqCst);
            if n >= kill_after {
                Ok(())
            } else {
                Err(format!("{n} of {kill_after} (seed {seed})"))
            }
        })
        .await;
        killed.store(true, Ordering::SeqCst);
        server.kill();
        for task in tasks {
            fleet.push(task.await.expect("a client did not panic"));
        }
        assert_no_panic(&server.stderr());
        let ledger = ledger.lock().expect("not poisoned");
        assert!(
            ledger.early_failures.is_empty(),
            "round {round}, seed {seed}: {:?}",
            ledger.early_failures
        );
        eprintln!(
            "round {round}: killed after {} acknowledged (asked {kill_after}, seed {seed}); {} unanswered so far",
            acknowledged.load(Ordering::SeqCst),
            ledger.unanswered.len()
        );
    }

    let server = start_in(&dir, &args, &[]);
    let client = client_of(announced_address(&server).await);
    // Every client has stopped: the ledger is complete.
    let ledger = std::mem::take(&mut *ledger.lock().expect("not poisoned"));
    let mut by_device: BTreeMap<&str, Vec<i128>> = BTreeMap::new();
    for (device, at) in &ledger.acknowledged {
        by_device.entry(device).or_default().push(*at);
    }
    let mut stored_in_all = 0;
    let mut unanswered_stored = 0;
    for device in fleet.iter().flatten() {
        let id = device.host.device_id();
        let history = match client.export(id, None, None).await {
            Ok(history) => history,
            // A device the server does not know has nothing stored.
            Err(error) if error.status() == Some(404) => Vec::new(),
            Err(error) => panic!("export of {id}: {error}"),
        };
        let stored: Vec<i128> = history
            .iter()
            .map(|r| r.last_seen.unix_timestamp_nanos() / 1_000_000)
            .collect();
        let distinct: BTreeSet<i128> = stored.iter().copied().collect();
        assert_eq!(distinct.len(), stored.len(), "{id}: a report stored twice");
        let acknowledged = by_device.get(id).map(Vec::as_slice).unwrap_or_default();
        let missing: Vec<&i128> = acknowledged
            .iter()
            .filter(|at| !distinct.contains(at))
            .collect();
        assert!(
            missing.is_empty(),
            "{id}: {} of {} acknowledged reports lost, the first at {:?} ms (seed {seed})",
            missing.len(),
            acknowledged.len(),
            missing.first()
        );
        for at in &distinct {
            let key = (id.to_owned(), *at);
            let acked = ledger.acknowledged.contains(&key);
            assert!(
                acked || ledger.unanswered.contains(&key),
                "{id}: stored at {at} ms, which was never sent"
            );
            unanswered_stored += usize::from(!acked);
        }
        stored_in_all += stored.len();
    }
    eprintln!(
        "{} acknowledged, all stored; {} stored in all; {unanswered_stored} of {} unanswered were stored",
        ledger.acknowledged.len(),
        stored_in_all,
        ledger.unanswered.len()
    );
    assert!(ledger.acknowledged.len() >= 1_500, "three rounds of load");
    stop_cleanly(server).await;
}
