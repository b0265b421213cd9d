//! The SQLite store's flusher: a thread that answers the senders of each
//! group the writer has committed, after flushing it to disk with
//! [`crate::Durability::Disk`]. The writer's thread thus only commits, and
//! commits the next groups while a flush runs; one `fdatasync` covers every
//! group waiting.

use std::sync::mpsc::Receiver;

use tokio::sync::oneshot;

use crate::StoreError;
use crate::store::sqlite::wal_sync::{WalSync, unflushed};

/// Senders of a committed group, to answer once it is on disk.
pub(crate) type Answers = Vec<oneshot::Sender<Result<(), StoreError>>>;

/// Serves groups until the writer is gone. With `wal`
/// ([`crate::Durability::Disk`]), every group waiting is flushed with one
/// `fdatasync` before any of them is answered.
pub(crate) fn run(requests: Receiver<Answers>, mut wal: Option<WalSync>) {
    while let Ok(first) = requests.recv() {
        let waiting: Vec<Answers> = std::iter::once(first).chain(requests.try_iter()).collect();
        let flushed = wal.as_mut().map_or(Ok(()), WalSync::sync);
        if let Err(error) = &flushed {
            tracing::error!(%error, "cannot flush the database to disk; reports are refused until it works again");
        }
        for done in waiting.into_iter().flatten() {
            let _ = done.send(match &flushed {
                Ok(()) => Ok(()),
                // Committed, so stored: the agent's retry finds the report
                // stored and is answered 2xx then.
                Err(error) => Err(unflushed(error)),
            });
        }
    }
}
