//! Copying a live SQLite database and checking a copy: the part of backups
//! and restores that knows SQLite.
//!
//! The copy uses SQLite's online backup, from any process, while a server
//! writes. It holds one read transaction on the source for the whole copy:
//! in WAL mode that snapshot never blocks the server's writes (they go on
//! appending to the WAL; only checkpoints wait to pass it), and the copy is
//! of one consistent moment, however long it takes. Pages are copied in
//! steps of [`PAGES_PER_STEP`] with a short pause between them, so the copy
//! shares the disk with the server rather than hogging it.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::store::sqlite::sqlite_schema::{OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};

/// Pages copied per step: 1 MiB with SQLite's default 4 KiB pages.
const PAGES_PER_STEP: i32 = 256;
/// The pause between two steps.
const PAUSE_BETWEEN_STEPS: Duration = Duration::from_millis(2);
/// How long a step may keep finding the source busy before the copy fails.
const BUSY_FOR_AT_MOST: Duration = Duration::from_secs(30);

/// Opens an existing database to read it beside its writer (no creation;
/// read-write so that its WAL index can be used whether or not a server
/// runs).
pub(crate) fn open_source(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Opens a file to read it only (a backup file being checked).
pub(crate) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Copies the database `source` into `dest` (an empty database), as of one
/// moment, while other connections and processes keep writing to `source`.
/// `dest` is left in rollback-journal mode: a single self-contained file.
pub(crate) fn online_copy(source: &Connection, dest: &mut Connection) -> rusqlite::Result<()> {
    // One read transaction over every step: the snapshot stays put, so the
    // copy never restarts because the server wrote in between.
    source.execute_batch("BEGIN DEFERRED")?;
    let copied = (|| {
        source.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })?;
        let backup = Backup::new(source, dest)?;
        let mut busy_since = None;
        loop {
            match backup.step(PAGES_PER_STEP)? {
                StepResult::Done => break,
                StepResult::More => {
                    busy_since = None;
                    std::thread::sleep(PAUSE_BETWEEN_STEPS);
                }
                StepResult::Busy | StepResult::Locked => {
                    let since = *busy_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() > BUSY_FOR_AT_MOST {
                        return Err(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("the database stayed locked".into()),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => std::thread::sleep(PAUSE_BETWEEN_STEPS),
            }
        }
        Ok(())
    })();
    let ended = source.execute_batch("COMMIT");
    copied?;
    ended?;
    let mode: String = dest.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(rusqlite::Error::InvalidQuery);
    }
    Ok(())
}

/// `PRAGMA integrity_check` of `conn`: `Ok` when SQLite finds nothing
/// wrong, else its first findings.
pub(crate) fn integrity(conn: &Connection) -> Result<(), String> {
    let mut statement = conn
        .prepare("PRAGMA integrity_check(5)")
        .map_err(|e| e.to_string())?;
    let findings = statement
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| e.to_string())?;
    if findings == ["ok"] {
        Ok(())
    } else {
        Err(findings.join("; "))
    }
}

/// Whether `conn` holds a history database this build reads: its tables
/// and schema version, from [`OLDEST_SCHEMA_VERSION`] (moved to the
/// current one when the server opens it) to [`SCHEMA_VERSION`]; a newer one
/// (written by a later build) is refused. `Err` says what is missing or
/// different.
pub(crate) fn check_history_schema(conn: &Connection) -> Result<(), String> {
    let version: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .map_err(|_| "no Tailmon history in it (no schema version)".to_owned())
        .map(Some)?;
    let version = version.unwrap_or_default();
    if !(OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&version) {
        return Err(format!(
            "its history has schema version {version}; this server reads versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}"
        ));
    }
    for table in ["devices", "inbox", "raw_blocks", "rollup_blocks"] {
        let found: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if found != 1 {
            return Err(format!("its history lacks the table {table}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_of_a_known_schema_version_is_accepted_and_a_newer_one_refused() {
        for (version, accepted) in [(1, false), (2, true), (3, true), (4, true), (5, false)] {
            let conn = Connection::open_in_memory().expect("in memory");
            conn.execute_batch(&format!(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                 INSERT INTO meta VALUES ('schema_version', {version});
                 CREATE TABLE devices (id INTEGER PRIMARY KEY);
                 CREATE TABLE inbox (seq INTEGER PRIMARY KEY);
                 CREATE TABLE raw_blocks (id INTEGER PRIMARY KEY);
                 CREATE TABLE rollup_blocks (id INTEGER PRIMARY KEY);"
            ))
            .expect("tables");
            let checked = check_history_schema(&conn);
            assert_eq!(checked.is_ok(), accepted, "version {version}: {checked:?}");
            if let Err(refused) = checked {
                assert!(
                    refused.contains(&format!("schema version {version}")),
                    "{refused}"
                );
            }
        }
    }

    #[test]
    fn a_copy_made_while_another_connection_writes_is_of_one_moment() {
        let dir = std::env::temp_dir().join(format!("tailmon-online-copy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("source.db");
        let writer = Connection::open(&path).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;
                 CREATE TABLE t (n INTEGER PRIMARY KEY, pad BLOB);",
            )
            .expect("schema");
        // Enough pages for many steps.
        writer.execute_batch("BEGIN").expect("begin");
        for n in 0..2000 {
            writer
                .execute("INSERT INTO t VALUES (?1, zeroblob(2000))", [n])
                .expect("insert");
        }
        writer.execute_batch("COMMIT").expect("commit");
        let source = open_source(&path).expect("source");
        let mut dest = Connection::open(dir.join("copy.db")).expect("dest");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(2000));
        let writing = {
            let (stop, written) = (
                std::sync::Arc::clone(&stop),
                std::sync::Arc::clone(&written),
            );
            let path = path.clone();
            std::thread::spawn(move || {
                let conn = Connection::open(&path).expect("writer");
                conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
                conn.execute_batch("PRAGMA synchronous = OFF")
                    .expect("no fsync");
                let mut n = 2000;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    conn.execute("INSERT INTO t VALUES (?1, zeroblob(2000))", [n])
                        .expect("writes are never blocked by the copy");
                    n += 1;
                    written.store(n, std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        let load = std::sync::atomic::Ordering::SeqCst;
        while written.load(load) < 2010 {
            std::thread::yield_now();
        }
        let at_start = written.load(load);
        online_copy(&source, &mut dest).expect("copy");
        let at_end = written.load(load);
        stop.store(true, load);
        writing.join().expect("writer thread");
        integrity(&dest).expect("the copy is sound");
        let (count, max): (i64, i64) = dest
            .query_row("SELECT count(*), max(n) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("count");
        assert!(
            // A row may be committed a moment before it is counted.
            (at_start..=at_end + 1).contains(&count),
            "{at_start} <= {count} <= {at_end}"
        );
        assert_eq!(count, max + 1, "rows 0..=max, no hole: one moment");
        drop(dest);
        drop(source);
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
