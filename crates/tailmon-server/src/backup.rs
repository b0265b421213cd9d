//! Backups of a data directory in one file, and restoring one (`tailmon-server
//! backup FILE` and `restore FILE`; docs/operations.md).
//!
//! **The file** is a SQLite database: a copy of the history database
//! (`tailmon.db`, every table as the server has it) with two more tables:
//! - `tailmon_backup (key TEXT PRIMARY KEY, value TEXT)`: `format` ([`BACKUP_FORMAT`]),
//!   `created_at` (RFC 3339), `tailmon_version`;
//! - `tailmon_backup_files (name TEXT PRIMARY KEY, data BLOB)`: the other
//!   files of the data directory, whole: `alerts.db` (the alerting state,
//!   itself copied with SQLite's online backup), `auth.json` (tokens and
//!   users: hashes only) and `preferences.json`; a file the directory did
//!   not have is not there.
//!
//! SQLite's own tools read it (`sqlite3 FILE 'SELECT * FROM tailmon_backup'`).
//! It holds the credentials' hashes and the alert channels' secrets: it is
//! created 0600, and should be kept like the data directory.
//!
//! **A backup** runs beside a running server: the history and alerts
//! databases are copied with SQLite's online backup as of one moment each,
//! without blocking the server's writes (see `store/sqlite/backup.rs`), into
//! a temporary file next to FILE that is renamed to FILE once complete.
//!
//! **A restore** needs the server stopped: it takes the data directory's
//! lock (the one a running server holds) and refuses while it is held. It
//! checks the whole file first (SQLite's integrity check, the backup
//! format, the history's schema version, every enclosed file), writes each
//! file under a temporary name in the data directory, and only then moves
//! the current files (with `initial-admin-password`, which belongs to the
//! credentials replaced) into `pre-restore-<time>/` and the new ones into
//! place; a failure before that leaves the data directory as it was.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::alerts::ALERTS_DATABASE_FILE;
use crate::auth::{CREDENTIALS_FILE, INITIAL_ADMIN_PASSWORD_FILE};
use crate::private_dir;
use crate::store::DATABASE_FILE;
use crate::store::sqlite::backup::{
    check_history_schema, integrity, online_copy, open_read_only, open_source,
};
use crate::views::PREFERENCES_FILE;

/// The backup file format this build writes and restores.
pub const BACKUP_FORMAT: i64 = 1;

/// How an enclosed file is checked before it is restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Json,
}

/// The files of the data directory a backup holds besides the history.
const SIDE_FILES: [(&str, Kind); 3] = [
    (ALERTS_DATABASE_FILE, Kind::Sqlite),
    (CREDENTIALS_FILE, Kind::Json),
    (PREFERENCES_FILE, Kind::Json),
];

/// Why a backup or a restore failed. Nothing was changed in the data
/// directory when a restore fails with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The data directory has no history database to back up.
    #[error(
        "{0} holds no {DATABASE_FILE}: nothing to back up (is --data-dir right? backups cover the SQLite store)"
    )]
    NoDatabase(PathBuf),
    /// A server runs on the data directory (its lock is held).
    #[error(
        "a Tailmon server is running on {0} (its lock file tailmon.lock is held); stop it first (systemctl stop tailmon-server)"
    )]
    ServerRunning(PathBuf),
    /// The file is not a Tailmon backup, or is damaged, or of another
    /// version.
    #[error("{path} cannot be restored: {detail}; the data directory was not touched")]
    Refused {
        /// The backup file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {detail}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// What the OS or SQLite said.
        detail: String,
    },
}

/// What a backup holds, for the command's report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupSummary {
    /// The backup file.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Devices in the history.
    pub devices: u64,
    /// The data directory's files it holds besides `tailmon.db`.
    pub files: Vec<String>,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {:.1} MiB, the history of {} device(s)",
            self.file.display(),
            self.bytes as f64 / (1024.0 * 1024.0),
            self.devices
        )?;
        for file in &self.files {
            write!(f, ", {file}")?;
        }
        Ok(())
    }
}

/// What a restore did, for the command's report.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoreSummary {
    /// The data directory restored into.
    pub data_dir: PathBuf,
    /// When the backup was taken (RFC 3339, as the file says).
    pub created_at: String,
    /// Devices in the restored history.
    pub devices: u64,
    /// The files restored besides `tailmon.db`.
    pub files: Vec<String>,
    /// Where the files the data directory held before went, if it held any.
    pub previous: Option<PathBuf>,
}

impl std::fmt::Display for RestoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "restored the backup of {} into {}: the history of {} device(s)",
            self.created_at,
            self.data_dir.display(),
            self.devices
        )?;
        for file in &self.files {
            write!(f, ", {file}")?;
        }
        if let Some(previous) = &self.previous {
            write!(
                f,
                "; the previous files are in {} (remove it once the server runs well)",
                previous.display()
            )?;
        }
        Ok(())
    }
}

/// The data directory's lock, held as long as this lives: the one a running
/// server holds, and that [`restore`] refuses to run without. The SQLite
/// store takes it itself; a server on another store that still keeps its
/// credentials, preferences or alerts in the data directory takes it with
/// [`lock_data_dir`].
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Takes the data directory's lock (creating the directory 0700 if
/// missing); [`BackupError::ServerRunning`] if another process holds it.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, BackupError> {
    private_dir::create(data_dir).map_err(io(data_dir))?;
    match private_dir::lock(data_dir) {
        Ok(file) => Ok(DataDirLock { _file: file }),
        Err(private_dir::LockError::Held(_)) => {
            Err(BackupError::ServerRunning(data_dir.to_path_buf()))
        }
        Err(private_dir::LockError::Io(path, e)) => Err(io(&path)(e)),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |e| BackupError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |e| BackupError::Io {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Removes a temporary file when dropped, unless kept.
struct Temporary(Option<PathBuf>);

impl Temporary {
    fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
            for suffix in ["-journal", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

/// Creates an empty private file at `path` (replacing a leftover one).
fn fresh_private_file(path: &Path) -> Result<Temporary, BackupError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(path)(e)),
        _ => {}
    }
    private_dir::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io(path))?;
    Ok(Temporary(Some(path.to_path_buf())))
}

/// Gives `path` the owner of `dir` when they differ (a restore run as root
/// into a service's data directory), so that the server can open it.
/// Without the right to (not root), the file keeps its owner.
fn own_like(path: &Path, dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(want), Ok(has)) = (std::fs::metadata(dir), std::fs::metadata(path))
            && (want.uid(), want.gid()) != (has.uid(), has.gid())
        {
            let _ = std::os::unix::fs::chown(path, Some(want.uid()), Some(want.gid()));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, dir);
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn sync_file(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn devices_in(conn: &Connection) -> u64 {
    conn.query_row("SELECT count(*) FROM devices", [], |r| r.get::<_, i64>(0))
        .map_or(0, |n| u64::try_from(n).unwrap_or(0))
}

/// Copies the data directory `data_dir` into the backup file `file`, while a
/// server may run on it. `file` is replaced once the backup is complete;
/// until then the previous file (if any) stays as it was.
pub fn backup(data_dir: &Path, file: &Path) -> Result<BackupSummary, BackupError> {
    let database = data_dir.join(DATABASE_FILE);
    if !database.is_file() {
        return Err(BackupError::NoDatabase(data_dir.to_path_buf()));
    }
    let name = file
        .file_name()
        .ok_or_else(|| BackupError::Io {
            path: file.to_path_buf(),
            detail: "not a file name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let out_dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let pid = std::process::id();
    let partial_path = out_dir.join(format!(".{name}.partial-{pid}"));
    let partial = fresh_private_file(&partial_path)?;
    let mut dest = Connection::open(&partial_path).map_err(sql(&partial_path))?;
    let source = open_source(&database).map_err(sql(&database))?;
    online_copy(&source, &mut dest).map_err(sql(&database))?;
    drop(source);
    let devices = devices_in(&dest);
    dest.execute_batch(
        "CREATE TABLE tailmon_backup (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE tailmon_backup_files (name TEXT PRIMARY KEY, data BLOB NOT NULL);",
    )
    .map_err(sql(&partial_path))?;
    let now = OffsetDateTime::now_utc();
    let created_at = now
        .replace_nanosecond(0)
        .unwrap_or(now)
        .format(&Rfc3339)
        .unwrap_or_default();
    for (key, value) in [
        ("format", BACKUP_FORMAT.to_string()),
        ("created_at", created_at),
        ("tailmon_version", env!("CARGO_PKG_VERSION").to_owned()),
    ] {
        dest.execute(
            "INSERT INTO tailmon_backup (key, value) VALUES (?1, ?2)",
            params![key, value],
        )
        .map_err(sql(&partial_path))?;
    }
    let mut files = Vec::new();
    for (side, kind) in SIDE_FILES {
        let path = data_dir.join(side);
        let bytes = match kind {
            Kind::Sqlite if path.is_file() => {
                let copy_path = out_dir.join(format!(".{name}.{side}-{pid}"));
                let copy = fresh_private_file(&copy_path)?;
                let mut copy_conn = Connection::open(&copy_path).map_err(sql(&copy_path))?;
                let source = open_source(&path).map_err(sql(&path))?;
                online_copy(&source, &mut copy_conn).map_err(sql(&path))?;
                drop(copy_conn);
                drop(source);
                let bytes = std::fs::read(&copy_path).map_err(io(&copy_path))?;
                // The temporary copy is removed here.
                drop(copy);
                bytes
            }
            Kind::Sqlite => continue,
            Kind::Json => match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&path)(e)),
            },
        };
        dest.execute(
            "INSERT INTO tailmon_backup_files (name, data) VALUES (?1, ?2)",
            params![side, bytes],
        )
        .map_err(sql(&partial_path))?;
        files.push(side.to_owned());
    }
    drop(dest);
    sync_file(&partial_path)?;
    let partial_path = partial.keep();
    if let Err(e) = std::fs::rename(&partial_path, file) {
        let _ = std::fs::remove_file(&partial_path);
        return Err(io(file)(e));
    }
    sync_dir(&out_dir);
    let bytes = std::fs::metadata(file).map_err(io(file))?.len();
    Ok(BackupSummary {
        file: file.to_path_buf(),
        bytes,
        devices,
        files,
    })
}

/// What a checked backup file holds.
struct Checked {
    created_at: String,
    files: Vec<(String, Vec<u8>)>,
}

/// Checks the backup file `file` whole, reading only: integrity, format,
/// the history's schema, every enclosed file.
fn check(file: &Path) -> Result<Checked, BackupError> {
    let refused = |detail: String| BackupError::Refused {
        path: file.to_path_buf(),
        detail,
    };
    if !file.is_file() {
        return Err(refused("no such file".into()));
    }
    // A backup is one self-contained SQLite file (rollback journal mode):
    // anything else is refused before SQLite opens it, so that opening it
    // creates nothing beside it (a WAL database would get -wal and -shm).
    let mut header = [0_u8; 100];
    let read = File::open(file)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut header))
        .map_err(|e| refused(e.to_string()))?;
    if read < header.len() || !header.starts_with(b"SQLite format 3\0") {
        return Err(refused("it is not a SQLite file".into()));
    }
    if header[18] != 1 || header[19] != 1 {
        return Err(refused(
            "it is not a Tailmon backup (a database in WAL mode: a live database, not a backup file)"
                .into(),
        ));
    }
    let conn = open_read_only(file).map_err(|e| refused(e.to_string()))?;
    integrity(&conn).map_err(|e| refused(format!("it is damaged ({e})")))?;
    let format: Option<String> = conn
        .query_row(
            "SELECT value FROM tailmon_backup WHERE key = 'format'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|_| refused("it is not a Tailmon backup (no tailmon_backup table)".into()))?;
    match format.as_deref().map(str::parse::<i64>) {
        Some(Ok(BACKUP_FORMAT)) => {}
        Some(Ok(other)) => {
            return Err(refused(format!(
                "it is a backup of format {other}; this server restores format {BACKUP_FORMAT}"
            )));
        }
        _ => return Err(refused("it is not a Tailmon backup (no format)".into())),
    }
    check_history_schema(&conn).map_err(&refused)?;
    let created_at: String = conn
        .query_row(
            "SELECT value FROM tailmon_backup WHERE key = 'created_at'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| refused(e.to_string()))?
        .unwrap_or_default();
    let mut statement = conn
        .prepare("SELECT name, data FROM tailmon_backup_files ORDER BY name")
        .map_err(|e| refused(format!("it lacks its files table ({e})")))?;
    let files = statement
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| refused(e.to_string()))?;
    for (name, bytes) in &files {
        match SIDE_FILES.iter().find(|(side, _)| side == name) {
            None => return Err(refused(format!("it holds an unknown file {name:?}"))),
            Some((_, Kind::Json)) => {
                serde_json::from_slice::<serde_json::Value>(bytes)
                    .map_err(|e| refused(format!("its {name} is not JSON ({e})")))?;
            }
            Some((_, Kind::Sqlite)) => {
                if !bytes.starts_with(b"SQLite format 3\0") {
                    return Err(refused(format!("its {name} is not a SQLite database")));
                }
            }
        }
    }
    Ok(Checked { created_at, files })
}

/// Puts the backup `file` back into `data_dir` (created if missing), with
/// no server running on it. See the module's documentation for the steps;
/// on error the data directory holds what it held before.
pub fn restore(file: &Path, data_dir: &Path) -> Result<RestoreSummary, BackupError> {
    let checked = check(file)?;
    let _lock = lock_data_dir(data_dir)?;
    let refused = |detail: String| BackupError::Refused {
        path: file.to_path_buf(),
        detail,
    };
    // The history, copied out of the file and stripped of the backup's tables.
    let db_temp_path = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    let db_temp = fresh_private_file(&db_temp_path)?;
    let devices = {
        let source = open_read_only(file).map_err(sql(file))?;
        let mut dest = Connection::open(&db_temp_path).map_err(sql(&db_temp_path))?;
        online_copy(&source, &mut dest).map_err(sql(file))?;
        dest.execute_batch("DROP TABLE tailmon_backup; DROP TABLE tailmon_backup_files;")
            .map_err(sql(&db_temp_path))?;
        check_history_schema(&dest).map_err(&refused)?;
        integrity(&dest).map_err(|e| refused(format!("its history copy is damaged ({e})")))?;
        devices_in(&dest)
    };
    sync_file(&db_temp_path)?;
    let mut temps = vec![(DATABASE_FILE.to_owned(), db_temp)];
    for (name, bytes) in &checked.files {
        let path = data_dir.join(format!("{name}.restoring"));
        let temp = fresh_private_file(&path)?;
        let mut out = private_dir::private_file_options()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io(&path))?;
        out.write_all(bytes).map_err(io(&path))?;
        out.sync_all().map_err(io(&path))?;
        drop(out);
        if SIDE_FILES.contains(&(name.as_str(), Kind::Sqlite)) {
            let conn = open_read_only(&path).map_err(sql(&path))?;
            integrity(&conn).map_err(|e| refused(format!("its {name} is damaged ({e})")))?;
        }
        temps.push((name.clone(), temp));
    }
    for (_, temp) in &temps {
        if let Some(path) = &temp.0 {
            own_like(path, data_dir);
        }
    }
    // Everything is ready: move the current files aside, then the new ones in.
    let mut current = Vec::new();
    for name in [DATABASE_FILE, ALERTS_DATABASE_FILE] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            current.push(format!("{name}{suffix}"));
        }
    }
    current.push(CREDENTIALS_FILE.to_owned());
    // The first start's password belongs to the credentials replaced.
    current.push(INITIAL_ADMIN_PASSWORD_FILE.to_owned());
    current.push(PREFERENCES_FILE.to_owned());
    current.retain(|name| data_dir.join(name).exists());
    let previous = if current.is_empty() {
        None
    } else {
        let stamp = OffsetDateTime::now_utc();
        let dir = data_dir.join(format!(
            "pre-restore-{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            stamp.year(),
            u8::from(stamp.month()),
            stamp.day(),
            stamp.hour(),
            stamp.minute(),
            stamp.second()
        ));
        private_dir::create(&dir).map_err(io(&dir))?;
        own_like(&dir, data_dir);
        Some(dir)
    };
    let mut moved_aside = Vec::new();
    let mut moved_in = Vec::new();
    let result = (|| {
        if let Some(previous) = &previous {
            for name in &current {
                std::fs::rename(data_dir.join(name), previous.join(name))
                    .map_err(io(&data_dir.join(name)))?;
                moved_aside.push(name.clone());
            }
        }
        for (name, temp) in &mut temps {
            let from = temp.0.clone().unwrap_or_default();
            std::fs::rename(&from, data_dir.join(&*name)).map_err(io(&from))?;
            temp.0 = None;
            moved_in.push(name.clone());
        }
        Ok(())
    })();
    if let Err(error) = result {
        // Put the data directory back as it was.
        for name in &moved_in {
            let _ = std::fs::remove_file(data_dir.join(name));
        }
        if let Some(previous) = &previous {
            for name in &moved_aside {
                let _ = std::fs::rename(previous.join(name), data_dir.join(name));
            }
            let _ = std::fs::remove_dir(previous);
        }
        sync_dir(data_dir);
        return Err(error);
    }
    sync_dir(data_dir);
    Ok(RestoreSummary {
        data_dir: data_dir.to_path_buf(),
        created_at: checked.created_at,
        devices,
        files: checked.files.into_iter().map(|(name, _)| name).collect(),
        previous,
    })
}
