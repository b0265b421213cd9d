use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tailmon_core::{BatchResult, MAX_BATCH_REPORTS, Report};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::batch_size::BatchSize;
use crate::delivery_queue::{DeliveryQueue, QueueError};
use crate::drops::{DropLog, Drops};
use crate::error::FailureCause;
use crate::log_throttle::LogThrottle;
use crate::{AgentStatus, Client, Error, full_jitter};

/// Largest batch body the agent builds: 4 MiB, the server's default limit.
/// A server configured lower answers 413, and the agent halves its batches.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How long the agent sends queued reports one by one once the server has
/// shown it has no batch endpoint (an older Tailmon): 1 h, since the server
/// may be upgraded meanwhile.
const SINGLES_FOR: Duration = Duration::from_secs(3600);
/// How often a line about dropped reports, or about failed attempts of one
/// kind, is written at most: 1 min.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// The longest wait a server's `Retry-After` gets: 5 min. A longer one (or
/// a date far ahead, from a skewed clock) is taken as 5 min.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A request under way; owns all it needs, so collection goes on meanwhile.
type Sending = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// How a request under way ended; hand it to [`Delivery::finish`].
pub(crate) enum Outcome {
    /// The report just collected, sent on its own to `POST /api/metrics`;
    /// handed back so it can be queued if it was not delivered.
    Fresh(Box<Report>, Result<(), Error>),
    /// The oldest queued report, sent on its own to `POST /api/metrics`.
    Queued(Result<(), Error>),
    /// This many of the oldest queued reports, sent to `POST /api/v1/reports`.
    Batch(usize, Result<BatchResult, Error>),
}

/// Where queued reports go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// In batches through `POST /api/v1/reports`.
    Batches,
    /// The batch endpoint answered 404 or 405, which a proxy answers too
    /// while the server is being deployed: the next queued report goes alone
    /// through `POST /api/metrics`, to see whether the server takes those.
    Probing,
    /// A single report was stored right after the batch endpoint answered
    /// 404 or 405: the server has no batch endpoint (an older Tailmon).
    /// Single reports until then.
    Singles { until: Instant },
}

/// An outage under way: since the first failed attempt after a success.
#[derive(Debug)]
struct Outage {
    since: Instant,
    failed_attempts: u64,
    /// Reports delivered since the outage began (all from the queue).
    sent: u64,
    /// Drops counted when it began.
    drops_before: u64,
}

/// The delivery side of the agent: one request at a time, the queue of what
/// could not be delivered, and the backoff clock.
///
/// While the queue is empty a fresh report goes straight to
/// `POST /api/metrics`, as it always has. One that is not delivered is
/// queued, unless the server refused that very report, and no request
/// starts before the backoff delay (full jitter, doubling per failure up to
/// the cap, and at least the server's `Retry-After`) has passed; collection
/// goes on meanwhile, queueing each report. Then the queue is sent oldest
/// first, in batches of up to [`MAX_BATCH_REPORTS`] through
/// `POST /api/v1/reports`, each as soon as the previous one is acknowledged,
/// until the queue is empty or a request fails.
///
/// A report is dropped only when the server refuses that report itself (see
/// [`Drops::refused`]), or when the queue is full (the oldest goes). Every
/// other failure keeps the reports: a batch the server refuses as a whole is
/// split, down to single reports through `POST /api/metrics`, and a server
/// is taken to lack the batch endpoint only once it stored a single report
/// right after a batch got 404 or 405.
pub(crate) struct Delivery {
    client: Client,
    queue: DeliveryQueue,
    sending: Option<Sending>,
    /// No request starts before this: the backoff clock.
    next_attempt: Instant,
    retry_base: Duration,
    max_backoff: Duration,
    batch_size: BatchSize,
    route: Route,
    /// Reports dropped but those of a full queue, which it counts itself.
    drops: Drops,
    /// The server's reason for the latest report it refused.
    last_refusal: Option<String>,
    drop_log: DropLog,
    /// One throttle per cause of failure: a repeated identical failure is
    /// logged at most once per [`LOG_EVERY`], a new one at once.
    failure_logs: HashMap<FailureCause, LogThrottle>,
    outage: Option<Outage>,
    /// The queue directory's write failures: one line per minute at most.
    disk_log: LogThrottle,
    status: watch::Sender<AgentStatus>,
}

impl Delivery {
    pub(crate) fn new(
        client: Client,
        queue: DeliveryQueue,
        retry_base: Duration,
        max_backoff: Duration,
        status: watch::Sender<AgentStatus>,
    ) -> Self {
        Self {
            client,
            queue,
            sending: None,
            next_attempt: Instant::now(),
            retry_base,
            max_backoff,
            batch_size: BatchSize::new(MAX_BATCH_REPORTS),
            route: Route::Batches,
            drops: Drops::default(),
            last_refusal: None,
            drop_log: DropLog::new(LOG_EVERY),
            failure_logs: HashMap::new(),
            outage: None,
            disk_log: LogThrottle::new(LOG_EVERY),
            status,
        }
    }

    /// When the next request may start.
    pub(crate) fn next_attempt(&self) -> Instant {
        self.next_attempt
    }

    /// Whether queued reports wait and no request is under way.
    pub(crate) fn has_queued_to_start(&self) -> bool {
        self.sending.is_none() && !self.queue.is_empty()
    }

    /// Completes when the request under way does; never if there is none.
    /// Cancel-safe: dropped early, the request stays under way.
    pub(crate) async fn sent(&mut self) -> Outcome {
        let Some(sending) = self.sending.as_mut() else {
            return std::future::pending().await;
        };
        let outcome = sending.await;
        self.sending = None;
        outcome
    }

    /// Takes a report just collected: sends it at once when nothing else
    /// waits and no backoff runs, and queues it otherwise. Called at every
    /// collection, it also writes the drops line once its period is over.
    pub(crate) fn offer(&mut self, report: Report, now: Instant) {
        if self.sending.is_none() && self.queue.is_empty() && now >= self.next_attempt {
            match serde_json::to_vec(&report) {
                Ok(body) => {
                    let client = self.client.clone();
                    self.sending = Some(Box::pin(async move {
                        let result = client.send_json(body).await;
                        Outcome::Fresh(Box::new(report), result)
                    }));
                }
                Err(error) => self.unencodable(&error),
            }
        } else if let Err(error) = self.queue.push_back(report) {
            self.not_queued(&error);
        }
        self.update(|_| {});
        self.tell_drops(now);
    }

    /// Starts sending the oldest queued reports: a batch, or a single
    /// report when one waits, when batches are down to one report, or when
    /// the batch endpoint is being probed or known missing.
    pub(crate) fn start_queued(&mut self, now: Instant) {
        if let Route::Singles { until } = self.route
            && now >= until
        {
            self.route = Route::Batches;
        }
        let size = self.batch_size.get(now);
        let client = self.client.clone();
        if self.route == Route::Batches && size > 1 && self.queue.len() > 1 {
            if let Some(batch) = self.queue.claim_batch(size, MAX_BATCH_BYTES) {
                self.sending = Some(Box::pin(async move {
                    Outcome::Batch(batch.len, client.send_json_batch(batch.body).await)
                }));
            }
        } else if let Some(body) = self.queue.claim_one() {
            self.sending = Some(Box::pin(async move {
                Outcome::Queued(client.send_json(body).await)
            }));
        }
    }

    /// Acts on how a request ended.
    pub(crate) fn finish(&mut self, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Fresh(_, Ok(())) => self.delivered(1, now),
            Outcome::Fresh(_, Err(error)) if refuses_the_report(&error) => {
                self.refused(1, error.to_string(), now);
            }
            Outcome::Fresh(report, Err(error)) => {
                if let Err(error) = self.queue.push_front(*report) {
                    self.not_queued(&error);
                }
                self.failed(&error, now);
                // A full queue drops the report put back first.
                self.tell_drops(now);
            }
            Outcome::Queued(Ok(())) => {
                self.queue.ack();
                if self.route == Route::Probing {
                    self.route = Route::Singles {
                        until: now + SINGLES_FOR,
                    };
                    tracing::info!(
                        for_s = SINGLES_FOR.as_secs(),
                        "server has no batch endpoint (an older Tailmon: POST /api/v1/reports answers 404 or 405, POST /api/metrics stores); sending queued reports one by one"
                    );
                }
                self.batch_size.accepted();
                self.delivered(1, now);
            }
            Outcome::Queued(Err(error)) if refuses_the_report(&error) => {
                self.queue.ack();
                // Batches refused as a whole may have been refused for it.
                self.batch_size.forget_refusals();
                self.refused(1, error.to_string(), now);
            }
            Outcome::Queued(Err(error)) => {
                self.queue.release();
                if self.route == Route::Probing {
                    // No evidence the server lacks batches: try them again.
                    self.route = Route::Batches;
                }
                self.failed(&error, now);
            }
            Outcome::Batch(len, Ok(result)) => match check_batch_answer(len, &result) {
                Ok(()) => {
                    self.queue.ack();
                    self.batch_size.accepted();
                    if let Some(first) = result.rejected.first() {
                        let reason = match &first.field {
                            Some(field) => format!("{} (field {field})", first.error),
                            None => first.error.clone(),
                        };
                        self.refused(result.rejected.len() as u64, reason, now);
                    }
                    self.delivered(result.accepted as u64, now);
                }
                Err(error) => {
                    self.queue.release();
                    self.failed(&error, now);
                }
            },
            Outcome::Batch(_, Err(error)) if error.is_not_found_or_unsupported() => {
                self.queue.release();
                self.route = Route::Probing;
                tracing::info!(
                    %error,
                    "the batch endpoint is missing; sending one queued report through POST /api/metrics to tell an older server from a proxy's passing error"
                );
            }
            Outcome::Batch(len, Err(error)) if keeps_reports(&error) || error.is_decode() => {
                self.queue.release();
                if error.is_timeout() {
                    // Perhaps too much for the link within the timeout:
                    // smaller batches, lest the same one time out forever.
                    self.batch_size.timed_out(len);
                }
                self.failed(&error, now);
            }
            Outcome::Batch(len, Err(error)) => {
                // The batch as a whole is refused (400, 413, 422…): send
                // smaller ones, down to single reports, whose own answers
                // tell which report, if any, the server refuses.
                self.queue.release();
                self.batch_size.refused(len, now);
                tracing::warn!(
                    %error,
                    reports = len,
                    next_batch = self.batch_size.get(now),
                    "server refused the batch as a whole; sending smaller ones, and single reports at 1"
                );
            }
        }
    }

    /// Ends delivery: what is still queued is lost if the queue lives in
    /// memory, kept for the next start in a queue directory. Says what was
    /// dropped and not told yet.
    pub(crate) fn stop(mut self) {
        let drops = self.drops();
        self.drop_log
            .flush(drops, self.last_refusal.as_deref(), Instant::now());
        let status = *self.status.borrow();
        let lost = self.queue.len();
        if let Some(dir) = self.queue.dir() {
            tracing::info!(
                queued = lost,
                dir = %dir.display(),
                sent = status.sent,
                dropped = drops.total(),
                "agent stopped; undelivered reports stay in the queue directory and go at the next start"
            );
        } else if lost > 0 {
            tracing::warn!(
                lost,
                sent = status.sent,
                dropped = drops.total(),
                "agent stopped; undelivered reports are lost (the queue is kept in memory only)"
            );
        } else {
            tracing::info!(sent = status.sent, dropped = drops.total(), "agent stopped");
        }
    }

    /// The server acknowledged `count` reports: back to the normal cadence,
    /// and on with whatever is still queued. Once the queue is empty after
    /// an outage, says so.
    fn delivered(&mut self, count: u64, now: Instant) {
        self.next_attempt = now;
        self.update(|s| {
            s.sent += count;
            s.consecutive_failures = 0;
        });
        if let Some(outage) = self.outage.as_mut() {
            outage.sent += count;
        }
        if self.queue.is_empty()
            && let Some(outage) = self.outage.take()
        {
            let down_for_s = now.saturating_duration_since(outage.since).as_secs();
            tracing::info!(
                down_for_s,
                failed_attempts = outage.failed_attempts,
                sent_from_queue = outage.sent,
                dropped_meanwhile = self.drops().total().saturating_sub(outage.drops_before),
                "delivery recovered after {down_for_s} s: {} queued report{} sent; the server takes reports again and the queue is empty",
                outage.sent,
                if outage.sent == 1 { "" } else { "s" }
            );
        }
    }

    /// A request failed and its reports are kept: back off, for at least
    /// what the server asked with `Retry-After`.
    fn failed(&mut self, error: &Error, now: Instant) {
        let mut attempt = 0;
        self.update(|s| {
            s.failed += 1;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            attempt = s.consecutive_failures;
        });
        let backoff = full_jitter(attempt, self.retry_base, self.max_backoff, fastrand::f64());
        let delay = retry_delay(backoff, error.retry_after());
        self.next_attempt = now + delay;
        let drops_before = self.drops().total();
        self.outage
            .get_or_insert(Outage {
                since: now,
                failed_attempts: 0,
                sent: 0,
                drops_before,
            })
            .failed_attempts += 1;
        self.log_failure(error, attempt, delay, now);
    }

    /// Says why reports are kept and retried, each cause in its own words,
    /// and a repeated cause at most once per [`LOG_EVERY`].
    fn log_failure(&mut self, error: &Error, attempt: u32, delay: Duration, now: Instant) {
        let cause = error.failure_cause();
        let Some(not_logged) = self
            .failure_logs
            .entry(cause)
            .or_insert_with(|| LogThrottle::new(LOG_EVERY))
            .allow(now)
        else {
            return;
        };
        let (queued, retry_in_ms) = (self.queue.len(), delay.as_millis() as u64);
        let url = self.client.metrics_url();
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        let problem = match cause {
            FailureCause::Transient => {
                tracing::warn!(
                    %error,
                    attempt,
                    queued,
                    retry_in_ms,
                    failed_attempts_not_logged = not_logged,
                    "report not delivered; retrying"
                );
                return;
            }
            FailureCause::ConnectionRefused => {
                tracing::warn!(
                    %error,
                    attempt,
                    queued,
                    retry_in_ms,
                    failed_attempts_not_logged = not_logged,
                    "connection refused by {host}:{port}: is tailmon-server running and listening there? (check TAILMON_SERVER_URL); reports are kept and retried"
                );
                return;
            }
            FailureCause::Timeout => {
                tracing::warn!(
                    %error,
                    attempt,
                    queued,
                    retry_in_ms,
                    failed_attempts_not_logged = not_logged,
                    "the server at {host}:{port} did not answer within {} s (overloaded, or a firewall dropping packets?); reports are kept and retried",
                    self.client.timeout().as_secs_f64()
                );
                return;
            }
            FailureCause::UnknownHost => format!(
                "unknown host: the server's name {host:?} does not resolve (DNS); check TAILMON_SERVER_URL"
            ),
            FailureCause::NotTls => "TLS mismatch: TAILMON_SERVER_URL starts with https:// but the server speaks plain HTTP; use http://, or serve TLS on the server".to_owned(),
            FailureCause::Certificate => format!(
                "TLS mismatch: the server's certificate is not trusted or not valid ({}); give the CA that signed it with TAILMON_CA_CERT, or fix the certificate (its host names must include {host:?})",
                error.tls_problem().unwrap_or_default()
            ),
            FailureCause::ServerWantsTls => "TLS mismatch: TAILMON_SERVER_URL starts with http:// but the server does not answer plain HTTP (it speaks TLS?); use https://".to_owned(),
            FailureCause::OtherTls => "TLS handshake with the server failed".to_owned(),
            FailureCause::NotFound => format!(
                "the server has no ingest endpoint at this URL ({url}); check TAILMON_SERVER_URL, e.g. http://host:3000/api/metrics"
            ),
            FailureCause::Credentials if self.client.has_token() => {
                "server refused the agent's token".to_owned()
            }
            FailureCause::Credentials => "server wants a token and the agent has none".to_owned(),
            FailureCause::Forbidden if self.client.has_token() => {
                "server refused the agent's token for this device, or the agent's address (403: the server's message says which)".to_owned()
            }
            FailureCause::Forbidden => {
                "server refused the agent's address (403: the server's message says why)".to_owned()
            }
            FailureCause::Unexpected => {
                "the ingest endpoint answered an error that does not blame the reports (a proxy's page? a deploy under way?)".to_owned()
            }
        };
        tracing::error!(
            %error,
            attempt,
            queued,
            retry_in_ms,
            failed_attempts_not_logged = not_logged,
            "{problem}; reports are kept and retried"
        );
    }

    /// The server refused `count` reports by name: they are dropped.
    fn refused(&mut self, count: u64, reason: String, now: Instant) {
        self.drops.refused += count;
        self.last_refusal = Some(reason);
        self.update(|s| s.failed += count);
        self.tell_drops(now);
    }

    fn unencodable(&mut self, error: &serde_json::Error) {
        tracing::error!(%error, "could not encode the report; dropped");
        self.drops.unencodable += 1;
    }

    /// A report could not be queued: dropped, and counted (the queue counts
    /// what its directory could not write).
    fn not_queued(&mut self, error: &QueueError) {
        match error {
            QueueError::Encode(error) => self.unencodable(error),
            QueueError::Disk { .. } => {
                if let Some(not_logged) = self.disk_log.allow(Instant::now()) {
                    tracing::error!(
                        %error,
                        failures_not_logged = not_logged,
                        "report dropped (counted as unwritable)"
                    );
                }
            }
        }
    }

    /// Every drop so far, by reason.
    fn drops(&self) -> Drops {
        Drops {
            queue_full: self.queue.dropped(),
            unwritable: self.queue.lost(),
            ..self.drops
        }
    }

    /// Writes the drops line if there is news and its period allows.
    fn tell_drops(&mut self, now: Instant) {
        let drops = self.drops();
        self.drop_log.tell(drops, self.last_refusal.as_deref(), now);
    }

    /// Applies `change` to the status, with the queue's figures and the drops.
    fn update(&self, change: impl FnOnce(&mut AgentStatus)) {
        let (queued, drops) = (self.queue.len(), self.drops());
        self.status.send_if_modified(|s| {
            let before = *s;
            change(s);
            s.queued = queued;
            s.drops = drops;
            s.dropped = drops.total();
            *s != before
        });
    }
}

/// Whether a report that failed with `error` is kept for a later attempt
/// as such: when the failure may pass (see [`Error::is_retryable`]), and
/// when the server refused the agent's credentials, which is no fault of
/// the reports and is mended on the server or in the agent's settings.
fn keeps_reports(error: &Error) -> bool {
    error.is_retryable() || error.is_unauthorized()
}

/// Whether `POST /api/metrics` refused the report itself, for good: 422
/// (the report breaks a rule), or 400 or 413 with a Tailmon error body (a
/// report that does not decode, or is larger than the server takes). Any
/// other failure (a 404 from a proxy, say) keeps the report.
fn refuses_the_report(error: &Error) -> bool {
    match error.status() {
        Some(422) => true,
        Some(400 | 413) => error.server_message().is_some(),
        _ => false,
    }
}

/// `Ok` if `result` can be the answer to a batch of `len` reports: each is
/// either accepted or refused, once. Anything else (a captive portal's JSON,
/// a different server) proves nothing was stored.
fn check_batch_answer(len: usize, result: &BatchResult) -> Result<(), Error> {
    let mut seen = vec![false; len];
    for rejected in &result.rejected {
        match seen.get_mut(rejected.index) {
            Some(seen) if !*seen => *seen = true,
            _ => {
                return Err(Error::unreadable_answer(format!(
                    "the batch answer refuses report {} of {len}, or twice",
                    rejected.index
                )));
            }
        }
    }
    if result.accepted + result.rejected.len() != len {
        return Err(Error::unreadable_answer(format!(
            "the batch answer counts {} accepted and {} refused of {len}",
            result.accepted,
            result.rejected.len()
        )));
    }
    Ok(())
}

/// The wait before the next attempt: the backoff drawn, or what the server
/// asked for (at most [`MAX_RETRY_AFTER`]) if longer.
fn retry_delay(backoff: Duration, retry_after: Option<Duration>) -> Duration {
    retry_after.map_or(backoff, |asked| asked.min(MAX_RETRY_AFTER).max(backoff))
}

#[cfg(test)]
impl Delivery {
    /// The drops the log lines have told so far.
    fn drop_log_told(&self) -> Drops {
        self.drop_log.told()
    }
}

#[cfg(test)]
mod tests;
