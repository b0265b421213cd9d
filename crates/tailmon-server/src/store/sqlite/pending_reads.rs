//! Reading a device's reports that are still in the inbox, for the
//! checkpoint that seals them and for readers, which merge them with the
//! blocks.
//!
//! A reader takes a [`PendingSnapshot`] (which rows) from memory, then reads
//! the rows on its own connection. A checkpoint may seal and delete some of
//! them in between: those are then read from the raw blocks that now hold
//! them, so a reader never misses a report (it may see one twice, and its
//! caller keeps one per timestamp).

use rusqlite::{Connection, OptionalExtension, params};
use tailmon_core::Report;

use crate::StoreError;
use crate::store::sqlite::device_state::PendingRows;
use crate::store::sqlite::raw_window::{PreparedReport, open_block};
use crate::store::sqlite::sql_values::backend;

/// Which inbox rows hold a device's unsealed reports, taken from memory.
#[derive(Clone)]
pub(crate) struct PendingSnapshot {
    /// The device's row id.
    pub(crate) device: i64,
    /// The oldest and newest timestamps (ms) among them.
    pub(crate) oldest: i64,
    pub(crate) newest: i64,
    seqs: Vec<i64>,
}

impl PendingSnapshot {
    /// The rows of `device` now, if it has any.
    pub(crate) fn of(device: i64, rows: &PendingRows) -> Option<Self> {
        (!rows.is_empty()).then(|| Self {
            device,
            oldest: rows.oldest,
            newest: rows.newest,
            seqs: rows.seqs().collect(),
        })
    }

    /// How many reports.
    pub(crate) fn count(&self) -> usize {
        self.seqs.len()
    }

    /// The reports, with their timestamps (ms), in no particular order.
    pub(crate) fn reports(&self, conn: &Connection) -> Result<Vec<(i64, Report)>, StoreError> {
        let (rows, missing) = read_rows(conn, self.seqs.iter().copied())?;
        let mut reports: Vec<(i64, Report)> = rows.into_iter().map(|r| (r.ts, r.report)).collect();
        if missing > 0 {
            // Sealed since the snapshot: in the blocks now.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT data FROM raw_blocks WHERE device = ?1 AND last_ts >= ?2 AND first_ts <= ?3",
                )
                .map_err(backend)?;
            let blocks = stmt
                .query_map(params![self.device, self.oldest, self.newest], |r| {
                    r.get::<_, Vec<u8>>(0)
                })
                .map_err(backend)?;
            for block in blocks {
                let block = block.map_err(backend)?;
                reports.extend(
                    open_block(&block)?
                        .into_iter()
                        .filter(|(ts, _)| (self.oldest..=self.newest).contains(ts)),
                );
            }
        }
        Ok(reports)
    }
}

/// The inbox rows `seqs`, decoded, and how many of them were not there.
pub(crate) fn read_rows(
    conn: &Connection,
    seqs: impl Iterator<Item = i64>,
) -> Result<(Vec<PreparedReport>, usize), StoreError> {
    let mut rows = Vec::with_capacity(seqs.size_hint().0);
    let mut missing = 0;
    for seq in seqs {
        match row_blob(conn, seq)? {
            Some(blob) => rows.push(PreparedReport::from_inbox(blob)?),
            None => missing += 1,
        }
    }
    Ok((rows, missing))
}

/// The inbox row `seq` as it is stored (zstd JSON), if it is still there.
pub(crate) fn row_blob(conn: &Connection, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
    conn.prepare_cached("SELECT report FROM inbox WHERE seq = ?1")
        .and_then(|mut s| s.query_row([seq], |r| r.get(0)).optional())
        .map_err(backend)
}

/// Whether one of the inbox rows `seqs` holds a report stamped `ts` (ms).
pub(crate) fn holds(
    conn: &Connection,
    seqs: impl Iterator<Item = i64>,
    ts: i64,
) -> Result<bool, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT ts FROM inbox WHERE seq = ?1")
        .map_err(backend)?;
    for seq in seqs {
        let stamp: Option<Option<i64>> = stmt
            .query_row([seq], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if stamp.flatten() == Some(ts) {
            return Ok(true);
        }
    }
    Ok(false)
}
