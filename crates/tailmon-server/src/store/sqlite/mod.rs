//! The SQLite store: one writer thread batching transactions, a flusher
//! that makes each commit durable before it is answered, a few bytes of
//! memory per device saying where its unsealed reports are, the schema and
//! its migrations, and the reads that merge the inbox with the blocks.

pub(crate) mod backup;
pub(crate) mod device_state;
pub(crate) mod pending_reads;
pub(crate) mod raw_window;
pub(crate) mod sql_values;
pub(crate) mod sqlite_flusher;
pub(crate) mod sqlite_schema;
pub(crate) mod sqlite_store;
pub(crate) mod sqlite_writer;
pub(crate) mod wal_sync;
