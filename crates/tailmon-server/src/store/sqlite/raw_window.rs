//! A raw window: a device's reports column-encoded as a checkpoint seals
//! them into a raw block (or retention rewrites one), the row shape raw
//! blocks hold, and a report's inbox form.

use serde::ser::SerializeStruct;
use serde_json::Value;
use tailmon_core::Report;

use crate::StoreError;
use crate::store::codec::{self, BlockEncoder};

/// Reports a window keeps as JSON before encoding them together. With a
/// thousand devices reporting in turn, a device's encoder state (some tens
/// of kilobytes) has left the cache by its next report; encoding eight
/// reports at a time loads it once for all eight, which makes encoding
/// about twice as fast for up to 16 KB of JSON held per device.
pub(crate) const STAGED_ROWS: usize = 8;

/// A device's reports not yet sealed into a raw block.
#[derive(Default)]
pub(crate) struct RawWindow {
    encoder: BlockEncoder,
    /// Reports not yet given to the encoder, in arrival order: their
    /// timestamp and canonical JSON.
    staged: Vec<(i64, Vec<u8>)>,
    /// The timestamps of the encoded rows, in the encoder's order.
    timestamps: Vec<i64>,
    oldest: i64,
    newest: i64,
}

impl RawWindow {
    /// Appends a report stamped `ts` (milliseconds).
    pub(crate) fn push(&mut self, ts: i64, report: &Report) -> Result<(), StoreError> {
        self.flush()?;
        self.widen(ts);
        self.encoder
            .push_serialize(&Row { t: ts, r: report })
            .map_err(corrupt)?;
        self.timestamps.push(ts);
        Ok(())
    }

    /// Appends a report stamped `ts` (milliseconds) given as its canonical
    /// JSON (`serde_json::to_vec` of the [`Report`]): the same row as
    /// [`push`](Self::push) would append, encoded with the next few.
    pub(crate) fn push_json(&mut self, ts: i64, json: Vec<u8>) -> Result<(), StoreError> {
        self.widen(ts);
        self.staged.push((ts, json));
        if self.staged.len() >= STAGED_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Widens the range to cover a report stamped `ts`, before it is held.
    fn widen(&mut self, ts: i64) {
        if self.is_empty() {
            (self.oldest, self.newest) = (ts, ts);
        } else {
            self.oldest = self.oldest.min(ts);
            self.newest = self.newest.max(ts);
        }
    }

    /// Gives the staged reports to the encoder. A row it refuses (JSON this
    /// store did not write) is dropped from memory; the inbox still has it
    /// for the next start.
    fn flush(&mut self) -> Result<(), StoreError> {
        let mut result = Ok(());
        for (ts, json) in self.staged.drain(..) {
            match self.encoder.push_serialize(&JsonRow { t: ts, r: &json }) {
                Ok(()) => self.timestamps.push(ts),
                Err(error) => result = Err(corrupt(error)),
            }
        }
        result
    }

    /// How many reports the window holds.
    pub(crate) fn len(&self) -> usize {
        self.encoder.len() + self.staged.len()
    }

    /// Whether the window is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The oldest and newest timestamps, if any.
    pub(crate) fn range(&self) -> Option<(i64, i64)> {
        (!self.is_empty()).then_some((self.oldest, self.newest))
    }

    /// The window as a sealed raw block.
    pub(crate) fn seal(&mut self, level: i32) -> Result<Vec<u8>, StoreError> {
        self.flush()?;
        self.encoder
            .seal(level)
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }
}

/// A report made ready for the writer on the caller's thread, so that the
/// one writer thread only appends: its timestamp, its canonical JSON and its
/// inbox form.
pub(crate) struct PreparedReport {
    pub(crate) report: Report,
    /// `last_seen` in milliseconds.
    pub(crate) ts: i64,
    /// The report's canonical JSON, which the raw window encodes.
    pub(crate) json: Vec<u8>,
    /// The JSON compressed with zstd, as the inbox keeps it: half the bytes
    /// for the one writer thread to write twice (WAL, then file), which
    /// costs it more than compressing costs the caller's thread.
    pub(crate) inbox: Vec<u8>,
}

impl PreparedReport {
    pub(crate) fn new(report: Report) -> Result<Self, StoreError> {
        let ts = crate::store::sqlite::sql_values::millis(report.last_seen);
        // Room for a full report at once (they take some 1.6 KB), rather
        // than growing from 128 bytes in six steps.
        let mut json = Vec::with_capacity(JSON_CAPACITY);
        serde_json::to_writer(&mut json, &report).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let inbox = INBOX_COMPRESSOR
            .with(|c| c.borrow_mut().compress(&json))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Self {
            report,
            ts,
            json,
            inbox,
        })
    }

    /// A report from what [`PreparedReport::inbox`] holds.
    pub(crate) fn from_inbox(inbox: Vec<u8>) -> Result<Self, StoreError> {
        let json = decompress_inbox(&inbox).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let report: Report =
            serde_json::from_slice(&json).map_err(|e| StoreError::Backend(Box::new(e)))?;
        let ts = crate::store::sqlite::sql_values::millis(report.last_seen);
        Ok(Self {
            report,
            ts,
            json,
            inbox,
        })
    }
}

/// The buffer a report's JSON starts in.
const JSON_CAPACITY: usize = 2048;

thread_local! {
    /// One zstd context per thread: making one per report costs more than
    /// compressing it.
    static INBOX_COMPRESSOR: std::cell::RefCell<zstd::bulk::Compressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Compressor::new(1).unwrap_or_default());
    /// The same for reading rows back: a fresh decoder per row cost sealing
    /// more than the rest of its decoding.
    static INBOX_DECOMPRESSOR: std::cell::RefCell<zstd::bulk::Decompressor<'static>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().unwrap_or_default());
}

/// The largest JSON an inbox row decompresses to in one step: 64 MiB, far
/// beyond any report the API accepts. A frame that does not say its size,
/// or says more, is read as a stream instead.
const MAX_INBOX_JSON: u64 = 64 << 20;

/// The JSON of an inbox row (or of a latest report, kept the same way).
pub(crate) fn decompress_inbox(blob: &[u8]) -> std::io::Result<Vec<u8>> {
    match zstd::zstd_safe::get_frame_content_size(blob) {
        Ok(Some(size)) if size <= MAX_INBOX_JSON => {
            INBOX_DECOMPRESSOR.with(|d| d.borrow_mut().decompress(blob, size as usize))
        }
        _ => zstd::stream::decode_all(blob),
    }
}

/// One row of a raw block or window: `{"t": millis, "r": report}`.
#[derive(serde::Serialize)]
struct Row<'a> {
    t: i64,
    r: &'a Report,
}

/// A [`Row`] whose report is given as its canonical JSON: it serializes as
/// the [`Row`] of that report does.
struct JsonRow<'a> {
    t: i64,
    r: &'a [u8],
}

impl serde::Serialize for JsonRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut row = serializer.serialize_struct("Row", 2)?;
        row.serialize_field("t", &self.t)?;
        row.serialize_field("r", &Transcoded(self.r))?;
        row.end()
    }
}

/// JSON text serialized as the value it holds.
struct Transcoded<'a>(&'a [u8]);

impl serde::Serialize for Transcoded<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut json = serde_json::Deserializer::from_slice(self.0);
        serde_transcode::transcode(&mut json, serializer)
    }
}

/// The reports of a sealed raw block, with their timestamps.
pub(crate) fn open_block(bytes: &[u8]) -> Result<Vec<(i64, Report)>, StoreError> {
    reports_of(codec::decode_sealed(bytes).map_err(corrupt)?)
}

/// Only the timestamps of a sealed raw block.
pub(crate) fn block_timestamps(bytes: &[u8]) -> Result<Vec<i64>, StoreError> {
    codec::decode_sealed(bytes)
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

fn corrupt(error: codec::BlockError) -> StoreError {
    StoreError::Backend(Box::new(error))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tailmon_core::{OffsetDateTime, ProcessInfo};

    use super::*;

    /// Reports whose shape changes from one to the next: optional parts
    /// coming and going, custom metrics, odd floats, escaped strings.
    fn reports(count: usize) -> Vec<Report> {
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time");
        (0..count)
            .map(|i| {
                let mut report =
                    Report::new("window-test", start + time::Duration::seconds(5 * i as i64));
                report.cpu_usage = [12.5, 0.1 + 0.2, 1e-300, 99.99][i % 4];
                report.ram_used_mb = 1_000 + i as u64;
                report.ram_total_mb = 16_000;
                report.received_at = Some(start + time::Duration::seconds(5 * i as i64 + 1));
                if i % 3 != 0 {
                    report.cpu_per_core = Some(vec![i as f64, 2.25, -0.0]);
                }
                if i % 5 == 1 {
                    report.custom = Some(BTreeMap::from([
                        ("queue \"depth\"\n".to_owned(), i as f64),
                        ("z".to_owned(), f64::MAX),
                    ]));
                }
                report.top_processes = Some(
                    (0..(i % 4))
                        .map(|p| ProcessInfo {
                            pid: p as u32,
                            name: format!("proc-{}", (i + p) % 3),
                            cpu_percent: 0.5 * p as f64,
                            rss_bytes: u64::MAX - p as u64,
                        })
                        .collect(),
                );
                report
            })
            .collect()
    }

    #[test]
    fn json_pushed_rows_encode_as_reports_pushed_directly() {
        let reports = reports(3 * STAGED_ROWS + 3);
        let mut direct = RawWindow::default();
        let mut staged = RawWindow::default();
        for (i, report) in reports.iter().enumerate() {
            let ts = 1_000 * i as i64;
            direct.push(ts, report).expect("push");
            let json = serde_json::to_vec(report).expect("json");
            staged.push_json(ts, json).expect("push_json");
            assert_eq!(staged.len(), i + 1, "staged rows count at once");
        }
        assert_eq!(staged.range(), direct.range());
        assert_eq!(
            staged.seal(3).expect("seal"),
            direct.seal(3).expect("seal"),
            "the same block, byte for byte"
        );
        let opened = open_block(&staged.seal(3).expect("seal")).expect("open");
        let expected: Vec<(i64, Report)> = reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| (1_000 * i as i64, r))
            .collect();
        assert_eq!(opened.len(), expected.len());
        for ((ts, got), (want_ts, want)) in opened.iter().zip(&expected) {
            assert_eq!(ts, want_ts);
            assert_eq!(
                serde_json::to_value(got).expect("json"),
                serde_json::to_value(want).expect("json")
            );
        }
    }

    #[test]
    fn a_direct_push_after_staged_ones_keeps_the_arrival_order() {
        let reports = reports(2);
        let mut window = RawWindow::default();
        for (i, report) in reports.iter().enumerate() {
            let json = serde_json::to_vec(report).expect("json");
            window.push_json(i as i64, json).expect("push_json");
        }
        assert_eq!(window.range(), Some((0, 1)));
        window.push(7, &reports[0]).expect("push");
        let read = open_block(&window.seal(3).expect("seal")).expect("open");
        let order: Vec<i64> = read.iter().map(|(ts, _)| *ts).collect();
        assert_eq!(order, [0, 1, 7]);
        assert_eq!(read[1].1.ram_used_mb, reports[1].ram_used_mb);
    }

    #[test]
    fn inbox_rows_give_back_the_report_and_its_json() {
        let report = reports(2).pop().expect("report");
        let prepared = PreparedReport::new(report.clone()).expect("prepare");
        assert!(prepared.inbox.len() < prepared.json.len(), "compressed");
        let read = PreparedReport::from_inbox(prepared.inbox.clone()).expect("inbox row");
        assert_eq!(read.json, prepared.json);
        assert_eq!(read.json, serde_json::to_vec(&report).expect("json"));
        assert_eq!(
            read.ts,
            crate::store::sqlite::sql_values::millis(report.last_seen)
        );
        assert_eq!(read.report.ram_used_mb, report.ram_used_mb);
        assert!(PreparedReport::from_inbox(b"{not zstd".to_vec()).is_err());
    }
}
