//! The open raw window of one device: the reports acknowledged since its
//! window was last sealed into a raw block, column-encoded in memory (about
//! the size they take on disk), and the row shape raw blocks share with it.

use serde_json::Value;
use tailmon_core::Report;

use crate::StoreError;
use crate::column_block::{self, BlockEncoder};

/// A device's reports not yet sealed into a raw block.
#[derive(Default)]
pub(crate) struct RawWindow {
    encoder: BlockEncoder,
    timestamps: Vec<i64>,
    oldest: i64,
    newest: i64,
}

impl RawWindow {
    /// Whether a report with this timestamp (milliseconds) is in the window.
    pub(crate) fn contains(&self, ts: i64) -> bool {
        !self.timestamps.is_empty()
            && (self.oldest..=self.newest).contains(&ts)
            && self.timestamps.contains(&ts)
    }

    /// Appends a report stamped `ts` (milliseconds).
    pub(crate) fn push(&mut self, ts: i64, report: &Report) -> Result<(), StoreError> {
        self.encoder
            .push_serialize(&Row { t: ts, r: report })
            .map_err(corrupt)?;
        if self.timestamps.is_empty() {
            (self.oldest, self.newest) = (ts, ts);
        } else {
            self.oldest = self.oldest.min(ts);
            self.newest = self.newest.max(ts);
        }
        self.timestamps.push(ts);
        Ok(())
    }

    /// How many reports the window holds.
    pub(crate) fn len(&self) -> usize {
        self.encoder.len()
    }

    /// Whether the window is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.encoder.is_empty()
    }

    /// Memory the window holds, roughly.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.encoder.heap_bytes() + self.timestamps.capacity() * 8
    }

    /// The oldest and newest timestamps, if any.
    pub(crate) fn range(&self) -> Option<(i64, i64)> {
        (!self.timestamps.is_empty()).then_some((self.oldest, self.newest))
    }

    /// A copy of the window for a reader: its range and its encoded rows.
    pub(crate) fn snapshot(&self) -> Option<WindowSnapshot> {
        let (oldest, newest) = self.range()?;
        Some(WindowSnapshot {
            oldest,
            newest,
            rows: self.encoder.encode(),
        })
    }

    /// The window as a sealed raw block.
    pub(crate) fn seal(&self, level: i32) -> std::io::Result<Vec<u8>> {
        self.encoder.seal(level)
    }
}

/// A report made ready for the writer on the caller's thread, so that the
/// one writer thread only appends: its timestamp and its inbox form.
pub(crate) struct PreparedReport {
    pub(crate) report: Report,
    /// `last_seen` in milliseconds.
    pub(crate) ts: i64,
    /// The report as zstd-compressed JSON, as the inbox keeps it: a third
    /// of the bytes for the database to write twice (WAL, then file).
    pub(crate) inbox: Vec<u8>,
}

impl PreparedReport {
    pub(crate) fn new(report: Report) -> Result<Self, StoreError> {
        let ts = crate::sqlite_store::millis(report.last_seen);
        let json = serde_json::to_vec(&report).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let inbox = INBOX_COMPRESSOR
            .with(|c| c.borrow_mut().compress(&json))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self { report, ts, inbox })
    }
}

thread_local! {
    /// One zstd context per thread: making one per report costs more than
    /// compressing it.
    static INBOX_COMPRESSOR: std::cell::RefCell<zstd::bulk::Compressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(1).unwrap_or_default());
}

/// A report from what [`PreparedReport::inbox`] holds.
pub(crate) fn from_inbox(bytes: &[u8]) -> Result<Report, StoreError> {
    let json = zstd::stream::decode_all(bytes).map_err(|e| StoreError::Backend(Box::new(e)))?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Backend(Box::new(e)))
}

/// What a reader takes of an open window.
pub(crate) struct WindowSnapshot {
    pub(crate) oldest: i64,
    pub(crate) newest: i64,
    rows: Vec<u8>,
}

impl WindowSnapshot {
    /// The window's reports with their timestamps, in the order they came.
    pub(crate) fn reports(&self) -> Result<Vec<(i64, Report)>, StoreError> {
        reports_of(column_block::decode(&self.rows).map_err(corrupt)?)
    }
}

/// One row of a raw block or window: `{"t": millis, "r": report}`.
#[derive(serde::Serialize)]
struct Row<'a> {
    t: i64,
    r: &'a Report,
}

/// The reports of a sealed raw block, with their timestamps.
pub(crate) fn open_block(bytes: &[u8]) -> Result<Vec<(i64, Report)>, StoreError> {
    reports_of(column_block::decode_sealed(bytes).map_err(corrupt)?)
}

/// Only the timestamps of a sealed raw block.
pub(crate) fn block_timestamps(bytes: &[u8]) -> Result<Vec<i64>, StoreError> {
    column_block::decode_sealed(bytes)
        .map_err(corrupt)?
        .iter()
        .map(|row| {
            row.get("t")
                .and_then(Value::as_i64)
                .ok_or_else(|| StoreError::Backend("raw row without a timestamp".into()))
        })
        .collect()
}

fn reports_of(rows: Vec<Value>) -> Result<Vec<(i64, Report)>, StoreError> {
    rows.into_iter()
        .map(|mut row| {
            let ts = row
                .get("t")
                .and_then(Value::as_i64)
                .ok_or_else(|| StoreError::Backend("raw row without a timestamp".into()))?;
            let report =
                serde_json::from_value(row.get_mut("r").map(Value::take).unwrap_or_default())
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
            Ok((ts, report))
        })
        .collect()
}

fn corrupt(error: column_block::BlockError) -> StoreError {
    StoreError::Backend(Box::new(error))
}
