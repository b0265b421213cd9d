//! The SQLite store's one writer: a thread that owns the write connection and
//! commits every request waiting for it in one transaction (group commit).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::mpsc::Receiver;

use rusqlite::{Connection, OptionalExtension, params};
use tailmon_core::{OffsetDateTime, Report, Tier, metric};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::downsample::bucket_start;
use crate::rollup_row::RollupRow;
use crate::sqlite_store::{Retention, backend, millis, tier_code};

/// Most requests folded into one transaction.
const MAX_GROUP: usize = 512;
/// Rollup rows kept decoded between transactions before the cache is reset.
const MAX_CACHED_ROWS: usize = 100_000;

/// A batch of reports waiting for its commit, with where to say it happened.
type PendingInsert = (Vec<Report>, oneshot::Sender<Result<(), StoreError>>);

/// What the writer is asked to do.
pub(crate) enum Write {
    Insert {
        reports: Vec<Report>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    Delete {
        device: String,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
    Retention {
        now: OffsetDateTime,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The writer's state: the connection and caches of what it wrote.
pub(crate) struct Writer {
    conn: Connection,
    retention: Retention,
    device_ids: HashMap<String, i64>,
    metric_ids: HashMap<String, u32>,
    rollups: HashMap<(u8, i64, i64), RollupRow>,
    /// One zstd context for every report: making one per call costs more
    /// than compressing.
    compressor: zstd::bulk::Compressor<'static>,
    /// The current report's metrics by id, reused from report to report.
    values: Vec<(u32, f64)>,
}

/// zstd level for raw reports: fast, about 3x on report JSON.
const RAW_COMPRESSION_LEVEL: i32 = 3;

impl Writer {
    pub(crate) fn new(conn: Connection, retention: Retention) -> std::io::Result<Self> {
        Ok(Self {
            compressor: zstd::bulk::Compressor::new(RAW_COMPRESSION_LEVEL)?,
            conn,
            retention,
            device_ids: HashMap::new(),
            metric_ids: HashMap::new(),
            rollups: HashMap::new(),
            values: Vec::with_capacity(64),
        })
    }

    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self, requests: Receiver<Write>) {
        while let Ok(first) = requests.recv() {
            let mut inserts = Vec::new();
            let mut next = Some(first);
            while let Some(request) = next.take() {
                match request {
                    Write::Insert { reports, done } => inserts.push((reports, done)),
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
        }
    }

    fn serve_other(&mut self, request: Write) {
        match request {
            Write::Insert { .. } => {}
            Write::Delete { device, done } => {
                let result = self.delete(&device);
                let _ = done.send(result);
            }
            Write::Retention { now, done } => {
                let result = self.apply_retention(now);
                let _ = done.send(result);
            }
        }
    }

    /// Commits every waiting insert in one transaction, then answers each.
    fn commit_inserts(&mut self, inserts: Vec<PendingInsert>) {
        if inserts.is_empty() {
            return;
        }
        let result = self.insert_all(inserts.iter().flat_map(|(reports, _)| reports));
        if result.is_err() {
            // The transaction rolled back: what the caches learned may not be stored.
            self.reset_caches();
        }
        for (_, done) in inserts {
            let _ = done.send(match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(error.duplicate()),
            });
        }
    }

    fn insert_all<'a>(
        &mut self,
        reports: impl Iterator<Item = &'a Report>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        let mut touched: Vec<(u8, i64, i64)> = Vec::new();
        {
            let mut insert_raw = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO raw (device, ts, report) VALUES (?1, ?2, ?3)",
                )
                .map_err(backend)?;
            for report in reports {
                let json =
                    serde_json::to_vec(report).map_err(|e| StoreError::Backend(Box::new(e)))?;
                let ts = millis(report.last_seen);
                let device = device_id(&tx, &mut self.device_ids, report)?;
                let compressed = self
                    .compressor
                    .compress(&json)
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                let inserted = insert_raw
                    .execute(params![device, ts, compressed])
                    .map_err(backend)?;
                if inserted == 0 {
                    // Already stored (an agent retrying after a lost answer):
                    // counted once in the rollups.
                    continue;
                }

                // Every metric of the report, by id, once for both tiers.
                let metric_ids = &mut self.metric_ids;
                let values = &mut self.values;
                values.clear();
                let mut failed = None;
                metric::for_each(report, |name, value| {
                    if failed.is_none() {
                        match metric_id(&tx, metric_ids, name) {
                            Ok(id) => values.push((id, value)),
                            Err(error) => failed = Some(error),
                        }
                    }
                });
                if let Some(error) = failed {
                    return Err(error);
                }
                for tier in [Tier::Minute, Tier::Hour] {
                    let bucket = bucket_start(tier, report.last_seen).unix_timestamp();
                    let key = (tier_code(tier), device, bucket);
                    if !touched.contains(&key) {
                        touched.push(key);
                    }
                    let row = match self.rollups.entry(key) {
                        Entry::Occupied(entry) => entry.into_mut(),
                        Entry::Vacant(entry) => entry.insert(load_rollup(&tx, key)?),
                    };
                    for &(id, value) in values.iter() {
                        row.add(id, value);
                    }
                }
            }
            let mut write_rollup = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO rollups (tier, device, bucket, data) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(backend)?;
            for key in &touched {
                if let Some(row) = self.rollups.get(key) {
                    write_rollup
                        .execute(params![key.0, key.1, key.2, row.encode()])
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().map_err(backend)?;
        if self.rollups.len() > MAX_CACHED_ROWS {
            self.rollups.clear();
        }
        Ok(())
    }

    fn delete(&mut self, device: &str) -> Result<bool, StoreError> {
        let tx = self.conn.transaction().map_err(backend)?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM devices WHERE name = ?1", [device], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)?;
        let Some(id) = id else {
            return Ok(false);
        };
        tx.execute("DELETE FROM raw WHERE device = ?1", [id])
            .map_err(backend)?;
        tx.execute(
            "DELETE FROM rollups WHERE tier IN (1, 2) AND device = ?1",
            [id],
        )
        .map_err(backend)?;
        tx.execute("DELETE FROM devices WHERE id = ?1", [id])
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        self.device_ids.remove(device);
        self.rollups.retain(|(_, d, _), _| *d != id);
        Ok(true)
    }

    fn apply_retention(&mut self, now: OffsetDateTime) -> Result<(), StoreError> {
        let raw_cutoff = millis(now - self.retention.raw);
        let minute_cutoff = (now - self.retention.minute).unix_timestamp();
        let hour_cutoff = (now - self.retention.hour).unix_timestamp();
        let tx = self.conn.transaction().map_err(backend)?;
        let devices: Vec<i64> = {
            let mut stmt = tx.prepare("SELECT id FROM devices").map_err(backend)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        for device in devices {
            // A device's latest report stays, however old: it is what the
            // dashboard and the device list show.
            tx.execute(
                "DELETE FROM raw WHERE device = ?1 AND ts < ?2 \
                 AND ts < (SELECT MAX(ts) FROM raw WHERE device = ?1)",
                params![device, raw_cutoff],
            )
            .map_err(backend)?;
            for (tier, cutoff) in [(Tier::Minute, minute_cutoff), (Tier::Hour, hour_cutoff)] {
                tx.execute(
                    "DELETE FROM rollups WHERE tier = ?1 AND device = ?2 AND bucket < ?3",
                    params![tier_code(tier), device, cutoff],
                )
                .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)?;
        self.rollups.retain(|(tier, _, bucket), _| {
            *bucket
                >= if *tier == tier_code(Tier::Minute) {
                    minute_cutoff
                } else {
                    hour_cutoff
                }
        });
        Ok(())
    }

    fn reset_caches(&mut self) {
        self.device_ids.clear();
        self.metric_ids.clear();
        self.rollups.clear();
    }
}

/// The row id of the report's device, created on first sight.
fn device_id(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    report: &Report,
) -> Result<i64, StoreError> {
    if let Some(id) = cache.get(report.device_id.as_str()) {
        return Ok(*id);
    }
    tx.execute(
        "INSERT OR IGNORE INTO devices (name) VALUES (?1)",
        [&report.device_id],
    )
    .map_err(backend)?;
    let id: i64 = tx
        .query_row(
            "SELECT id FROM devices WHERE name = ?1",
            [&report.device_id],
            |r| r.get(0),
        )
        .map_err(backend)?;
    cache.insert(report.device_id.clone(), id);
    Ok(id)
}

/// The id of a metric name, created on first sight.
fn metric_id(
    tx: &rusqlite::Transaction<'_>,
    cache: &mut HashMap<String, u32>,
    name: &str,
) -> Result<u32, StoreError> {
    if let Some(id) = cache.get(name) {
        return Ok(*id);
    }
    tx.execute(
        "INSERT OR IGNORE INTO metric_names (name) VALUES (?1)",
        [name],
    )
    .map_err(backend)?;
    let id: u32 = tx
        .query_row("SELECT id FROM metric_names WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .map_err(backend)?;
    cache.insert(name.to_owned(), id);
    Ok(id)
}

fn load_rollup(
    tx: &rusqlite::Transaction<'_>,
    key: (u8, i64, i64),
) -> Result<RollupRow, StoreError> {
    let blob: Option<Vec<u8>> = tx
        .prepare_cached("SELECT data FROM rollups WHERE tier = ?1 AND device = ?2 AND bucket = ?3")
        .and_then(|mut s| {
            s.query_row(params![key.0, key.1, key.2], |r| r.get(0))
                .optional()
        })
        .map_err(backend)?;
    Ok(blob.and_then(|b| RollupRow::decode(&b)).unwrap_or_default())
}
