//! A TCP proxy on 127.0.0.1 in front of the real server that fails the way
//! a network or a sick server does, switched while an agent reports
//! through it: connections refused (nothing listens on its port), answers
//! later than the agent waits, and `503` answers.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, copy_bidirectional};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// None: bytes go through both ways.
    None,
    /// Its port is closed: connections are refused.
    Refused,
    /// Requests reach the server, which stores them, but its answers come
    /// back this much later (longer than the agent waits).
    SlowAnswers(Duration),
    /// Every request is answered `503` with a JSON message, unread by the
    /// server.
    Unavailable,
}

/// The proxy; it stops when dropped.
pub(crate) struct FaultProxy {
    pub(crate) addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let (fault, faults) = watch::channel(Fault::None);
        let task = tokio::spawn(serve(listener, addr, upstream, faults));
        Self { addr, fault, task }
    }

    /// From now on, fails with `fault`; connections open under the previous
    /// one are cut, so that no kept-alive connection escapes it.
    pub(crate) fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

async fn serve(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut faults: watch::Receiver<Fault>,
) {
    let mut listener = Some(listener);
    loop {
        let fault = *faults.borrow_and_update();
        match (fault, &listener) {
            (Fault::Refused, Some(_)) => listener = None,
            (Fault::Refused, None) => {}
            (_, None) => {
                // The same port again; nothing else binds it meanwhile on a
                // test machine's loopback, short of bad luck.
                listener = Some(TcpListener::bind(addr).await.expect("rebind the port"));
            }
            (_, Some(_)) => {}
        }
        let Some(open) = &listener else {
            if faults.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            accepted = open.accept() => {
                let Ok((client, _)) = accepted else { continue };
                let mut cut = faults.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        () = handle(client, upstream, fault) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        }
    }
}

async fn handle(mut client: TcpStream, upstream: SocketAddr, fault: Fault) {
    match fault {
        Fault::None => {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = copy_bidirectional(&mut client, &mut server).await;
        }
        Fault::SlowAnswers(delay) => {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let requests = tokio::io::copy(&mut client_read, &mut server_write);
            let answers = async {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                    tokio::time::sleep(delay).await;
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = requests => {}
                () = answers => {}
            }
        }
        Fault::Unavailable => answer_unavailable(client).await,
        Fault::Refused => {}
    }
}

/// Reads one request (headers and `Content-Length` body) and answers `503`.
async fn answer_unavailable(mut client: TcpStream) {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while seen.len() < head_end + length {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    let body = r#"{"error":"the server cannot store reports right now; retry later"}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(answer.as_bytes()).await;
    let _ = client.shutdown().await;
}
