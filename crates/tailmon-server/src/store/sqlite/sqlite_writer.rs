//! The SQLite store's one writer: a thread that owns the write connection.
//!
//! - **Insert**: every insert waiting for the writer is committed in one
//!   transaction that only appends the reports to the inbox table (group
//!   commit); the writer notes in each device's memory which rows are its
//!   own, and hands the senders to the flusher thread (see
//!   [`crate::store::sqlite::sqlite_flusher`]), which answers them once the
//!   commit is on disk while the writer commits the next group.
//! - **Sealing** (a device's rows [`SEAL_AFTER`] after the first of them
//!   came, or once they reach [`MAX_WINDOW`]): in one transaction, the
//!   device's inbox rows are read back, sealed into a raw block and added to
//!   its rollup blocks, its latest report is written, and the rows are
//!   deleted. Devices fall due one by one as their first rows came, so the
//!   work is spread in small transactions between insert groups (as many
//!   devices as fit in [`SEAL_BUDGET`], at most [`SEAL_BATCH`]), never one
//!   long stop of ingest, even when a whole fleet falls due at once.
//! - **Checkpoint** (on demand, at close, and before retention for the
//!   devices whose rows retention would trim): every device sealed at once.
//! - **Recovery** (at open): nothing to replay; each device's inbox rows are
//!   found again from the inbox's `(seq, device, ts)` columns.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use tailmon_core::{OffsetDateTime, OrgId, Report, Tier, metric};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::store::downsample::bucket_start;
use crate::store::rollup_block::{RollupBlock, block_start, span_seconds};
use crate::store::sqlite::device_state::{DeviceEntry, DeviceState, Devices};
use crate::store::sqlite::pending_reads::{holds, read_rows};
use crate::store::sqlite::raw_window::{PreparedReport, RawWindow, block_timestamps, open_block};
use crate::store::sqlite::sql_values::{SharedKeep, backend, millis, tier_code};
use crate::store::sqlite::sqlite_flusher::Answers;
use crate::store::sqlite::sqlite_schema;
use crate::store::sqlite::wal_sync::WalSync;

/// How long a device's reports stay in the inbox before they are sealed,
/// unless the store is built with another
/// ([`crate::SqliteStoreBuilder::seal_after`]): about 120 reports at the
/// agent's 5 s interval, a block that compresses well.
pub(crate) const SEAL_AFTER: Duration = Duration::from_secs(600);
/// Most devices sealed in one transaction between insert groups.
const SEAL_BATCH: usize = 16;
/// About how long sealing may hold the writer between two insert groups:
/// 8 ms. Devices fall due together (a fleet that started, or came back,
/// at once), and a batch of 16 devices of full reports takes some 70 ms:
/// inserts waiting behind it were answered late, and their agents' next
/// requests too. The writer seals as many devices as fit in this budget,
/// at least one, judging by what sealing has cost so far.
const SEAL_BUDGET: Duration = Duration::from_millis(8);
/// How long a failed seal waits before it is tried again.
const SEAL_RETRY: Duration = Duration::from_secs(5);
/// How long the writer sleeps with nothing waiting to be sealed (an insert
/// wakes it at once).
const IDLE_WAIT: Duration = Duration::from_secs(3600);
/// Most inbox rows a device has before the writer seals them on its own (a
/// back-fill sends many at once).
pub(crate) const MAX_WINDOW: usize = 720;
/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;
/// zstd level of sealed blocks: sealing is off the acknowledgement path, so
/// it can afford to compress well.
const SEAL_LEVEL: i32 = 9;
/// zstd level of a rollup block still being filled, rewritten at every
/// checkpoint until the device moves past it.
const OPEN_BLOCK_LEVEL: i32 = 1;
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
    /// The newest inbox sequence number given.
    last_seq: i64,
    /// Devices with inbox rows, in the order their first row came: when
    /// they fall due, the device, and that row's sequence number (the device
    /// is due only if its rows still start there).
    due: VecDeque<(Instant, Arc<DeviceEntry>, i64)>,
    /// How long a device's rows wait before they are sealed.
    seal_after: Duration,
    /// What sealing one device has cost lately (a moving average).
    seal_cost: Duration,
    flusher: Sender<Answers>,
    /// With [`crate::Durability::Disk`]: flushed before a delete or
    /// retention is answered (inserts are flushed by the flusher).
    wal: Option<WalSync>,
}

impl Writer {
    /// Loads every device and finds its inbox rows; `Err` says why the
    /// database cannot be used.
    pub(crate) fn recover(
        conn: Connection,
        devices: Arc<Devices>,
        retention: SharedKeep,
        seal_after: Duration,
        flusher: Sender<Answers>,
        wal: Option<WalSync>,
    ) -> Result<Self, String> {
        let mut writer = Self {
            conn,
            devices,
            retention,
            sealed_timestamps: HashMap::new(),
            raw_horizon: i64::MIN,
            last_seq: 0,
            due: VecDeque::new(),
            seal_after,
            seal_cost: Duration::from_millis(1),
            flusher,
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
                let stored_latest = match latest {
                    Some(blob) => millis(decode_latest(&blob)?.last_seen),
                    None => i64::MIN,
                };
                self.last_seq = self.last_seq.max(sealed_seq);
                let entry = Arc::new(DeviceEntry::new(
                    id,
                    org,
                    name,
                    DeviceState::stored(stored_latest, sealed_newest.unwrap_or(i64::MIN)),
                ));
                by_id.insert(id, Arc::clone(&entry));
                self.devices.insert(entry);
            }
        }
        let rows: Vec<(i64, i64, Option<i64>)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT seq, device, ts FROM inbox ORDER BY seq")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let found = rows.len();
        let mut stamped = Vec::new();
        for (seq, device, ts) in rows {
            self.last_seq = self.last_seq.max(seq);
            let Some(entry) = by_id.get(&device) else {
                continue;
            };
            let ts = match ts {
                Some(ts) => ts,
                // A row written before the inbox had timestamps.
                None => {
                    let (mut read, _) = read_rows(&self.conn, std::iter::once(seq))?;
                    let Some(row) = read.pop() else { continue };
                    stamped.push((seq, row.ts));
                    row.ts
                }
            };
            entry.lock().pending.push(seq, ts);
        }
        if !stamped.is_empty() {
            let tx = self.conn.transaction().map_err(backend)?;
            for (seq, ts) in stamped {
                tx.execute("UPDATE inbox SET ts = ?2 WHERE seq = ?1", [seq, ts])
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)?;
        }
        let due = Instant::now() + self.seal_after;
        for entry in by_id.into_values() {
            let first = entry.lock().pending.first_seq();
            if let Some(first) = first {
                self.due.push_back((due, entry, first));
            }
        }
        if found > 0 {
            tracing::info!(reports = found, "reports not yet sealed found in the inbox");
        }
        Ok(())
    }

    /// Serves requests until every sender is gone, then checkpoints.
    pub(crate) fn run(mut self, requests: Receiver<Write>) {
        loop {
            // Inserts wake the writer anyway; with nothing waiting it sleeps.
            let wait = self.due.front().map_or(IDLE_WAIT, |(due, _, _)| {
                due.saturating_duration_since(Instant::now())
            });
            let first = match requests.recv_timeout(wait) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    self.seal_due();
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
            self.seal_due();
        }
        self.checkpoint_logged();
    }

    /// Seals devices whose first inbox row came `seal_after` ago or more,
    /// in one transaction: as many as [`SEAL_BUDGET`] allows, at least one
    /// and at most [`SEAL_BATCH`].
    fn seal_due(&mut self) {
        let mut batch = Vec::new();
        let now = Instant::now();
        let fit = SEAL_BUDGET.as_nanos() / self.seal_cost.as_nanos().max(1);
        let limit = usize::try_from(fit)
            .unwrap_or(SEAL_BATCH)
            .clamp(1, SEAL_BATCH);
        while batch.len() < limit && self.due.front().is_some_and(|(due, _, _)| *due <= now) {
            let Some((_, entry, first)) = self.due.pop_front() else {
                break;
            };
            // Sealed since (a full window, a delete): its new rows have an
            // entry of their own.
            if entry.lock().pending.first_seq() == Some(first) {
                batch.push((entry, first));
            }
        }
        if batch.is_empty() {
            return;
        }
        let entries: Vec<Arc<DeviceEntry>> = batch.iter().map(|(e, _)| Arc::clone(e)).collect();
        let started = Instant::now();
        let sealed = self.checkpoint(&entries, false);
        let each = started.elapsed() / u32::try_from(entries.len()).unwrap_or(u32::MAX);
        self.seal_cost = (self.seal_cost * 3 + each) / 4;
        if let Err(error) = sealed {
            tracing::warn!(%error, devices = entries.len(), "sealing failed; the reports stay in the inbox and it is tried again");
            let retry = Instant::now() + SEAL_RETRY;
            self.due.extend(
                batch
                    .into_iter()
                    .map(|(entry, first)| (retry, entry, first)),
            );
        }
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

    /// Commits every waiting insert in one transaction, then has the flusher
    /// answer each.
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
            Ok(full) => {
                if let Err(unsent) = self.flusher.send(dones) {
                    tracing::error!("the flusher has stopped; answering without a flush");
                    for done in unsent.0 {
                        let _ = done.send(Ok(()));
                    }
                }
                if !full.is_empty()
                    && let Err(error) = self.checkpoint(&full, false)
                {
                    tracing::warn!(%error, "sealing a device's many reports failed; tried again at the next checkpoint");
                }
            }
            Err(error) => {
                for done in dones {
                    let _ = done.send(Err(error.duplicate()));
                }
            }
        }
    }

    /// Appends the reports to the inbox in one transaction and notes each
    /// device's new rows; returns the devices whose rows reached
    /// [`MAX_WINDOW`].
    fn insert_all(
        &mut self,
        batches: Vec<(OrgId, Vec<PreparedReport>)>,
    ) -> Result<Vec<Arc<DeviceEntry>>, StoreError> {
        let mut created: Vec<Arc<DeviceEntry>> = Vec::new();
        let mut accepted: Vec<(Arc<DeviceEntry>, i64, i64)> = Vec::new();
        let mut last_seq = self.last_seq;
        let tx = self.conn.transaction().map_err(backend)?;
        {
            let mut seen = HashSet::new();
            let mut append = tx
                .prepare_cached(
                    "INSERT INTO inbox (seq, device, report, ts) VALUES (?1, ?2, ?3, ?4)",
                )
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
                                DeviceState::stored(i64::MIN, i64::MIN),
                            ));
                            created.push(Arc::clone(&entry));
                            entry
                        }
                    },
                };
                // An agent retrying after a lost answer: stored once.
                if !seen.insert((entry.id, ts))
                    || stored(&tx, &mut self.sealed_timestamps, &entry, ts)?
                {
                    continue;
                }
                // Numbered by the writer, never reused.
                let seq = last_seq + 1;
                append
                    .execute(params![seq, entry.id, prepared.inbox, ts])
                    .map_err(backend)?;
                last_seq = seq;
                accepted.push((entry, seq, ts));
            }
        }
        tx.commit().map_err(backend)?;
        self.last_seq = last_seq;
        for entry in created {
            self.devices.insert(entry);
        }
        let mut full = Vec::new();
        let now = Instant::now();
        for (entry, seq, ts) in accepted {
            let (first, reached) = {
                let mut state = entry.lock();
                let first = state.pending.is_empty();
                state.pending.push(seq, ts);
                (first, state.pending.len() == MAX_WINDOW)
            };
            if first {
                self.due
                    .push_back((now + self.seal_after, Arc::clone(&entry), seq));
            }
            if reached {
                full.push(entry);
            }
        }
        Ok(full)
    }

    /// Checkpoints every device.
    fn checkpoint_all(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let all = self.devices.all();
        let reports: usize = all.iter().map(|e| e.lock().pending.len()).sum();
        self.checkpoint(&all, true)?;
        tracing::debug!(
            devices = all.len(),
            reports,
            took_ms = started.elapsed().as_millis(),
            "checkpoint: inbox sealed into blocks"
        );
        Ok(())
    }

    /// Seals the inbox rows of `entries` into their blocks, in one
    /// transaction that deletes the rows too; with `all`, every device is
    /// among them and whatever else the inbox holds is deleted as well.
    fn checkpoint(&mut self, entries: &[Arc<DeviceEntry>], all: bool) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        let mut sealed = Vec::new();
        for entry in entries {
            let (seqs, stored_latest): (Vec<i64>, i64) = {
                let state = entry.lock();
                if state.pending.is_empty() {
                    continue;
                }
                (state.pending.seqs().collect(), state.stored_latest)
            };
            let (mut rows, _) = read_rows(&tx, seqs.iter().copied())?;
            // In time order: the last one is the newest.
            rows.sort_by_key(|r| r.ts);
            let mut rollups: BTreeMap<(u8, i64), RollupBlock> = BTreeMap::new();
            for row in &rows {
                for tier in [Tier::Minute, Tier::Hour] {
                    let bucket = bucket_start(tier, row.report.last_seen).unix_timestamp();
                    let key = (tier_code(tier), block_start(tier, bucket));
                    let block = match rollups.entry(key) {
                        std::collections::btree_map::Entry::Occupied(held) => held.into_mut(),
                        std::collections::btree_map::Entry::Vacant(empty) => {
                            empty.insert(load_rollup(&tx, key, entry.id)?)
                        }
                    };
                    metric::for_each(&row.report, |name, value| block.add(bucket, name, value));
                }
            }
            let newest = rows.last().map(|row| (row.ts, row.inbox.clone()));
            let mut window = RawWindow::default();
            for row in rows {
                window.push_json(row.ts, row.json)?;
            }
            let range = window.range();
            if let Some((oldest, newest)) = range {
                let data = window.seal(SEAL_LEVEL)?;
                tx.prepare_cached(
                    "INSERT INTO raw_blocks (device, first_ts, last_ts, count, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![entry.id, oldest, newest, window.len() as i64, data])
                })
                .map_err(backend)?;
            }
            // The newest block of each tier is the one the device is still
            // filling: written quickly, as it is written again at the next
            // checkpoint. The others are written for good: compactly.
            let mut newest_block: HashMap<u8, i64> = HashMap::new();
            for &(tier, start) in rollups.keys() {
                let slot = newest_block.entry(tier).or_insert(start);
                *slot = (*slot).max(start);
            }
            for (&key, block) in &rollups {
                let level = if newest_block.get(&key.0) == Some(&key.1) {
                    OPEN_BLOCK_LEVEL
                } else {
                    SEAL_LEVEL
                };
                write_rollup(&tx, key, entry.id, block, level)?;
            }
            let mut latest_ts = stored_latest;
            if let Some((ts, inbox)) = newest
                && ts >= stored_latest
            {
                tx.prepare_cached("UPDATE devices SET latest = ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![entry.id, inbox]))
                    .map_err(backend)?;
                latest_ts = ts;
            }
            if !all {
                let mut delete = tx
                    .prepare_cached("DELETE FROM inbox WHERE seq = ?1")
                    .map_err(backend)?;
                for seq in &seqs {
                    delete.execute([seq]).map_err(backend)?;
                }
            }
            sealed.push((
                Arc::clone(entry),
                range.map(|(_, newest)| newest),
                latest_ts,
                seqs.len(),
            ));
        }
        if all {
            tx.execute("DELETE FROM inbox", []).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        for (entry, sealed_newest, latest_ts, count) in sealed {
            let mut state = entry.lock();
            // Only the writer adds rows, and it is here: they are all sealed.
            debug_assert_eq!(state.pending.len(), count);
            state.pending.clear();
            if let Some(newest) = sealed_newest {
                state.sealed_newest = state.sealed_newest.max(newest);
            }
            state.stored_latest = latest_ts;
        }
        Ok(())
    }

    fn delete(&mut self, org: &OrgId, device: &str) -> Result<bool, StoreError> {
        let Some(entry) = self.devices.get(org, device) else {
            return Ok(false);
        };
        let seqs: Vec<i64> = entry.lock().pending.seqs().collect();
        let tx = self.conn.transaction().map_err(backend)?;
        for table in ["raw_blocks", "rollup_blocks"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE device = ?1"),
                [entry.id],
            )
            .map_err(backend)?;
        }
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM inbox WHERE seq = ?1")
                .map_err(backend)?;
            for seq in &seqs {
                delete.execute([seq]).map_err(backend)?;
            }
        }
        tx.execute("DELETE FROM devices WHERE id = ?1", [entry.id])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        entry.lock().pending.clear();
        self.devices.remove(org, device);
        self.sealed_timestamps.clear();
        Ok(true)
    }

    fn apply_retention(&mut self, now: OffsetDateTime) -> Result<(), StoreError> {
        let keep = **self.retention.load();
        let raw_cutoff = millis(now - keep.raw).max(self.raw_horizon);
        let cutoffs = [
            (Tier::Minute, (now - keep.minute).unix_timestamp()),
            (Tier::Hour, (now - keep.hour).unix_timestamp()),
        ];
        // Rows any tier's retention would trim (an hour more, for the
        // bucket a row falls in) go into blocks first, so only blocks need
        // trimming; the others are newer than every cutoff.
        let newest_cutoff = cutoffs
            .iter()
            .map(|&(_, cutoff)| cutoff.saturating_mul(1000))
            .fold(raw_cutoff, i64::max)
            .saturating_add(3_600_000);
        let old: Vec<Arc<DeviceEntry>> = self
            .devices
            .all()
            .into_iter()
            .filter(|entry| {
                let state = entry.lock();
                !state.pending.is_empty() && state.pending.oldest < newest_cutoff
            })
            .collect();
        self.checkpoint(&old, false)?;
        self.sealed_timestamps.clear();
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
    let pending: Option<Vec<i64>> = {
        let state = entry.lock();
        let pending = state
            .pending
            .may_hold(ts)
            .then(|| state.pending.seqs().collect());
        if pending.is_none() && ts > state.sealed_newest {
            return Ok(false);
        }
        pending
    };
    if let Some(seqs) = pending
        && holds(tx, seqs.into_iter().rev(), ts)?
    {
        return Ok(true);
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

/// A latest report as the devices table keeps it (zstd JSON, as the inbox
/// row it came from).
pub(crate) fn decode_latest(blob: &[u8]) -> Result<Report, StoreError> {
    let json = crate::store::sqlite::raw_window::decompress_inbox(blob).map_err(io_error)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}
