//! The server's counters and timings, and the refused reports' log lines:
//! at most one a minute per source address and reason, with the count since
//! the last.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tailmon_core::OffsetDateTime;
use tailmon_core::exposition::{Family, Kind, write_header, write_sample_u64};

use crate::clock::Clock;
use crate::telemetry::histogram::Histogram;
use crate::telemetry::refusal_reason::RefusalReason;

/// How often a refusal is logged at most per source address and reason:
/// once a minute.
pub(crate) const REFUSED_REPORT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Sources remembered for the refusals' throttle before the oldest are
/// forgotten: 10,000.
const MAX_THROTTLED_SOURCES: usize = 10_000;

/// Where a refused report came from: a client address, or the server's own
/// process (an in-process agent, or a host application without addresses).
pub(crate) type Source = Option<IpAddr>;

/// Per source and reason: when a line was last written, refusals since.
type Lines = HashMap<(Source, RefusalReason), (Option<OffsetDateTime>, u64)>;

/// The server's own counters. One per server, shared by ingest, the guard
/// and the API.
pub(crate) struct ServerMetrics {
    clock: Arc<dyn Clock>,
    received: AtomicU64,
    refused: [AtomicU64; RefusalReason::ALL.len()],
    /// Time to take one report or batch, validation to stored.
    pub(crate) ingest: Histogram,
    /// Time the store took to write one report or batch.
    pub(crate) store_write: Histogram,
    /// Fleet refreshes that read the store, and those that failed.
    fleet_refreshes: AtomicU64,
    fleet_refresh_failures: AtomicU64,
    /// Reports fleet refreshes took from the store (others' reports).
    fleet_refresh_reports: AtomicU64,
    /// Devices fleet refreshes forgot (deleted through other servers).
    fleet_refresh_removed: AtomicU64,
    /// Time one fleet refresh took.
    pub(crate) fleet_refresh: Histogram,
    lines: Mutex<Lines>,
}

impl std::fmt::Debug for ServerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerMetrics")
            .field("received", &self.received)
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

impl ServerMetrics {
    /// Counters at zero; refusals' log lines throttled by `clock`.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            received: AtomicU64::new(0),
            refused: Default::default(),
            ingest: Histogram::default(),
            store_write: Histogram::default(),
            fleet_refreshes: AtomicU64::new(0),
            fleet_refresh_failures: AtomicU64::new(0),
            fleet_refresh_reports: AtomicU64::new(0),
            fleet_refresh_removed: AtomicU64::new(0),
            fleet_refresh: Histogram::default(),
            lines: Mutex::new(HashMap::new()),
        }
    }

    /// Counts `n` reports stored.
    pub(crate) fn received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }

    /// Reports stored so far.
    pub(crate) fn received_total(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Counts one fleet refresh that took `took`: `Some((reports taken,
    /// devices forgotten))`, or `None` when it failed.
    pub(crate) fn fleet_refreshed(&self, outcome: Option<(usize, usize)>, took: Duration) {
        match outcome {
            Some((reports, removed)) => {
                self.fleet_refreshes.fetch_add(1, Ordering::Relaxed);
                self.fleet_refresh_reports
                    .fetch_add(reports as u64, Ordering::Relaxed);
                self.fleet_refresh_removed
                    .fetch_add(removed as u64, Ordering::Relaxed);
                self.fleet_refresh.observe(took);
            }
            None => {
                self.fleet_refresh_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Reports refused for `reason` so far.
    pub(crate) fn refused_total(&self, reason: RefusalReason) -> u64 {
        self.refused[reason.index()].load(Ordering::Relaxed)
    }

    /// Counts `reports` refused reports and writes a WARN line unless one
    /// for the same source and reason was written less than
    /// [`REFUSED_REPORT_LOG_EVERY`] ago; the line carries the refusals since
    /// the last one. The server's own failures (the store unavailable, an
    /// internal error) are the server's, not the sources': one line a
    /// minute for all sources together, at ERROR.
    pub(crate) fn refused(
        &self,
        reason: RefusalReason,
        source: Source,
        reports: u64,
        message: &str,
    ) {
        self.refused[reason.index()].fetch_add(reports, Ordering::Relaxed);
        let servers_own = matches!(
            reason,
            RefusalReason::StoreUnavailable | RefusalReason::Internal
        );
        let key = if servers_own { None } else { source };
        let Some(count) = self.line_due(reason, key, reports, self.clock.now()) else {
            return;
        };
        if servers_own {
            tracing::error!(
                reason = reason.label(),
                refused_since_last_line = count,
                "reports refused: {message}"
            );
        } else {
            let source = source.map_or_else(|| "in-process".to_owned(), |ip| ip.to_string());
            tracing::warn!(
                reason = reason.label(),
                %source,
                refused_since_last_line = count,
                "report refused: {message}"
            );
        }
    }

    /// `Some(n)` when a line is due at `now`: `n` refusals since the last.
    fn line_due(
        &self,
        reason: RefusalReason,
        source: Source,
        reports: u64,
        now: OffsetDateTime,
    ) -> Option<u64> {
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() >= MAX_THROTTLED_SOURCES && !lines.contains_key(&(source, reason)) {
            let every = REFUSED_REPORT_LOG_EVERY;
            lines.retain(|_, (at, _)| at.is_some_and(|at| now - at < every));
        }
        let (at, count) = lines.entry((source, reason)).or_insert((None, 0));
        *count += reports;
        if at.is_some_and(|at| now - at < REFUSED_REPORT_LOG_EVERY) {
            return None;
        }
        *at = Some(now);
        Some(std::mem::take(count))
    }

    /// Writes the report counters and the latency histograms.
    pub(crate) fn write(&self, out: &mut String) {
        let family = |name, kind, help| Family { name, kind, help };
        write_header(
            out,
            &family(
                "tailmon_reports_received_total",
                Kind::Counter,
                "Reports stored since the server started.",
            ),
        );
        write_sample_u64(
            out,
            "tailmon_reports_received_total",
            &[],
            self.received_total(),
        );
        write_header(
            out,
            &family(
                "tailmon_reports_refused_total",
                Kind::Counter,
                "Reports refused since the server started, by reason (unauthenticated, forbidden, invalid, clock_skew, too_large, rate_limited, device_limit, store_unavailable, internal).",
            ),
        );
        for reason in RefusalReason::ALL {
            write_sample_u64(
                out,
                "tailmon_reports_refused_total",
                &[("reason", reason.label())],
                self.refused_total(reason),
            );
        }
        write_header(
            out,
            &family(
                "tailmon_ingest_duration_seconds",
                Kind::Histogram,
                "Time to take one report or batch, from validation to stored.",
            ),
        );
        self.ingest.write(out, "tailmon_ingest_duration_seconds");
        write_header(
            out,
            &family(
                "tailmon_store_write_duration_seconds",
                Kind::Histogram,
                "Time the store took to write one report or batch.",
            ),
        );
        self.store_write
            .write(out, "tailmon_store_write_duration_seconds");
        self.write_fleet_refresh(out);
    }

    /// The fleet refresh's counters (replicas sharing one store; zero when
    /// it is off).
    fn write_fleet_refresh(&self, out: &mut String) {
        let family = |name, kind, help| Family { name, kind, help };
        write_header(
            out,
            &family(
                "tailmon_fleet_refreshes_total",
                Kind::Counter,
                "Reads of the fleet from the store (fleet refresh), by result (ok, failed).",
            ),
        );
        for (result, counter) in [
            ("ok", &self.fleet_refreshes),
            ("failed", &self.fleet_refresh_failures),
        ] {
            write_sample_u64(
                out,
                "tailmon_fleet_refreshes_total",
                &[("result", result)],
                counter.load(Ordering::Relaxed),
            );
        }
        for (name, help, counter) in [
            (
                "tailmon_fleet_refresh_reports_total",
                "Reports fleet refreshes took from the store: received by other servers sharing it.",
                &self.fleet_refresh_reports,
            ),
            (
                "tailmon_fleet_refresh_removed_total",
                "Devices fleet refreshes forgot: the store no longer has them (deleted through another server).",
                &self.fleet_refresh_removed,
            ),
        ] {
            write_header(out, &family(name, Kind::Counter, help));
            write_sample_u64(out, name, &[], counter.load(Ordering::Relaxed));
        }
        write_header(
            out,
            &family(
                "tailmon_fleet_refresh_duration_seconds",
                Kind::Histogram,
                "Time one fleet refresh took, reading the store included.",
            ),
        );
        self.fleet_refresh
            .write(out, "tailmon_fleet_refresh_duration_seconds");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn one_line_a_minute_per_source_and_reason() {
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let metrics = ServerMetrics::new(clock.clone());
        let a: Source = Some("192.0.2.1".parse().unwrap());
        let b: Source = Some("192.0.2.2".parse().unwrap());
        let due = |source, reason| metrics.line_due(reason, source, 1, clock.now());
        assert_eq!(due(a, RefusalReason::Unauthenticated), Some(1));
        assert_eq!(due(a, RefusalReason::Unauthenticated), None);
        assert_eq!(due(a, RefusalReason::Invalid), Some(1), "another reason");
        assert_eq!(
            due(b, RefusalReason::Unauthenticated),
            Some(1),
            "another source"
        );
        clock.advance(Duration::from_secs(59));
        assert_eq!(due(a, RefusalReason::Unauthenticated), None);
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            due(a, RefusalReason::Unauthenticated),
            Some(3),
            "the count since the last line"
        );
    }

    /// The lines `write` produces, as the log shows them.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_says_what_to_do_once_a_minute_with_the_count() {
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let metrics = ServerMetrics::new(clock.clone());
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let source: Source = Some("192.0.2.9".parse().unwrap());
        let message = crate::auth::require_layer::NO_TOKEN_TO_REPORT;
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..3 {
                metrics.refused(RefusalReason::Unauthenticated, source, 1, message);
            }
            clock.advance(Duration::from_secs(60));
            metrics.refused(RefusalReason::Unauthenticated, source, 1, message);
            for _ in 0..5 {
                metrics.refused(
                    RefusalReason::StoreUnavailable,
                    source,
                    2,
                    "the disk is full",
                );
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].contains("WARN") && lines[0].contains("source=192.0.2.9"),
            "{text}"
        );
        assert!(
            lines[0].contains("tailmon-server token create") && lines[0].contains("--auth none")
        );
        assert!(lines[0].contains("refused_since_last_line=1"), "{text}");
        assert!(
            lines[1].contains("refused_since_last_line=3"),
            "two more, then this one: {text}"
        );
        assert!(
            lines[2].contains("ERROR") && lines[2].contains("refused_since_last_line=2"),
            "{text}"
        );
        assert_eq!(metrics.refused_total(RefusalReason::Unauthenticated), 4);
        assert_eq!(metrics.refused_total(RefusalReason::StoreUnavailable), 10);
    }
}
