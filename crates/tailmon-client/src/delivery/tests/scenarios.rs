//! The outages of issue 13, each run end to end: the agent's loop on a
//! virtual clock (collections every interval, backoff waits skipped to,
//! requests taking no time on it) against a scripted server whose answers
//! follow that clock. Each counts the reports collected and those the
//! server stored, and checks none lost, none out of order, each drop
//! counted. No test sleeps: the clock is the simulation's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::*;

/// The agent's interval in every scenario.
const INTERVAL: Duration = Duration::from_millis(500);

/// The agent's queue in the scenarios but one: as large as needed.
const QUEUE: usize = 10_000;

/// Queued reports flow within this of the server's return (finding 6).
const RECOVERY: Duration = Duration::from_secs(10);

/// The requests a scenario's server received: when (virtual milliseconds
/// since the start) and on which path.
type RequestTimes = Arc<Mutex<Vec<(u64, String)>>>;

/// An agent collecting every [`INTERVAL`] on a virtual clock, and the
/// scripted server it reports to, which reads that clock.
struct Simulation {
    delivery: Delivery,
    status: watch::Receiver<AgentStatus>,
    start: Instant,
    now: Instant,
    /// `now`, as milliseconds since the start, for the server's script.
    clock: Arc<AtomicU64>,
    requests: RequestTimes,
    next_collection: Instant,
    collected: i64,
}

/// A server answering as `script` says per (virtual milliseconds since the
/// start, path, body), and an agent with a queue of `queue_capacity`
/// reporting to it, with the default backoff.
async fn scenario(
    queue_capacity: usize,
    script: impl Fn(u64, &str, &[u8]) -> Answer + Send + Sync + 'static,
) -> (ScriptedServer, Simulation) {
    let clock = Arc::new(AtomicU64::new(0));
    let requests = RequestTimes::default();
    let (now, log) = (clock.clone(), requests.clone());
    let server = ScriptedServer::scripted(move |path, body| {
        let at = now.load(Ordering::SeqCst);
        log.lock()
            .expect("not poisoned")
            .push((at, path.to_owned()));
        script(at, path, body)
    })
    .await;
    let (delivery, status) = new_delivery(
        Client::builder(&server.url),
        queue_capacity,
        crate::DEFAULT_MAX_BACKOFF,
    );
    let start = Instant::now();
    let simulation = Simulation {
        delivery,
        status,
        start,
        now: start,
        clock,
        requests,
        next_collection: start,
        collected: 0,
    };
    (server, simulation)
}

impl Simulation {
    /// Runs the agent's loop until `at` after the start: a collection when
    /// due (first, as in the agent), otherwise the queue once the backoff is
    /// over; a request under way ends before anything else happens.
    async fn run_until(&mut self, at: Duration) {
        let end = self.start + at;
        loop {
            if self.delivery.sending.is_some() {
                let outcome = self.delivery.sent().await;
                self.delivery.finish(outcome, self.now);
                continue;
            }
            let attempt = self
                .delivery
                .has_queued_to_start()
                .then(|| self.delivery.next_attempt().max(self.now));
            let next = attempt.map_or(self.next_collection, |a| a.min(self.next_collection));
            if next > end {
                self.set_now(end);
                return;
            }
            self.set_now(next);
            if next == self.next_collection {
                self.next_collection += INTERVAL;
                self.delivery.offer(report(self.collected), self.now);
                self.collected += 1;
            } else {
                self.delivery.start_queued(self.now);
            }
        }
    }

    /// The server answers again from `back` on: runs until [`RECOVERY`]
    /// later, then on until the queue is empty, which must take no more
    /// than one interval.
    async fn recover(&mut self, back: Duration) {
        self.run_until(back + RECOVERY).await;
        self.drain(back + RECOVERY + INTERVAL).await;
    }

    /// Runs on until the queue is empty; fails past `deadline`.
    async fn drain(&mut self, deadline: Duration) {
        while self.status.borrow().queued > 0 || self.delivery.sending.is_some() {
            let at = self.now - self.start + Duration::from_millis(1);
            assert!(
                at <= deadline,
                "not drained by {deadline:?}: {:?}",
                *self.status.borrow()
            );
            self.run_until(at).await;
        }
    }

    fn set_now(&mut self, now: Instant) {
        self.now = now;
        let ms = (now - self.start).as_millis() as u64;
        self.clock.store(ms, Ordering::SeqCst);
    }

    fn status(&self) -> AgentStatus {
        *self.status.borrow()
    }

    /// When the server received each request, in virtual milliseconds.
    fn request_times(&self) -> Vec<u64> {
        let requests = self.requests.lock().expect("not poisoned");
        requests.iter().map(|(at, _)| *at).collect()
    }

    /// The paths of the requests from `from_ms` (virtual) on.
    fn paths_since(&self, from_ms: u64) -> Vec<String> {
        let requests = self.requests.lock().expect("not poisoned");
        requests
            .iter()
            .filter(|(at, _)| *at >= from_ms)
            .map(|(_, path)| path.clone())
            .collect()
    }
}

/// What a healthy Tailmon server answers: a single report stored, a batch
/// stored whole.
fn healthy(path: &str, body: &[u8]) -> Answer {
    if path == "/api/v1/reports" {
        let (status, answer) = accept_all(body);
        Answer::json(status, answer)
    } else {
        Answer::json(200, "")
    }
}

/// The numbers of the reports the server stored, in the order it stored
/// them: a single report answered 2xx, and the reports of a batch whose 2xx
/// answer is a batch result, bar those it names as refused.
fn stored(server: &ScriptedServer) -> Vec<i64> {
    let mut stored = Vec::new();
    for request in server.received() {
        if !request.status.is_some_and(|s| (200..300).contains(&s)) {
            continue;
        }
        if request.path == "/api/v1/reports" {
            let Ok(result) = serde_json::from_str::<BatchResult>(&request.answer) else {
                continue;
            };
            let reports: Vec<Report> = serde_json::from_slice(&request.body).expect("reports");
            let refused: Vec<usize> = result.rejected.iter().map(|r| r.index).collect();
            for (i, report) in reports.iter().enumerate() {
                if !refused.contains(&i) {
                    stored.push(number(report));
                }
            }
        } else {
            let report: Report = serde_json::from_slice(&request.body).expect("a report");
            stored.push(number(&report));
        }
    }
    stored
}

/// Every report collected was stored once, in the order collected, and
/// nothing was dropped.
fn assert_none_lost(sim: &Simulation, server: &ScriptedServer) {
    let expected: Vec<i64> = (0..sim.collected).collect();
    assert_eq!(stored(server), expected, "each stored once, in order");
    let status = sim.status();
    assert_eq!(status.drops, Drops::default(), "{status:?}");
    assert_eq!((status.dropped, status.queued), (0, 0), "{status:?}");
    assert_eq!(status.sent, sim.collected as u64, "{status:?}");
}

/// Finding 1: nothing listens for 10 s, then every POST gets a proxy's 404
/// for 10 s (a deploy), then the server is back. (The 404s last longer
/// than the backoff's cap, so that an attempt meets them whatever the
/// jitter draws.)
#[tokio::test]
async fn a_404_during_a_deploy_keeps_the_backlog_and_batching() {
    // The backoff's draws, fixed: the count of attempts is asserted below.
    fastrand::seed(1);
    let (server, mut sim) = scenario(QUEUE, |at, path, body| match at {
        0..10_000 => Answer::hang_up(),
        10_000..20_000 => Answer::html(404, "<h1>404 Not Found</h1>"),
        _ => healthy(path, body),
    })
    .await;
    sim.recover(Duration::from_secs(20)).await;

    assert_none_lost(&sim, &server);
    assert!(sim.collected >= 40, "{}", sim.collected);
    assert_eq!(sim.delivery.route, Route::Batches, "batching stays on");
    let during_404 = sim.paths_since(10_000);
    assert!(
        during_404.iter().any(|p| p == "/api/v1/reports"),
        "{during_404:?}"
    );
    // Backing off through the 404s: a handful of attempts, not one per report.
    let attempts_404 = server
        .received()
        .iter()
        .filter(|r| r.status == Some(404))
        .count();
    assert!(
        (1..=12).contains(&attempts_404),
        "{attempts_404} answered 404"
    );
}

/// Finding 1, the other way: an older server without the batch endpoint,
/// proved by a single report it stores, gets the backlog one by one.
#[tokio::test]
async fn an_older_server_is_told_by_a_single_report_it_stores() {
    let (server, mut sim) = scenario(QUEUE, |at, path, body| match (at, path) {
        (0..10_000, _) => Answer::hang_up(),
        (_, "/api/metrics") => healthy(path, body),
        _ => Answer::json(404, r#"{"error":"not found"}"#),
    })
    .await;
    sim.recover(Duration::from_secs(10)).await;

    assert_none_lost(&sim, &server);
    assert!(matches!(sim.delivery.route, Route::Singles { .. }));
    let batches_tried = server
        .received()
        .iter()
        .filter(|r| r.path == "/api/v1/reports" && r.status.is_some())
        .count();
    assert_eq!(batches_tried, 1, "one batch, then single reports");
}

/// Finding 2: a batch endpoint that refuses every batch (422) while
/// `POST /api/metrics` takes the reports one by one.
#[tokio::test]
async fn a_batch_endpoint_refusing_every_batch_loses_nothing() {
    let (server, mut sim) = scenario(QUEUE, |at, path, body| match (at, path) {
        (0..26_000, _) => Answer::hang_up(),
        (_, "/api/v1/reports") => Answer::json(422, r#"{"error":"batches are not allowed"}"#),
        _ => healthy(path, body),
    })
    .await;
    sim.recover(Duration::from_secs(26)).await;

    assert!(sim.collected >= 53, "{}", sim.collected);
    assert_none_lost(&sim, &server);
    let refused = server
        .received()
        .iter()
        .filter(|r| r.status == Some(422))
        .count();
    assert!(
        refused <= 8,
        "halved down to one, then remembered: {refused} refused"
    );
}

/// Finding 3: a captive portal answers every request 200 with an HTML page
/// for 10 s, after 10 s with nothing listening.
#[tokio::test]
async fn an_unreadable_batch_answer_is_retried_not_taken_as_stored() {
    let (server, mut sim) = scenario(QUEUE, |at, path, body| match at {
        0..10_000 => Answer::hang_up(),
        10_000..20_000 => Answer::html(200, "<html>Welcome! Please sign in.</html>"),
        _ => healthy(path, body),
    })
    .await;
    sim.recover(Duration::from_secs(20)).await;

    assert_none_lost(&sim, &server);
    let portal_answers = server
        .received()
        .iter()
        .filter(|r| r.answer.starts_with("<html>"))
        .count();
    assert!(portal_answers >= 1, "the portal was met");
}

/// Finding 4: a queue of 10 overflows during 20 s without a server; the
/// drops are counted by reason, the oldest go, and the rest is delivered.
#[tokio::test]
async fn queue_overflow_drops_the_oldest_and_counts_them() {
    let (server, mut sim) = scenario(10, |at, path, body| match at {
        0..20_000 => Answer::hang_up(),
        _ => healthy(path, body),
    })
    .await;
    sim.recover(Duration::from_secs(20)).await;

    // 40 collected in the outage and more until the first attempt after
    // it, in a queue of 10: the oldest went, counted.
    let status = sim.status();
    let lost = status.drops.queue_full;
    assert!(lost >= 30, "{status:?}");
    assert_eq!(
        (status.dropped, status.drops.refused),
        (lost, 0),
        "{status:?}"
    );
    let stored = stored(&server);
    assert_eq!(
        stored.len() as u64 + lost,
        sim.collected as u64,
        "every report accounted for"
    );
    let expected: Vec<i64> = (lost as i64..sim.collected).collect();
    assert_eq!(
        stored, expected,
        "the oldest were dropped; the rest stored in order"
    );
    // The first drop (of the 11th report, at 5 s) was told at once; the
    // rest, as reports, at the first collection a minute later.
    assert_eq!(sim.delivery.drop_log_told().queue_full, 1);
    sim.run_until(Duration::from_millis(64_999)).await;
    assert_eq!(sim.delivery.drop_log_told().queue_full, 1);
    sim.run_until(Duration::from_secs(65)).await;
    assert_eq!(sim.delivery.drop_log_told(), status.drops, "all drops told");
}

/// Finding 4: reports the server refuses by name are counted as reports,
/// not as log lines.
#[tokio::test]
async fn reports_refused_by_name_are_counted_each() {
    // The 44 reports collected in the outage are back-filled in batches,
    // whose answers refuse those with an odd number by name.
    let (server, mut sim) = scenario(QUEUE, |at, path, body| {
        if at < 22_000 {
            return Answer::hang_up();
        }
        if path != "/api/v1/reports" {
            return healthy(path, body);
        }
        let reports: Vec<Report> = serde_json::from_slice(body).expect("reports");
        let rejected: Vec<String> = reports
            .iter()
            .enumerate()
            .filter(|(_, r)| number(r) < 44 && number(r) % 2 == 1)
            .map(|(i, _)| format!(r#"{{"index":{i},"error":"odd","field":"ram_used_mb"}}"#))
            .collect();
        let accepted = reports.len() - rejected.len();
        Answer::json(
            200,
            format!(
                r#"{{"accepted":{accepted},"rejected":[{}]}}"#,
                rejected.join(",")
            ),
        )
    })
    .await;
    sim.recover(Duration::from_secs(22)).await;

    let queued = 44;
    let refused = 22;
    let status = sim.status();
    assert_eq!(status.drops.refused, refused, "{status:?}");
    assert_eq!(status.dropped, refused, "{status:?}");
    let mut expected: Vec<i64> = (0..queued).filter(|n| n % 2 == 0).collect();
    expected.extend(queued..sim.collected);
    assert_eq!(stored(&server), expected);
}

/// Finding 5: the server asks for 5 s with `Retry-After`; no request comes
/// before.
#[tokio::test]
async fn retry_after_is_honoured() {
    let (server, mut sim) = scenario(QUEUE, |at, path, body| {
        if at < 3_000 {
            Answer::json(
                503,
                r#"{"error":"the server cannot store reports right now; retry later"}"#,
            )
            .retry_after("5")
        } else {
            healthy(path, body)
        }
    })
    .await;
    sim.recover(Duration::from_secs(3)).await;

    assert_none_lost(&sim, &server);
    let times = sim.request_times();
    assert!(times.len() >= 2, "{times:?}");
    assert_eq!(times[0], 0);
    assert!(
        times[1] >= 5_000,
        "retried {} ms after a Retry-After: 5",
        times[1]
    );
}

/// Finding 6: after 2 minutes with nothing listening, the queue flows within
/// 10 s of the server's return, and the server was not hammered meanwhile.
#[tokio::test]
async fn the_backlog_flows_within_10_s_of_the_return() {
    // The backoff's draws, fixed: the count of attempts is asserted below.
    fastrand::seed(13);
    let (server, mut sim) = scenario(QUEUE, |at, path, body| match at {
        0..120_000 => Answer::hang_up(),
        _ => healthy(path, body),
    })
    .await;
    sim.run_until(Duration::from_millis(119_999)).await;
    let collected_while_down = sim.collected;
    let attempts_while_down = server.received().len();
    sim.run_until(Duration::from_secs(130)).await;

    let stored = stored(&server);
    assert!(
        stored.len() as i64 >= collected_while_down,
        "{} of {collected_while_down} stored within 10 s",
        stored.len()
    );
    // One attempt every 4 s on average (the cap is 8 s): 30 in 2 min; never
    // more than one every 2 s, when the agent's normal cadence is 0.5 s.
    assert!(
        (10..=60).contains(&attempts_while_down),
        "{attempts_while_down} attempts in 2 min"
    );
    sim.drain(Duration::from_millis(130_500)).await;
    assert_none_lost(&sim, &server);
}

/// Finding 7: a server taking batches of at most 4 (413 beyond), and a
/// backlog of a minute (120 reports): each 413 lowers the size the agent
/// may grow back to, so the refusals stop after a few, and then the
/// batches stay at 4 instead of doubling back into a 413 every other time.
#[tokio::test]
async fn the_accepted_batch_size_is_remembered() {
    let (server, mut sim) = scenario(QUEUE, |at, path, body| {
        if at < 60_000 {
            return Answer::hang_up();
        }
        let len = serde_json::from_slice::<Vec<serde_json::Value>>(body).map_or(0, |v| v.len());
        if path == "/api/v1/reports" && len > 4 {
            Answer::json(413, r#"{"error":"payload too large"}"#)
        } else {
            healthy(path, body)
        }
    })
    .await;
    sim.recover(Duration::from_secs(60)).await;

    assert_none_lost(&sim, &server);
    let batches: Vec<(usize, u16)> = server
        .received()
        .iter()
        .filter(|r| r.path == "/api/v1/reports")
        .filter_map(|r| {
            let len = serde_json::from_slice::<Vec<Report>>(&r.body).ok()?.len();
            Some((len, r.status?))
        })
        .collect();
    let refused = batches.iter().filter(|(_, status)| *status == 413).count();
    // Halved down to a size that fits (from 120: 120, 60, 30, 15 and 7
    // refused, 3 fits), then each size between it and the smallest refused
    // is tried at most once (6, then 5). The backlog is 120 to 136 reports,
    // depending on the backoff's draws: 7 or 8 refusals in all.
    assert!((7..=8).contains(&refused), "{refused} refused: {batches:?}");
    let last_refusal = batches
        .iter()
        .rposition(|(_, status)| *status == 413)
        .expect("refusals");
    let fours = batches[last_refusal..]
        .iter()
        .filter(|&&batch| batch == (4, 200))
        .count();
    assert!(fours >= 20, "settled on 4: {batches:?}");
}
