//! Each cause of a failed delivery against a real peer on 127.0.0.1: the
//! client's error tells it, and the agent's log says it in its own words,
//! a repeated one at most once a minute.

use super::*;
use crate::captured_logs::CapturedLogs;
use crate::failure_peers::{closed_port, plain_http, silent, tls_untrusted};

/// Offers one report through `client` and returns the error the attempt
/// failed with, the delivery's log lines, and how many reports it kept.
async fn fail_once(client: crate::ClientBuilder) -> (Error, Vec<String>, usize) {
    let client = client.build().expect("valid URL");
    let error = client
        .send(&report(0))
        .await
        .expect_err("the peer cannot take reports");
    let logs = CapturedLogs::default();
    let _guard = logs.capture();
    let (mut delivery, _) = new_delivery(
        crate::Client::builder(client.metrics_url().as_str()).timeout(client.timeout()),
        100,
        Duration::from_secs(60),
    );
    delivery.offer(report(0), Instant::now());
    settle(&mut delivery).await;
    (error, logs.lines(), delivery.queue.len())
}

fn the_line<'a>(lines: &'a [String], needle: &str) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
    assert_eq!(found.len(), 1, "one line with {needle:?} in {lines:#?}");
    found[0]
}

#[tokio::test]
async fn connection_refused() {
    let peer = closed_port().await;
    let (error, lines, kept) = fail_once(Client::builder(peer.http("/api/metrics"))).await;
    assert!(
        error.is_connection_refused() && error.is_connect(),
        "{error:?}"
    );
    assert!(!error.is_unknown_host() && !error.is_tls() && !error.is_timeout());
    assert_eq!(kept, 1, "the report is kept");
    let line = the_line(
        &lines,
        &format!(
            "connection refused by 127.0.0.1:{}: is tailmon-server running and listening there? (check TAILMON_SERVER_URL); reports are kept and retried",
            peer.addr.port()
        ),
    );
    assert!(line.contains("WARN"), "{line}");
}

#[tokio::test]
async fn unknown_host() {
    let (error, lines, kept) = fail_once(Client::builder(
        "http://nonexistent.invalid:3000/api/metrics",
    ))
    .await;
    assert!(error.is_unknown_host() && error.is_connect(), "{error:?}");
    assert!(!error.is_connection_refused() && !error.is_tls());
    assert_eq!(kept, 1);
    let line = the_line(
        &lines,
        "unknown host: the server's name \"nonexistent.invalid\" does not resolve (DNS); check TAILMON_SERVER_URL; reports are kept and retried",
    );
    assert!(line.contains("ERROR"), "{line}");
}

#[tokio::test]
async fn https_to_a_plain_http_server() {
    let peer = plain_http(200).await;
    let (error, lines, kept) = fail_once(Client::builder(peer.https("/api/metrics"))).await;
    assert!(error.is_tls(), "{error:?}");
    assert!(!error.is_connection_refused() && !error.is_unknown_host());
    assert_eq!(kept, 1);
    the_line(
        &lines,
        "TLS mismatch: TAILMON_SERVER_URL starts with https:// but the server speaks plain HTTP; use http://, or serve TLS on the server; reports are kept and retried",
    );
}

#[tokio::test]
async fn an_untrusted_certificate() {
    let peer = tls_untrusted().await;
    let (error, lines, kept) = fail_once(Client::builder(peer.https("/api/metrics"))).await;
    assert!(error.is_tls(), "{error:?}");
    assert_eq!(
        error.tls_problem().as_deref(),
        Some(
            "the server's certificate is not trusted or not valid: signed by a CA this agent does not trust"
        )
    );
    assert_eq!(kept, 1);
    the_line(
        &lines,
        "TLS mismatch: the server's certificate is not trusted or not valid (the server's certificate is not trusted or not valid: signed by a CA this agent does not trust)",
    );
    the_line(&lines, "give the CA that signed it with TAILMON_CA_CERT");
}

#[tokio::test]
async fn plain_http_to_a_tls_server() {
    let peer = tls_untrusted().await;
    let (error, lines, kept) = fail_once(Client::builder(peer.http("/api/metrics"))).await;
    assert!(error.is_tls(), "{error:?}");
    assert!(!error.is_connect(), "connected, then no HTTP answer");
    assert_eq!(kept, 1);
    the_line(
        &lines,
        "TLS mismatch: TAILMON_SERVER_URL starts with http:// but the server does not answer plain HTTP (it speaks TLS?); use https://; reports are kept and retried",
    );
}

#[tokio::test]
async fn a_server_that_never_answers() {
    let peer = silent().await;
    let (error, lines, kept) =
        fail_once(Client::builder(peer.http("/api/metrics")).timeout(Duration::from_millis(300)))
            .await;
    assert!(error.is_timeout(), "{error:?}");
    assert!(!error.is_connect() && !error.is_tls());
    assert_eq!(kept, 1);
    the_line(
        &lines,
        &format!(
            "the server at 127.0.0.1:{} did not answer within 0.3 s (overloaded, or a firewall dropping packets?); reports are kept and retried",
            peer.addr.port()
        ),
    );
}

#[tokio::test]
async fn no_ingest_endpoint_at_the_url() {
    let peer = plain_http(404).await;
    let (error, lines, kept) = fail_once(Client::builder(peer.http("/monitor/api/metrics"))).await;
    assert_eq!(error.status(), Some(404), "{error:?}");
    assert!(!error.is_tls() && !error.is_connect());
    assert_eq!(kept, 1);
    let line = the_line(
        &lines,
        &format!(
            "the server has no ingest endpoint at this URL (http://127.0.0.1:{}/monitor/api/metrics); check TAILMON_SERVER_URL, e.g. http://host:3000/api/metrics; reports are kept and retried",
            peer.addr.port()
        ),
    );
    assert!(line.contains("ERROR"), "{line}");
}

#[tokio::test]
async fn a_repeated_failure_is_logged_once_a_minute_a_new_one_at_once() {
    let refused_peer = closed_port().await;
    let missing_peer = plain_http(404).await;
    let refused = Client::builder(refused_peer.http(""))
        .build()
        .expect("valid")
        .send(&report(0))
        .await
        .expect_err("refused");
    let missing = Client::builder(missing_peer.http(""))
        .build()
        .expect("valid")
        .send(&report(0))
        .await
        .expect_err("404");

    let logs = CapturedLogs::default();
    let _guard = logs.capture();
    let (mut delivery, _) = new_delivery(
        Client::builder(refused_peer.http("")),
        100,
        Duration::from_secs(60),
    );
    let start = Instant::now();
    let s = Duration::from_secs;
    delivery.log_failure(&refused, 1, s(1), start);
    delivery.log_failure(&refused, 2, s(1), start + s(30));
    // Another cause is news: logged at once.
    delivery.log_failure(&missing, 3, s(1), start + s(30));
    delivery.log_failure(&missing, 4, s(1), start + s(59));
    delivery.log_failure(&refused, 5, s(1), start + s(60));

    let refusals = logs.matching("connection refused by");
    assert_eq!(refusals.len(), 2, "{refusals:#?}");
    assert!(
        refusals[0].contains("attempt=1") && refusals[0].contains("failed_attempts_not_logged=0")
    );
    assert!(
        refusals[1].contains("attempt=5") && refusals[1].contains("failed_attempts_not_logged=1")
    );
    let missing = logs.matching("no ingest endpoint");
    assert_eq!(missing.len(), 1, "{:#?}", logs.lines());
    assert!(missing[0].contains("attempt=3"));
}

#[tokio::test]
async fn recovery_is_logged_once_with_the_count_sent() {
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answer = std::sync::Arc::clone(&up);
    let server = ScriptedServer::scripted(move |_, body| {
        if answer.load(std::sync::atomic::Ordering::SeqCst) {
            let (status, body) = accept_all(body);
            Answer::json(status, body)
        } else {
            Answer::json(503, r#"{"error":"store unavailable"}"#)
        }
    })
    .await;
    let logs = CapturedLogs::default();
    let _guard = logs.capture();
    let (mut delivery, status) = delivery(&server);
    delivery.offer(report(0), Instant::now());
    settle(&mut delivery).await;
    delivery.offer(report(1), Instant::now());
    delivery.offer(report(2), Instant::now());
    assert_eq!(delivery.queue.len(), 3);
    assert!(logs.matching("delivery recovered").is_empty());

    up.store(true, std::sync::atomic::Ordering::SeqCst);
    delivery.next_attempt = Instant::now();
    settle(&mut delivery).await;
    assert_eq!(status.borrow().sent, 3);
    let recovered = logs.matching("delivery recovered");
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert!(
        recovered[0].contains(
            "3 queued reports sent; the server takes reports again and the queue is empty"
        ),
        "{}",
        recovered[0]
    );
    assert!(
        recovered[0].contains("sent_from_queue=3"),
        "{}",
        recovered[0]
    );

    // Deliveries after that are no news.
    delivery.offer(report(3), Instant::now());
    settle(&mut delivery).await;
    assert_eq!(status.borrow().sent, 4);
    assert_eq!(logs.matching("delivery recovered").len(), 1);
}
