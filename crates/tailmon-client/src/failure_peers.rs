//! Real peers on 127.0.0.1 that make a request fail in each way an agent
//! meets in the field, for the client's own tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A peer that lives as long as this value.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Peer {
    /// `http://127.0.0.1:PORT` + `path`.
    pub(crate) fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `https://127.0.0.1:PORT` + `path`.
    pub(crate) fn https(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

async fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// A port nothing listens on: bound, then closed.
pub(crate) async fn closed_port() -> Peer {
    let listener = listen().await;
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    Peer { addr, task: None }
}

/// A plain HTTP server answering every request with `status` and a short
/// text body; like a real one (hyper), it answers 400 and hangs up on bytes
/// that are not an HTTP request, such as a TLS handshake.
pub(crate) async fn plain_http(status: u16) -> Peer {
    let listener = listen().await;
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                let mut status = status;
                // Up to the end of the headers; the body is not needed.
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    if !seen[0].is_ascii_uppercase() {
                        status = 400;
                        break;
                    }
                }
                // And the body, lest closing with unread bytes reset the
                // connection before the client reads the answer.
                if status != 400 {
                    let head_end = seen
                        .windows(4)
                        .position(|w| w == b"\r\n\r\n")
                        .map_or(seen.len(), |i| i + 4);
                    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while seen.len() < head_end + length {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                }
                let body = "not here";
                let answer = format!(
                    "HTTP/1.1 {status} Whatever\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
                // Read on until the client hangs up: closing with unread
                // bytes would reset the connection under the answer.
                while let Ok(1..) = socket.read(&mut buf).await {}
            });
        }
    });
    Peer {
        addr,
        task: Some(task),
    }
}

/// A server that accepts connections and never answers.
pub(crate) async fn silent() -> Peer {
    let listener = listen().await;
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Peer {
        addr,
        task: Some(task),
    }
}

/// A TLS server (rustls) with a self-signed certificate for 127.0.0.1 that
/// no client trusts, answering 200 to whoever completes the handshake.
pub(crate) async fn tls_untrusted() -> Peer {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("a self-signed certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("a server configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = listen().await;
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    Peer {
        addr,
        task: Some(task),
    }
}
