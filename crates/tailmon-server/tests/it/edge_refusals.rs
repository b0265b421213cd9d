//! Refusals at the HTTP edge that were silent or bare, on a real server on
//! 127.0.0.1:0: connections over the per-address cap (counted in
//! `/metrics`), health probes (not counted against the per-address rate
//! limit), and the answers hyper writes to requests it cannot parse (`431`,
//! `400`), which carry the JSON error body like every other refusal.

use std::sync::Arc;

use serde_json::Value;
use tailmon_core::OffsetDateTime;
use tailmon_server::auth::RateLimit;
use tailmon_server::{ManualClock, ServeOptions, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Running, read_until_closed, within};

/// A server open to all, without rate limits, served with `options`.
async fn open_server(options: ServeOptions) -> Running {
    Running::start_with(
        ServerBuilder::new()
            .open_access()
            .rate_limit_per_address(None)
            .build()
            .expect("valid"),
        options,
    )
    .await
}

/// Reads one answer (head and `Content-Length` body) from a keep-alive
/// connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    within(async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&received).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .and_then(|v| v.trim().parse::<usize>().ok())
                    })
                    .unwrap_or(0);
                if received.len() >= end + 4 + length {
                    return text;
                }
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before the whole answer: {text}");
            received.extend_from_slice(&chunk[..n]);
        }
    })
    .await
}

/// The status and JSON body of the one answer in `answer`.
fn status_and_json(answer: &str) -> (u16, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head");
    let status = head[9..12].parse().expect("a status");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (status, serde_json::from_str(body).expect("a JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_address_cap_are_closed_and_counted_in_metrics() {
    let running = open_server(ServeOptions::new().max_connections_per_address(2)).await;
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(running.addr).await.expect("connect");
        stream.write_all(healthz).await.expect("send");
        let answer = read_answer(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }

    // Two more from the same address: closed at once, no answer.
    for _ in 0..2 {
        let mut over = TcpStream::connect(running.addr).await.expect("connect");
        let _ = over.write_all(healthz).await;
        let answer = read_until_closed(&mut over).await;
        assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    }

    // One of those held asks for /metrics: both closes counted.
    let mut stream = held.pop().expect("held");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send");
    let exposition = read_answer(&mut stream).await;
    assert!(
        exposition.contains("# TYPE tailmon_connections_dropped_total counter"),
        "{exposition}"
    );
    assert!(
        exposition.contains("tailmon_connections_dropped_total{reason=\"address_cap\"} 2\n"),
        "{exposition}"
    );
    assert!(
        exposition.contains("tailmon_connections_dropped_total{reason=\"stalled_reader\"} 0\n"),
        "{exposition}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_do_not_spend_the_address_rate_limit() {
    // A bucket of 5 that never refills: the clock stands still.
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let running = Running::start_with(
        ServerBuilder::new()
            .open_access()
            .clock(clock)
            .rate_limit_per_address(RateLimit::new(1, 5))
            .build()
            .expect("valid"),
        ServeOptions::new(),
    )
    .await;
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{}{path}", running.url())).send();
        async move { request.await.expect("answered").status().as_u16() }
    };
    for _ in 0..25 {
        assert_eq!(get("/healthz").await, 200);
        assert_eq!(get("/readyz").await, 200);
    }
    // The address's whole bucket is still there for the API, and then gone.
    for n in 0..5 {
        assert_eq!(get("/api/v1/devices").await, 200, "request {n}");
    }
    assert_eq!(get("/api/v1/devices").await, 429);
    // Probes still answer once the address is limited.
    assert_eq!(get("/healthz").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_cannot_parse_get_the_json_error_body() {
    let running = open_server(ServeOptions::new()).await;
    let answer_to = |request: Vec<u8>| async move {
        let mut stream = TcpStream::connect(running.addr).await.expect("connect");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(&request).await;
        String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned()
    };

    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    let answer = answer_to(huge.into_bytes()).await;
    let (status, error) = status_and_json(&answer);
    assert_eq!(status, 431, "{answer}");
    assert_eq!(
        error["error"],
        "the request's headers are too large: the server reads at most 64 KiB of them"
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n")
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("\r\nx-content-type-options: nosniff\r\n")
    );

    let malformed = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n".to_vec();
    let answer = answer_to(malformed).await;
    let (status, error) = status_and_json(&answer);
    assert_eq!(status, 400, "{answer}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("not valid HTTP/1.1"),
        "{error}"
    );

    // The router's own 400s and the next client are untouched.
    let answer = answer_to(
        b"POST /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{]"
            .to_vec(),
    )
    .await;
    let (status, error) = status_and_json(&answer);
    assert_eq!(status, 400, "{answer}");
    assert!(
        !error["error"].as_str().unwrap().contains("HTTP/1.1"),
        "{error}"
    );
    let answer = answer_to(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
