//! The SQLite store's tables.
//!
//! - `devices`: one row per device, with its organisation and name (unique
//!   together), its latest report (zstd JSON) and the newest inbox sequence
//!   number whose effects the other tables hold. The other tables name a
//!   device by its row id, so only this one knows organisations;
//! - `inbox`: each acknowledged report (zstd JSON) in arrival order, with
//!   its device and timestamp, until a checkpoint has put it into a raw
//!   block and the rollups and deleted it in the same transaction.
//!   Appending here is all a report costs before it is acknowledged, and
//!   readers read a device's unsealed reports from here;
//! - `raw_blocks`: a device's reports over a stretch of time, column-encoded
//!   and zstd-compressed (see [`crate::store::codec`]);
//! - `rollup_blocks`: per tier, device and block (six hours of minute buckets,
//!   a week of hour buckets), the count, sum, min and max of every metric;
//! - `meta`: the schema version, and `raw_horizon`, the newest raw retention
//!   cutoff applied (Unix ms): reports stamped before it are dropped. A
//!   database without it (written before it existed) gets it at the next
//!   retention pass.
//!
//! Versions: 2 had no organisations (`devices.name` unique on its own).
//! Opening a version 2 database moves it to version 3 in one transaction:
//! the devices table is rebuilt with every device in the `default`
//! organisation, row ids kept, so nothing else moves. Version 3 kept each
//! device's unsealed reports in memory and its `sealed_seq` said which
//! inbox rows were already in blocks; version 4 deletes those rows and gives
//! the inbox a `ts` column (left empty in the rows it had: they are decoded
//! once at open).

use rusqlite::{Connection, OptionalExtension};
use tailmon_core::DEFAULT_ORG;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// The oldest schema version this build opens (and moves to
/// [`SCHEMA_VERSION`] when it does).
pub(crate) const OLDEST_SCHEMA_VERSION: i64 = 2;

/// Creates the tables if they do not exist, moves an older schema to this
/// one, and checks the version: `Ok(Err)` says why the database cannot be
/// used (a version this build does not know).
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
        Some(2) => {
            from_2_to_3(conn)?;
            from_3_to_4(conn)?;
        }
        Some(3) => from_3_to_4(conn)?,
        Some(other) => {
            return Ok(Err(format!(
                "the database has schema version {other}; this server reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}"
            )));
        }
    }
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS devices (
             id INTEGER PRIMARY KEY,
             org TEXT NOT NULL,
             name TEXT NOT NULL,
             latest BLOB,
             sealed_seq INTEGER NOT NULL DEFAULT 0,
             UNIQUE (org, name)
         );
         CREATE TABLE IF NOT EXISTS inbox (
             seq INTEGER PRIMARY KEY,
             device INTEGER NOT NULL,
             report BLOB NOT NULL,
             ts INTEGER
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
         INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 4);
         COMMIT;",
    )?;
    Ok(Ok(()))
}

/// Version 2 to 3, in one transaction: the devices table gains `org`
/// (every device goes to the default organisation) and its names are
/// unique per organisation. Row ids are kept, so the inbox and the blocks,
/// which name devices by id, stay as they are.
fn from_2_to_3(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         CREATE TABLE devices_v3 (
             id INTEGER PRIMARY KEY,
             org TEXT NOT NULL,
             name TEXT NOT NULL,
             latest BLOB,
             sealed_seq INTEGER NOT NULL DEFAULT 0,
             UNIQUE (org, name)
         );
         INSERT INTO devices_v3 (id, org, name, latest, sealed_seq)
             SELECT id, '{DEFAULT_ORG}', name, latest, sealed_seq FROM devices;
         DROP TABLE devices;
         ALTER TABLE devices_v3 RENAME TO devices;
         UPDATE meta SET value = 3 WHERE key = 'schema_version';
         COMMIT;"
    ))
    .inspect_err(|_| {
        // Nothing of a failed step is kept.
        let _ = conn.execute_batch("ROLLBACK");
    })?;
    tracing::info!("history database moved to schema version 3 (organisations)");
    Ok(())
}

/// Version 3 to 4, in one transaction: inbox rows a checkpoint had already
/// put into blocks (at or below their device's `sealed_seq`) are deleted,
/// as are rows of devices no longer there, and the inbox gains `ts`.
fn from_3_to_4(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "BEGIN IMMEDIATE;
         DELETE FROM inbox WHERE device NOT IN (SELECT id FROM devices)
             OR seq <= (SELECT sealed_seq FROM devices WHERE devices.id = inbox.device);
         ALTER TABLE inbox ADD COLUMN ts INTEGER;
         UPDATE meta SET value = 4 WHERE key = 'schema_version';
         COMMIT;",
    )
    .inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })?;
    tracing::info!(
        "history database moved to schema version 4 (unsealed reports read from the inbox)"
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables as version 2 made them, with three devices (one deleted,
    /// so the ids have a gap) and an inbox row of the last one.
    fn version_2() -> Connection {
        let conn = Connection::open_in_memory().expect("in memory");
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE devices (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 latest BLOB,
                 sealed_seq INTEGER NOT NULL DEFAULT 0
             );
             CREATE TABLE inbox (seq INTEGER PRIMARY KEY, device INTEGER NOT NULL, report BLOB NOT NULL);
             CREATE TABLE raw_blocks (
                 id INTEGER PRIMARY KEY, device INTEGER NOT NULL, first_ts INTEGER NOT NULL,
                 last_ts INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL
             );
             CREATE TABLE rollup_blocks (
                 tier INTEGER NOT NULL, device INTEGER NOT NULL, start INTEGER NOT NULL,
                 data BLOB NOT NULL, PRIMARY KEY (tier, device, start)
             ) WITHOUT ROWID;
             INSERT INTO meta VALUES ('schema_version', 2), ('raw_horizon', 42);
             INSERT INTO devices VALUES (1, 'web-1', x'01', 7), (3, 'db-1', NULL, 0);
             INSERT INTO inbox VALUES (8, 3, x'02');",
        )
        .expect("version 2");
        conn
    }

    /// A devices row: id, org, name, latest, sealed_seq.
    type DeviceRow = (i64, String, String, Option<Vec<u8>>, i64);

    fn devices(conn: &Connection) -> Vec<DeviceRow> {
        let mut statement = conn
            .prepare("SELECT id, org, name, latest, sealed_seq FROM devices ORDER BY id")
            .expect("devices");
        statement
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .and_then(Iterator::collect)
            .expect("rows")
    }

    fn version(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .expect("version")
    }

    #[test]
    fn version_2_moves_to_4_with_every_device_in_the_default_organisation() {
        let conn = version_2();
        migrate(&conn).expect("sqlite").expect("migrated");
        assert_eq!(version(&conn), 4);
        assert_eq!(
            devices(&conn),
            [
                (1, "default".into(), "web-1".into(), Some(vec![1]), 7),
                (3, "default".into(), "db-1".into(), None, 0),
            ],
            "ids, latest reports and sequence numbers kept"
        );
        assert_eq!(raw_horizon(&conn).expect("horizon"), Some(42));
        // Names are unique per organisation, no longer across them.
        conn.execute(
            "INSERT INTO devices (org, name) VALUES ('acme', 'web-1')",
            [],
        )
        .expect("web-1 of another organisation");
        assert!(
            conn.execute(
                "INSERT INTO devices (org, name) VALUES ('default', 'web-1')",
                []
            )
            .is_err()
        );
        // The inbox row of db-1 (sealed_seq 0) is kept, with no ts yet.
        let inbox: Vec<(i64, Option<i64>)> = conn
            .prepare("SELECT seq, ts FROM inbox")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("inbox");
        assert_eq!(inbox, [(8, None)]);
        // Opening again changes nothing.
        migrate(&conn).expect("sqlite").expect("at version 4");
        assert_eq!(devices(&conn).len(), 3);
    }

    #[test]
    fn version_3_drops_the_inbox_rows_already_sealed() {
        let conn = version_2();
        conn.execute_batch(
            "INSERT INTO inbox VALUES (5, 1, x'03'), (9, 1, x'04'), (10, 2, x'05');",
        )
        .expect("rows");
        from_2_to_3(&conn).expect("to 3");
        migrate(&conn).expect("sqlite").expect("migrated");
        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM inbox ORDER BY seq")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("inbox");
        // web-1 sealed up to 7: row 5 goes, 9 stays; device 2 is gone.
        assert_eq!(seqs, [8, 9]);
    }

    #[test]
    fn a_failed_move_leaves_version_2_as_it_was() {
        let conn = version_2();
        // In the way of the rebuild.
        conn.execute_batch("CREATE TABLE devices_v3 (x INTEGER);")
            .expect("obstacle");
        assert!(migrate(&conn).is_err());
        assert!(conn.is_autocommit(), "no transaction left open");
        assert_eq!(version(&conn), 2);
        let names: Vec<String> = conn
            .prepare("SELECT name FROM devices ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("names");
        assert_eq!(names, ["web-1", "db-1"]);
        assert!(
            conn.prepare("SELECT org FROM devices").is_err(),
            "no org column"
        );
    }

    #[test]
    fn a_newer_or_older_version_is_refused() {
        for other in [1, 5] {
            let conn = Connection::open_in_memory().expect("in memory");
            conn.execute_batch(&format!(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO meta VALUES ('schema_version', {other});"
            ))
            .expect("meta");
            let refused = migrate(&conn).expect("sqlite").expect_err("refused");
            assert!(
                refused.contains(&format!("schema version {other}")),
                "{refused}"
            );
        }
    }
}
