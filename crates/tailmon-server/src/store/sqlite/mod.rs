//! The SQLite store: one writer thread batching transactions, an applier
//! that keeps the latest reports and open windows in memory, the schema and
//! its migrations, and the flush that makes a commit durable.

pub(crate) mod backup;
pub(crate) mod device_state;
pub(crate) mod raw_window;
pub(crate) mod sql_values;
pub(crate) mod sqlite_applier;
pub(crate) mod sqlite_schema;
pub(crate) mod sqlite_store;
pub(crate) mod sqlite_writer;
pub(crate) mod wal_sync;
