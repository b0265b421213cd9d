//! Where alerting keeps what must survive a restart: the alerts under way,
//! their history, silences, and the rules and channels made through the
//! API, each row under its organisation. `<data-dir>/alerts.db` (SQLite)
//! with the `sqlite` feature and a data directory; otherwise nothing is
//! kept.
//!
//! Layout version 1: every table is `(org, key, doc)` with `(org, key)` the
//! key (the history adds `seq`, the order written). A file of version 0
//! (written before organisations: `(key, doc)`) is moved to version 1 in
//! one transaction when opened, every row into `default`.

#[cfg(feature = "sqlite")]
use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tailmon_core::OrgId;

/// The database's file name in the data directory: `alerts.db`.
pub const ALERTS_DATABASE_FILE: &str = "alerts.db";

/// Alerts the database's history keeps per organisation: the newest 10,000.
#[cfg(feature = "sqlite")]
pub(crate) const HISTORY_ROWS: i64 = 10_000;

/// The layout this code writes (`PRAGMA user_version`).
#[cfg(feature = "sqlite")]
const LAYOUT_VERSION: i64 = 1;

/// Why the alerts database failed.
#[derive(Debug, thiserror::Error)]
#[error("the alerts database: {0}")]
pub struct AlertDbError(pub String);

/// The tables: one JSON document per organisation and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Alerts,
    History,
    Silences,
    Rules,
    Channels,
}

impl Table {
    /// Every table.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    const ALL: [Self; 5] = [
        Self::Alerts,
        Self::History,
        Self::Silences,
        Self::Rules,
        Self::Channels,
    ];

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

/// Makes the version 1 tables, moving the rows of version 0 ones (made
/// first when missing, so a new file takes the same path) into `default`.
#[cfg(feature = "sqlite")]
fn upgrade_from_version_0(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS alerts (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS history (key TEXT PRIMARY KEY, doc TEXT NOT NULL, seq INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS silences (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS rules (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS channels (key TEXT PRIMARY KEY, doc TEXT NOT NULL);",
    )?;
    for table in Table::ALL {
        let name = table.name();
        let (seq_column, seq) = if table == Table::History {
            (", seq INTEGER NOT NULL", ", seq")
        } else {
            ("", "")
        };
        // Copied in the order written (rowid), which loading keeps.
        tx.execute_batch(&format!(
            "CREATE TABLE {name}_v1 (org TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL{seq_column}, PRIMARY KEY (org, key));
             INSERT INTO {name}_v1 (org, key, doc{seq}) SELECT 'default', key, doc{seq} FROM {name} ORDER BY rowid;
             DROP TABLE {name};
             ALTER TABLE {name}_v1 RENAME TO {name};"
        ))?;
    }
    tx.execute_batch(&format!(
        "CREATE INDEX history_seq ON history (seq);
         CREATE INDEX history_org_seq ON history (org, seq);
         PRAGMA user_version = {LAYOUT_VERSION};"
    ))?;
    tx.commit()
}

impl AlertDb {
    /// Keeps nothing.
    pub(crate) fn in_memory() -> Self {
        Self {
            #[cfg(feature = "sqlite")]
            conn: None,
        }
    }

    /// Opens (or creates) the database at `path`; a file written before
    /// organisations is moved to the current layout, everything in `default`.
    #[cfg(feature = "sqlite")]
    pub(crate) fn open(path: &std::path::Path) -> Result<Self, AlertDbError> {
        let fail = |e: rusqlite::Error| AlertDbError(format!("{}: {e}", path.display()));
        let mut conn = rusqlite::Connection::open(path).map_err(fail)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(fail)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(fail)?;
        match version {
            0 => upgrade_from_version_0(&mut conn).map_err(fail)?,
            LAYOUT_VERSION => {}
            newer => {
                return Err(AlertDbError(format!(
                    "{}: layout version {newer} was written by a newer Tailmon (this one reads {LAYOUT_VERSION})",
                    path.display()
                )));
            }
        }
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

    /// The organisations that have a row in any table, `default` included
    /// when it has one.
    pub(crate) fn organisations(&self) -> Result<Vec<OrgId>, AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let sql = Table::ALL
                .iter()
                .map(|t| format!("SELECT org FROM {}", t.name()))
                .collect::<Vec<_>>()
                .join(" UNION ");
            let fail = |e: rusqlite::Error| AlertDbError(e.to_string());
            let mut statement = conn.prepare(&sql).map_err(fail)?;
            let names = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(fail)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            return Ok(names
                .into_iter()
                .filter_map(|name| match OrgId::new(&name) {
                    Ok(org) => Some(org),
                    Err(error) => {
                        tracing::warn!(%error, organisation = %name, "skipping the alerting rows of an unreadable organisation name");
                        None
                    }
                })
                .collect());
        }
        Ok(Vec::new())
    }

    /// Every document of `org` in `table` (the newest [`HISTORY_ROWS`] of
    /// the history), in the order written; unreadable ones are skipped with
    /// a warning.
    pub(crate) fn load<T: DeserializeOwned>(
        &self,
        org: &OrgId,
        table: Table,
    ) -> Result<Vec<T>, AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let sql = if table == Table::History {
                format!(
                    "SELECT doc FROM (SELECT doc, seq FROM history WHERE org = ?1 ORDER BY seq DESC LIMIT {HISTORY_ROWS}) ORDER BY seq"
                )
            } else {
                format!(
                    "SELECT doc FROM {} WHERE org = ?1 ORDER BY rowid",
                    table.name()
                )
            };
            let fail = |e: rusqlite::Error| AlertDbError(e.to_string());
            let mut statement = conn.prepare(&sql).map_err(fail)?;
            let docs = statement
                .query_map([org.as_str()], |row| row.get::<_, String>(0))
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
        let _ = (org, table);
        Ok(Vec::new())
    }

    /// Writes `doc` under `org` and `key`, replacing what was there.
    pub(crate) fn put<T: Serialize>(
        &self,
        org: &OrgId,
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
                    "INSERT INTO history (org, key, doc, seq) VALUES (?1, ?2, ?3, \
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM history)) \
                     ON CONFLICT(org, key) DO UPDATE SET doc = excluded.doc",
                    (org.as_str(), key, &json),
                )
                .and_then(|_| {
                    // The history keeps the newest HISTORY_ROWS alerts of
                    // each organisation.
                    conn.execute(
                        "DELETE FROM history WHERE org = ?1 AND seq <= \
                         (SELECT seq FROM history WHERE org = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
                        (org.as_str(), HISTORY_ROWS),
                    )
                })
            } else {
                conn.execute(
                    &format!(
                        "INSERT INTO {} (org, key, doc) VALUES (?1, ?2, ?3) \
                         ON CONFLICT(org, key) DO UPDATE SET doc = excluded.doc",
                        table.name()
                    ),
                    (org.as_str(), key, &json),
                )
            };
            result.map_err(|e| AlertDbError(e.to_string()))?;
        }
        let _ = (org, table, key, doc);
        Ok(())
    }

    /// Removes `key` of `org`.
    pub(crate) fn delete(&self, org: &OrgId, table: Table, key: &str) -> Result<(), AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            conn.execute(
                &format!("DELETE FROM {} WHERE org = ?1 AND key = ?2", table.name()),
                (org.as_str(), key),
            )
            .map_err(|e| AlertDbError(e.to_string()))?;
        }
        let _ = (org, table, key);
        Ok(())
    }

    /// Removes every row of `org`, in one transaction.
    pub(crate) fn remove_organisation(&self, org: &OrgId) -> Result<(), AlertDbError> {
        #[cfg(feature = "sqlite")]
        if let Some(conn) = &self.conn {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let fail = |e: rusqlite::Error| AlertDbError(e.to_string());
            let tx = conn.transaction().map_err(fail)?;
            for table in Table::ALL {
                tx.execute(
                    &format!("DELETE FROM {} WHERE org = ?1", table.name()),
                    [org.as_str()],
                )
                .map_err(fail)?;
            }
            tx.commit().map_err(fail)?;
        }
        let _ = org;
        Ok(())
    }
}
