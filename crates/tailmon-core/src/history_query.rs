use time::OffsetDateTime;

/// Points a history answer has at most unless the query says otherwise: 1,000.
pub const DEFAULT_HISTORY_POINTS: usize = 1_000;
/// Most points a history query may ask for: 10,000.
pub const MAX_HISTORY_POINTS: usize = 10_000;

/// A history query: one metric of one device over a time range, in at most
/// `max_points` points. The server hands it to its store; the typed client
/// sends it as `GET /api/v1/devices/{id}/history?metric=&from=&to=&points=`.
///
/// ```
/// use tailmon_core::{HistoryQuery, OffsetDateTime};
///
/// let to = OffsetDateTime::now_utc();
/// let query = HistoryQuery::new("web-1", "cpu_usage", to - time::Duration::HOUR, to)
///     .with_max_points(60);
/// assert_eq!(query.max_points, 60);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistoryQuery {
    /// The device.
    pub device_id: String,
    /// The metric, by name (see [`crate::metric`]).
    pub metric: String,
    /// Start of the range, inclusive.
    pub from: OffsetDateTime,
    /// End of the range, inclusive.
    pub to: OffsetDateTime,
    /// Most points wanted: the store answers from the finest tier that gives
    /// no more than this. Defaults to [`DEFAULT_HISTORY_POINTS`].
    pub max_points: usize,
}

impl HistoryQuery {
    /// `metric` of `device_id` over `from..=to`, in at most
    /// [`DEFAULT_HISTORY_POINTS`] points.
    pub fn new(
        device_id: impl Into<String>,
        metric: impl Into<String>,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Self {
        Self {
            device_id: device_id.into(),
            metric: metric.into(),
            from,
            to,
            max_points: DEFAULT_HISTORY_POINTS,
        }
    }

    /// The same query with at most `max_points` points.
    #[must_use]
    pub fn with_max_points(mut self, max_points: usize) -> Self {
        self.max_points = max_points;
        self
    }
}
