//! `GET /api/v1/live` over a real connection on 127.0.0.1:0: the snapshot,
//! device events in order, a device going offline as the clock moves,
//! deletions, one device's stream, authentication, shutdown.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::auth::NewToken;
use tailmon_server::{Credentials, ManualClock, ServerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Running, report, within};

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn at(device: &str, secs: i64, cpu: f64) -> Report {
    let mut r = report(device, cpu, 100);
    r.last_seen = start() + time::Duration::seconds(secs);
    r
}

/// One event of the stream: its name (`comment` for a `:` line, `retry`
/// for the retry field) and its data.
#[derive(Debug)]
struct Event {
    name: String,
    data: String,
}

/// A raw HTTP/1.1 reader of an event stream, decoding chunked framing
/// (the reload tests use it too).
pub(crate) struct LiveReader {
    stream: TcpStream,
    /// Received, not yet decoded.
    raw: Vec<u8>,
    /// Decoded body, not yet split into events.
    body: String,
    pub(crate) status: u16,
    head: String,
}

impl LiveReader {
    pub(crate) async fn open(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reader = Self {
            stream,
            raw: Vec::new(),
            body: String::new(),
            status: 0,
            head: String::new(),
        };
        loop {
            if let Some(end) = reader.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                reader.head = String::from_utf8_lossy(&reader.raw[..end]).into_owned();
                reader.raw.drain(..end + 4);
                reader.status = reader.head[9..12].parse().unwrap();
                return reader;
            }
            reader.fill().await;
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = within(self.stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "the stream ended");
        self.raw.extend_from_slice(&chunk[..n]);
    }

    /// Moves whole chunks from `raw` to `body`.
    fn decode(&mut self) {
        while let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.trim(), 16).unwrap();
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            let data = &self.raw[line_end + 2..line_end + 2 + size];
            self.body.push_str(std::str::from_utf8(data).unwrap());
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    async fn next(&mut self) -> Event {
        loop {
            self.decode();
            if let Some(end) = self.body.find("\n\n") {
                let block: String = self.body.drain(..end + 2).collect();
                let mut event = Event {
                    name: "message".into(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event: ") {
                        event.name = name.into();
                    } else if let Some(data) = line.strip_prefix("data: ") {
                        event.data = data.into();
                    } else if let Some(retry) = line.strip_prefix("retry: ") {
                        event.name = "retry".into();
                        event.data = retry.into();
                    } else if line.starts_with(':') {
                        event.name = "comment".into();
                        event.data = line.into();
                    }
                }
                return event;
            }
            self.fill().await;
        }
    }

    /// The next event that is not a comment, with its data as JSON.
    pub(crate) async fn next_json(&mut self) -> (String, Value) {
        loop {
            let event = self.next().await;
            if event.name != "comment" {
                let data =
                    serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("{e}: {event:?}"));
                return (event.name, data);
            }
        }
    }
}

#[tokio::test]
async fn events_arrive_in_order_and_a_device_going_offline_is_one() {
    let clock = Arc::new(ManualClock::new(start()));
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .unwrap();
    let ingest = server.ingest().clone();
    ingest.ingest(at("a", 0, 10.0)).await.unwrap();
    let running = Running::start(server).await;

    let mut live = LiveReader::open(running.addr, "/api/v1/live", None).await;
    assert_eq!(live.status, 200, "{}", live.head);
    assert!(
        live.head
            .to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{}",
        live.head
    );
    let first = live.next().await;
    assert_eq!(
        (first.name.as_str(), first.data.as_str()),
        ("retry", "3000")
    );
    let (name, snapshot) = live.next_json().await;
    assert_eq!(name, "snapshot");
    assert_eq!(snapshot.as_array().unwrap().len(), 1);
    assert_eq!(snapshot[0]["device_id"], "a");
    assert_eq!(snapshot[0]["status"], "ok");

    clock.advance(Duration::from_secs(5));
    ingest.ingest(at("b", 5, 95.0)).await.unwrap();
    ingest.ingest(at("a", 5, 65.0)).await.unwrap();
    ingest.ingest(at("b", 6, 10.0)).await.unwrap();
    for (device, status) in [("b", "critical"), ("a", "warning"), ("b", "ok")] {
        let (name, data) = live.next_json().await;
        assert_eq!(name, "device");
        assert_eq!(
            (data["device_id"].as_str(), data["status"].as_str()),
            (Some(device), Some(status))
        );
    }

    // 16 s after a's and b's last reports: both go offline, in id order,
    // found by the once-a-second check without any request.
    clock.advance(Duration::from_secs(16));
    for device in ["a", "b"] {
        let (name, data) = live.next_json().await;
        assert_eq!(name, "device");
        assert_eq!(data["device_id"], device);
        assert_eq!(data["status"], "offline");
        assert!(data["offline_since"].is_string(), "{data}");
    }

    assert!(ingest.delete_device("b").await.unwrap());
    let (name, data) = live.next_json().await;
    assert_eq!(name, "deleted");
    assert_eq!(data, serde_json::json!({"device_id": "b"}));
}

#[tokio::test]
async fn one_devices_stream_and_its_snapshot() {
    let clock = Arc::new(ManualClock::new(start()));
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .unwrap();
    let ingest = server.ingest().clone();
    ingest.ingest(at("a", 0, 10.0)).await.unwrap();
    ingest.ingest(at("b", 0, 10.0)).await.unwrap();
    let running = Running::start(server).await;

    let mut none = LiveReader::open(running.addr, "/api/v1/live?device=zz", None).await;
    none.next().await;
    let (name, snapshot) = none.next_json().await;
    assert_eq!(
        (name.as_str(), snapshot),
        ("snapshot", serde_json::json!([]))
    );

    let mut live = LiveReader::open(running.addr, "/api/v1/live?device=b", None).await;
    live.next().await;
    let (_, snapshot) = live.next_json().await;
    assert_eq!(snapshot.as_array().unwrap().len(), 1);
    assert_eq!(snapshot[0]["device_id"], "b");
    ingest.ingest(at("a", 1, 20.0)).await.unwrap();
    ingest.ingest(at("b", 1, 30.0)).await.unwrap();
    let (name, data) = live.next_json().await;
    assert_eq!(name, "device");
    assert_eq!(data["device_id"], "b", "a's event is not in b's stream");
    assert_eq!(data["cpu_usage"], 30.0);

    let bad = LiveReader::open(running.addr, "/api/v1/live?device=no%20way", None).await;
    assert_eq!(bad.status, 400);
    let bad = LiveReader::open(running.addr, "/api/v1/live?colour=red", None).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn the_stream_needs_read_access_and_ends_at_shutdown() {
    let credentials = Arc::new(Credentials::in_memory());
    let read = credentials
        .create_token(NewToken::read("dashboard"))
        .unwrap()
        .token;
    let server = ServerBuilder::new()
        .credentials(credentials)
        .build()
        .unwrap();
    let mut running = Running::start(server).await;
    let refused = LiveReader::open(running.addr, "/api/v1/live", None).await;
    assert_eq!(refused.status, 401);
    let mut live = LiveReader::open(running.addr, "/api/v1/live", Some(&read)).await;
    assert_eq!(live.status, 200, "{}", live.head);
    live.next().await;
    let (name, _) = live.next_json().await;
    assert_eq!(name, "snapshot");
    // Shutting down ends the stream: the server stops, the connection closes.
    running.begin_shutdown();
    running.stopped().await.unwrap();
    let rest = crate::support::read_until_closed(&mut live.stream).await;
    assert!(rest.ends_with(b"0\r\n\r\n") || rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_gets_a_fresh_snapshot() {
    let clock = Arc::new(ManualClock::new(start()));
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .unwrap();
    let ingest = server.ingest().clone();
    let running = Running::start(server).await;
    let mut live = LiveReader::open(running.addr, "/api/v1/live", None).await;
    live.next().await;
    let (name, _) = live.next_json().await;
    assert_eq!(name, "snapshot");
    // While the reader reads nothing, far more events than the buffer holds
    // (4,096), and far more bytes than the sockets hold: the server stops
    // writing and the reader falls behind.
    let events = 12_000;
    for i in 0..events {
        let mut r = at(&format!("d{}", i % 50), i / 50, 1.0);
        r.os_info = "x".repeat(250);
        r.cpu_per_core = Some(vec![12.345_678; 128]);
        ingest.ingest(r).await.unwrap();
    }
    ingest.ingest(at("last", events / 50, 1.0)).await.unwrap();
    // Reading now: somewhere a fresh snapshot stands in for what was lost,
    // and the stream goes on to the last change.
    let mut snapshots = 0;
    let mut received = 0;
    loop {
        let (name, data) = live.next_json().await;
        received += 1;
        if name == "snapshot" {
            snapshots += 1;
            if data
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["device_id"] == "last")
            {
                break;
            }
        } else if data["device_id"] == "last" {
            break;
        }
    }
    assert!(snapshots >= 1, "a fresh snapshot after falling behind");
    assert!(received < events, "events were skipped: {received}");
}
