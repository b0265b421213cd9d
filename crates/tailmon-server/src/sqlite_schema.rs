//! The SQLite store's tables.
//!
//! - `devices`: one row per device (its latest report is its newest raw row);
//! - `metric_names`: a dictionary of metric names, so rollups hold small ids;
//! - `raw`: every report, zstd-compressed JSON, by device and time;
//! - `rollups`: per tier, device and bucket, the avg/min/max of every metric
//!   in one row (see [`crate::rollup_row`]).

use rusqlite::Connection;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Creates the tables if they do not exist, and checks the version.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<Result<(), String>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS devices (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE
         );
         CREATE TABLE IF NOT EXISTS metric_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
         CREATE TABLE IF NOT EXISTS raw (
             device INTEGER NOT NULL,
             ts INTEGER NOT NULL,
             report BLOB NOT NULL,
             PRIMARY KEY (device, ts)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS rollups (
             tier INTEGER NOT NULL,
             device INTEGER NOT NULL,
             bucket INTEGER NOT NULL,
             data BLOB NOT NULL,
             PRIMARY KEY (tier, device, bucket)
         ) WITHOUT ROWID;
         INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 1);",
    )?;
    let version: i64 = conn.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    Ok(if version == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(format!(
            "the database has schema version {version}; this server reads version {SCHEMA_VERSION}"
        ))
    })
}
