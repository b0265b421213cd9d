//! Hostile input at the HTTP edge, on a real server on 127.0.0.1:0: bodies
//! over the limit sent by a client that goes on sending, headers too large
//! or trickled, thousands of idle connections, and a flood of new device
//! ids. Each is refused or cut off in bounded time and memory, counted, and
//! other clients are served meanwhile. (Slow bodies and unread answers are
//! in `slow_client.rs`; the device caps' rules in `device_cap.rs` and
//! `auth.rs`.)

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tailmon_server::auth::NewToken;
use tailmon_server::{ServeOptions, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::people::people;
use crate::support::{Running, read_until_closed, report, within};

const HEALTHZ_THEN_CLOSE: &[u8] =
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// A server open to all, without rate limits: these tests send many
/// requests from one address on purpose.
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The head of a report whose body claims `length` bytes.
fn report_head(length: usize) -> String {
    format!(
        "POST /api/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// The value of `tailmon_reports_refused_total` for `reason`, from the
/// server's Prometheus exposition.
async fn refused(running: &Running, token: Option<&str>, reason: &str) -> u64 {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", running.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let exposition = request
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("its text");
    let label = format!("reason=\"{reason}\"");
    exposition
        .lines()
        .filter(|line| line.starts_with("tailmon_reports_refused_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// This process's resident memory in KiB (server and test clients both).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Sends a report head claiming `length` bytes, then `length` bytes of
/// spaces in `chunk`-byte writes with `pause` between them, then asks for
/// /healthz on the same connection; returns all the server answered.
async fn send_oversized(length: usize, chunk: usize, pause: Option<Duration>) -> (Running, String) {
    let running = open_server(ServeOptions::new()).await;
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    stream
        .write_all(report_head(length).as_bytes())
        .await
        .expect("send the head");
    let spaces = vec![b' '; chunk];
    let mut sent = 0;
    while sent < length {
        let n = chunk.min(length - sent);
        // Before the server discarded the rest, this failed with a broken
        // pipe or a reset once the server had answered and closed.
        within(stream.write_all(&spaces[..n]))
            .await
            .unwrap_or_else(|error| panic!("sending the body failed after {sent} bytes: {error}"));
        sent += n;
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
    stream
        .write_all(HEALTHZ_THEN_CLOSE)
        .await
        .expect("send the next request");
    let answers = text(&read_until_closed(&mut stream).await);
    (running, answers)
}

fn assert_readable_413(answers: &str) {
    assert!(answers.starts_with("HTTP/1.1 413"), "{answers}");
    let body_start = answers.find("\r\n\r\n").expect("a head") + 4;
    let body_end = answers[body_start..]
        .find("HTTP/1.1 ")
        .map_or(answers.len(), |at| body_start + at);
    let error: Value = serde_json::from_str(&answers[body_start..body_end])
        .unwrap_or_else(|e| panic!("the 413 is not JSON ({e}): {answers}"));
    let message = error["error"].as_str().expect("an error message");
    assert!(message.contains("65536"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_sent_at_once_gets_a_413_the_client_can_read() {
    // 4 MiB against the 64 KiB limit: far more than the server reads before
    // it answers, and more than loopback's socket buffers hold.
    let (running, answers) = send_oversized(4 << 20, 256 * 1024, None).await;
    assert_readable_413(&answers);
    // The body was read to its end, so the connection served the next
    // request too.
    assert!(
        answers.contains("HTTP/1.1 200") && answers.ends_with(r#"{"status":"ok"}"#),
        "{answers}"
    );
    assert_eq!(refused(&running, None, "too_large").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_trickled_gets_a_413_the_client_can_read() {
    // 1 MiB in 16 KiB writes, 2 ms apart: the client is still sending long
    // after the server has decided.
    let (running, answers) =
        send_oversized(1 << 20, 16 * 1024, Some(Duration::from_millis(2))).await;
    assert_readable_413(&answers);
    assert!(answers.ends_with(r#"{"status":"ok"}"#), "{answers}");
    assert_eq!(refused(&running, None, "too_large").await, 1);
}

/// The head of a report claiming `length` bytes that waits for "100
/// Continue" before sending them.
fn report_head_expecting(length: usize) -> String {
    report_head(length).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_told_to_continue_then_refused_413_reads_the_answer() {
    let running = open_server(ServeOptions::new()).await;
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    let length = 4 << 20;
    stream
        .write_all(report_head_expecting(length).as_bytes())
        .await
        .expect("send the head");
    let mut interim = [0u8; 25];
    within(stream.read_exact(&mut interim))
        .await
        .expect("an interim answer");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    within(stream.write_all(&vec![b' '; length]))
        .await
        .expect("sending the body it was asked for");
    stream
        .write_all(HEALTHZ_THEN_CLOSE)
        .await
        .expect("send the next request");
    let answers = text(&read_until_closed(&mut stream).await);
    assert_readable_413(&answers);
    assert!(answers.ends_with(r#"{"status":"ok"}"#), "{answers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_refused_before_it_was_asked_to_continue_is_answered_at_once() {
    let server = ServerBuilder::new()
        .credentials(people())
        .build()
        .expect("valid");
    let running = Running::start(server).await;
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    stream
        .write_all(report_head_expecting(4 << 20).as_bytes())
        .await
        .expect("send the head");
    // No token: refused before the body is looked at, and nothing of it is
    // asked for; the client, which has sent none, hears so at once.
    let answer = text(&read_until_closed(&mut stream).await);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_beyond_what_the_server_discards_is_cut_and_the_server_goes_on() {
    let running = open_server(ServeOptions::new()).await;
    let length = 64 << 20;
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    stream
        .write_all(report_head(length).as_bytes())
        .await
        .expect("send the head");
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let spaces = vec![b' '; 256 * 1024];
        let mut sent = 0usize;
        while sent < length {
            if writer.write_all(&spaces).await.is_err() {
                break;
            }
            sent += spaces.len();
        }
        sent
    });
    let mut answer = Vec::new();
    within(reader.read_to_end(&mut answer)).await.ok();
    let sent = within(sender).await.expect("the sender task");
    // Cut well before the client could send it all: the server read and
    // dropped at most MAX_DISCARDED_BODY_BYTES (plus what socket buffers
    // hold), not 64 MiB.
    assert!(
        sent < length,
        "the server read all {sent} bytes in {:?}",
        started.elapsed()
    );
    // Whatever this client saw, others are served.
    let mut next = TcpStream::connect(running.addr).await.expect("connect");
    next.write_all(HEALTHZ_THEN_CLOSE).await.expect("send");
    let answer = text(&read_until_closed(&mut next).await);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// What the server answers `request`, read until it closes.
async fn answer_to(running: &Running, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    text(&read_until_closed(&mut stream).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431_and_the_server_goes_on() {
    let running = open_server(ServeOptions::new()).await;

    // One header far larger than the 64 KiB the server reads ahead. (The
    // server stops once 64 KiB are buffered without the headers' end, but
    // one read may bring in up to 64 KiB more: headers of up to 128 KiB may
    // pass.)
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    let answer = answer_to(&running, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Too many small headers.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for n in 0..500 {
        many.push_str(&format!("X-Header-{n}: {n}\r\n"));
    }
    many.push_str("\r\n");
    let answer = answer_to(&running, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A URI longer than the read-ahead buffer.
    let long_uri = format!(
        "GET /healthz?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "q".repeat(256 * 1024)
    );
    let answer = answer_to(&running, long_uri.as_bytes()).await;
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 414"),
        "{answer}"
    );

    let answer = answer_to(&running, HEALTHZ_THEN_CLOSE).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_are_cut_at_the_header_deadline_while_others_are_served() {
    let header_timeout = Duration::from_secs(3);
    let running = open_server(ServeOptions::new().header_read_timeout(header_timeout)).await;
    let addr = running.addr;
    let started = Instant::now();
    // 100 clients, each sending its headers a byte every 50 ms: they would
    // need minutes to finish, and never would, since the header never ends.
    let loris = (0..100)
        .map(|_| {
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    .await
                    .expect("send");
                let (mut reader, mut writer) = stream.into_split();
                let trickle = async {
                    loop {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if writer.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                };
                let mut answer = Vec::new();
                tokio::select! {
                    () = trickle => {}
                    _ = reader.read_to_end(&mut answer) => {}
                }
                (started.elapsed(), answer)
            })
        })
        .collect::<Vec<_>>();

    // Meanwhile, other clients are served at once.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let status = client
            .get(format!("{}/healthz", running.url()))
            .send()
            .await
            .expect("GET /healthz")
            .status();
        assert_eq!(status, 200);
    }
    assert!(
        started.elapsed() < header_timeout,
        "the others were not served while the slow clients were connected: {:?}",
        started.elapsed()
    );

    for one in loris {
        let (cut_after, answer) = within(one).await.expect("the loris task");
        assert!(!answer.starts_with(b"HTTP/1.1 200"), "{}", text(&answer));
        assert!(
            cut_after >= header_timeout / 2 && cut_after < header_timeout * 5,
            "cut after {cut_after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_leave_new_clients_served_in_bounded_memory() {
    // Each connection takes two descriptors in this process (both ends);
    // leave room for the rest.
    let open_files = rlimit_nofile();
    let connections = 2_000.min(open_files.saturating_sub(256) / 2);
    assert!(connections >= 200, "open-file limit too low: {open_files}");
    let running = open_server(
        ServeOptions::new()
            .max_connections(connections + 16)
            .max_connections_per_address(connections + 16)
            .header_read_timeout(Duration::from_secs(120)),
    )
    .await;
    let addr = running.addr;
    // Warm up: the server's first request allocates what every later one
    // reuses.
    answer_to(&running, HEALTHZ_THEN_CLOSE).await;
    let before = rss_kib();

    // Agents keep their connection open between reports: each sends one
    // request, reads the answer, and stays connected, idle.
    let started = Instant::now();
    let idle: Vec<TcpStream> = futures_util::stream::iter(0..connections)
        .map(|_| async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .await
                .expect("send");
            let mut answer = Vec::new();
            let mut chunk = [0u8; 1024];
            while !answer.ends_with(br#"{"status":"ok"}"#) {
                let n = stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "closed: {}", text(&answer));
                answer.extend_from_slice(&chunk[..n]);
            }
            stream
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let opened_in = started.elapsed();
    let after = rss_kib();

    // With all of them open, a new client is served at once.
    let asked = Instant::now();
    let answer = within(answer_to(&running, HEALTHZ_THEN_CLOSE)).await;
    let served_in = asked.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let per_connection = after.saturating_sub(before) * 1024 / connections as u64;
    eprintln!(
        "idle connections: {connections} opened in {opened_in:?}; RSS {before} KiB -> {after} KiB \
         ({per_connection} bytes each, both ends); a new client served in {served_in:?}"
    );
    // Generous: a hyper connection idles in a few KiB; 64 KiB each would
    // mean buffers held per idle connection.
    assert!(
        per_connection < 64 * 1024,
        "{per_connection} bytes per idle connection"
    );
    assert_eq!(idle.len(), connections);
}

/// The soft limit on open files of this process.
fn rlimit_nofile() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_device_ids_is_refused_by_both_caps_counted_in_bounded_memory() {
    const PER_TOKEN: usize = 50;
    const SERVER_CAP: usize = 80;
    const FLOOD: usize = 1_000;
    let credentials = people();
    let token = |name: &str| {
        credentials
            .create_token(NewToken::agent(name).device("flood-*"))
            .expect("token")
            .token
    };
    let (first, second) = (token("first"), token("second"));
    let read = credentials
        .create_token(NewToken::read("reader"))
        .expect("token")
        .token;
    let server = ServerBuilder::new()
        .credentials(credentials.clone())
        .max_devices_per_token(PER_TOKEN)
        .max_devices(SERVER_CAP)
        .rate_limit_per_address(None)
        .rate_limit_per_token(None)
        .build()
        .expect("valid");
    let running = Running::start(server).await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/metrics", running.url());
    let before = rss_kib();

    let flood = |token: String, from: usize| {
        let (client, url) = (client.clone(), url.clone());
        futures_util::stream::iter(from..from + FLOOD)
            .map(move |n| {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                async move {
                    client
                        .post(url)
                        .bearer_auth(token)
                        .json(&report(&format!("flood-{n}"), 5.0, 5))
                        .send()
                        .await
                        .expect("POST")
                        .status()
                        .as_u16()
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<u16>>()
    };
    let count = |statuses: &[u16], status: u16| statuses.iter().filter(|&&s| s == status).count();

    // The first token's flood stops at its own cap...
    let statuses = flood(first, 0).await;
    assert_eq!(count(&statuses, 200), PER_TOKEN, "{statuses:?}");
    assert_eq!(count(&statuses, 403), FLOOD - PER_TOKEN);
    // ...the second's at what is left of the server's.
    let statuses = flood(second, FLOOD).await;
    assert_eq!(
        count(&statuses, 200),
        SERVER_CAP - PER_TOKEN,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, 429), FLOOD - (SERVER_CAP - PER_TOKEN));
    let after = rss_kib();

    let devices: Value = client
        .get(format!("{}/api/all_metrics", running.url()))
        .bearer_auth(&read)
        .send()
        .await
        .expect("GET /api/all_metrics")
        .json()
        .await
        .expect("JSON");
    assert_eq!(devices.as_array().expect("an array").len(), SERVER_CAP);
    assert_eq!(
        refused(&running, Some(&read), "forbidden").await,
        (FLOOD - PER_TOKEN) as u64
    );
    assert_eq!(
        refused(&running, Some(&read), "device_limit").await,
        (FLOOD - (SERVER_CAP - PER_TOKEN)) as u64
    );
    // Refused ids are kept nowhere: the store holds the cap's worth (above).
    // The process's memory is shared with the tests running alongside, so
    // it is reported here, not asserted.
    eprintln!(
        "device flood: {} requests, {SERVER_CAP} devices kept; RSS {before} KiB -> {after} KiB",
        2 * FLOOD
    );
}
