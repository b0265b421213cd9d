use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tailmon_core::{BatchResult, MAX_BATCH_REPORTS, RejectedReport, Report};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::delivery_queue::DeliveryQueue;
use crate::log_throttle::LogThrottle;
use crate::{AgentStatus, Client, Error, full_jitter};

/// Largest batch body the agent builds: 4 MiB, the server's default limit.
/// A server configured lower answers 413, and the agent halves its batches.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How long the agent takes the server to have no batch endpoint (an older
/// Tailmon) before it tries the endpoint again: 1 h, since the server may be
/// upgraded meanwhile.
const BATCH_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How often refusals of queued reports are logged at most: 1 min.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(60);
/// How often a refused token is logged at most: 1 min.
const UNAUTHORIZED_LOG_EVERY: Duration = Duration::from_secs(60);

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

/// The delivery side of the agent: one request at a time, the queue of what
/// could not be delivered, and the backoff clock.
///
/// While the queue is empty a fresh report goes straight to
/// `POST /api/metrics`, as it always has. One that fails for a reason that
/// may pass is queued, and no request starts before the backoff delay (full
/// jitter, doubling per failure up to the cap) has passed; collection goes
/// on meanwhile, queueing each report. Then the queue is sent oldest first,
/// in batches of up to [`MAX_BATCH_REPORTS`] through `POST /api/v1/reports`
/// (one by one through `POST /api/metrics` if the server has no batch
/// endpoint), each batch as soon as the previous one is acknowledged, until
/// the queue is empty or a request fails.
pub(crate) struct Delivery {
    client: Client,
    queue: DeliveryQueue,
    sending: Option<Sending>,
    /// No request starts before this: the backoff clock.
    next_attempt: Instant,
    retry_base: Duration,
    max_backoff: Duration,
    /// Most reports the next batch carries; halved when the server refuses
    /// a batch as a whole, doubled back after each accepted one.
    batch_limit: usize,
    /// Until when the server is taken to have no batch endpoint.
    no_batch_until: Option<Instant>,
    refused_log: LogThrottle,
    unauthorized_log: LogThrottle,
    status: watch::Sender<AgentStatus>,
}

impl Delivery {
    pub(crate) fn new(
        client: Client,
        queue_capacity: usize,
        retry_base: Duration,
        max_backoff: Duration,
        status: watch::Sender<AgentStatus>,
    ) -> Self {
        Self {
            client,
            queue: DeliveryQueue::new(queue_capacity),
            sending: None,
            next_attempt: Instant::now(),
            retry_base,
            max_backoff,
            batch_limit: MAX_BATCH_REPORTS,
            no_batch_until: None,
            refused_log: LogThrottle::new(REFUSED_LOG_EVERY),
            unauthorized_log: LogThrottle::new(UNAUTHORIZED_LOG_EVERY),
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
    /// waits and no backoff runs, and queues it otherwise.
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
                Err(error) => {
                    tracing::error!(%error, "could not encode the report");
                    self.update(|s| s.failed += 1);
                }
            }
            return;
        }
        if let Err(error) = self.queue.push_back(report) {
            tracing::error!(%error, "could not encode the report");
        }
        self.update(|_| {});
    }

    /// Starts sending the oldest queued reports: a batch, or a single
    /// report when one waits or the server has no batch endpoint.
    pub(crate) fn start_queued(&mut self, now: Instant) {
        let batches = self.no_batch_until.is_none_or(|until| now >= until);
        let client = self.client.clone();
        if batches && self.queue.len() > 1 {
            if let Some(batch) = self.queue.claim_batch(self.batch_limit, MAX_BATCH_BYTES) {
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
            Outcome::Fresh(_, Ok(())) | Outcome::Queued(Ok(())) => {
                self.queue.ack();
                self.delivered(1, now);
            }
            Outcome::Fresh(report, Err(error)) if keeps_reports(&error) => {
                if let Err(error) = self.queue.push_front(*report) {
                    tracing::error!(%error, "could not encode the report");
                }
                self.failed(&error, now);
            }
            Outcome::Fresh(_, Err(error)) => {
                // The server refuses this report as such: sending it again
                // is pointless, so keep the normal cadence and say why.
                tracing::error!(%error, "server refused the report");
                self.update(|s| s.failed += 1);
            }
            Outcome::Queued(Err(error)) if keeps_reports(&error) => {
                self.queue.release();
                self.failed(&error, now);
            }
            Outcome::Queued(Err(error)) => {
                self.queue.ack();
                self.log_refused(1, &error.to_string(), None, now);
                self.update(|s| s.failed += 1);
            }
            Outcome::Batch(_, Ok(result)) => {
                self.queue.ack();
                self.batch_limit = self.batch_limit.saturating_mul(2).min(MAX_BATCH_REPORTS);
                if let Some(first) = result.rejected.first() {
                    self.log_refused_batch(first, result.rejected.len(), now);
                }
                let refused = result.rejected.len() as u64;
                self.update(|s| s.failed += refused);
                self.delivered(result.accepted as u64, now);
            }
            Outcome::Batch(_, Err(error)) if error.is_unauthorized() => {
                self.queue.release();
                self.failed(&error, now);
            }
            Outcome::Batch(_, Err(error)) if error.is_not_found_or_unsupported() => {
                self.queue.release();
                self.no_batch_until = Some(now + BATCH_RETRY_AFTER);
                tracing::info!(%error, "server has no batch endpoint (an older Tailmon); sending queued reports one by one");
                self.update(|_| {});
            }
            Outcome::Batch(len, Err(error)) if error.is_retryable() => {
                self.queue.release();
                if error.is_timeout() {
                    // Perhaps too much for the link within the timeout:
                    // smaller batches, lest the same one time out forever.
                    self.batch_limit = (len / 2).max(1);
                }
                self.failed(&error, now);
            }
            Outcome::Batch(len, Err(error)) if error.is_decode() => {
                // The server took the batch (2xx) but its answer is not a
                // BatchResult: sending it again would store it twice.
                self.queue.ack();
                tracing::warn!(%error, reports = len, "unreadable answer to a batch; taking it as stored");
                self.delivered(0, now);
            }
            Outcome::Batch(len, Err(error)) if len > 1 => {
                // The batch as a whole is refused (400, 413, 422…): send
                // smaller ones, down to single reports if need be.
                self.queue.release();
                self.batch_limit = (len / 2).max(1);
                tracing::error!(%error, reports = len, next_batch = self.batch_limit, "server refused the batch; sending smaller ones");
                self.update(|_| {});
            }
            Outcome::Batch(_, Err(error)) => {
                self.queue.ack();
                self.log_refused(1, &error.to_string(), None, now);
                self.update(|s| s.failed += 1);
            }
        }
    }

    /// Ends delivery: what is still queued is lost, since the queue lives
    /// in memory only.
    pub(crate) fn stop(self) {
        let lost = self.queue.len();
        if lost > 0 {
            tracing::warn!(
                lost,
                "agent stopped; undelivered reports are lost (the queue is kept in memory only)"
            );
        } else {
            tracing::info!("agent stopped");
        }
    }

    /// The server acknowledged `count` reports: back to the normal cadence,
    /// and on with whatever is still queued.
    fn delivered(&mut self, count: u64, now: Instant) {
        self.next_attempt = now;
        self.update(|s| {
            s.sent += count;
            s.consecutive_failures = 0;
        });
    }

    /// A request failed for a reason that may pass, or the server refused
    /// the token: back off.
    fn failed(&mut self, error: &Error, now: Instant) {
        let mut attempt = 0;
        self.update(|s| {
            s.failed += 1;
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            attempt = s.consecutive_failures;
        });
        let delay = full_jitter(attempt, self.retry_base, self.max_backoff, fastrand::f64());
        self.next_attempt = now + delay;
        let (queued, retry_in_ms) = (self.queue.len(), delay.as_millis() as u64);
        if !error.is_unauthorized() {
            tracing::warn!(
                %error,
                attempt,
                queued,
                retry_in_ms,
                "report not delivered; retrying"
            );
        } else if let Some(held_back) = self.unauthorized_log.allow(now) {
            let problem = if self.client.has_token() {
                "server refused the agent's token"
            } else {
                "server wants a token and the agent has none"
            };
            tracing::error!(
                %error,
                attempt,
                queued,
                retry_in_ms,
                similar_lines_held_back = held_back,
                "{problem}; reports are kept and retried"
            );
        }
    }

    fn log_refused_batch(&mut self, first: &RejectedReport, count: usize, now: Instant) {
        self.log_refused(count, &first.error, first.field.as_deref(), now);
    }

    /// Queued reports the server will never accept are dropped; say so, at
    /// most once per [`REFUSED_LOG_EVERY`].
    fn log_refused(&mut self, count: usize, error: &str, field: Option<&str>, now: Instant) {
        if let Some(held_back) = self.refused_log.allow(now) {
            tracing::warn!(
                refused = count,
                error,
                field,
                similar_lines_held_back = held_back,
                "server refused queued reports; dropped"
            );
        }
    }

    /// Applies `change` to the status, with the queue's figures.
    fn update(&self, change: impl FnOnce(&mut AgentStatus)) {
        let (queued, dropped) = (self.queue.len(), self.queue.dropped());
        self.status.send_if_modified(|s| {
            let before = *s;
            change(s);
            s.queued = queued;
            s.dropped = dropped;
            *s != before
        });
    }
}

/// Whether a report that failed with `error` is kept for a later attempt:
/// when the failure may pass (see [`Error::is_retryable`]), and when the
/// server refused the agent's credentials, which is no fault of the reports
/// and is mended on the server or in the agent's settings.
fn keeps_reports(error: &Error) -> bool {
    error.is_retryable() || error.is_unauthorized()
}

#[cfg(test)]
mod tests {
    use tailmon_core::{OffsetDateTime, ProcessInfo};

    use super::*;
    use crate::scripted_server::ScriptedServer;

    fn report(n: i64) -> Report {
        let at = OffsetDateTime::from_unix_timestamp(1_750_000_000 + n).expect("valid time");
        let mut r = Report::new("delivery-test", at);
        r.ram_used_mb = 1;
        r.ram_total_mb = 2;
        r.top_processes = Some(vec![ProcessInfo {
            pid: 1,
            name: "init".into(),
            cpu_percent: 0.0,
            rss_bytes: 1,
        }]);
        r
    }

    fn delivery(server: &ScriptedServer) -> (Delivery, watch::Receiver<AgentStatus>) {
        delivery_with(Client::builder(&server.url))
    }

    fn delivery_with(client: crate::ClientBuilder) -> (Delivery, watch::Receiver<AgentStatus>) {
        let client = client.build().expect("valid URL");
        let status = watch::Sender::new(AgentStatus::default());
        let receiver = status.subscribe();
        let delivery = Delivery::new(
            client,
            10_000,
            Duration::from_secs(1),
            Duration::from_secs(60),
            status,
        );
        (delivery, receiver)
    }

    /// Runs requests, as the agent's loop would, until none is under way
    /// and none may start (the queue is empty, or a backoff runs).
    async fn settle(delivery: &mut Delivery) {
        loop {
            if delivery.sending.is_some() {
                let outcome = delivery.sent().await;
                delivery.finish(outcome, Instant::now());
            } else if delivery.has_queued_to_start() && delivery.next_attempt() <= Instant::now() {
                delivery.start_queued(Instant::now());
            } else {
                return;
            }
        }
    }

    fn queue(delivery: &mut Delivery, count: i64) {
        for n in 0..count {
            delivery.queue.push_back(report(n)).expect("encodes");
        }
    }

    /// How many reports each batch request carried.
    fn batch_sizes(server: &ScriptedServer) -> Vec<usize> {
        server
            .received()
            .iter()
            .filter(|r| r.path == "/api/v1/reports")
            .map(|r| {
                serde_json::from_slice::<Vec<Report>>(&r.body)
                    .expect("a JSON array of reports")
                    .len()
            })
            .collect()
    }

    fn accept_all(body: &[u8]) -> (u16, String) {
        let len = serde_json::from_slice::<Vec<serde_json::Value>>(body).map_or(0, |v| v.len());
        (200, format!(r#"{{"accepted":{len},"rejected":[]}}"#))
    }

    #[tokio::test]
    async fn fresh_report_goes_straight_through_whole() {
        let server = ScriptedServer::start(|_, _| (200, String::new())).await;
        let (mut delivery, status) = delivery(&server);
        delivery.offer(report(0), Instant::now());
        settle(&mut delivery).await;
        let received = server.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/api/metrics");
        let sent: Report = serde_json::from_slice(&received[0].body).expect("a report");
        assert_eq!(sent, report(0), "sent at once, it keeps top_processes");
        let status = *status.borrow();
        assert_eq!((status.sent, status.queued, status.failed), (1, 0, 0));
    }

    #[tokio::test]
    async fn undelivered_fresh_report_is_queued_first_and_backs_off() {
        let server = ScriptedServer::start(|_, _| (503, String::new())).await;
        let (mut delivery, status) = delivery(&server);
        let now = Instant::now();
        delivery.offer(report(0), now);
        // Collected while the first is under way: queued behind it.
        delivery.offer(report(1), now);
        settle(&mut delivery).await;
        assert!(delivery.next_attempt() > now, "backing off");
        let queued: Vec<i64> = delivery
            .queue
            .reports()
            .iter()
            .map(|r| r.last_seen.unix_timestamp() - 1_750_000_000)
            .collect();
        assert_eq!(queued, [0, 1], "oldest first");
        let status = *status.borrow();
        assert_eq!(
            (status.queued, status.failed, status.consecutive_failures),
            (2, 1, 1)
        );
        // During the backoff, a fresh report joins the queue unsent.
        delivery.offer(report(2), Instant::now());
        assert!(delivery.sending.is_none());
        assert_eq!(delivery.queue.len(), 3);
    }

    #[tokio::test]
    async fn queue_drains_in_batches_oldest_first() {
        let server = ScriptedServer::start(|_, body| accept_all(body)).await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 2_500);
        settle(&mut delivery).await;
        assert_eq!(batch_sizes(&server), [1000, 1000, 500]);
        let first: Vec<Report> =
            serde_json::from_slice(&server.received()[0].body).expect("reports");
        assert_eq!(first[0].last_seen.unix_timestamp(), 1_750_000_000);
        assert!(first.iter().all(|r| r.top_processes.is_none()));
        let status = *status.borrow();
        assert_eq!((status.sent, status.queued, status.failed), (2_500, 0, 0));
    }

    #[tokio::test]
    async fn too_large_batch_is_halved_until_it_fits() {
        let server = ScriptedServer::start(|_, body| {
            let len = serde_json::from_slice::<Vec<serde_json::Value>>(body).map_or(0, |v| v.len());
            if len > 4 {
                (413, r#"{"error":"too large"}"#.to_owned())
            } else {
                accept_all(body)
            }
        })
        .await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 10);
        settle(&mut delivery).await;
        // 10 refused, 5 refused, then 2 fit; the limit grows back: 4, then 4 left.
        assert_eq!(batch_sizes(&server), [10, 5, 2, 4, 4]);
        let status = *status.borrow();
        assert_eq!((status.sent, status.queued, status.failed), (10, 0, 0));
    }

    #[tokio::test]
    async fn refused_reports_are_dropped_not_retried() {
        let server = ScriptedServer::start(|_, _| {
            (
                200,
                r#"{"accepted":2,"rejected":[{"index":1,"error":"cpu_usage must be between 0 and 100","field":"cpu_usage"}]}"#
                    .to_owned(),
            )
        })
        .await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 3);
        settle(&mut delivery).await;
        assert_eq!(batch_sizes(&server), [3], "no retry");
        let status = *status.borrow();
        assert_eq!((status.sent, status.failed, status.queued), (2, 1, 0));
        assert_eq!(status.consecutive_failures, 0);
    }

    #[tokio::test]
    async fn batches_refused_as_a_whole_end_up_dropped_one_by_one() {
        let server = ScriptedServer::start(|path, _| match path {
            "/api/v1/reports" => (422, r#"{"error":"bad batch"}"#.to_owned()),
            _ => (200, String::new()),
        })
        .await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 3);
        settle(&mut delivery).await;
        // Split down to one report, dropped; the last one goes on its own.
        assert_eq!(batch_sizes(&server), [3, 1, 1]);
        assert_eq!(server.received().len(), 4);
        let status = *status.borrow();
        assert_eq!((status.sent, status.failed, status.queued), (1, 2, 0));
    }

    #[tokio::test]
    async fn server_without_batches_gets_the_queue_one_by_one_and_is_remembered() {
        let server = ScriptedServer::start(|path, _| match path {
            "/api/metrics" => (200, String::new()),
            _ => (404, r#"{"error":"not found"}"#.to_owned()),
        })
        .await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 4);
        settle(&mut delivery).await;
        queue(&mut delivery, 3);
        settle(&mut delivery).await;
        let paths: Vec<String> = server.received().into_iter().map(|r| r.path).collect();
        assert_eq!(paths[0], "/api/v1/reports", "probed once");
        assert!(paths[1..].iter().all(|p| p == "/api/metrics"), "{paths:?}");
        assert_eq!(paths.len(), 1 + 7);
        let status = *status.borrow();
        assert_eq!((status.sent, status.failed, status.queued), (7, 0, 0));
    }

    #[tokio::test]
    async fn retryable_batch_failure_keeps_the_queue() {
        let server =
            ScriptedServer::start(|_, _| (503, r#"{"error":"store unavailable"}"#.to_owned()))
                .await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 5);
        let now = Instant::now();
        settle(&mut delivery).await;
        assert_eq!(batch_sizes(&server), [5]);
        assert!(delivery.next_attempt() > now);
        let status = *status.borrow();
        assert_eq!(
            (status.queued, status.failed, status.consecutive_failures),
            (5, 1, 1)
        );
    }

    #[tokio::test]
    async fn unreadable_answer_to_a_batch_counts_as_stored() {
        let server = ScriptedServer::start(|_, _| (200, "<html>ok</html>".to_owned())).await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 3);
        settle(&mut delivery).await;
        assert_eq!(batch_sizes(&server), [3], "not sent twice");
        assert_eq!(status.borrow().queued, 0);
    }

    #[tokio::test]
    async fn refused_token_keeps_the_reports_and_backs_off() {
        for code in [401, 403] {
            let server = ScriptedServer::start(move |_, _| {
                (code, r#"{"error":"invalid token"}"#.to_owned())
            })
            .await;
            let (mut delivery, status) =
                delivery_with(Client::builder(&server.url).token("agent-secret"));
            let now = Instant::now();
            delivery.offer(report(0), now);
            settle(&mut delivery).await;
            assert_eq!(delivery.queue.len(), 1, "{code}: the fresh report is kept");
            assert!(delivery.next_attempt() > now, "{code}: backing off");

            // Queued reports stay queued too, batch or single.
            queue(&mut delivery, 3);
            delivery.next_attempt = Instant::now();
            settle(&mut delivery).await;
            assert_eq!(delivery.queue.len(), 4, "{code}: nothing dropped");
            let status = *status.borrow();
            assert_eq!((status.sent, status.queued), (0, 4), "{code}");
            assert_eq!(status.consecutive_failures, 2, "{code}");

            let received = server.received();
            assert_eq!(received.len(), 2, "{code}");
            assert_eq!(received[1].path, "/api/v1/reports", "{code}");
            for request in &received {
                assert_eq!(
                    request.authorization.as_deref(),
                    Some("Bearer agent-secret"),
                    "{code}"
                );
            }
        }
    }

    #[tokio::test]
    async fn queue_kept_through_a_refused_token_is_delivered_once_accepted() {
        let refusing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let answer = std::sync::Arc::clone(&refusing);
        let server = ScriptedServer::start(move |_, body| {
            if answer.load(std::sync::atomic::Ordering::SeqCst) {
                (401, r#"{"error":"missing token"}"#.to_owned())
            } else {
                accept_all(body)
            }
        })
        .await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 3);
        settle(&mut delivery).await;
        assert_eq!(delivery.queue.len(), 3);
        assert_eq!(server.received()[0].authorization, None, "no token set");

        refusing.store(false, std::sync::atomic::Ordering::SeqCst);
        delivery.next_attempt = Instant::now();
        settle(&mut delivery).await;
        let status = *status.borrow();
        assert_eq!(
            (status.sent, status.queued, status.consecutive_failures),
            (3, 0, 0)
        );
    }
}
