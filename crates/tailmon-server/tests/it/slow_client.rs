//! Clients that are slow on purpose (slow loris): headers sent in part,
//! bodies that stall or trickle, answers never read, idle connections
//! holding every slot. The server cuts them off on its timeouts and serves
//! others meanwhile.

use std::time::Duration;

use tailmon_server::{ServeOptions, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::support::{Running, read_until_closed, within};

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/// Headers, but not the empty line that ends them.
const PARTIAL_HEADERS: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

async fn start(options: ServeOptions) -> Running {
    Running::start_with(
        ServerBuilder::new().open_access().build().expect("valid"),
        options,
    )
    .await
}

async fn connect_and_send(running: &Running, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    stream
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_headers_are_cut_off_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let running = start(ServeOptions::new().header_read_timeout(timeout)).await;

    let started = Instant::now();
    let mut slow = connect_and_send(&running, PARTIAL_HEADERS).await;
    let answer = read_until_closed(&mut slow).await;
    let waited = started.elapsed();
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "served a half request: {}",
        text(&answer)
    );
    // Closed by the timeout, not at once for some other reason.
    assert!(waited >= timeout / 2, "closed after {waited:?}");

    // The server is fine and serves whole requests.
    let mut whole = connect_and_send(&running, HEALTHZ).await;
    let mut answer = [0u8; 12];
    within(whole.read_exact(&mut answer))
        .await
        .expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let running = start(ServeOptions::new().header_read_timeout(timeout)).await;

    let mut idle = connect_and_send(&running, HEALTHZ).await;
    let mut answer = [0u8; 12];
    within(idle.read_exact(&mut answer))
        .await
        .expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    // Kept alive, then nothing more: the slot is not held forever.
    let rest = text(&read_until_closed(&mut idle).await);
    assert!(rest.ends_with(r#"{"status":"ok"}"#), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_third_client_waits_for_a_slot() {
    let header_timeout = Duration::from_secs(2);
    let running = start(
        ServeOptions::new()
            .max_connections(2)
            .header_read_timeout(header_timeout),
    )
    .await;

    // Two slow clients take both slots.
    let mut first = connect_and_send(&running, PARTIAL_HEADERS).await;
    let mut second = connect_and_send(&running, PARTIAL_HEADERS).await;
    let held_since = Instant::now();
    // A third client sends a whole request; the kernel queues its connection.
    let mut third = connect_and_send(&running, HEALTHZ).await;

    // While both slots are held, it is not served. (A correct server never
    // answers in this window; the window ends well before the slots free.)
    let mut answer = [0u8; 12];
    let early =
        tokio::time::timeout(Duration::from_millis(500), third.read_exact(&mut answer)).await;
    assert!(
        early.is_err(),
        "served while both slots were held: {early:?} {}",
        text(&answer)
    );
    assert!(
        held_since.elapsed() < header_timeout,
        "the test itself was too slow to tell; the slots may have freed"
    );

    // The header read timeout frees the slots, and the third is served.
    within(third.read_exact(&mut answer))
        .await
        .expect("an answer once a slot frees");
    assert_eq!(&answer, b"HTTP/1.1 200", "{}", text(&answer));
    assert!(held_since.elapsed() >= header_timeout / 2);
    for slow in [&mut first, &mut second] {
        let answer = read_until_closed(slow).await;
        assert!(!answer.starts_with(b"HTTP/1.1 200"), "{}", text(&answer));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_the_connection_closed() {
    let running = start(ServeOptions::new().request_body_timeout(Duration::from_millis(300))).await;

    let mut stalled = connect_and_send(
        &running,
        b"POST /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"device_id\":",
    )
    .await;
    let answer = text(&read_until_closed(&mut stalled).await);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("request body not received within"),
        "{answer}"
    );
    // Like every answer, it carries the security headers.
    let head = answer.to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'self'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
    ] {
        assert!(head.contains(header), "{header} missing: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_gets_408_too() {
    // One byte every 50 ms never leaves a 300 ms gap, but the whole body is
    // due within 300 ms of the headers.
    let running = start(ServeOptions::new().request_body_timeout(Duration::from_millis(300))).await;
    let mut trickle = connect_and_send(
        &running,
        b"POST /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
    )
    .await;
    let mut answer = Vec::new();
    for _ in 0..400 {
        if trickle.write_all(b" ").await.is_err() {
            break; // closed by the server
        }
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(50), trickle.read(&mut chunk)).await {
            Err(_) => continue, // nothing yet: trickle on
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    answer.extend(read_until_closed(&mut trickle).await);
    let answer = text(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_slot() {
    let header_timeout = Duration::from_secs(5);
    let running = start(
        ServeOptions::new()
            .max_connections_per_address(2)
            .header_read_timeout(header_timeout),
    )
    .await;

    // 127.0.0.1 holds its two connections with half-sent headers.
    let _first = connect_and_send(&running, PARTIAL_HEADERS).await;
    let _second = connect_and_send(&running, PARTIAL_HEADERS).await;
    let held_since = Instant::now();
    // Its third is closed as soon as it is accepted, unanswered.
    let mut third = connect_and_send(&running, HEALTHZ).await;
    let answer = read_until_closed(&mut third).await;
    assert!(answer.is_empty(), "answered: {}", text(&answer));
    assert!(
        held_since.elapsed() < header_timeout,
        "closed by the cap, not by the timeout"
    );

    // Another address (loopback has all of 127.0.0.0/8) is served meanwhile.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.2:0".parse().expect("address"))
        .expect("bind 127.0.0.2");
    let mut other = socket.connect(running.addr).await.expect("connect");
    other.write_all(HEALTHZ).await.expect("send");
    let mut status = [0u8; 12];
    within(other.read_exact(&mut status))
        .await
        .expect("an answer");
    assert_eq!(&status, b"HTTP/1.1 200", "{}", text(&status));
}

/// A connection from `address` with a 4 KB receive buffer.
async fn small_window_client(running: &Running, address: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("receive buffer");
    socket
        .bind(format!("{address}:0").parse().expect("address"))
        .expect("bind");
    socket.connect(running.addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_their_answers_are_dropped_and_free_their_slots() {
    // The review's attack: clients with a small receive window pipeline
    // hundreds of requests for the largest asset and never read. Without a
    // send deadline they held every slot for as long as they liked.
    let running = start(
        ServeOptions::new()
            .max_connections(3)
            .send_timeout(Duration::from_millis(500)),
    )
    .await;
    let pipeline = b"GET /js/fleet.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(400);
    let mut stalled = Vec::new();
    for address in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let mut client = small_window_client(&running, address).await;
        client.write_all(&pipeline).await.expect("send");
        stalled.push(client);
    }
    // Every slot is held by a client that does not read. A new client is
    // served once they are dropped.
    let mut fresh = connect_and_send(&running, HEALTHZ).await;
    let mut answer = [0u8; 12];
    within(fresh.read_exact(&mut answer))
        .await
        .expect("an answer once the stalled clients are dropped");
    assert_eq!(&answer, b"HTTP/1.1 200", "{}", text(&answer));
    // A slot frees only when its connection has closed: the stalled
    // clients, still open on their side, were dropped by the server.
    drop(stalled);
}
