//! A scripted HTTP/1.1 server on 127.0.0.1 for the client's own tests: it
//! answers each request as a closure says and notes what it received.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// One request the server received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// The `Authorization` header, if any.
    pub(crate) authorization: Option<String>,
    pub(crate) body: Vec<u8>,
}

type Answer = dyn Fn(&str, &[u8]) -> (u16, String) + Send + Sync;

/// Answers `(status, JSON body)` per `(path, body)`; one request per
/// connection (it answers `Connection: close`).
pub(crate) struct ScriptedServer {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl ScriptedServer {
    pub(crate) async fn start(
        answer: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&stream).await else {
                        return;
                    };
                    let (status, body) = answer(&request.path, &request.body);
                    log.lock().expect("not poisoned").push(request);
                    let response = format!(
                        "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    write_all(&stream, response.as_bytes()).await;
                });
            }
        });
        Self { url, received }
    }

    /// The requests received so far, in order.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("not poisoned").clone()
    }
}

async fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let path = head.split_whitespace().nth(1)?.to_owned();
            let header = |wanted: &str| {
                head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case(wanted)
                        .then(|| value.trim().to_owned())
                })
            };
            let length: usize = header("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let body = data[end + 4..end + 4 + length].to_vec();
                let authorization = header("authorization");
                return Some(Received {
                    path,
                    authorization,
                    body,
                });
            }
        }
        stream.readable().await.ok()?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        if stream.writable().await.is_err() {
            return;
        }
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}
