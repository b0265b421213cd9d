//! The delivery's decisions, one request or outcome at a time, against a
//! scripted server; `scenarios` runs the issue's outages end to end.

use tailmon_core::{OffsetDateTime, ProcessInfo};

use super::*;
use crate::scripted_server::{Answer, ScriptedServer};

mod failure_causes;
mod scenarios;

/// Report number `n`: its `last_seen` is `n` seconds after a fixed time.
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
    new_delivery(client, 10_000, Duration::from_secs(60))
}

/// A delivery through `client` with a queue of `queue_capacity`, retrying
/// after up to 1 s, doubling up to `max_backoff`; and its status.
fn new_delivery(
    client: crate::ClientBuilder,
    queue_capacity: usize,
    max_backoff: Duration,
) -> (Delivery, watch::Receiver<AgentStatus>) {
    let client = client.build().expect("valid URL");
    let status = watch::Sender::new(AgentStatus::default());
    let receiver = status.subscribe();
    let delivery = Delivery::new(
        client,
        DeliveryQueue::new(queue_capacity),
        crate::DEFAULT_RETRY_BASE,
        max_backoff,
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

/// The number of a report made by [`report`].
fn number(report: &Report) -> i64 {
    report.last_seen.unix_timestamp() - 1_750_000_000
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
    let first: Vec<Report> = serde_json::from_slice(&server.received()[0].body).expect("reports");
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
        ScriptedServer::start(|_, _| (503, r#"{"error":"store unavailable"}"#.to_owned())).await;
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
async fn refused_token_keeps_the_reports_and_backs_off() {
    for code in [401, 403] {
        let server =
            ScriptedServer::start(move |_, _| (code, r#"{"error":"invalid token"}"#.to_owned()))
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

#[tokio::test]
async fn fresh_report_answered_404_is_kept_and_backs_off() {
    for code in [404, 405] {
        let server =
            ScriptedServer::scripted(move |_, _| Answer::html(code, "<h1>Not Found</h1>")).await;
        let (mut delivery, status) = delivery(&server);
        let now = Instant::now();
        delivery.offer(report(0), now);
        settle(&mut delivery).await;
        assert!(delivery.next_attempt() > now, "{code}: backing off");
        let queued: Vec<i64> = delivery.queue.reports().iter().map(number).collect();
        assert_eq!(queued, [0], "{code}: kept");
        let status = *status.borrow();
        assert_eq!(
            (status.dropped, status.consecutive_failures),
            (0, 1),
            "{code}"
        );
    }
}

#[tokio::test]
async fn a_single_report_is_dropped_only_when_the_server_refuses_it() {
    let cases = [
        (
            Answer::json(
                422,
                r#"{"error":"cpu_usage must be finite","field":"cpu_usage"}"#,
            ),
            true,
        ),
        (
            Answer::json(400, r#"{"error":"expected a number","field":"cpu_usage"}"#),
            true,
        ),
        (Answer::json(413, r#"{"error":"report too large"}"#), true),
        (Answer::html(400, "<h1>Bad Request</h1>"), false),
        (
            Answer::html(413, "<h1>Request Entity Too Large</h1>"),
            false,
        ),
        (Answer::json(404, r#"{"error":"not found"}"#), false),
        (Answer::html(409, "conflict"), false),
        (Answer::html(410, "gone"), false),
    ];
    for (answer, dropped) in cases {
        let shown = format!("{answer:?}");
        let server = ScriptedServer::scripted(move |_, _| answer.clone()).await;
        // Sent just collected, and sent from the queue.
        let (mut fresh, fresh_status) = delivery(&server);
        fresh.offer(report(0), Instant::now());
        settle(&mut fresh).await;
        let (mut queued, queued_status) = delivery(&server);
        queue(&mut queued, 1);
        settle(&mut queued).await;
        for status in [fresh_status, queued_status] {
            let status = *status.borrow();
            if dropped {
                assert_eq!((status.drops.refused, status.queued), (1, 0), "{shown}");
            } else {
                assert_eq!((status.dropped, status.queued), (0, 1), "{shown}: kept");
            }
        }
    }
}

#[tokio::test]
async fn a_batch_answer_that_does_not_add_up_is_retried() {
    for answer in [
        r#"{"accepted":2,"rejected":[]}"#,
        r#"{"accepted":3,"rejected":[{"index":0,"error":"x"}]}"#,
        r#"{"accepted":1,"rejected":[{"index":5,"error":"x"},{"index":0,"error":"x"}]}"#,
        r#"{"accepted":1,"rejected":[{"index":0,"error":"x"},{"index":0,"error":"x"}]}"#,
        r#"{"status":"ok"}"#,
    ] {
        let server = ScriptedServer::start(move |_, _| (200, answer.to_owned())).await;
        let (mut delivery, status) = delivery(&server);
        queue(&mut delivery, 3);
        let now = Instant::now();
        settle(&mut delivery).await;
        assert!(delivery.next_attempt() > now, "{answer}: backing off");
        let status = *status.borrow();
        assert_eq!(
            (status.sent, status.queued, status.dropped),
            (0, 3, 0),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn retry_after_is_waited_for_and_capped() {
    for (value, at_least, at_most) in [
        ("5", Duration::from_secs(5), Duration::from_secs(8)),
        ("30", Duration::from_secs(30), Duration::from_secs(30)),
        ("3600", MAX_RETRY_AFTER, MAX_RETRY_AFTER),
    ] {
        for code in [429, 503] {
            let server = ScriptedServer::scripted(move |_, _| {
                Answer::json(code, r#"{"error":"busy"}"#).retry_after(value)
            })
            .await;
            let (mut delivery, _) = delivery_with(Client::builder(&server.url));
            let now = Instant::now();
            delivery.offer(report(0), now);
            settle(&mut delivery).await;
            let waits = delivery.next_attempt() - now;
            assert!(
                waits >= at_least && waits <= at_most + Duration::from_secs(1),
                "{code} Retry-After: {value}: waits {waits:?}"
            );
        }
    }
}

#[test]
fn retry_delay_takes_the_longer_of_backoff_and_the_capped_ask() {
    let s = Duration::from_secs;
    assert_eq!(retry_delay(s(2), None), s(2));
    assert_eq!(retry_delay(s(2), Some(s(5))), s(5));
    assert_eq!(retry_delay(s(7), Some(s(5))), s(7));
    assert_eq!(retry_delay(s(2), Some(s(86_400))), MAX_RETRY_AFTER);
    assert_eq!(retry_delay(s(600), Some(s(86_400))), s(600));
}

#[tokio::test]
async fn an_outage_ends_when_the_queue_is_empty_again() {
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answer = std::sync::Arc::clone(&up);
    let server = ScriptedServer::scripted(move |_, body| {
        if answer.load(std::sync::atomic::Ordering::SeqCst) {
            let (status, body) = accept_all(body);
            Answer::json(status, body)
        } else {
            Answer::hang_up()
        }
    })
    .await;
    let (mut delivery, _) = delivery(&server);
    delivery.offer(report(0), Instant::now());
    settle(&mut delivery).await;
    delivery.queue.push_back(report(1)).expect("encodes");
    let outage = delivery.outage.as_ref().expect("an outage began");
    assert_eq!((outage.failed_attempts, outage.sent), (1, 0));

    up.store(true, std::sync::atomic::Ordering::SeqCst);
    delivery.next_attempt = Instant::now();
    settle(&mut delivery).await;
    assert!(delivery.outage.is_none(), "recovered: the queue is empty");
    assert_eq!(delivery.queue.len(), 0);
}

/// A fresh directory under the system's temporary one, removed on drop.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("tailmon-delivery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }

    /// A delivery through `server` whose queue is kept in this directory.
    fn delivery(&self, server: &ScriptedServer) -> Delivery {
        let dir = crate::queue_dir::QueueDir::open(&self.0).expect("opens");
        Delivery::new(
            Client::builder(&server.url).build().expect("valid URL"),
            DeliveryQueue::on_disk(dir, 10_000),
            crate::DEFAULT_RETRY_BASE,
            Duration::from_secs(60),
            watch::Sender::new(AgentStatus::default()),
        )
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_queue_on_disk_drained_across_a_crash_sends_each_report_once() {
    // The server takes one batch, then fails: the agent "crashes" there.
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&taken);
    let server = ScriptedServer::start(move |_, body| {
        if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            (503, r#"{"error":"store unavailable"}"#.to_owned())
        } else {
            accept_all(body)
        }
    })
    .await;
    let scratch = ScratchDir::new("crash");
    let mut delivery = scratch.delivery(&server);
    queue(&mut delivery, 2_500);
    settle(&mut delivery).await;
    assert_eq!(batch_sizes(&server), [1000, 1000], "one taken, one failed");
    drop(delivery);

    // Restarted: what is left goes, and nothing taken goes again.
    let mut delivery = scratch.delivery(&server);
    assert_eq!(delivery.queue.len(), 1_500);
    delivery.next_attempt = Instant::now();
    settle(&mut delivery).await;
    assert!(delivery.queue.is_empty());
    let mut stored: Vec<i64> = Vec::new();
    for (i, request) in server.received().iter().enumerate() {
        if i == 1 {
            continue; // the batch answered 503
        }
        let reports: Vec<Report> = serde_json::from_slice(&request.body).expect("reports");
        stored.extend(reports.iter().map(number));
    }
    assert_eq!(
        stored,
        (0..2_500).collect::<Vec<_>>(),
        "each once, in order"
    );
    drop(delivery);
    assert!(
        scratch.delivery(&server).queue.is_empty(),
        "delivered reports stay delivered"
    );
}
