//! The remote store's one writer: inserts wait in a bounded queue, the
//! writer sends what has gathered as one remote-write request (group
//! commit) and answers each insert once the engine has answered 2xx for a
//! request holding all its samples.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connection::Connection;
use super::prom_query::excerpt;
use super::write_request::{
    CONTENT_ENCODING, CONTENT_TYPE, TimeSeries, VERSION_HEADER, WriteRequest,
};
use crate::refusal_log::RefusalLog;
use crate::store::StoreError;

/// How the writer batches and retries.
#[derive(Debug, Clone)]
pub(crate) struct WriterSettings {
    /// Inserts waiting at most; one more is refused with `Unavailable`.
    pub(crate) queue: usize,
    /// Series gathered into one request at most (an insert is never cut).
    pub(crate) batch_series: usize,
    /// One HTTP request's time limit.
    pub(crate) request_timeout: Duration,
    /// How long a request is retried before its inserts fail with
    /// `Unavailable`.
    pub(crate) retry_deadline: Duration,
    /// The first wait between retries; it doubles up to `max_backoff`.
    pub(crate) min_backoff: Duration,
    /// The longest wait between retries.
    pub(crate) max_backoff: Duration,
}

/// Where an insert's answer goes.
type Answer = oneshot::Sender<Result<(), StoreError>>;

/// One insert waiting for its answer.
struct Job {
    series: Vec<TimeSeries>,
    done: Answer,
}

/// What the engine made of a request.
enum Outcome {
    /// 2xx.
    Stored,
    /// 4xx: refused for good, with the engine's message.
    Refused(String),
    /// No 2xx before the deadline (connection errors, 5xx, 429).
    Unavailable(String),
}

/// What the writer counts, for logs and tests.
#[derive(Debug, Default)]
pub(crate) struct WriterCounts {
    /// Samples the engine dropped as duplicates or too old (a 400 the
    /// store counts as success).
    pub(crate) dropped: RefusalLog,
    /// Attempts that failed with a connection error, 5xx or 429 (each is
    /// retried until the deadline).
    pub(crate) retries: RefusalLog,
    /// Requests refused for good (other 4xx).
    pub(crate) refused: RefusalLog,
}

/// The handle inserts go through; the writer task ends when every handle
/// is dropped and the queue is empty.
#[derive(Debug)]
pub(crate) struct RemoteWriter {
    jobs: mpsc::Sender<Job>,
    pub(crate) counts: Arc<WriterCounts>,
}

impl RemoteWriter {
    /// Starts the writer task on the current Tokio runtime.
    pub(crate) fn start(connection: Arc<Connection>, settings: WriterSettings) -> Self {
        let (jobs, queue) = mpsc::channel(settings.queue.max(1));
        let counts = Arc::new(WriterCounts::default());
        tokio::spawn(run(queue, connection, settings, counts.clone()));
        Self { jobs, counts }
    }

    /// Sends `series` and waits for the engine's answer.
    pub(crate) async fn write(&self, series: Vec<TimeSeries>) -> Result<(), StoreError> {
        if series.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { series, done })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Unavailable(
                    "the remote store's write queue is full; retry later".into(),
                ),
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the remote store's writer has stopped".into())
                }
            })?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the remote store's writer has stopped".into(),
            ))
        })
    }
}

async fn run(
    mut queue: mpsc::Receiver<Job>,
    connection: Arc<Connection>,
    settings: WriterSettings,
    counts: Arc<WriterCounts>,
) {
    while let Some(first) = queue.recv().await {
        let mut size = first.series.len();
        let mut jobs = vec![first];
        while size < settings.batch_series {
            match queue.try_recv() {
                Ok(job) => {
                    size += job.series.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let sender = Sender {
            connection: &connection,
            settings: &settings,
            counts: &counts,
        };
        sender.send_jobs(jobs).await;
    }
}

struct Sender<'a> {
    connection: &'a Connection,
    settings: &'a WriterSettings,
    counts: &'a WriterCounts,
}

impl Sender<'_> {
    /// Sends the jobs as one request and answers each; a batch refused for
    /// good is sent again insert by insert, so that one bad insert (or a
    /// duplicate, which makes Prometheus drop the whole request) fails
    /// only itself.
    async fn send_jobs(&self, jobs: Vec<Job>) {
        let mut timeseries = Vec::with_capacity(jobs.iter().map(|j| j.series.len()).sum());
        let mut parts: Vec<(Range<usize>, Answer)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let start = timeseries.len();
            timeseries.extend(job.series);
            parts.push((start..timeseries.len(), job.done));
        }
        let request = WriteRequest { timeseries };
        match self.send(&request).await {
            Outcome::Stored => {
                for (_, done) in parts {
                    let _ = done.send(Ok(()));
                }
            }
            Outcome::Unavailable(message) => {
                for (_, done) in parts {
                    let _ = done.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
            Outcome::Refused(message) if parts.len() == 1 => {
                for (_, done) in parts {
                    let _ = done.send(Err(StoreError::Backend(message.clone().into())));
                }
            }
            Outcome::Refused(_) => {
                for (range, done) in parts {
                    let alone = WriteRequest {
                        timeseries: request.timeseries[range].to_vec(),
                    };
                    let answer = match self.send(&alone).await {
                        Outcome::Stored => Ok(()),
                        Outcome::Refused(message) => Err(StoreError::Backend(message.into())),
                        Outcome::Unavailable(message) => Err(StoreError::Unavailable(message)),
                    };
                    let _ = done.send(answer);
                }
            }
        }
    }

    /// Sends one request, retrying with exponential backoff and jitter on
    /// connection errors, 5xx and 429 until the deadline.
    async fn send(&self, request: &WriteRequest) -> Outcome {
        let body = match request.body() {
            Ok(body) => body,
            Err(e) => return Outcome::Refused(format!("could not compress the request: {e}")),
        };
        let deadline = Instant::now() + self.settings.retry_deadline;
        let mut backoff = self.settings.min_backoff;
        loop {
            let attempt = self
                .connection
                .request(reqwest::Method::POST, &self.connection.write_url)
                .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
                .header(reqwest::header::CONTENT_ENCODING, CONTENT_ENCODING)
                .header(VERSION_HEADER.0, VERSION_HEADER.1)
                .timeout(self.settings.request_timeout)
                .body(body.clone())
                .send()
                .await;
            let failure = match attempt {
                Ok(response) if response.status().is_success() => return Outcome::Stored,
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    if status.as_u16() == 429 || status.is_server_error() {
                        format!("the engine answered {status}: {}", excerpt(&text))
                    } else if status.as_u16() == 400 && is_dropped_sample(&text) {
                        if let Some(n) = self.counts.dropped.count() {
                            tracing::info!(
                                requests = n,
                                message = excerpt(&text),
                                "the remote engine dropped samples it holds already or finds too old (counted as stored)"
                            );
                        }
                        return Outcome::Stored;
                    } else {
                        if let Some(n) = self.counts.refused.count() {
                            tracing::warn!(
                                requests = n,
                                %status,
                                message = excerpt(&text),
                                "the remote engine refused a write"
                            );
                        }
                        return Outcome::Refused(format!(
                            "the engine refused the write ({status}): {}",
                            excerpt(&text)
                        ));
                    }
                }
                Err(e) => format!("the engine did not answer: {e}"),
            };
            if let Some(n) = self.counts.retries.count() {
                tracing::warn!(attempts = n, reason = %failure, "remote write failed; retrying");
            }
            let wait = jittered(backoff);
            if Instant::now() + wait >= deadline {
                return Outcome::Unavailable(format!(
                    "the remote store could not write within {:?}: {failure}",
                    self.settings.retry_deadline
                ));
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.settings.max_backoff);
        }
    }
}

/// Half of `backoff` plus a random part of the other half.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(getrandom::u64().unwrap_or(0) % nanos)
}

/// Whether a 400's message says the engine dropped samples it has at that
/// time already, or that fall before what it accepts: the store's "first
/// wins" and "too old" rules, which count as stored.
fn is_dropped_sample(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "duplicate sample for timestamp",
        "out of order sample",
        "out of bounds",
        "too old sample",
    ]
    .iter()
    .any(|phrase| message.contains(phrase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_late_samples_count_as_stored_and_nothing_else_does() {
        assert!(is_dropped_sample(
            "duplicate sample for timestamp; series: {__name__=\"tailmon_load1\"}"
        ));
        assert!(is_dropped_sample("out of bounds"));
        assert!(!is_dropped_sample("invalid label name"));
    }

    #[test]
    fn jitter_stays_within_the_backoff() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_millis(100));
            assert!(wait >= Duration::from_millis(50) && wait < Duration::from_millis(100));
        }
    }
}
