//! Where alerting keeps what must survive a restart: the alerts under way,
//! their history, silences, and the rules and channels made through the
//! API. `<data-dir>/alerts.db` (SQLite) with the `sqlite` feature and a data
//! directory; otherwise nothing is kept.

#[cfg(feature = "sqlite")]
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The database's file name in the data directory: `alerts.db`.
pub const ALERTS_DATABASE_FILE: &str = "alerts.db";

/// Alerts the database's history keeps: the newest 10,000.
#[cfg(feature = "sqlite")]
pub(crate) const HISTORY_ROWS: i64 = 10_000;

/// Why the alerts database failed.
#[derive(Debug, thiserror::Error)]
#[error("the alerts database: {0}")]
pub struct AlertDbError(pub String);

/// The tables: one JSON document per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Alerts,
    History,
    Silences,
    Rules,
    Channels,
}

impl Table {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    fn name(self) -> &'static str {
        match self {
            Self::Alerts => "alerts",
            Self::History => "history",
            Self::Silences => "silences",
            Self::Rules => "rules",
            Self::Channels => "channels",
        }
    }
}

/// The database, or nothing.
pub(crate) struct AlertDb {
    #[cfg(feature = "sqlite")]
    conn: Option<Mutex<rusqlite::Connection>>,
}

impl std::fmt::Debug for AlertDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertDb").finish_non_exhaustive()
    }
}

impl AlertDb {
    /// Keeps nothing.
    pub(crate) fn in_memory() -> Self {
        Self {
            #[cfg(feature = "sqlite")]
            conn: None,
        }
    }

    /// Opens (or creates) the database at `path`.
    #[cfg(feature = "sqlite")]
    pub(crate) fn open(path: &std::path::Path) -> Result<Self, AlertDbError> {
        let fail = |e: rusqlite::Error| AlertDbError(format!("{}: {e}", path.display()));
        let conn = rusqlite::Connection::open(path).map_err(fail)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS history (key TEXT PRIMARY KEY, doc TEXT NOT NULL, seq INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS silences (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS rules (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS channels (key TEXT PRIMARY KEY, doc TEXT NOT NULL);",
        )
        .map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Channels hold secrets: the owner only.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Self {
            conn: Some(Mutex::new(conn)),
        })
    }

    /// Every document of `table` (the newest `limit` of the history), in
    /// the order written; unreadable ones are skipped with a warning.
    pub(crate) fn load<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<T>, AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let sql = if table == Table::History {
                format!(
                    "SELECT doc FROM (SELECT doc, seq FROM history ORDER BY seq DESC LIMIT {HISTORY_ROWS}) ORDER BY seq"
                )
            } else {
                format!("SELECT doc FROM {} ORDER BY rowid", table.name())
            };
            let fail = |e: rusqlite::Error| AlertDbError(e.to_string());
            let mut statement = conn.prepare(&sql).map_err(fail)?;
            let docs = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(fail)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            return Ok(docs
                .into_iter()
                .filter_map(|doc| match serde_json::from_str(&doc) {
                    Ok(value) => Some(value),
                    Err(error) => {
                        tracing::warn!(%error, table = table.name(), "skipping an unreadable row");
                        None
                    }
                })
                .collect());
        }
        let _ = table;
        Ok(Vec::new())
    }

    /// Writes `doc` under `key`, replacing what was there.
    pub(crate) fn put<T: Serialize>(
        &self,
        table: Table,
        key: &str,
        doc: &T,
    ) -> Result<(), AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let json = serde_json::to_string(doc).map_err(|e| AlertDbError(e.to_string()))?;
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let result = if table == Table::History {
                conn.execute(
                    "INSERT INTO history (key, doc, seq) VALUES (?1, ?2, \
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM history)) \
                     ON CONFLICT(key) DO UPDATE SET doc = excluded.doc",
                    (key, &json),
                )
                .and_then(|_| {
                    // The history keeps the newest HISTORY_ROWS alerts.
                    conn.execute(
                        "DELETE FROM history WHERE seq <= (SELECT MAX(seq) FROM history) - ?1",
                        [HISTORY_ROWS],
                    )
                })
            } else {
                conn.execute(
                    &format!(
                        "INSERT INTO {} (key, doc) VALUES (?1, ?2) \
                         ON CONFLICT(key) DO UPDATE SET doc = excluded.doc",
                        table.name()
                    ),
                    (key, &json),
                )
            };
            result.map_err(|e| AlertDbError(e.to_string()))?;
        }
        let _ = (table, key, doc);
        Ok(())
    }

    /// Removes `key`.
    pub(crate) fn delete(&self, table: Table, key: &str) -> Result<(), AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.execute(
                &format!("DELETE FROM {} WHERE key = ?1", table.name()),
                [key],
            )
            .map_err(|e| AlertDbError(e.to_string()))?;
        }
        let _ = (table, key);
        Ok(())
    }
}
