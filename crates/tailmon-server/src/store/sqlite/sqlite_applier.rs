//! The SQLite store's applier: a thread that puts reports the writer has
//! committed into their devices' in-memory state (raw window, rollup blocks,
//! latest report) and only then answers their senders. The writer's thread
//! thus only commits, and the two work side by side.
//!
//! Before anything reads or rewrites that state as a whole (a checkpoint, a
//! delete, retention), the writer sends a barrier and waits for it: every
//! report committed before it is then applied.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use tailmon_core::{Tier, metric};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::store::downsample::bucket_start;
use crate::store::rollup_block::{RollupBlock, block_start};
use crate::store::sqlite::device_state::{DeviceEntry, HeldBlock};
use crate::store::sqlite::raw_window::PreparedReport;
use crate::store::sqlite::sql_values::{backend, tier_code};
use crate::store::sqlite::wal_sync::{WalSync, unflushed};

/// Most reports a device's raw window holds before the writer seals it on
/// its own (a back-fill sends many at once).
pub(crate) const MAX_WINDOW: usize = 720;

/// A report the writer committed, for the applier.
pub(crate) struct Committed {
    pub(crate) entry: Arc<DeviceEntry>,
    /// Its inbox sequence number.
    pub(crate) seq: i64,
    pub(crate) report: PreparedReport,
}

/// What the applier is asked to do.
pub(crate) enum Apply {
    /// Apply these reports, then answer every sender.
    Group {
        reports: Vec<Committed>,
        dones: Vec<oneshot::Sender<Result<(), StoreError>>>,
    },
    /// Answer once everything sent before is applied.
    Barrier(SyncSender<()>),
}

/// What the applier tells the writer without being asked.
#[derive(Default)]
pub(crate) struct Progress {
    /// The newest inbox sequence number applied.
    pub(crate) applied_seq: AtomicI64,
    /// Devices whose raw window reached [`MAX_WINDOW`].
    pub(crate) full: Mutex<Vec<Arc<DeviceEntry>>>,
}

impl Progress {
    /// Takes the devices whose window is full.
    pub(crate) fn take_full(&self) -> Vec<Arc<DeviceEntry>> {
        std::mem::take(&mut *self.full.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Serves apply requests until the writer is gone. `conn` only reads (the
/// stored rollup blocks a back-filled report falls into). With `wal`
/// ([`crate::Durability::Disk`]), the reports of every group waiting are
/// flushed to disk with one `fdatasync` before any of them is applied and
/// answered; the writer commits the next groups meanwhile.
pub(crate) fn run(
    conn: Connection,
    progress: Arc<Progress>,
    requests: Receiver<Apply>,
    mut wal: Option<WalSync>,
) {
    while let Ok(first) = requests.recv() {
        let waiting: Vec<Apply> = std::iter::once(first).chain(requests.try_iter()).collect();
        let flushed = match wal.as_mut() {
            Some(wal) if waiting.iter().any(|r| matches!(r, Apply::Group { .. })) => wal.sync(),
            _ => Ok(()),
        };
        if let Err(error) = &flushed {
            tracing::error!(%error, "cannot flush the database to disk; reports are refused until it works again");
        }
        for request in waiting {
            match request {
                Apply::Group { reports, dones } => {
                    apply_group(&conn, &progress, reports);
                    for done in dones {
                        let _ = done.send(match &flushed {
                            Ok(()) => Ok(()),
                            // Committed, so applied: the agent's retry finds
                            // the report stored and is answered 2xx then.
                            Err(error) => Err(unflushed(error)),
                        });
                    }
                }
                Apply::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// Applies committed reports in memory.
fn apply_group(conn: &Connection, progress: &Progress, reports: Vec<Committed>) {
    for Committed { entry, seq, report } in reports {
        // Committed, so acknowledged whatever happens here: a failure only
        // leaves memory behind until the inbox is replayed at the next start.
        if let Err(error) = apply(conn, &entry, seq, report) {
            tracing::error!(%error, device = %entry.name, "stored report not applied in memory");
        }
        progress.applied_seq.fetch_max(seq, Ordering::Release);
        if entry.lock().window.len() == MAX_WINDOW {
            progress
                .full
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(entry);
        }
    }
}

/// Puts a committed report into its device's in-memory state.
pub(crate) fn apply(
    conn: &Connection,
    entry: &DeviceEntry,
    seq: i64,
    prepared: PreparedReport,
) -> Result<(), StoreError> {
    let PreparedReport {
        report, ts, json, ..
    } = prepared;
    let mut state = entry.lock();
    state.window.push_json(ts, json)?;
    state.applied_seq = state.applied_seq.max(seq);
    let mut blocks = Vec::with_capacity(2);
    for tier in [Tier::Minute, Tier::Hour] {
        let bucket = bucket_start(tier, report.last_seen).unix_timestamp();
        let key = (tier_code(tier), block_start(tier, bucket));
        let held = match state.rollups.remove(&key) {
            Some(held) => held,
            None => HeldBlock {
                block: load_rollup(conn, key, entry.id)?,
                dirty: false,
            },
        };
        blocks.push((key, bucket, held));
    }
    metric::for_each(&report, |name, value| {
        for (_, bucket, held) in &mut blocks {
            held.block.add(*bucket, name, value);
        }
    });
    for (key, _, mut held) in blocks {
        held.dirty = true;
        state.rollups.insert(key, held);
    }
    state.offer_latest(report);
    Ok(())
}

/// The stored rollup block `key` of `device`, or an empty one.
pub(crate) fn load_rollup(
    conn: &Connection,
    key: (u8, i64),
    device: i64,
) -> Result<RollupBlock, StoreError> {
    let data: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT data FROM rollup_blocks WHERE tier = ?1 AND device = ?2 AND start = ?3",
        )
        .and_then(|mut s| {
            s.query_row(params![key.0, device, key.1], |r| r.get(0))
                .optional()
        })
        .map_err(backend)?;
    match data {
        Some(data) => RollupBlock::open(&data).map_err(|e| StoreError::Backend(Box::new(e))),
        None => Ok(RollupBlock::default()),
    }
}
