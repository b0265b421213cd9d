use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tailmon_core::{History, OffsetDateTime, Point, Report, Tier, metric};
use tokio::sync::oneshot;

use crate::downsample::bucket_start;
use crate::rollup_row::RollupRow;
use crate::sqlite_writer::{Write, Writer};
use crate::{Clock, HistoryQuery, ReportStream, Store, StoreError, SystemClock, sqlite_schema};

/// How long raw reports are kept: 48 hours.
pub const DEFAULT_RAW_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// How long one-minute buckets are kept: 30 days.
pub const DEFAULT_MINUTE_RETENTION: Duration = Duration::from_secs(30 * 86_400);
/// How long one-hour buckets are kept: one year.
pub const DEFAULT_HOUR_RETENTION: Duration = Duration::from_secs(365 * 86_400);
/// The database's file name inside the data directory.
pub const DATABASE_FILE: &str = "tailmon.db";
/// Reports read from the database per step of an export.
const EXPORT_PAGE: i64 = 500;

/// When a commit counts as done, and so when a report is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Each commit reaches the disk (fsync) before the answer: an
    /// acknowledged report survives a crash of the process or of the
    /// machine. The default.
    #[default]
    Disk,
    /// Each commit reaches the OS before the answer: an acknowledged report
    /// survives a crash of the process (`kill -9`, out of memory) but the
    /// last second or so may be lost if the machine loses power. Commits
    /// skip the fsync, which helps on disks where it is slow.
    Process,
}

/// How long each tier keeps its data.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retention {
    pub(crate) raw: time::Duration,
    pub(crate) minute: time::Duration,
    pub(crate) hour: time::Duration,
}

/// The embedded store: one SQLite file in the data directory (WAL mode), raw
/// reports for 48 h, one-minute and one-hour avg/min/max rollups for 30 days
/// and a year, maintained as reports arrive.
///
/// One writer thread commits every waiting report in one transaction, and a
/// write is answered only once committed (by default with `synchronous=FULL`,
/// see [`Durability`]), so an acknowledged report survives a crash of the
/// process or the machine. Reads
/// use their own connections, concurrent with writes.
///
/// ```no_run
/// use std::sync::Arc;
/// use tailmon_server::{ServerBuilder, SqliteStore};
///
/// let store = SqliteStore::open("./tailmon-data")?;
/// let server = ServerBuilder::new().store(Arc::new(store)).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Write>,
    readers: Mutex<Vec<Connection>>,
    retention: Retention,
    clock: Arc<dyn Clock>,
    _lock: File,
}

/// Why a [`SqliteStore`] could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another server holds the data directory.
    #[error(
        "{path} is in use by another Tailmon server (lock file held); stop it or choose another data directory"
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The file is not a Tailmon database, or is damaged.
    #[error("{path} is not a readable Tailmon database ({detail}); move it aside to start afresh")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        detail: String,
    },
    /// The data directory or database cannot be created or written.
    #[error("cannot use {path}: {detail}")]
    Unwritable {
        /// The path at fault.
        path: PathBuf,
        /// What the OS or SQLite said.
        detail: String,
    },
}

/// Builds a [`SqliteStore`] with chosen retention.
#[must_use]
pub struct SqliteStoreBuilder {
    dir: PathBuf,
    retention: Retention,
    clock: Arc<dyn Clock>,
    max_size_bytes: Option<u64>,
    durability: Durability,
}

impl SqliteStoreBuilder {
    /// How long raw reports are kept. Defaults to [`DEFAULT_RAW_RETENTION`].
    pub fn raw_retention(mut self, keep: Duration) -> Self {
        self.retention.raw = duration(keep);
        self
    }

    /// How long one-minute buckets are kept. Defaults to [`DEFAULT_MINUTE_RETENTION`].
    pub fn minute_retention(mut self, keep: Duration) -> Self {
        self.retention.minute = duration(keep);
        self
    }

    /// How long one-hour buckets are kept. Defaults to [`DEFAULT_HOUR_RETENTION`].
    pub fn hour_retention(mut self, keep: Duration) -> Self {
        self.retention.hour = duration(keep);
        self
    }

    /// The most the database file may grow to, in bytes; writes beyond it are
    /// refused with [`StoreError::Unavailable`] (503, agents retry) as on a
    /// full disk. Defaults to no limit but the disk's.
    pub fn max_size_bytes(mut self, bytes: u64) -> Self {
        self.max_size_bytes = Some(bytes);
        self
    }

    /// When a report counts as stored. Defaults to [`Durability::Disk`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The clock that decides which tiers still cover a range. Defaults to
    /// [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Opens (or creates) the database in the directory.
    pub fn open(self) -> Result<SqliteStore, OpenError> {
        let dir = self.dir;
        std::fs::create_dir_all(&dir).map_err(|e| OpenError::Unwritable {
            path: dir.clone(),
            detail: e.to_string(),
        })?;
        let lock_path = dir.join("tailmon.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| OpenError::Unwritable {
                path: lock_path.clone(),
                detail: e.to_string(),
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::Locked { path: lock_path });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(OpenError::Unwritable {
                    path: lock_path,
                    detail: e.to_string(),
                });
            }
        }
        let path = dir.join(DATABASE_FILE);
        let conn = open_connection(&path, true)?;
        if self.durability == Durability::Process {
            conn.execute_batch("PRAGMA synchronous = NORMAL;")
                .map_err(|e| open_error(&path, &e))?;
        }
        if let Some(bytes) = self.max_size_bytes {
            let page_size: i64 = conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| open_error(&path, &e))?;
            let pages = (bytes / u64::try_from(page_size).unwrap_or(4096).max(1)).max(1);
            conn.execute_batch(&format!("PRAGMA max_page_count = {pages};"))
                .map_err(|e| open_error(&path, &e))?;
        }
        match sqlite_schema::migrate(&conn) {
            Ok(Ok(())) => {}
            Ok(Err(detail)) => return Err(OpenError::Corrupt { path, detail }),
            Err(error) => return Err(open_error(&path, &error)),
        }
        let (writer, requests) = mpsc::channel();
        let worker = Writer::new(conn, self.retention).map_err(|e| OpenError::Unwritable {
            path: path.clone(),
            detail: format!("cannot start compression: {e}"),
        })?;
        std::thread::Builder::new()
            .name("tailmon-sqlite-writer".into())
            .spawn(move || worker.run(requests))
            .map_err(|e| OpenError::Unwritable {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            path,
            writer,
            readers: Mutex::new(Vec::new()),
            retention: self.retention,
            clock: self.clock,
            _lock: lock,
        })
    }
}

impl SqliteStore {
    /// Opens (or creates) `dir/tailmon.db` with the default retention.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::builder(dir).open()
    }

    /// A builder to choose retention before opening.
    pub fn builder(dir: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            dir: dir.as_ref().to_path_buf(),
            retention: Retention {
                raw: duration(DEFAULT_RAW_RETENTION),
                minute: duration(DEFAULT_MINUTE_RETENTION),
                hour: duration(DEFAULT_HOUR_RETENTION),
            },
            clock: Arc::new(SystemClock),
            max_size_bytes: None,
            durability: Durability::Disk,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T>(
        &self,
        request: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Write,
    ) -> Result<T, StoreError> {
        let (done, answer) = oneshot::channel();
        self.writer
            .send(request(done))
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))?
    }

    /// Runs `read` on a pooled read connection, off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path, false)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        };
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = read(&conn);
            (conn, result)
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?;
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        result
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_many(&self, reports: Vec<Report>) -> Result<(), StoreError> {
        if reports.is_empty() {
            return Ok(());
        }
        self.write(|done| Write::Insert { reports, done }).await
    }

    async fn latest(&self) -> Result<Vec<Report>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT (SELECT report FROM raw WHERE device = d.id ORDER BY ts DESC LIMIT 1) AS latest \
                     FROM devices d WHERE latest IS NOT NULL ORDER BY d.name",
                )
                .map_err(backend)?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(backend)?;
            rows.map(|row| decode_raw(&row.map_err(backend)?)).collect()
        })
        .await
    }

    async fn latest_of(&self, device_id: &str) -> Result<Option<Report>, StoreError> {
        let device_id = device_id.to_owned();
        self.read(move |conn| {
            let blob: Option<Vec<u8>> = conn
                .prepare_cached(
                    "SELECT r.report FROM devices d JOIN raw r ON r.device = d.id \
                     WHERE d.name = ?1 ORDER BY r.ts DESC LIMIT 1",
                )
                .and_then(|mut s| s.query_row([device_id], |r| r.get(0)).optional())
                .map_err(backend)?;
            blob.map(|b| decode_raw(&b)).transpose()
        })
        .await
    }

    async fn devices(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name FROM devices")
                .map_err(backend)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
        .await
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Option<History>, StoreError> {
        let query = query.clone();
        let now = self.clock.now();
        let retention = self.retention;
        self.read(move |conn| history(conn, &query, now, retention))
            .await
    }

    async fn reports(
        &self,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError> {
        let name = device_id.to_owned();
        let Some(device) = self.read(move |conn| device_row(conn, &name)).await? else {
            return Ok(None);
        };
        let path = self.path.clone();
        let (from, to) = (millis(from), millis(to));
        // Pages of reports, each read on a blocking thread with its own
        // connection: the answer streams without holding the database.
        let pages = futures_util::stream::unfold(Some(from), move |next| {
            let path = path.clone();
            async move {
                let start = next?;
                let page = tokio::task::spawn_blocking(move || {
                    let conn = open_connection(&path, false)
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    read_page(&conn, device, start, to)
                })
                .await
                .map_err(|e| StoreError::Backend(Box::new(e)))
                .and_then(|r| r);
                match page {
                    Ok((reports, following)) => Some((Ok(reports), following)),
                    Err(error) => Some((Err(error), None)),
                }
            }
        });
        use futures_util::StreamExt;
        let reports = pages.flat_map(|page| {
            futures_util::stream::iter(match page {
                Ok(reports) => reports.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(error) => vec![Err(error)],
            })
        });
        Ok(Some(Box::pin(reports)))
    }

    async fn delete_device(&self, device_id: &str) -> Result<bool, StoreError> {
        let device = device_id.to_owned();
        self.write(|done| Write::Delete { device, done }).await
    }

    async fn apply_retention(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        self.write(|done| Write::Retention { now, done }).await
    }
}

/// A page of at most [`EXPORT_PAGE`] reports from `start`, and where the next starts.
fn read_page(
    conn: &Connection,
    device: i64,
    start: i64,
    to: i64,
) -> Result<(Vec<Report>, Option<i64>), StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT ts, report FROM raw WHERE device = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts LIMIT ?4")
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![device, start, to, EXPORT_PAGE], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(backend)?;
    let mut reports = Vec::new();
    let mut last = None;
    for row in rows {
        let (ts, blob) = row.map_err(backend)?;
        reports.push(decode_raw(&blob)?);
        last = Some(ts);
    }
    let next = if reports.len() as i64 == EXPORT_PAGE {
        last.map(|ts| ts + 1)
    } else {
        None
    };
    Ok((reports, next))
}

fn history(
    conn: &Connection,
    query: &HistoryQuery,
    now: OffsetDateTime,
    retention: Retention,
) -> Result<Option<History>, StoreError> {
    let Some(device) = device_row(conn, &query.device_id)? else {
        return Ok(None);
    };
    let answer = |tier, points| {
        Ok(Some(History {
            device_id: query.device_id.clone(),
            metric: query.metric.clone(),
            tier,
            points,
        }))
    };
    let (from, to) = (millis(query.from), millis(query.to));
    if query.from >= now - retention.raw {
        let count: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM raw WHERE device = ?1 AND ts >= ?2 AND ts <= ?3")
            .and_then(|mut s| s.query_row(params![device, from, to], |r| r.get(0)))
            .map_err(backend)?;
        if usize::try_from(count).is_ok_and(|c| c <= query.max_points) {
            let mut stmt = conn
                .prepare_cached("SELECT report FROM raw WHERE device = ?1 AND ts >= ?2 AND ts <= ?3 ORDER BY ts")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![device, from, to], |r| r.get::<_, Vec<u8>>(0))
                .map_err(backend)?;
            let mut points = Vec::new();
            for row in rows {
                let report = decode_raw(&row.map_err(backend)?)?;
                if let Some(value) = metric::value(&report, &query.metric) {
                    points.push(Point {
                        at: report.last_seen,
                        avg: value,
                        min: value,
                        max: value,
                    });
                }
            }
            return answer(Tier::Raw, points);
        }
    }
    let minutes = (query.to - query.from).whole_seconds() / 60 + 1;
    let tier = if query.from >= now - retention.minute
        && usize::try_from(minutes).is_ok_and(|m| m <= query.max_points)
    {
        Tier::Minute
    } else {
        Tier::Hour
    };
    let metric_id: Option<u32> = conn
        .prepare_cached("SELECT id FROM metric_names WHERE name = ?1")
        .and_then(|mut s| s.query_row([&query.metric], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(metric_id) = metric_id else {
        return answer(tier, Vec::new());
    };
    let first = bucket_start(tier, query.from).unix_timestamp();
    let mut stmt = conn
        .prepare_cached(
            "SELECT bucket, data FROM rollups WHERE tier = ?1 AND device = ?2 AND bucket >= ?3 AND bucket <= ?4 ORDER BY bucket",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![tier_code(tier), device, first, query.to.unix_timestamp()],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )
        .map_err(backend)?;
    let mut points = Vec::new();
    for row in rows {
        let (bucket, data) = row.map_err(backend)?;
        let Some(row) = RollupRow::decode(&data) else {
            continue;
        };
        if let (Some(b), Ok(at)) = (
            row.metrics.get(&metric_id),
            OffsetDateTime::from_unix_timestamp(bucket),
        ) {
            points.push(b.point(at));
        }
    }
    answer(tier, points)
}

fn device_row(conn: &Connection, name: &str) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT id FROM devices WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(backend)
}

fn open_connection(path: &Path, create: bool) -> Result<Connection, OpenError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| open_error(path, &e))?;
    // WAL: readers never wait for the writer. FULL: a commit is on disk
    // before the report is acknowledged.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
        .map_err(|e| open_error(path, &e))?;
    Ok(conn)
}

fn open_error(path: &Path, error: &rusqlite::Error) -> OpenError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OpenError::Corrupt {
            path: path.to_path_buf(),
            detail: error.to_string(),
        },
        _ => OpenError::Unwritable {
            path: path.to_path_buf(),
            detail: error.to_string(),
        },
    }
}

/// A SQLite error as a store error: a full disk or a busy database is
/// temporary (503, agents retry); anything else is a backend fault.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(
            ErrorCode::DiskFull
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly,
        ) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Backend(Box::new(error)),
    }
}

pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn tier_code(tier: Tier) -> u8 {
    match tier {
        Tier::Raw => 0,
        Tier::Minute => 1,
        Tier::Hour => 2,
    }
}

fn duration(keep: Duration) -> time::Duration {
    time::Duration::try_from(keep).unwrap_or(time::Duration::MAX)
}

fn decode_raw(blob: &[u8]) -> Result<Report, StoreError> {
    let json = zstd::stream::decode_all(blob).map_err(|e| StoreError::Backend(Box::new(e)))?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Backend(Box::new(e)))
}
