//! [`RemoteStore`]: reports kept in a Prometheus-compatible engine
//! (Prometheus, VictoriaMetrics, Mimir), written by remote write 1.0 and
//! read back through the Prometheus HTTP API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use reqwest::header::HeaderMap;
use tailmon_core::{History, HistoryQuery, OffsetDateTime, OrgId, Report, Tier, metric};

use super::connection::{Auth, Connection, TenantHeader, header};
use super::prom_query::{Series, quote};
use super::remote_writer::{RemoteWriter, WriterSettings};
use super::report_series::{
    ALL_SERIES, DEVICE_LABEL, LAST_SEEN, ORG_LABEL, push_report_series, unix_millis, unix_seconds,
};
use super::reports_from_samples::{newest_by_device, reports_from_samples};
use crate::store::downsample::{bucket_start, bucket_tier, downsample};
use crate::store::{ReportStream, Store, StoreError};

/// The tenant of the index a tenant-header store keeps, unless set.
pub const DEFAULT_INDEX_TENANT: &str = "tailmon-index";

/// Queries a read of many devices' latest reports has in flight at once,
/// unless set ([`RemoteStoreBuilder::read_concurrency`]).
pub const DEFAULT_READ_CONCURRENCY: usize = 4;

/// Devices [`RemoteStore::latest`] reads in one query at most (engines cap
/// a query's length: VictoriaMetrics at 16 KiB).
const GROUP_DEVICES: usize = 100;

/// How far apart the newest reports of devices read in one query may be.
const GROUP_SPAN_SECONDS: f64 = 2.0;

/// How far back the newest time of one device is looked for first (its
/// latest report, whether it is known), before the whole lookback.
const RECENT_MILLIS: i64 = 10 * 60 * 1000;

/// Why a [`RemoteStoreBuilder`] could not build a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteStoreError {
    /// A URL is not an `http://` or `https://` URL.
    #[error("{what} {url:?} is not an http:// or https:// URL")]
    BadUrl {
        /// Which URL.
        what: &'static str,
        /// The URL given.
        url: String,
    },
    /// A header given to [`RemoteStoreBuilder::header`] is not a valid
    /// HTTP header.
    #[error("{0:?} is not a valid HTTP header name and value")]
    BadHeader(String),
    /// A limit is zero.
    #[error("{0} must be above zero")]
    Zero(&'static str),
    /// The HTTP client could not be made.
    #[error("could not make the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// `build` was called outside a Tokio runtime (the writer is a task).
    #[error("the remote store must be built inside a Tokio runtime")]
    NoRuntime,
}

/// Builds a [`RemoteStore`].
///
/// ```no_run
/// # async fn run() -> Result<(), tailmon_server::store::RemoteStoreError> {
/// use std::time::Duration;
/// use tailmon_server::store::RemoteStoreBuilder;
///
/// let store = RemoteStoreBuilder::new(
///     "http://127.0.0.1:8428/api/v1/write",
///     "http://127.0.0.1:8428",
/// )
/// .bearer_token("s3cret")
/// .write_deadline(Duration::from_secs(30))
/// .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RemoteStoreBuilder {
    write_url: String,
    query_url: String,
    auth: Option<Auth>,
    headers: Vec<(String, String)>,
    request_timeout: Duration,
    write_deadline: Duration,
    queue: usize,
    batch_series: usize,
    lookback: Duration,
    future: Duration,
    chunk: Duration,
    tenant_header: Option<String>,
    index_tenant: String,
    read_concurrency: usize,
}

impl RemoteStoreBuilder {
    /// A store writing to `remote_write_url` (e.g.
    /// `http://127.0.0.1:9090/api/v1/write`) and querying the Prometheus
    /// API under `query_url` (e.g. `http://127.0.0.1:9090`: the store
    /// appends `/api/v1/query`).
    pub fn new(remote_write_url: impl Into<String>, query_url: impl Into<String>) -> Self {
        Self {
            write_url: remote_write_url.into(),
            query_url: query_url.into().trim_end_matches('/').to_owned(),
            auth: None,
            headers: Vec::new(),
            request_timeout: Duration::from_secs(10),
            write_deadline: Duration::from_secs(30),
            queue: 1024,
            batch_series: 20_000,
            lookback: Duration::from_secs(400 * 24 * 3600),
            future: Duration::from_secs(24 * 3600),
            tenant_header: None,
            index_tenant: DEFAULT_INDEX_TENANT.to_owned(),
            chunk: Duration::from_secs(3600),
            read_concurrency: DEFAULT_READ_CONCURRENCY,
        }
    }

    /// Sends HTTP basic credentials with every request.
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Auth::Basic {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(Auth::Bearer(token.into()));
        self
    }

    /// Sends header `name: value` with every request (repeatable).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends each organisation's requests to its own engine tenant, its
    /// id in header `name` (Mimir's `X-Scope-OrgID`). The reads across
    /// organisations (the fleet, the device list) read an index that every
    /// write also keeps, of each device's newest time, in tenant
    /// [`index_tenant`](Self::index_tenant).
    pub fn tenant_header(mut self, name: impl Into<String>) -> Self {
        self.tenant_header = Some(name.into());
        self
    }

    /// The tenant of the index a [`tenant_header`](Self::tenant_header)
    /// store keeps (default `tailmon-index`).
    pub fn index_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.index_tenant = tenant.into();
        self
    }

    /// One HTTP request's time limit (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a write is retried (connection errors, 5xx, 429) before
    /// the insert fails with [`StoreError::Unavailable`] (default 30 s).
    pub fn write_deadline(mut self, deadline: Duration) -> Self {
        self.write_deadline = deadline;
        self
    }

    /// Inserts waiting for the writer at most (default 1024); one more is
    /// refused at once with [`StoreError::Unavailable`].
    pub fn queue(mut self, inserts: usize) -> Self {
        self.queue = inserts;
        self
    }

    /// Series one remote-write request holds at most (default 20,000); an
    /// insert is never cut.
    pub fn batch_series(mut self, series: usize) -> Self {
        self.batch_series = series;
        self
    }

    /// How far back the store looks for devices and their latest report
    /// (default 400 days): a device silent for longer is no longer listed.
    pub fn lookback(mut self, lookback: Duration) -> Self {
        self.lookback = lookback;
        self
    }

    /// How far ahead of now the store looks for reports (default 1 day:
    /// the server stores a report stamped further ahead at its receive
    /// time).
    pub fn future(mut self, future: Duration) -> Self {
        self.future = future;
        self
    }

    /// Queries a read of many devices' latest reports ([`Store::latest`],
    /// [`Store::latest_of_many`]: a replica's fleet refresh) keeps in
    /// flight at once (default [`DEFAULT_READ_CONCURRENCY`]): more for an
    /// engine whose query tier answers queries in parallel (a
    /// VictoriaMetrics cluster's `vmselect`, Mimir's queriers) and a large
    /// fleet.
    pub fn read_concurrency(mut self, queries: usize) -> Self {
        self.read_concurrency = queries;
        self
    }

    /// The span of raw samples one query reads (default 1 hour).
    pub fn chunk(mut self, chunk: Duration) -> Self {
        self.chunk = chunk;
        self
    }

    /// The store, its writer started on the current Tokio runtime.
    pub fn build(self) -> Result<RemoteStore, RemoteStoreError> {
        for (what, url) in [
            ("the remote-write URL", &self.write_url),
            ("the query URL", &self.query_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(RemoteStoreError::BadUrl {
                    what,
                    url: url.clone(),
                });
            }
        }
        for (what, value) in [
            ("the queue", self.queue),
            ("the batch", self.batch_series),
            ("the read concurrency", self.read_concurrency),
            (
                "the request timeout",
                duration_nonzero(self.request_timeout),
            ),
            ("the write deadline", duration_nonzero(self.write_deadline)),
            ("the lookback", duration_nonzero(self.lookback)),
            ("the chunk", duration_nonzero(self.chunk)),
        ] {
            if value == 0 {
                return Err(RemoteStoreError::Zero(what));
            }
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let (name, value) = header(name, value)
                .ok_or_else(|| RemoteStoreError::BadHeader(format!("{name}: {value}")))?;
            headers.append(name, value);
        }
        let tenant = match &self.tenant_header {
            None => None,
            Some(name) => {
                let (name, _) = header(name, &self.index_tenant).ok_or_else(|| {
                    RemoteStoreError::BadHeader(format!("{name}: {}", self.index_tenant))
                })?;
                Some(TenantHeader {
                    name,
                    index: self.index_tenant.clone(),
                })
            }
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RemoteStoreError::NoRuntime);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("tailmon-server/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.request_timeout)
            .build()
            .map_err(RemoteStoreError::Client)?;
        let connection = Arc::new(Connection {
            client,
            write_url: self.write_url,
            query_url: self.query_url,
            auth: self.auth,
            headers,
            tenant,
        });
        let writer = RemoteWriter::start(
            connection.clone(),
            WriterSettings {
                queue: self.queue,
                batch_series: self.batch_series,
                request_timeout: self.request_timeout,
                retry_deadline: self.write_deadline,
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
            },
        );
        Ok(RemoteStore {
            connection,
            writer,
            timeout: self.request_timeout,
            lookback_millis: i64::try_from(self.lookback.as_millis()).unwrap_or(i64::MAX / 4),
            chunk_millis: i64::try_from(self.chunk.as_millis()).unwrap_or(i64::MAX / 4),
            future_millis: i64::try_from(self.future.as_millis()).unwrap_or(i64::MAX / 4),
            read_concurrency: self.read_concurrency,
        })
    }
}

fn duration_nonzero(d: Duration) -> usize {
    usize::from(!d.is_zero())
}

/// Reports kept in a Prometheus-compatible engine: written by remote write
/// 1.0 (snappy-compressed protobuf), read through the Prometheus HTTP API.
/// docs/remote-store.md tells how reports map to series, what is not kept
/// and how to set up each engine.
///
/// - `insert_many` answers `Ok` once the engine answered 2xx for a request
///   holding all its samples; concurrent inserts share one request. A
///   full queue, or no 2xx within the write deadline, is
///   [`StoreError::Unavailable`]; a 400 for samples the engine has at that
///   time already (or finds too old) counts as stored; any other 4xx is
///   [`StoreError::Backend`] with the engine's message.
/// - Retention is the engine's: [`apply_retention`](Store::apply_retention)
///   and [`set_retention`](Store::set_retention) do nothing.
/// - History is answered from the raw samples, downsampled as the other
///   stores do.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use tailmon_server::ServerBuilder;
/// use tailmon_server::store::RemoteStoreBuilder;
///
/// let store = RemoteStoreBuilder::new(
///     "http://127.0.0.1:8428/api/v1/write",
///     "http://127.0.0.1:8428",
/// )
/// .build()?;
/// let server = ServerBuilder::new().store(Arc::new(store)).build()?;
/// # drop(server);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RemoteStore {
    connection: Arc<Connection>,
    writer: RemoteWriter,
    timeout: Duration,
    lookback_millis: i64,
    chunk_millis: i64,
    future_millis: i64,
    read_concurrency: usize,
}

/// The PromQL matchers of one device's labels.
fn device_matchers(org: &OrgId, device_id: &str) -> String {
    format!(
        "{ORG_LABEL}={},{DEVICE_LABEL}={}",
        quote(org.as_str()),
        quote(device_id)
    )
}

/// The PromQL selector of every series of one device.
fn device_selector(org: &OrgId, device_id: &str) -> String {
    format!("{{{ALL_SERIES},{}}}", device_matchers(org, device_id))
}

/// The reports of a device with `after < last_seen <= until` (Unix
/// milliseconds), in one query.
async fn read_window(
    connection: &Connection,
    timeout: Duration,
    org: &OrgId,
    device_id: &str,
    after: i64,
    until: i64,
) -> Result<Vec<Report>, StoreError> {
    let query = format!("{}[{}ms]", device_selector(org, device_id), until - after);
    let tenant = connection.tenant.as_ref().map(|_| org.as_str());
    let mut series = connection.query(&query, until, timeout, tenant).await?;
    // Engines differ on whether the window's start is in it.
    for s in &mut series {
        s.samples.retain(|&(at, _)| at > after && at <= until);
    }
    Ok(reports_from_samples(&series))
}

/// (organisation, device id, newest `last_seen` in Unix seconds) of each
/// series of the newest times of devices; series without them are skipped.
fn lookups_of(newest: Vec<Series>) -> Vec<(OrgId, String, f64)> {
    let mut lookups = Vec::with_capacity(newest.len());
    for s in newest {
        let (Some(org), Some(device), Some(&(_, seconds))) = (
            s.labels.get(ORG_LABEL),
            s.labels.get(DEVICE_LABEL),
            s.samples.first(),
        ) else {
            continue;
        };
        let Ok(org) = OrgId::new(org) else {
            continue;
        };
        lookups.push((org, device.clone(), seconds));
    }
    lookups
}

/// `text` as a regular expression matching only itself.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The smallest multiple of `width` at or above `at`.
fn ceil_to(at: i64, width: i64) -> i64 {
    at.div_euclid(width)
        .saturating_add(i64::from(at.rem_euclid(width) != 0))
        .saturating_mul(width)
}

/// The most chunks one range is cut into (engines cap the points of a
/// range query: Prometheus at 11,000).
const MAX_STEPS: i64 = 10_000;

/// Now in Unix milliseconds.
fn now_millis() -> i64 {
    unix_millis(OffsetDateTime::now_utc())
}

impl RemoteStore {
    /// Since the start: (requests the engine answered with a 400 for
    /// samples it holds already or finds too old, counted as stored;
    /// requests it refused for good; attempts that failed with a
    /// connection error, 5xx or 429).
    pub fn write_counts(&self) -> (u64, u64, u64) {
        let counts = &self.writer.counts;
        (
            counts.dropped.total(),
            counts.refused.total(),
            counts.retries.total(),
        )
    }

    /// The newest `last_seen` (in Unix seconds, from the value of
    /// [`LAST_SEEN`]) of every device matching `matchers` with a report
    /// stamped at or after `since` (Unix milliseconds), with its labels, in
    /// `tenant`. The engine reads the samples from `since` on only.
    async fn newest_times_since(
        &self,
        matchers: &str,
        tenant: Option<&str>,
        since: i64,
    ) -> Result<Vec<Series>, StoreError> {
        let at = now_millis().max(since).saturating_add(self.future_millis);
        let query = format!(
            "max_over_time({LAST_SEEN}{{{matchers}}}[{}ms])",
            at.saturating_sub(since).saturating_add(1)
        );
        self.connection
            .query(&query, at, self.timeout, tenant)
            .await
    }

    /// [`newest_times_since`](Self::newest_times_since) over the whole
    /// lookback.
    async fn newest_times(
        &self,
        matchers: &str,
        tenant: Option<&str>,
    ) -> Result<Vec<Series>, StoreError> {
        let since = now_millis().saturating_sub(self.lookback_millis);
        self.newest_times_since(matchers, tenant, since).await
    }

    /// The newest `last_seen` of one device, in Unix seconds: read from the
    /// recent samples first, from the whole lookback only for a device
    /// silent since before them (each query reads the samples of its span).
    async fn newest_time_of(
        &self,
        org: &OrgId,
        device_id: &str,
    ) -> Result<Option<f64>, StoreError> {
        let matchers = device_matchers(org, device_id);
        let tenant = self.tenant_of(org);
        let recent = now_millis().saturating_sub(RECENT_MILLIS);
        let mut newest = self.newest_times_since(&matchers, tenant, recent).await?;
        if newest.is_empty() && self.lookback_millis > RECENT_MILLIS {
            newest = self.newest_times(&matchers, tenant).await?;
        }
        Ok(newest
            .first()
            .and_then(|s| s.samples.first())
            .map(|&(_, seconds)| seconds))
    }

    /// The tenant of `org`'s requests: its id, with a tenant header.
    fn tenant_of<'o>(&self, org: &'o OrgId) -> Option<&'o str> {
        self.connection.tenant.as_ref().map(|_| org.as_str())
    }

    /// The tenant of the reads across organisations: the index, with a
    /// tenant header.
    fn index_tenant(&self) -> Option<&str> {
        self.connection.tenant.as_ref().map(|t| t.index.as_str())
    }

    /// The latest report of the device `labels` name, whose `last_seen`
    /// has the value `seconds`.
    async fn report_at(
        &self,
        org: &OrgId,
        device_id: &str,
        seconds: f64,
    ) -> Result<Option<Report>, StoreError> {
        // The samples are stamped with last_seen rounded down to the
        // millisecond: a window of two milliseconds ending just after
        // the value holds them, whatever its rounding.
        let at = ((seconds * 1000.0).round() as i64).saturating_add(1);
        let query = format!("{}[3ms]", device_selector(org, device_id));
        let series = self
            .connection
            .query(&query, at, self.timeout, self.tenant_of(org))
            .await?;
        Ok(newest_by_device(&series).remove(device_id))
    }

    /// The latest reports of a group of devices, given with the value of
    /// their newest `last_seen` (close to each other): one query for the
    /// raw samples of them all over the span, each device's newest report
    /// picked from it; a device it misses is read alone.
    async fn latest_of_group(
        &self,
        group: Vec<(OrgId, String, f64)>,
    ) -> Result<Vec<(OrgId, Report)>, StoreError> {
        let mut out = Vec::with_capacity(group.len());
        let mut missed = Vec::new();
        if let [(org, device, seconds)] = group.as_slice() {
            missed.push((org.clone(), device.clone(), *seconds));
        } else {
            let millis = |seconds: f64| (seconds * 1000.0).round() as i64;
            let first = group.first().map_or(0, |g| millis(g.2));
            let last = group.last().map_or(0, |g| millis(g.2));
            let alternatives = |values: &mut dyn Iterator<Item = &str>| {
                let mut distinct: Vec<String> = values.map(regex_literal).collect();
                distinct.sort_unstable();
                distinct.dedup();
                quote(&distinct.join("|"))
            };
            let orgs = alternatives(&mut group.iter().map(|g| g.0.as_str()));
            let devices = alternatives(&mut group.iter().map(|g| g.1.as_str()));
            // Samples are stamped with last_seen rounded down to the
            // millisecond: the window reaches just past the newest and
            // before the oldest, whatever the value's rounding.
            let query = format!(
                "{{{ALL_SERIES},{ORG_LABEL}=~{orgs},{DEVICE_LABEL}=~{devices}}}[{}ms]",
                last.saturating_sub(first).saturating_add(3)
            );
            let series = self
                .connection
                .query(
                    &query,
                    last.saturating_add(1),
                    self.timeout,
                    group.first().and_then(|g| self.tenant_of(&g.0)),
                )
                .await?;
            let mut by_device: HashMap<(&str, &str), Vec<Series>> = HashMap::new();
            for s in &series {
                if let (Some(org), Some(device)) =
                    (s.labels.get(ORG_LABEL), s.labels.get(DEVICE_LABEL))
                {
                    by_device
                        .entry((org.as_str(), device.as_str()))
                        .or_default()
                        .push(s.clone());
                }
            }
            for (org, device, seconds) in group {
                let newest = by_device
                    .get(&(org.as_str(), device.as_str()))
                    .and_then(|series| reports_from_samples(series).pop())
                    .filter(|r| unix_millis(r.last_seen).abs_diff(millis(seconds)) <= 1);
                match newest {
                    Some(report) => out.push((org, report)),
                    None => missed.push((org, device, seconds)),
                }
            }
        }
        for (org, device, seconds) in missed {
            if let Some(report) = self.report_at(&org, &device, seconds).await? {
                out.push((org, report));
            }
        }
        Ok(out)
    }

    /// The latest reports of devices given with the value of their newest
    /// `last_seen` (Unix seconds), in any order: devices whose newest
    /// reports are close in time are read together, one query a group
    /// ([`latest_of_group`](Self::latest_of_group)), groups
    /// [`RemoteStoreBuilder::read_concurrency`] at a time. A group is of one organisation
    /// (one tenant, with a tenant header).
    async fn latest_of_lookups(
        &self,
        mut lookups: Vec<(OrgId, String, f64)>,
    ) -> Result<Vec<(OrgId, Report)>, StoreError> {
        lookups.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.total_cmp(&b.2)));
        let mut groups: Vec<Vec<(OrgId, String, f64)>> = Vec::new();
        for lookup in lookups {
            match groups.last_mut() {
                Some(group)
                    if group.len() < GROUP_DEVICES
                        && group.first().is_some_and(|first| {
                            first.0 == lookup.0 && lookup.2 - first.2 <= GROUP_SPAN_SECONDS
                        }) =>
                {
                    group.push(lookup);
                }
                _ => groups.push(vec![lookup]),
            }
        }
        let found: Vec<Result<Vec<(OrgId, Report)>, StoreError>> =
            futures_util::stream::iter(groups)
                .map(|group| self.latest_of_group(group))
                .buffer_unordered(self.read_concurrency)
                .collect()
                .await;
        let mut latest = Vec::new();
        for item in found {
            latest.extend(item?);
        }
        Ok(latest)
    }

    /// Whether `org` has `device_id`.
    async fn knows(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError> {
        Ok(self.newest_time_of(org, device_id).await?.is_some())
    }

    /// The windows `(after, until]` (Unix milliseconds) that hold the
    /// reports of a device with `from <= last_seen <= to`, within the
    /// lookback: one range query finds the chunks that hold reports.
    async fn windows(
        &self,
        org: &OrgId,
        device_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let now = now_millis();
        let from = from.max(now.saturating_sub(self.lookback_millis));
        let to = to.min(now.saturating_add(self.future_millis));
        if to < from {
            return Ok(Vec::new());
        }
        // Chunks end at multiples of their width (as engines align steps);
        // at most MAX_STEPS of them.
        let mut width = self.chunk_millis.max(1);
        while (to - from) / width > MAX_STEPS {
            width = width.saturating_mul(2);
        }
        let first_end = ceil_to(from, width);
        let last_end = ceil_to(to, width);
        let ends: Vec<i64> = if last_end - first_end <= width {
            vec![first_end, last_end]
        } else {
            let probe = format!(
                "count_over_time({LAST_SEEN}{{{}}}[{width}ms])",
                device_matchers(org, device_id)
            );
            let mut ends: Vec<i64> = self
                .connection
                .query_range(
                    &probe,
                    first_end,
                    last_end,
                    width,
                    self.timeout,
                    self.tenant_of(org),
                )
                .await?
                .into_iter()
                .flat_map(|s| s.samples)
                .filter(|&(_, count)| count > 0.0)
                .map(|(end, _)| end)
                .collect();
            ends.sort_unstable();
            ends
        };
        let mut windows = Vec::with_capacity(ends.len());
        let mut done = from - 1;
        for end in ends {
            let after = end.saturating_sub(width).max(done);
            let until = end.min(to);
            if until > after {
                windows.push((after, until));
                done = until;
            }
        }
        Ok(windows)
    }

    /// Every raw report of a device with `from <= last_seen <= to` (Unix
    /// milliseconds), within the lookback, gathered.
    async fn reports_between(
        &self,
        org: &OrgId,
        device_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Report>, StoreError> {
        let mut out = Vec::new();
        for (after, until) in self.windows(org, device_id, from, to).await? {
            out.extend(
                read_window(&self.connection, self.timeout, org, device_id, after, until).await?,
            );
        }
        Ok(out)
    }

    /// `metric` of `reports` as (time, value), oldest first.
    fn values(reports: &[Report], metric: &str) -> Vec<(OffsetDateTime, f64)> {
        reports
            .iter()
            .filter_map(|r| Some((r.last_seen, metric::value(r, metric)?)))
            .collect()
    }

    /// One metric's history from the reports of its range (and the whole
    /// buckets around it when it needs buckets): as the memory store
    /// answers.
    async fn history_from(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
        reports: &[Report],
        whole_buckets: &mut Option<(Tier, Vec<Report>)>,
    ) -> Result<History, StoreError> {
        let values = Self::values(reports, &query.metric);
        let (tier, points) = if values.len() <= query.max_points {
            (Tier::Raw, downsample(Tier::Raw, values))
        } else {
            let tier = bucket_tier(query.from, query.to, query.max_points);
            if whole_buckets.as_ref().is_none_or(|(t, _)| *t != tier) {
                let width = time::Duration::seconds(tier.bucket_seconds().unwrap_or(1));
                let from = bucket_start(tier, query.from);
                let to = bucket_start(tier, query.to) + width - time::Duration::NANOSECOND;
                let wider = self
                    .reports_between(org, &query.device_id, unix_millis(from), unix_millis(to))
                    .await?;
                *whole_buckets = Some((tier, wider));
            }
            let wider = whole_buckets
                .as_ref()
                .map(|(_, r)| r.as_slice())
                .unwrap_or_default();
            (tier, downsample(tier, Self::values(wider, &query.metric)))
        };
        Ok(History {
            device_id: query.device_id.clone(),
            metric: query.metric.clone(),
            tier,
            points,
        })
    }
}

#[async_trait]
impl Store for RemoteStore {
    async fn insert_many(&self, org: &OrgId, reports: Vec<Report>) -> Result<(), StoreError> {
        let mut series = Vec::with_capacity(reports.len() * 48);
        for report in &reports {
            push_report_series(&mut series, org, report);
        }
        self.writer.write(org.as_str(), series).await
    }

    async fn latest(&self) -> Result<Vec<(OrgId, Report)>, StoreError> {
        let newest = self.newest_times("", self.index_tenant()).await?;
        let mut latest = self.latest_of_lookups(lookups_of(newest)).await?;
        latest.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.device_id.cmp(&y.device_id)));
        Ok(latest)
    }

    /// Reads the samples stamped from `since` on only.
    async fn newest_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(OrgId, String, OffsetDateTime)>, StoreError> {
        let newest = self
            .newest_times_since("", self.index_tenant(), unix_millis(since))
            .await?;
        Ok(lookups_of(newest)
            .into_iter()
            .filter_map(|(org, device_id, seconds)| {
                let at = OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9).round() as i128)
                    .ok()?;
                // The engine's window may take in a sample a millisecond
                // early.
                (at >= since - time::Duration::MILLISECOND).then_some((org, device_id, at))
            })
            .collect())
    }

    /// Devices whose latest reports are close in time are read together,
    /// one query a group of up to 100.
    async fn latest_of_many(
        &self,
        devices: Vec<(OrgId, String, OffsetDateTime)>,
    ) -> Result<Vec<(OrgId, Report)>, StoreError> {
        let lookups = devices
            .into_iter()
            .map(|(org, device_id, at)| (org, device_id, unix_seconds(at)))
            .collect();
        self.latest_of_lookups(lookups).await
    }

    async fn latest_of(&self, org: &OrgId, device_id: &str) -> Result<Option<Report>, StoreError> {
        match self.newest_time_of(org, device_id).await? {
            Some(seconds) => self.report_at(org, device_id, seconds).await,
            None => Ok(None),
        }
    }

    async fn devices(&self) -> Result<Vec<(OrgId, String)>, StoreError> {
        Ok(self
            .newest_times("", self.index_tenant())
            .await?
            .into_iter()
            .filter_map(|s| {
                let org = OrgId::new(s.labels.get(ORG_LABEL)?).ok()?;
                Some((org, s.labels.get(DEVICE_LABEL)?.clone()))
            })
            .collect())
    }

    async fn history(
        &self,
        org: &OrgId,
        query: &HistoryQuery,
    ) -> Result<Option<History>, StoreError> {
        Ok(self
            .histories(
                org,
                &query.device_id,
                std::slice::from_ref(&query.metric),
                query.from,
                query.to,
                query.max_points,
            )
            .await?
            .and_then(|mut h| h.pop()))
    }

    /// Reads the range once for every metric (and the whole buckets
    /// around it once, when a metric needs buckets).
    async fn histories(
        &self,
        org: &OrgId,
        device_id: &str,
        metrics: &[String],
        from: OffsetDateTime,
        to: OffsetDateTime,
        max_points: usize,
    ) -> Result<Option<Vec<History>>, StoreError> {
        if !self.knows(org, device_id).await? {
            return Ok(None);
        }
        let reports = if to < from {
            Vec::new()
        } else {
            self.reports_between(org, device_id, unix_millis(from), unix_millis(to))
                .await?
                .into_iter()
                .filter(|r| r.last_seen >= from && r.last_seen <= to)
                .collect()
        };
        let mut whole_buckets = None;
        let mut out = Vec::with_capacity(metrics.len());
        for metric in metrics {
            let query =
                HistoryQuery::new(device_id, metric.as_str(), from, to).with_max_points(max_points);
            out.push(
                self.history_from(org, &query, &reports, &mut whole_buckets)
                    .await?,
            );
        }
        Ok(Some(out))
    }

    async fn reports(
        &self,
        org: &OrgId,
        device_id: &str,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Option<ReportStream>, StoreError> {
        if !self.knows(org, device_id).await? {
            return Ok(None);
        }
        let windows = if to < from {
            Vec::new()
        } else {
            self.windows(org, device_id, unix_millis(from), unix_millis(to))
                .await?
        };
        // One window read at a time, as the stream is read.
        let connection = self.connection.clone();
        let timeout = self.timeout;
        let (org, device_id) = (org.clone(), device_id.to_owned());
        let stream =
            futures_util::stream::iter(windows)
                .then(move |(after, until)| {
                    let (connection, org, device_id) =
                        (connection.clone(), org.clone(), device_id.clone());
                    async move {
                        read_window(&connection, timeout, &org, &device_id, after, until).await
                    }
                })
                .flat_map(move |chunk| {
                    let items: Vec<Result<Report, StoreError>> = match chunk {
                        Ok(reports) => reports
                            .into_iter()
                            .filter(|r| r.last_seen >= from && r.last_seen <= to)
                            .map(Ok)
                            .collect(),
                        Err(e) => vec![Err(e)],
                    };
                    futures_util::stream::iter(items)
                });
        Ok(Some(Box::pin(stream)))
    }

    async fn delete_device(&self, org: &OrgId, device_id: &str) -> Result<bool, StoreError> {
        if !self.knows(org, device_id).await? {
            return Ok(false);
        }
        let url = format!(
            "{}/api/v1/admin/tsdb/delete_series",
            self.connection.query_url
        );
        let matcher = device_selector(org, device_id);
        // With a tenant header: from the organisation's tenant, then from
        // the index.
        let mut tenants = vec![self.tenant_of(org)];
        if self.connection.tenant.is_some() {
            tenants.push(self.index_tenant());
        }
        for tenant in tenants {
            let response = self
                .connection
                .request(reqwest::Method::POST, &url, tenant)
                .query(&[("match[]", matcher.as_str())])
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(format!("the engine did not answer: {e}")))?;
            let status = response.status();
            if status.is_success() {
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            let message = format!(
                "the engine refused to delete {device_id:?} ({status}): {}",
                super::prom_query::excerpt(&text)
            );
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                StoreError::Unavailable(message)
            } else {
                StoreError::Backend(message.into())
            });
        }
        Ok(true)
    }

    /// The engine's retention governs: nothing to do.
    async fn apply_retention(&self, _now: OffsetDateTime) -> Result<(), StoreError> {
        Ok(())
    }

    /// A cheap query (`vector(1)`) answered in time.
    async fn ready(&self) -> Result<(), StoreError> {
        self.connection
            .query("vector(1)", now_millis(), self.timeout, self.index_tenant())
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused_with_what_is_wrong() {
        let ok =
            || RemoteStoreBuilder::new("http://127.0.0.1:9/api/v1/write", "http://127.0.0.1:9");
        assert!(matches!(
            RemoteStoreBuilder::new("127.0.0.1:9/api/v1/write", "http://127.0.0.1:9").build(),
            Err(RemoteStoreError::BadUrl {
                what: "the remote-write URL",
                ..
            })
        ));
        assert!(matches!(
            RemoteStoreBuilder::new("http://127.0.0.1:9/api/v1/write", "ftp://x").build(),
            Err(RemoteStoreError::BadUrl {
                what: "the query URL",
                ..
            })
        ));
        assert!(matches!(
            ok().header("bad name", "v").build(),
            Err(RemoteStoreError::BadHeader(_))
        ));
        assert!(matches!(
            ok().queue(0).build(),
            Err(RemoteStoreError::Zero("the queue"))
        ));
        assert!(matches!(
            ok().read_concurrency(0).build(),
            Err(RemoteStoreError::Zero("the read concurrency"))
        ));
        assert!(matches!(
            ok().write_deadline(Duration::ZERO).build(),
            Err(RemoteStoreError::Zero("the write deadline"))
        ));
        // Good settings, but no runtime for the writer task.
        assert!(matches!(ok().build(), Err(RemoteStoreError::NoRuntime)));
    }

    #[tokio::test]
    async fn secrets_stay_out_of_debug_output() {
        let store =
            RemoteStoreBuilder::new("http://127.0.0.1:9/api/v1/write", "http://127.0.0.1:9")
                .basic_auth("tailmon", "s3cret-password")
                .header("X-Token", "s3cret-header")
                .build()
                .unwrap();
        let shown = format!("{store:?}");
        assert!(shown.contains("tailmon"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let builder = format!(
            "{:?}",
            RemoteStoreBuilder::new("http://a", "http://b").bearer_token("s3cret")
        );
        assert!(!builder.contains("s3cret"), "{builder}");
    }

    #[test]
    fn regex_literals_match_only_themselves() {
        assert_eq!(regex_literal("web-1"), "web-1");
        assert_eq!(regex_literal("a.b|c*"), "a\\.b\\|c\\*");
        assert_eq!(
            regex_literal("(x)[y]{z}^$\\"),
            "\\(x\\)\\[y\\]\\{z\\}\\^\\$\\\\"
        );
    }

    #[test]
    fn chunks_end_at_multiples_of_their_width() {
        assert_eq!(ceil_to(0, 10), 0);
        assert_eq!(ceil_to(1, 10), 10);
        assert_eq!(ceil_to(10, 10), 10);
        assert_eq!(ceil_to(-5, 10), 0);
        assert_eq!(ceil_to(-10, 10), -10);
    }
}
