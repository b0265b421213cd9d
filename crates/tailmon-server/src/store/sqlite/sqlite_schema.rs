//! The SQLite store's tables.
//!
//! - `devices`: one row per device, with its latest report (zstd JSON) and
//!   the newest inbox sequence number whose effects the other tables hold;
//! - `inbox`: each acknowledged report (JSON) in arrival order, until a
//!   checkpoint has put it into a raw block and the rollups. Appending here
//!   is all a report costs before it is acknowledged;
//! - `raw_blocks`: a device's reports over a stretch of time, column-encoded
//!   and zstd-compressed (see [`crate::store::codec`]);
//! - `rollup_blocks`: per tier, device and block (six hours of minute buckets,
//!   a week of hour buckets), the count, sum, min and max of every metric;
//! - `meta`: the schema version, and `raw_horizon`, the newest raw retention
//!   cutoff applied (Unix ms): reports stamped before it are dropped. A
//!   database without it (written before it existed) gets it at the next
//!   retention pass.

use rusqlite::{Connection, OptionalExtension};

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Creates the tables if they do not exist, and checks the version.
pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<Result<(), String>> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
    )?;
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match version {
        None | Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Ok(Err(format!(
                "the database has schema version {other}; this server reads version {SCHEMA_VERSION}"
            )));
        }
    }
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS devices (
             id INTEGER PRIMARY KEY,
             name TEXT NOT NULL UNIQUE,
             latest BLOB,
             sealed_seq INTEGER NOT NULL DEFAULT 0
         );
         CREATE TABLE IF NOT EXISTS inbox (
             seq INTEGER PRIMARY KEY,
             device INTEGER NOT NULL,
             report BLOB NOT NULL
         );
         CREATE TABLE IF NOT EXISTS raw_blocks (
             id INTEGER PRIMARY KEY,
             device INTEGER NOT NULL,
             first_ts INTEGER NOT NULL,
             last_ts INTEGER NOT NULL,
             count INTEGER NOT NULL,
             data BLOB NOT NULL
         );
         CREATE INDEX IF NOT EXISTS raw_blocks_by_device ON raw_blocks (device, last_ts);
         CREATE TABLE IF NOT EXISTS rollup_blocks (
             tier INTEGER NOT NULL,
             device INTEGER NOT NULL,
             start INTEGER NOT NULL,
             data BLOB NOT NULL,
             PRIMARY KEY (tier, device, start)
         ) WITHOUT ROWID;
         INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 2);
         COMMIT;",
    )?;
    Ok(Ok(()))
}

/// The newest raw retention cutoff applied (Unix ms), if any.
pub(crate) fn raw_horizon(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'raw_horizon'",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// Records `cutoff` (Unix ms) as the raw retention cutoff applied, unless a
/// newer one is recorded.
pub(crate) fn set_raw_horizon(conn: &Connection, cutoff: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('raw_horizon', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        [cutoff],
    )
    .map(drop)
}
