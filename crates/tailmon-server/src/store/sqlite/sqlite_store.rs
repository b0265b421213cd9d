use crate::private_dir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use tailmon_core::{History, OffsetDateTime, OrgId, Point, Report, Tier, metric};
use tokio::sync::oneshot;

use crate::store::Retention;
use crate::store::downsample::bucket_start;
use crate::store::metric_set::{distinct_names, in_asked_order};
use crate::store::rollup_block::{RollupBlock, block_start};
use crate::store::sqlite::device_state::Devices;
use crate::store::sqlite::pending_reads::{PendingSnapshot, row_blob};
use crate::store::sqlite::raw_window::{PreparedReport, open_block};
use crate::store::sqlite::sql_values::{SharedKeep, TierKeep, backend, millis, tier_code};
use crate::store::sqlite::sqlite_flusher;
use crate::store::sqlite::sqlite_writer::{SEAL_AFTER, Write, Writer, decode_latest};
use crate::store::sqlite::wal_sync::WalSync;
use crate::{
    Clock, HistoryQuery, ReportStream, Store, StoreError, SystemClock, store::sqlite::sqlite_schema,
};

#[cfg(doc)]
use crate::store::{DEFAULT_HOUR_RETENTION, DEFAULT_MINUTE_RETENTION, DEFAULT_RAW_RETENTION};
/// How long `ready` waits for its probe read before saying the store does
/// not answer: two seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(2);
/// The database's file name inside the data directory.
pub const DATABASE_FILE: &str = "tailmon.db";

/// When a commit counts as done, and so when a report is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Each commit reaches the disk (`fdatasync` of the write-ahead log)
    /// before the answer: an acknowledged report survives a crash of the
    /// process or of the machine. The default. One flush covers every group
    /// committed while the previous flush ran, and the writer commits the
    /// next group while a flush runs.
    #[default]
    Disk,
    /// Each commit reaches the OS before the answer: an acknowledged report
    /// survives a crash of the process (`kill -9`, out of memory) but the
    /// last second or so may be lost if the machine loses power. Commits
    /// skip the fsync, which helps on disks where it is slow.
    Process,
}

/// The embedded store: one SQLite file in the data directory (WAL mode), raw
/// reports for 48 h, one-minute and one-hour avg/min/max rollups for 30 days
/// and a year, maintained as reports arrive.
///
/// - **Acknowledged means committed.** One writer thread appends every
///   waiting report to an inbox table in one transaction, and the store
///   answers only once that transaction is flushed to disk (see
///   [`Durability`]), so an acknowledged report survives a crash of the
///   process or the machine.
/// - **Compact history.** 10 minutes after a device's first report waiting
///   (or at 720 reports, before retention trims them, and for every device
///   when the store is dropped) the writer reads its reports back from the
///   inbox, seals them into a column-encoded, compressed raw block, adds
///   them to its rollup blocks (six hours of minute buckets, a week of hour
///   buckets) and deletes them from the inbox, in one transaction. Devices
///   fall due one by one, so this work is spread between inserts in small
///   transactions, never one long pause.
/// - **Small in memory.** Until then the reports stay in the inbox table
///   only: the store keeps a few bytes a device (which inbox rows are its
///   own), so its memory does not grow with the reports or the history.
/// - **Reads** use their own connections, concurrent with writes, and merge
///   a device's inbox rows with its blocks.
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
    writer_thread: Option<std::thread::JoinHandle<()>>,
    devices: Arc<Devices>,
    readers: Arc<ReaderPool>,
    /// Read by history queries (which tier covers a range) and by the
    /// writer's retention passes; swapped by [`Store::set_retention`].
    retention: SharedKeep,
    clock: Arc<dyn Clock>,
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
    seal_after: Duration,
}

impl SqliteStoreBuilder {
    /// How long a device's reports wait in the inbox before they are sealed
    /// into a raw block and its rollups. Defaults to 10 minutes (about 120
    /// reports at the agent's interval, which compress well). Shorter seals
    /// smaller blocks, which take more room on disk; either way a query sees
    /// every report, sealed or not.
    pub fn seal_after(mut self, wait: Duration) -> Self {
        self.seal_after = wait;
        self
    }

    /// How long each tier is kept, all three at once. Defaults to
    /// [`Retention::default`]; a running store changes it with
    /// [`Store::set_retention`].
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// How long raw reports are kept. Defaults to [`DEFAULT_RAW_RETENTION`].
    pub fn raw_retention(mut self, keep: Duration) -> Self {
        self.retention.raw = keep;
        self
    }

    /// How long one-minute buckets are kept. Defaults to [`DEFAULT_MINUTE_RETENTION`].
    pub fn minute_retention(mut self, keep: Duration) -> Self {
        self.retention.minute = keep;
        self
    }

    /// How long one-hour buckets are kept. Defaults to [`DEFAULT_HOUR_RETENTION`].
    pub fn hour_retention(mut self, keep: Duration) -> Self {
        self.retention.hour = keep;
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
        private_dir::create(&dir).map_err(|e| OpenError::Unwritable {
            path: dir.clone(),
            detail: e.to_string(),
        })?;
        let lock = private_dir::lock(&dir).map_err(|e| match e {
            private_dir::LockError::Held(path) => OpenError::Locked { path },
            private_dir::LockError::Io(path, e) => OpenError::Unwritable {
                path,
                detail: e.to_string(),
            },
        })?;
        let path = dir.join(DATABASE_FILE);
        let conn = open_connection(&path, true)?;
        // SQLite creates its files as the umask allows; the WAL and shared
        // memory files it makes later take the database file's mode.
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            private_dir::restrict_file(&file).map_err(|e| OpenError::Unwritable {
                path: file.clone(),
                detail: e.to_string(),
            })?;
        }
        // Copy the WAL back into the file every 16 MB rather than 4 MB: the
        // inbox's pages are rewritten by commit after commit, and a
        // checkpoint copies each page once however often it changed.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 4000;")
            .map_err(|e| open_error(&path, &e))?;
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
        let devices = Arc::new(Devices::default());
        let retention: SharedKeep = Arc::new(arc_swap::ArcSwap::from_pointee(TierKeep::from(
            self.retention,
        )));
        let (flusher, flushes) = mpsc::channel();
        let (flusher_wal, writer_wal) = match self.durability {
            Durability::Disk => (Some(WalSync::new(&path)), Some(WalSync::new(&path))),
            Durability::Process => (None, None),
        };
        let worker = Writer::recover(
            conn,
            Arc::clone(&devices),
            Arc::clone(&retention),
            self.seal_after,
            flusher,
            writer_wal,
        )
        .map_err(|detail| OpenError::Corrupt {
            path: path.clone(),
            detail,
        })?;
        std::thread::Builder::new()
            .name("tailmon-sqlite-flusher".into())
            .spawn(move || sqlite_flusher::run(flushes, flusher_wal))
            .map_err(|e| OpenError::Unwritable {
                path: path.clone(),
                detail: format!("cannot start the flusher thread: {e}"),
            })?;
        let (writer, requests) = mpsc::channel();
        let writer_thread = std::thread::Builder::new()
            .name("tailmon-sqlite-writer".into())
            .spawn(move || {
                worker.run(requests);
                // The directory stays locked until the last checkpoint is done.
                drop(lock);
            })
            .map_err(|e| OpenError::Unwritable {
                path: path.clone(),
                detail: format!("cannot start the writer thread: {e}"),
            })?;
        Ok(SqliteStore {
            readers: Arc::new(ReaderPool {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
            }),
            path,
            writer,
            writer_thread: Some(writer_thread),
            devices,
            retention,
            clock: self.clock,
        })
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("retention", &**self.retention.load())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SqliteStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStoreBuilder")
            .field("dir", &self.dir)
            .field("retention", &self.retention)
            .field("max_size_bytes", &self.max_size_bytes)
            .field("durability", &self.durability)
            .field("seal_after", &self.seal_after)
            .finish_non_exhaustive()
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
            retention: Retention::default(),
            clock: Arc::new(SystemClock),
            max_size_bytes: None,
            durability: Durability::Disk,
            seal_after: SEAL_AFTER,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves every acknowledged report from the inbox into compact blocks
    /// now. The store does this on its own every 10 minutes, before
    /// retention and when it is dropped; an application may call it before
    /// copying the database file, for instance.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.write(|done| Write::Checkpoint { done }).await
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
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel makes the writer checkpoint and stop; waiting
        // for it keeps a reopening in the same process from finding the
        // directory still locked.
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.writer, closed));
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read connections, reused, each used on a blocking thread.
struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReaderPool {
    /// Runs `read` on a pooled read connection, off the async threads.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let pooled = pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&pool.path, false)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            };
            let result = read(&conn);
            pool.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(Box::new(e)))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_many(&self, org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError> {
        if reports.is_empty() {
            return Ok(());
        }
        let reports = reports
            .into_iter()
            .map(PreparedReport::new)
            .collect::<Result<Vec<_>, _>>()?;
        let org = org.clone();
        self.write(|done| Write::Insert { org, reports, done })
            .await
    }

    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError> {
        let wanted: Vec<(OrgId, i64, Option<i64>)> = self
            .devices
            .all()
            .iter()
            .map(|entry| (entry.org.clone(), entry.id, entry.lock().latest_pending()))
            .collect();
        self.readers
            .run(move |conn| {
                let mut latest = Vec::with_capacity(wanted.len());
                for (org, id, pending) in wanted {
                    if let Some(report) = latest_report(conn, id, pending)? {
                        latest.push((org, report));
                    }
                }
                Ok(latest)
            })
            .await
    }

    async fn latest_of(&self, org: &OrgId, device_id: &str) -> Result<Option<Report>, StoreError> {
        let Some(entry) = self.devices.get(org, device_id) else {
            return Ok(None);
        };
        let (id, pending) = (entry.id, entry.lock().latest_pending());
        self.readers
            .run(move |conn| latest_report(conn, id, pending))
            .await
    }

    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        Ok(self.devices.names())
    }

    async fn history(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        let metrics = std::slice::from_ref(&query.metric);
        let answer = self
            .histories(
                org,
                &query.device_id,
                metrics,
                query.from,
                query.to,
                query.max_points,
            )
            .await?;
        Ok(answer.and_then(|histories| histories.into_iter().next()))
    }

    /// Reads the range once for every metric: each raw report is decoded
    /// once and walked once, each rollup block opened once with the
    /// sections of every metric asked. The single-metric
    /// [`history`](Store::history) is this with one name, so the two answer
    /// alike by construction.
    async fn histories(
        &self,
        org: &OrgId,
        device_id: &str,
        metrics: &[String],
        from: OffsetDateTime,
        to: OffsetDateTime,
        max_points: usize,
    ) -> Result<Option<Vec<History>>, StoreError> {
        let Some(entry) = self.devices.get(org, device_id) else {
            return Ok(None);
        };
        let answer = |tier, points: Vec<Vec<Point>>| {
            Ok(Some(
                metrics
                    .iter()
                    .zip(points)
                    .map(|(metric, points)| History {
                        device_id: device_id.to_owned(),
                        metric: metric.clone(),
                        tier,
                        points,
                    })
                    .collect(),
            ))
        };
        let now = self.clock.now();
        let keep = **self.retention.load();
        let id = entry.id;
        let names: Arc<[String]> = metrics.into();
        if from >= now - keep.raw {
            // Which inbox rows are the device's first, then the tables: a
            // report sealed in between is then read from its block.
            let window = PendingSnapshot::of(id, &entry.lock().pending).map(Arc::new);
            let range = (millis(from), millis(to));
            let names = Arc::clone(&names);
            let points = self
                .readers
                .run(move |conn| {
                    let rows = raw_rows(conn, id, range, window, max_points)?;
                    Ok(rows.map(|rows| raw_points(&rows, &names)))
                })
                .await?;
            if let Some(points) = points {
                return answer(Tier::Raw, points);
            }
        }
        let minutes = (to - from).whole_seconds() / 60 + 1;
        let tier = if from >= now - keep.minute
            && usize::try_from(minutes).is_ok_and(|m| m <= max_points)
        {
            Tier::Minute
        } else {
            Tier::Hour
        };
        let first = bucket_start(tier, from).unix_timestamp();
        let last = to.unix_timestamp();
        let pending = PendingSnapshot::of(id, &entry.lock().pending);
        let points = self
            .readers
            .run(move |conn| {
                let held = pending_buckets(conn, pending.as_ref(), tier, (first, last), &names)?;
                rollup_points(conn, id, tier, (first, last), held, &names)
            })
            .await?;
        answer(tier, points)
    }

    async fn reports(
        &self,
        org: &OrgId,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError> {
        let Some(entry) = self.devices.get(org, device_id) else {
            return Ok(None);
        };
        let window = PendingSnapshot::of(entry.id, &entry.lock().pending).map(Arc::new);
        let (id, from, to) = (entry.id, millis(from), millis(to));
        let blocks = self
            .readers
            .run(move |conn| block_spans(conn, id, from, to))
            .await?;
        // Reads one run of overlapping blocks at a time, so the answer
        // streams without the whole range in memory.
        let readers = Arc::clone(&self.readers);
        let runs = overlapping_runs(blocks, window).into_iter();
        use futures_util::StreamExt;
        let reports = futures_util::stream::iter(runs)
            .then(move |run| {
                let readers = Arc::clone(&readers);
                async move {
                    readers
                        .run(move |conn| run_rows(conn, &run, from, to))
                        .await
                }
            })
            .flat_map(|rows| {
                futures_util::stream::iter(match rows {
                    Ok(rows) => rows.into_iter().map(|(_, r)| Ok(r)).collect::<Vec<_>>(),
                    Err(error) => vec![Err(error)],
                })
            });
        Ok(Some(Box::pin(reports)))
    }

    async fn delete_device(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError> {
        let (org, device) = (org.clone(), device_id.to_owned());
        self.write(|done| Write::Delete { org, device, done }).await
    }

    async fn apply_retention(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        self.write(|done| Write::Retention { now, done }).await
    }

    /// Takes effect at once for reads (which tier answers a range) and at
    /// the next [`apply_retention`](Store::apply_retention) for what is kept.
    fn set_retention(&self, retention: Retention) {
        self.retention.store(Arc::new(TierKeep::from(retention)));
    }

    /// Ready when the writer thread runs and a read of the schema version
    /// on a reader connection answers within two seconds. The
    /// migrations ran when the store opened.
    async fn ready(&self) -> Result<(), StoreError> {
        if self
            .writer_thread
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished)
        {
            return Err(StoreError::Unavailable(
                "the database writer has stopped".into(),
            ));
        }
        let probe = self.readers.run(|conn| {
            conn.query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| StoreError::Unavailable(e.to_string()))
        });
        match tokio::time::timeout(READY_TIMEOUT, probe).await {
            Ok(Ok(version)) if version == sqlite_schema::SCHEMA_VERSION => Ok(()),
            Ok(Ok(version)) => Err(StoreError::Unavailable(format!(
                "the database has schema version {version}"
            ))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the database did not answer within {} s",
                READY_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Where a raw block lies in time.
struct BlockSpan {
    id: i64,
    first: i64,
    last: i64,
    count: i64,
}

/// The raw blocks of `device` that overlap `from..=to`, by start.
fn block_spans(
    conn: &Connection,
    device: i64,
    from: i64,
    to: i64,
) -> Result<Vec<BlockSpan>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, first_ts, last_ts, count FROM raw_blocks \
             WHERE device = ?1 AND last_ts >= ?2 AND first_ts <= ?3 ORDER BY first_ts",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![device, from, to], |r| {
            Ok(BlockSpan {
                id: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
                count: r.get(3)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

/// Blocks (and the open window) whose time spans overlap, read together so
/// that what they hold comes out in time order.
#[derive(Default)]
struct Run {
    blocks: Vec<i64>,
    window: Option<Arc<PendingSnapshot>>,
}

/// Groups spans into runs that overlap nothing outside themselves.
fn overlapping_runs(blocks: Vec<BlockSpan>, window: Option<Arc<PendingSnapshot>>) -> Vec<Run> {
    let mut spans: Vec<(i64, i64, Option<i64>)> = blocks
        .iter()
        .map(|b| (b.first, b.last, Some(b.id)))
        .collect();
    if let Some(w) = &window {
        spans.push((w.oldest, w.newest, None));
    }
    spans.sort_by_key(|&(first, _, _)| first);
    let mut runs: Vec<Run> = Vec::new();
    let mut end = i64::MIN;
    for (first, last, id) in spans {
        if runs.is_empty() || first > end {
            runs.push(Run::default());
        }
        end = end.max(last);
        if let Some(run) = runs.last_mut() {
            match id {
                Some(id) => run.blocks.push(id),
                None => run.window.clone_from(&window),
            }
        }
    }
    runs
}

/// The reports of one run within `from..=to`, in time order, each once.
fn run_rows(
    conn: &Connection,
    run: &Run,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, Report)>, StoreError> {
    let mut rows = Vec::new();
    for &id in &run.blocks {
        let data: Option<Vec<u8>> = conn
            .prepare_cached("SELECT data FROM raw_blocks WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(backend)?;
        // A block gone since the spans were read was dropped by retention
        // or merged; nothing of it is wanted any more.
        if let Some(data) = data {
            rows.extend(open_block(&data)?);
        }
    }
    if let Some(window) = &run.window {
        rows.extend(window.reports(conn)?);
    }
    rows.retain(|(ts, _)| (from..=to).contains(ts));
    rows.sort_by_key(|(ts, _)| *ts);
    rows.dedup_by_key(|(ts, _)| *ts);
    Ok(rows)
}

/// The raw reports of `device` within `from..=to` (the stored blocks and the
/// open `window`), in time order; `None` when there are more than `limit`.
fn raw_rows(
    conn: &Connection,
    device: i64,
    (from, to): (i64, i64),
    window: Option<Arc<PendingSnapshot>>,
    limit: usize,
) -> Result<Option<Vec<(i64, Report)>>, StoreError> {
    let spans = block_spans(conn, device, from, to)?;
    let mut inside: i64 = spans
        .iter()
        .filter(|b| b.first >= from && b.last <= to)
        .map(|b| b.count)
        .sum();
    // The open window counts too when it lies inside the range and shares
    // no time with a block (so none of its reports is counted twice): a
    // range longer than the points asked is then answered from rollups
    // without decoding what memory holds first.
    if let Some(w) = &window
        && w.oldest >= from
        && w.newest <= to
        && !spans
            .iter()
            .any(|b| b.first <= w.newest && b.last >= w.oldest)
    {
        inside = inside.saturating_add(i64::try_from(w.count()).unwrap_or(i64::MAX));
    }
    if usize::try_from(inside).is_ok_and(|n| n > limit) {
        return Ok(None);
    }
    let run = Run {
        blocks: spans.iter().map(|b| b.id).collect(),
        window,
    };
    let rows = run_rows(conn, &run, from, to)?;
    Ok((rows.len() <= limit).then_some(rows))
}

/// The raw points of each of `metrics` (in that order) in `rows`: every
/// report walked once with [`metric::for_each`], taking, as
/// [`metric::value`] does, the first value of a name in each report.
fn raw_points(rows: &[(i64, Report)], metrics: &[String]) -> Vec<Vec<Point>> {
    let (slots, of) = distinct_names(metrics);
    let mut points: Vec<Vec<Point>> = vec![Vec::with_capacity(rows.len()); slots.len()];
    // The last row each name was taken from: later values of it in the
    // same report are not the metric's.
    let mut taken = vec![usize::MAX; slots.len()];
    for (row, (_, report)) in rows.iter().enumerate() {
        metric::for_each(report, |name, value| {
            if let Some(&slot) = slots.get(name)
                && taken[slot] != row
            {
                taken[slot] = row;
                points[slot].push(Point {
                    at: report.last_seen,
                    avg: value,
                    min: value,
                    max: value,
                });
            }
        });
    }
    in_asked_order(points, &of)
}

/// The points of each of `metrics` (in that order) from the rollup blocks
/// of one tier whose buckets start within `first..=last`: the stored
/// blocks, each opened once with the sections of every metric asked, with
/// the buckets of the device's unsealed reports (`held`, by block start)
/// added to them.
fn rollup_points(
    conn: &Connection,
    device: i64,
    tier: Tier,
    (first, last): (i64, i64),
    held: BucketAdds,
    metrics: &[String],
) -> Result<Vec<Vec<Point>>, StoreError> {
    let (slots, of) = distinct_names(metrics);
    let mut names: Vec<&str> = vec![""; slots.len()];
    for (&name, &slot) in &slots {
        names[slot] = name;
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT start, data FROM rollup_blocks \
             WHERE tier = ?1 AND device = ?2 AND start >= ?3 AND start <= ?4 ORDER BY start",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![tier_code(tier), device, block_start(tier, first), last],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )
        .map_err(backend)?;
    let mut points: Vec<Vec<Point>> = vec![Vec::new(); names.len()];
    let mut held = held;
    for row in rows {
        let (start, data) = row.map_err(backend)?;
        let mut block = RollupBlock::open_where(&data, |name| slots.contains_key(name))
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        if let Some(pending) = held.remove(&start) {
            for (bucket, name, value) in pending {
                block.add(bucket, &name, value);
            }
        }
        for (slot, name) in names.iter().enumerate() {
            points[slot].extend(block.points(name, first, last));
        }
    }
    for adds in held.into_values() {
        let mut block = RollupBlock::default();
        for (bucket, name, value) in adds {
            block.add(bucket, &name, value);
        }
        for (slot, name) in names.iter().enumerate() {
            points[slot].extend(block.points(name, first, last));
        }
    }
    for series in &mut points {
        series.sort_by_key(|p| p.at);
    }
    Ok(in_asked_order(points, &of))
}

/// Values of unsealed reports to add to rollup blocks: by block start, each
/// as (bucket start, metric, value).
type BucketAdds = BTreeMap<i64, Vec<(i64, String, f64)>>;

/// What the device's unsealed reports add to the buckets of `tier` starting
/// within `first..=last`, for the metrics asked.
fn pending_buckets(
    conn: &Connection,
    pending: Option<&PendingSnapshot>,
    tier: Tier,
    (first, last): (i64, i64),
    metrics: &[String],
) -> Result<BucketAdds, StoreError> {
    let mut adds = BucketAdds::new();
    let Some(pending) = pending else {
        return Ok(adds);
    };
    let (slots, _) = distinct_names(metrics);
    for (_, report) in pending.reports(conn)? {
        let bucket = bucket_start(tier, report.last_seen).unix_timestamp();
        if !(first..=last).contains(&bucket) {
            continue;
        }
        let slot = adds.entry(block_start(tier, bucket)).or_default();
        metric::for_each(&report, |name, value| {
            if slots.contains_key(name) {
                slot.push((bucket, name.to_owned(), value));
            }
        });
    }
    Ok(adds)
}

/// The latest report of device `id`: from the inbox row `pending` when it
/// holds a newer one than the devices table (and a checkpoint has not
/// moved it there since), else from the table.
fn latest_report(
    conn: &Connection,
    id: i64,
    pending: Option<i64>,
) -> Result<Option<Report>, StoreError> {
    if let Some(seq) = pending
        && let Some(blob) = row_blob(conn, seq)?
    {
        return decode_latest(&blob).map(Some);
    }
    let stored: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT latest FROM devices WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)?;
    stored
        .flatten()
        .map(|blob| decode_latest(&blob))
        .transpose()
}

fn open_connection(path: &Path, create: bool) -> Result<Connection, OpenError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(|e| open_error(path, &e))?;
    // WAL: readers never wait for the writer. NORMAL: a commit does not
    // wait for the disk; with `Durability::Disk` the store flushes the WAL
    // itself before it answers (see `wal_sync`).
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
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
