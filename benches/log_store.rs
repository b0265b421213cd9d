//! The least a durable store can do, as a floor for the ingest benchmark:
//! each report is written as one JSON line, every report waiting is appended
//! by one writer thread with a single `write` (and, if asked, one
//! `fdatasync`), and only then is its sender answered. It keeps nothing in
//! memory and answers no query.
//!
//! The SQLite store does this and more (rollups, a compressed raw window,
//! the latest report for readers), so no store that answers only after one
//! writer thread has committed can ingest faster than this one on the same
//! machine.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};

use async_trait::async_trait;
use tailmon_core::{History, OffsetDateTime, OrgId, Report};
use tailmon_server::store::{HistoryQuery, ReportStream};
use tailmon_server::{Store, StoreError};
use tokio::sync::oneshot;

/// The log is emptied when it grows past this, as a store empties its log
/// once what it holds is stored elsewhere, so that a long run stays small.
const MAX_LOG_BYTES: u64 = 64 << 20;

/// Reports as JSON lines, and where to answer.
type Pending = (Vec<u8>, oneshot::Sender<Result<(), StoreError>>);

/// An append-only log of reports, written by one thread.
#[derive(Debug)]
pub struct LogStore {
    writer: Sender<Pending>,
}

impl LogStore {
    /// Appends to `path` (created, or emptied); with `sync`, each group of
    /// reports is flushed to disk with `fdatasync` before it is answered.
    pub fn create(path: &Path, sync: bool) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        file.set_len(0)?;
        let (writer, pending) = channel();
        std::thread::Builder::new()
            .name("log-store-writer".into())
            .spawn(move || write_groups(file, sync, pending))?;
        Ok(Self { writer })
    }
}

/// Appends every report waiting with one write, then answers each sender.
fn write_groups(mut file: File, sync: bool, pending: Receiver<Pending>) {
    let mut group = Vec::new();
    let mut size = 0;
    while let Ok(first) = pending.recv() {
        let waiting: Vec<Pending> = std::iter::once(first).chain(pending.try_iter()).collect();
        group.clear();
        for (lines, _) in &waiting {
            group.extend_from_slice(lines);
        }
        size += group.len() as u64;
        let written = file
            .write_all(&group)
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
            .map_err(|e| e.to_string());
        for (_, done) in waiting {
            let _ = done.send(written.clone().map_err(StoreError::Unavailable));
        }
        if size > MAX_LOG_BYTES && file.set_len(0).is_ok() {
            size = 0;
        }
    }
}

#[async_trait]
impl Store for LogStore {
    async fn insert_many(&self, _org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError> {
        let mut lines = Vec::with_capacity(2048 * reports.len());
        for report in &reports {
            serde_json::to_writer(&mut lines, report)
                .map_err(|e| StoreError::Backend(Box::new(e)))?;
            lines.push(b'\n');
        }
        let stopped = || StoreError::Unavailable("the log writer has stopped".into());
        let (done, answer) = oneshot::channel();
        self.writer.send((lines, done)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError> {
        Ok(Vec::new())
    }

    async fn latest_of(
        &self,
        _org: &OrgId,
        _device_id: &str,
    ) -> Result<Option<Report>, StoreError> {
        Ok(None)
    }

    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        Ok(Vec::new())
    }

    async fn history(
        &self,
        _org: &OrgId,
        _query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        Ok(None)
    }

    async fn reports(
        &self,
        _org: &OrgId,
        _device_id: &str,
        _from: OffsetDateTime,
        _to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError> {
        Ok(None)
    }

    async fn delete_device(&self, _org: &OrgId, _device_id: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn apply_retention(&self, _now: OffsetDateTime) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulated_host::SimulatedHost;

    #[tokio::test]
    async fn an_answered_insert_is_in_the_file() {
        let dir = std::env::temp_dir().join(format!("tailmon-log-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("log");
        let store = LogStore::create(&path, true).expect("log");
        let mut host = SimulatedHost::new("log-test", 1);
        let reports: Vec<Report> = (0..3)
            .map(|_| host.next(OffsetDateTime::now_utc()))
            .collect();
        store
            .insert(&OrgId::default(), reports[0].clone())
            .await
            .expect("insert");
        store
            .insert_many(&OrgId::default(), reports[1..].to_vec())
            .await
            .expect("insert");
        let text = std::fs::read_to_string(&path).expect("read");
        let read: Vec<Report> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a report a line"))
            .collect();
        assert_eq!(read, reports);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
