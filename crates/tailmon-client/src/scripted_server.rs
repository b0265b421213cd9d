//! A scripted HTTP/1.1 server on 127.0.0.1 for the client's own tests: it
//! answers each request as a closure says and notes what it received and
//! what it answered.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

/// One request the server received, with the answer it gave.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    /// The `Authorization` header, if any.
    pub(crate) authorization: Option<String>,
    pub(crate) body: Vec<u8>,
    /// The status answered; `None` if the script hung up without answering.
    pub(crate) status: Option<u16>,
    /// The body answered.
    pub(crate) answer: String,
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    status: u16,
    body: String,
    content_type: &'static str,
    retry_after: Option<String>,
    hang_up: bool,
}

impl Answer {
    /// `status` with a JSON `body`.
    pub(crate) fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            content_type: "application/json",
            retry_after: None,
            hang_up: false,
        }
    }

    /// `status` with an HTML page, as a captive portal or a proxy answers.
    pub(crate) fn html(status: u16, page: impl Into<String>) -> Self {
        Self {
            content_type: "text/html",
            ..Self::json(status, page)
        }
    }

    /// Closes the connection without answering, as a server that dies mid-request.
    pub(crate) fn hang_up() -> Self {
        Self {
            hang_up: true,
            ..Self::json(0, "")
        }
    }

    /// Adds `Retry-After: value`.
    pub(crate) fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }
}

type Script = dyn Fn(&str, &[u8]) -> Answer + Send + Sync;

/// Answers each request as its script says per `(path, body)`; one request
/// per connection (it answers `Connection: close`).
pub(crate) struct ScriptedServer {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl ScriptedServer {
    /// A server answering `(status, JSON body)` per `(path, body)`.
    pub(crate) async fn start(
        answer: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        Self::scripted(move |path, body| {
            let (status, body) = answer(path, body);
            Answer::json(status, body)
        })
        .await
    }

    /// A server giving the [`Answer`] `script` returns per `(path, body)`.
    pub(crate) async fn scripted(
        script: impl Fn(&str, &[u8]) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (script, log) = (script.clone(), log.clone());
                tokio::spawn(async move {
                    let Some(mut request) = read_request(&stream).await else {
                        return;
                    };
                    let answer = script(&request.path, &request.body);
                    request.status = (!answer.hang_up).then_some(answer.status);
                    request.answer = answer.body.clone();
                    log.lock().expect("not poisoned").push(request);
                    if answer.hang_up {
                        return;
                    }
                    let retry_after = answer
                        .retry_after
                        .map(|value| format!("Retry-After: {value}\r\n"))
                        .unwrap_or_default();
                    let response = format!(
                        "HTTP/1.1 {} Scripted\r\nContent-Type: {}\r\nContent-Length: {}\r\n{retry_after}Connection: close\r\n\r\n{}",
                        answer.status,
                        answer.content_type,
                        answer.body.len(),
                        answer.body
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
                    status: None,
                    answer: String::new(),
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
