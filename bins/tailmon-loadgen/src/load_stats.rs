//! What a load run measured: reports delivered, request latencies and
//! errors by kind, and the one-line summaries printed from them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// No connection: refused, reset, unknown host, TLS handshake.
    Connect,
    /// No answer within the request timeout.
    Timeout,
    /// The server answered with this status (4xx or 5xx).
    Status(u16),
    /// Anything else: a broken connection mid-answer, an unreadable answer.
    Other,
}

impl ErrorKind {
    /// The kind of a client error.
    pub fn of(error: &tailmon_client::Error) -> Self {
        if let Some(status) = error.status() {
            Self::Status(status)
        } else if error.is_timeout() {
            Self::Timeout
        } else if error.is_connect() || error.is_tls() {
            Self::Connect
        } else {
            Self::Other
        }
    }
}

/// `connect`, `timeout`, `4xx_403`, `5xx_503`, `other`: one word each, as
/// the summary line lists them.
impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Timeout => f.write_str("timeout"),
            Self::Status(status) => write!(f, "{}xx_{status}", status / 100),
            Self::Other => f.write_str("other"),
        }
    }
}

/// Counts and latencies over some span of a run.
#[derive(Debug, Clone)]
pub struct LoadStats {
    requests: u64,
    reports: u64,
    rejected: u64,
    errors: BTreeMap<ErrorKind, u64>,
    /// Request latencies in microseconds, 1 µs to 1 h, 3 significant digits.
    latency_us: Histogram<u64>,
}

impl Default for LoadStats {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadStats {
    /// Nothing measured yet.
    pub fn new() -> Self {
        Self {
            requests: 0,
            reports: 0,
            rejected: 0,
            errors: BTreeMap::new(),
            // 1 µs .. 1 h with 3 significant digits: always valid bounds.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .unwrap_or_else(|_| unreachable!("fixed valid bounds")),
        }
    }

    /// A request that delivered `reports` reports and took `latency`.
    pub fn record_success(&mut self, reports: u64, latency: Duration) {
        self.requests += 1;
        self.reports += reports;
        self.record_latency(latency);
    }

    /// Reports a batch answer refused one by one (invalid: the request
    /// itself succeeded).
    pub fn record_rejected(&mut self, reports: u64) {
        self.rejected += reports;
    }

    /// A request that failed with `kind` after `latency`.
    pub fn record_error(&mut self, kind: ErrorKind, latency: Duration) {
        self.requests += 1;
        *self.errors.entry(kind).or_default() += 1;
        self.record_latency(latency);
    }

    fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us.max(1));
    }

    /// Adds what `other` measured.
    pub fn merge(&mut self, other: &Self) {
        self.requests += other.requests;
        self.reports += other.reports;
        self.rejected += other.rejected;
        for (kind, count) in &other.errors {
            *self.errors.entry(*kind).or_default() += count;
        }
        // Same bounds on both sides: adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
    }

    /// Requests sent (answered or failed).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Reports the server took.
    pub fn reports(&self) -> u64 {
        self.reports
    }

    /// Reports refused one by one in batch answers.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Failed requests.
    pub fn errors(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Failed requests by kind.
    pub fn errors_by_kind(&self) -> &BTreeMap<ErrorKind, u64> {
        &self.errors
    }

    /// The share of requests that failed, 0 to 1 (0 with no requests).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors() as f64 / self.requests as f64
        }
    }

    /// The latency below which `quantile` (0 to 1) of the requests took.
    pub fn latency_at(&self, quantile: f64) -> Duration {
        Duration::from_micros(self.latency_us.value_at_quantile(quantile))
    }

    /// The slowest request.
    pub fn latency_max(&self) -> Duration {
        Duration::from_micros(self.latency_us.max())
    }

    /// One line: `reports=… reports_per_s=… requests=… p50_ms=… p99_ms=…
    /// max_ms=… errors=… error_rate=…`, `rejected=…` when a batch answer
    /// refused reports, and one `error_KIND=N` per kind,
    /// over `elapsed`.
    pub fn line(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let per_s = if secs > 0.0 {
            self.reports as f64 / secs
        } else {
            0.0
        };
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut line = format!(
            "elapsed_s={secs:.1} reports={} reports_per_s={per_s:.1} requests={} \
             p50_ms={:.2} p99_ms={:.2} max_ms={:.2} errors={} error_rate={:.4}",
            self.reports,
            self.requests,
            ms(self.latency_at(0.5)),
            ms(self.latency_at(0.99)),
            ms(self.latency_max()),
            self.errors(),
            self.error_rate(),
        );
        if self.rejected > 0 {
            line.push_str(&format!(" rejected={}", self.rejected));
        }
        for (kind, count) in &self.errors {
            line.push_str(&format!(" error_{kind}={count}"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_counts_and_rates() {
        let mut stats = LoadStats::new();
        for i in 1..=100 {
            stats.record_success(2, ms(i));
        }
        stats.record_error(ErrorKind::Status(503), ms(1_000));
        stats.record_error(ErrorKind::Status(403), ms(1));
        stats.record_error(ErrorKind::Connect, ms(1));
        stats.record_error(ErrorKind::Status(503), ms(1));

        assert_eq!(stats.requests(), 104);
        assert_eq!(stats.reports(), 200);
        assert_eq!(stats.errors(), 4);
        assert!((stats.error_rate() - 4.0 / 104.0).abs() < 1e-9);
        // 3 significant digits: within 0.1 %.
        let p50 = stats.latency_at(0.5).as_secs_f64() * 1000.0;
        assert!((48.0..=52.0).contains(&p50), "p50 {p50} ms");
        let p99 = stats.latency_at(0.99).as_secs_f64() * 1000.0;
        assert!((99.0..=101.0).contains(&p99), "p99 {p99} ms");
        let max = stats.latency_max().as_secs_f64() * 1000.0;
        assert!((999.0..=1001.0).contains(&max), "max {max} ms");

        let line = stats.line(Duration::from_secs(4));
        assert!(
            line.contains(" reports=200 reports_per_s=50.0 requests=104 "),
            "{line}"
        );
        assert!(line.contains(" errors=4 error_rate=0.0385"), "{line}");
        assert!(
            line.ends_with(" error_connect=1 error_4xx_403=1 error_5xx_503=2"),
            "{line}"
        );
    }

    #[test]
    fn merged_stats_add_up() {
        let mut a = LoadStats::new();
        a.record_success(1, ms(10));
        a.record_error(ErrorKind::Timeout, ms(10_000));
        let mut b = LoadStats::new();
        b.record_success(1000, ms(20));
        b.record_error(ErrorKind::Timeout, ms(10_000));
        a.merge(&b);
        assert_eq!(a.requests(), 4);
        assert_eq!(a.reports(), 1001);
        assert_eq!(a.errors_by_kind().get(&ErrorKind::Timeout), Some(&2));
        assert!(a.latency_max() >= ms(9_990));
    }

    #[test]
    fn nothing_measured_reads_as_zero() {
        let stats = LoadStats::new();
        assert_eq!(stats.error_rate(), 0.0);
        assert_eq!(stats.latency_max(), Duration::ZERO);
        let line = stats.line(Duration::ZERO);
        assert!(line.contains("reports=0 reports_per_s=0.0"), "{line}");
    }
}
