//! The SQLite store's one writer: a thread that owns the write connection.
//!
//! - **Insert**: every insert waiting for the writer is committed in one
//!   transaction that only appends the reports to the inbox table (group
//!   commit); then the applier thread (see [`crate::store::sqlite::sqlite_applier`]) puts
//!   them into their devices' in-memory state and answers the senders,
//!   while the writer commits the next group.
//! - **Checkpoint** (every [`CHECKPOINT_EVERY`], on demand, before retention
//!   and at close): in one transaction, each device's raw window becomes a
//!   raw block, changed rollup blocks and latest reports are written, and the
//!   inbox is emptied.
//! - **Recovery** (at open): the inbox rows a checkpoint had not yet taken
//!   are applied again, so the state is exactly what was acknowledged.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tailmon_core::{OffsetDateTime, OrgId, Report, Tier};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::store::rollup_block::{RollupBlock, block_start, span_seconds};
use crate::store::sqlite::device_state::{DeviceEntry, DeviceState, Devices};
use crate::store::sqlite::raw_window::{PreparedReport, RawWindow, block_timestamps, open_block};
use crate::store::sqlite::sql_values::{SharedKeep, backend, millis, tier_code};
use crate::store::sqlite::sqlite_applier::{Apply, Committed, Progress, apply, load_rollup};
use crate::store::sqlite::sqlite_schema;
use crate::store::sqlite::wal_sync::WalSync;

/// How often the writer checkpoints on its own.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(600);
/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;
/// zstd level of sealed blocks: sealing is off the acknowledgement path, so
/// it can afford to compress well.
const SEAL_LEVEL: i32 = 9;
/// zstd level of a rollup block still being filled, rewritten at every
/// checkpoint until the device moves past it.
const OPEN_BLOCK_LEVEL: i32 = 1;
/// zstd level of the latest report kept in the devices table.
const LATEST_LEVEL: i32 = 3;
/// Timestamps of sealed blocks kept for duplicate checks before the cache
/// is reset.
const MAX_CACHED_BLOCKS: usize = 256;

/// A batch of reports of one organisation waiting for its commit, with
/// where to say it happened.
type PendingInsert = (
    OrgId,
    Vec<PreparedReport>,
    oneshot::Sender<Result<(), StoreError>>,
);

/// What the writer is asked to do.
pub(crate) enum Write {
    Insert {
        org: OrgId,
        reports: Vec<PreparedReport>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Delete {
        org: OrgId,
        device: String,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
    Retention {
        now: OffsetDateTime,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Checkpoint {
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The writer's state: the connection, the shared devices and a cache.
pub(crate) struct Writer {
    conn: Connection,
    devices: Arc<Devices>,
    retention: SharedKeep,
    /// Timestamps of sealed raw blocks, by block id, for duplicate checks.
    sealed_timestamps: HashMap<i64, Vec<i64>>,
    /// The newest raw retention cutoff applied (ms): raw reports older than
    /// this are gone, so a report stamped before it cannot be told from one
    /// already counted in the rollups, and is dropped (see
    /// [`crate::Store::apply_retention`]). Kept in the `meta` table.
    raw_horizon: i64,
    /// The newest inbox sequence number committed.
    applied_seq: i64,
    last_checkpoint: Instant,
    applier: Sender<Apply>,
    progress: Arc<Progress>,
    unapplied: Unapplied,
    /// With [`crate::Durability::Disk`]: flushed before a delete or
    /// retention is answered (inserts are flushed by the applier).
    wal: Option<WalSync>,
}

/// Reports sent to the applier and perhaps not yet in their device's
/// window, for duplicate checks: (sequence number, device, timestamp) oldest
/// first, and (device, timestamp) as a set.
#[derive(Default)]
struct Unapplied {
    order: VecDeque<(i64, i64, i64)>,
    keys: HashSet<(i64, i64)>,
}

impl Unapplied {
    fn record(&mut self, seq: i64, device: i64, ts: i64) {
        self.order.push_back((seq, device, ts));
        self.keys.insert((device, ts));
    }

    fn clear(&mut self) {
        self.order.clear();
        self.keys.clear();
    }

    /// Whether a report of `device` stamped `ts` is among them, forgetting
    /// first those the applier has applied (up to `applied`).
    fn contains(&mut self, applied: i64, device: i64, ts: i64) -> bool {
        while let Some(&(seq, d, t)) = self.order.front() {
            if seq > applied {
                break;
            }
            self.order.pop_front();
            self.keys.remove(&(d, t));
        }
        self.keys.contains(&(device, ts))
    }
}

impl Writer {
    /// Loads every device and replays the inbox; `Err` says why the
    /// database cannot be used.
    pub(crate) fn recover(
        conn: Connection,
        devices: Arc<Devices>,
        retention: SharedKeep,
        applier: Sender<Apply>,
        progress: Arc<Progress>,
        wal: Option<WalSync>,
    ) -> Result<Self, String> {
        let mut writer = Self {
            conn,
            devices,
            retention,
            sealed_timestamps: HashMap::new(),
            raw_horizon: i64::MIN,
            applied_seq: 0,
            last_checkpoint: Instant::now(),
            applier,
            progress,
            unapplied: Unapplied::default(),
            wal,
        };
        writer.load().map_err(|e| e.to_string())?;
        Ok(writer)
    }

    fn load(&mut self) -> Result<(), StoreError> {
        self.raw_horizon = sqlite_schema::raw_horizon(&self.conn)
            .map_err(backend)?
            .unwrap_or(i64::MIN);
        let mut by_id = HashMap::new();
        {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT d.id, d.org, d.name, d.latest, d.sealed_seq, \
                     (SELECT MAX(last_ts) FROM raw_blocks WHERE device = d.id) FROM devices d",
                )
                .map_err(backend)?;
            let mut rows = stmt.query([]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                let id: i64 = row.get(0).map_err(backend)?;
                let org: String = row.get(1).map_err(backend)?;
                let org = OrgId::new(&org).map_err(|e| StoreError::Backend(Box::new(e)))?;
                let name: String = row.get(2).map_err(backend)?;
                let latest: Option<Vec<u8>> = row.get(3).map_err(backend)?;
                let sealed_seq: i64 = row.get(4).map_err(backend)?;
                let sealed_newest: Option<i64> = row.get(5).map_err(backend)?;
                let latest = latest.map(|b| decode_latest(&b)).transpose()?;
                self.applied_seq = self.applied_seq.max(sealed_seq);
                let entry = Arc::new(DeviceEntry::new(
                    id,
                    org,
                    name,
                    DeviceState::stored(latest, sealed_newest.unwrap_or(i64::MIN), sealed_seq),
                ));
                by_id.insert(id, Arc::clone(&entry));
                self.devices.insert(entry);
            }
        }
        let pending: Vec<(i64, i64, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, device, report FROM inbox ORDER BY seq")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let replayed = pending.len();
        for (seq, device, inbox) in pending {
            self.applied_seq = self.applied_seq.max(seq);
            let Some(entry) = by_id.get(&device) else {
                continue;
            };
            if seq <= entry.lock().sealed_seq {
                continue;
            }
            apply(&self.conn, entry, seq, PreparedReport::from_inbox(inbox)?)?;
        }
        if replayed > 0 {
            tracing::info!(reports = replayed, "replayed reports not yet checkpointed");
        }
        Ok(())
    }

    /// Serves requests until every sender is gone, then checkpoints.
    pub(crate) fn run(mut self, requests: Receiver<Write>) {
        loop {
            let wait = CHECKPOINT_EVERY.saturating_sub(self.last_checkpoint.elapsed());
            let first = match requests.recv_timeout(wait) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    self.checkpoint_logged();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut inserts = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Write::Insert { org, reports, done } => inserts.push((org, reports, done)),
                    other => {
                        self.commit_inserts(std::mem::take(&mut inserts));
                        self.serve_other(other);
                    }
                }
                if inserts.len() < MAX_GROUP {
                    next = requests.try_recv().ok();
                }
            }
            self.commit_inserts(inserts);
            if self.last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.checkpoint_logged();
            }
        }
        self.checkpoint_logged();
    }

    fn serve_other(&mut self, request: Write) {
        match request {
            Write::Insert { .. } => {}
            Write::Delete { org, device, done } => {
                let deleted = self.delete(&org, &device);
                let _ = done.send(deleted.and_then(|existed| self.flush().map(|()| existed)));
            }
            Write::Retention { now, done } => {
                let applied = self.apply_retention(now);
                let _ = done.send(applied.and_then(|()| self.flush()));
            }
            Write::Checkpoint { done } => {
                let _ = done.send(self.checkpoint_all());
            }
        }
    }

    /// With [`crate::Durability::Disk`], waits until what was committed is
    /// on disk.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.wal.as_mut().map_or(Ok(()), WalSync::flush)
    }

    fn checkpoint_logged(&mut self) {
        if let Err(error) = self.checkpoint_all() {
            tracing::warn!(%error, "checkpoint failed; the reports stay in the inbox and it is tried again");
        }
    }

    /// Commits every waiting insert in one transaction, then answers each.
    fn commit_inserts(&mut self, inserts: Vec<PendingInsert>) {
        if inserts.is_empty() {
            return;
        }
        let mut batches = Vec::with_capacity(inserts.len());
        let mut dones = Vec::with_capacity(inserts.len());
        for (org, reports, done) in inserts {
            batches.push((org, reports));
            dones.push(done);
        }
        match self.insert_all(batches) {
            Ok(reports) => {
                for c in &reports {
                    self.unapplied.record(c.seq, c.entry.id, c.report.ts);
                }
                // The applier answers once the reports are in memory.
                if let Err(unsent) = self.applier.send(Apply::Group { reports, dones }) {
                    tracing::error!(
                        "the applier has stopped; committed reports are applied at the next start"
                    );
                    if let Apply::Group { dones, .. } = unsent.0 {
                        for done in dones {
                            let _ = done.send(Ok(()));
                        }
                    }
                }
            }
            Err(error) => {
                for done in dones {
                    let _ = done.send(Err(error.duplicate()));
                }
            }
        }
        let full = self.progress.take_full();
        if !full.is_empty()
            && let Err(error) = self.checkpoint(&full, false)
        {
            tracing::warn!(%error, "sealing a full raw window failed; tried again at the next checkpoint");
        }
    }

    /// Waits until the applier has applied everything committed.
    fn barrier(&mut self) {
        let (done, applied) = std::sync::mpsc::sync_channel(1);
        if self.applier.send(Apply::Barrier(done)).is_ok() {
            let _ = applied.recv();
        }
        self.unapplied.clear();
    }

    fn insert_all(
        &mut self,
        batches: Vec<(OrgId, Vec<PreparedReport>)>,
    ) -> Result<Vec<Committed>, StoreError> {
        let mut created: Vec<Arc<DeviceEntry>> = Vec::new();
        let mut accepted: Vec<Committed> = Vec::new();
        let applied = self.progress.applied_seq.load(Ordering::Acquire);
        let tx = self.conn.transaction().map_err(backend)?;
        {
            let mut seen = HashSet::new();
            let mut append = tx
                .prepare_cached("INSERT INTO inbox (seq, device, report) VALUES (?1, ?2, ?3)")
                .map_err(backend)?;
            for (org, prepared) in batches
                .into_iter()
                .flat_map(|(org, reports)| reports.into_iter().map(move |r| (org.clone(), r)))
            {
                let (report, ts) = (&prepared.report, prepared.ts);
                // Older than raw retention has kept: perhaps counted already.
                if ts < self.raw_horizon {
                    continue;
                }
                let entry = match self.devices.get(&org, &report.device_id) {
                    Some(entry) => entry,
                    None => match created
                        .iter()
                        .find(|e| e.org == org && e.name == report.device_id)
                    {
                        Some(entry) => Arc::clone(entry),
                        None => {
                            tx.execute(
                                "INSERT INTO devices (org, name) VALUES (?1, ?2)",
                                [org.as_str(), &report.device_id],
                            )
                            .map_err(backend)?;
                            let entry = Arc::new(DeviceEntry::new(
                                tx.last_insert_rowid(),
                                org.clone(),
                                report.device_id.clone(),
                                DeviceState::stored(None, i64::MIN, 0),
                            ));
                            created.push(Arc::clone(&entry));
                            entry
                        }
                    },
                };
                // An agent retrying after a lost answer: stored once.
                if !seen.insert((entry.id, ts))
                    || self.unapplied.contains(applied, entry.id, ts)
                    || stored(&tx, &mut self.sealed_timestamps, &entry, ts)?
                {
                    continue;
                }
                // Numbered by the writer, never reused: the inbox is emptied
                // at each checkpoint, and a device's sealed_seq must stay
                // below every later report.
                let seq = self.applied_seq + 1;
                append
                    .execute(params![seq, entry.id, prepared.inbox])
                    .map_err(backend)?;
                self.applied_seq = seq;
                accepted.push(Committed {
                    entry,
                    seq,
                    report: prepared,
                });
            }
        }
        tx.commit().map_err(backend)?;
        for entry in created {
            self.devices.insert(entry);
        }
        Ok(accepted)
    }

    /// Checkpoints every device and empties the inbox.
    fn checkpoint_all(&mut self) -> Result<(), StoreError> {
        self.last_checkpoint = Instant::now();
        self.barrier();
        let all = self.devices.all();
        let (reports, held) = all.iter().fold((0, 0), |(reports, held), entry| {
            let state = entry.lock();
            (
                reports + state.window.len(),
                held + state.window.heap_bytes(),
            )
        });
        self.checkpoint(&all, true)?;
        tracing::debug!(
            devices = all.len(),
            reports,
            window_bytes = held,
            took_ms = self.last_checkpoint.elapsed().as_millis(),
            "checkpoint: raw windows sealed into blocks"
        );
        Ok(())
    }

    /// Writes what `entries` hold in memory into the tables, in one
    /// transaction; with `all`, every device is among them and the inbox is
    /// emptied too.
    fn checkpoint(&mut self, entries: &[Arc<DeviceEntry>], all: bool) -> Result<(), StoreError> {
        self.barrier();
        let tx = self.conn.transaction().map_err(backend)?;
        let mut written = Vec::new();
        for entry in entries {
            let mut state = entry.lock();
            if !state.is_dirty() {
                continue;
            }
            let sealed = state.window.range();
            if let Some((oldest, newest)) = sealed {
                let data = state.window.seal(SEAL_LEVEL)?;
                tx.prepare_cached(
                    "INSERT INTO raw_blocks (device, first_ts, last_ts, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        entry.id,
                        oldest,
                        newest,
                        state.window.len() as i64,
                        data
                    ])
                })
                .map_err(backend)?;
            }
            let newest = state.newest_blocks();
            for (&key, held) in state.rollups.iter().filter(|(_, h)| h.dirty) {
                // The block being filled is written again at every
                // checkpoint: quickly. A block the device has moved past is
                // written for good: compactly.
                let level = if newest.contains(&key) {
                    OPEN_BLOCK_LEVEL
                } else {
                    SEAL_LEVEL
                };
                write_rollup(&tx, key, entry.id, &held.block, level)?;
            }
            let latest = match (&state.latest, state.latest_dirty) {
                (Some(report), true) => Some(encode_latest(report)?),
                _ => None,
            };
            tx.prepare_cached(
                "UPDATE devices SET latest = COALESCE(?2, latest), sealed_seq = ?3 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![entry.id, latest, state.applied_seq]))
            .map_err(backend)?;
            written.push((Arc::clone(entry), sealed.map(|(_, newest)| newest)));
        }
        if all {
            tx.execute("DELETE FROM inbox WHERE seq <= ?1", [self.applied_seq])
                .map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        for (entry, sealed_newest) in written {
            let mut state = entry.lock();
            state.window = RawWindow::default();
            if let Some(newest) = sealed_newest {
                state.sealed_newest = state.sealed_newest.max(newest);
            }
            state.latest_dirty = false;
            state.sealed_seq = state.applied_seq;
            // Keep only the newest block of each tier: the one being filled.
            let newest = state.newest_blocks();
            state.rollups.retain(|key, _| newest.contains(key));
            for held in state.rollups.values_mut() {
                held.dirty = false;
            }
        }
        Ok(())
    }

    fn delete(&mut self, org: &OrgId, device: &str) -> Result<bool, StoreError> {
        self.barrier();
        let Some(entry) = self.devices.get(org, device) else {
            return Ok(false);
        };
        let tx = self.conn.transaction().map_err(backend)?;
        for table in ["raw_blocks", "rollup_blocks", "inbox"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE device = ?1"),
                [entry.id],
            )
            .map_err(backend)?;
        }
        tx.execute("DELETE FROM devices WHERE id = ?1", [entry.id])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        self.devices.remove(org, device);
        self.sealed_timestamps.clear();
        Ok(true)
    }

    fn apply_retention(&mut self, now: OffsetDateTime) -> Result<(), StoreError> {
        // Everything into blocks first, so only blocks need trimming.
        self.checkpoint_all()?;
        self.sealed_timestamps.clear();
        let keep = **self.retention.load();
        let raw_cutoff = millis(now - keep.raw).max(self.raw_horizon);
        let cutoffs = [
            (Tier::Minute, (now - keep.minute).unix_timestamp()),
            (Tier::Hour, (now - keep.hour).unix_timestamp()),
        ];
        let entries = self.devices.all();
        let tx = self.conn.transaction().map_err(backend)?;
        for entry in &entries {
            trim_raw(&tx, entry.id, raw_cutoff)?;
            for (tier, cutoff) in cutoffs {
                trim_rollups(&tx, tier, entry.id, cutoff)?;
            }
        }
        sqlite_schema::set_raw_horizon(&tx, raw_cutoff).map_err(backend)?;
        tx.commit().map_err(backend)?;
        self.raw_horizon = raw_cutoff;
        for entry in &entries {
            let mut state = entry.lock();
            for (tier, cutoff) in cutoffs {
                let code = tier_code(tier);
                for ((t, _), held) in state.rollups.iter_mut() {
                    if *t == code {
                        held.block.retain_from(cutoff);
                    }
                }
            }
            state.rollups.retain(|_, held| !held.block.is_empty());
        }
        Ok(())
    }
}

/// Whether a report of `entry` stamped `ts` is already stored: in its open
/// window, or in a sealed raw block (looked up only for timestamps no newer
/// than the newest sealed one, as with a back-fill).
fn stored(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut HashMap<i64, Vec<i64>>,
    entry: &DeviceEntry,
    ts: i64,
) -> Result<bool, StoreError> {
    {
        let state = entry.lock();
        if state.window.contains(ts) {
            return Ok(true);
        }
        if ts > state.sealed_newest {
            return Ok(false);
        }
    }
    let blocks: Vec<i64> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id FROM raw_blocks WHERE device = ?1 AND last_ts >= ?2 AND first_ts <= ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![entry.id, ts], |r| r.get(0))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    for id in blocks {
        if !cache.contains_key(&id) {
            if cache.len() >= MAX_CACHED_BLOCKS {
                cache.clear();
            }
            let data: Vec<u8> = tx
                .query_row("SELECT data FROM raw_blocks WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .map_err(backend)?;
            cache.insert(id, block_timestamps(&data)?);
        }
        if cache.get(&id).is_some_and(|stamps| stamps.contains(&ts)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Drops the raw reports of a device older than `cutoff` (ms): whole blocks,
/// and the old rows of a block that straddles the cutoff.
fn trim_raw(tx: &rusqlite::Transaction<'_>, device: i64, cutoff: i64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM raw_blocks WHERE device = ?1 AND last_ts < ?2",
        params![device, cutoff],
    )
    .map_err(backend)?;
    let straddling: Vec<(i64, Vec<u8>)> = {
        let mut stmt = tx
            .prepare_cached(
                "SELECT id, data FROM raw_blocks WHERE device = ?1 AND last_ts >= ?2 AND first_ts < ?2",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![device, cutoff], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    for (id, data) in straddling {
        let mut kept = RawWindow::default();
        for (ts, report) in open_block(&data)? {
            if ts >= cutoff {
                kept.push(ts, &report)?;
            }
        }
        let Some((oldest, newest)) = kept.range() else {
            continue;
        };
        tx.execute(
            "UPDATE raw_blocks SET first_ts = ?2, last_ts = ?3, count = ?4, data = ?5 WHERE id = ?1",
            params![
                id,
                oldest,
                newest,
                kept.len() as i64,
                kept.seal(SEAL_LEVEL)?
            ],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// Drops the buckets of one tier of a device that start before `cutoff`
/// (Unix seconds).
fn trim_rollups(
    tx: &rusqlite::Transaction<'_>,
    tier: Tier,
    device: i64,
    cutoff: i64,
) -> Result<(), StoreError> {
    let code = tier_code(tier);
    let span = span_seconds(tier);
    tx.execute(
        "DELETE FROM rollup_blocks WHERE tier = ?1 AND device = ?2 AND start <= ?3",
        params![code, device, cutoff - span],
    )
    .map_err(backend)?;
    let straddling = block_start(tier, cutoff);
    if straddling < cutoff {
        let mut block = load_rollup(tx, (code, straddling), device)?;
        if !block.is_empty() {
            block.retain_from(cutoff);
            write_rollup(tx, (code, straddling), device, &block, SEAL_LEVEL)?;
        }
    }
    Ok(())
}

/// Stores a rollup block, or removes it when it holds nothing.
fn write_rollup(
    conn: &Connection,
    key: (u8, i64),
    device: i64,
    block: &RollupBlock,
    level: i32,
) -> Result<(), StoreError> {
    if block.is_empty() {
        conn.prepare_cached(
            "DELETE FROM rollup_blocks WHERE tier = ?1 AND device = ?2 AND start = ?3",
        )
        .and_then(|mut s| s.execute(params![key.0, device, key.1]))
        .map_err(backend)?;
    } else {
        let data = block.seal(level).map_err(io_error)?;
        conn.prepare_cached(
            "INSERT OR REPLACE INTO rollup_blocks (tier, device, start, data) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![key.0, device, key.1, data]))
        .map_err(backend)?;
    }
    Ok(())
}

fn encode_latest(report: &Report) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(report).map_err(|e| StoreError::Backend(Box::new(e)))?;
    zstd::bulk::compress(&json, LATEST_LEVEL).map_err(io_error)
}

fn decode_latest(blob: &[u8]) -> Result<Report, StoreError> {
    let json = zstd::stream::decode_all(blob).map_err(io_error)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}
