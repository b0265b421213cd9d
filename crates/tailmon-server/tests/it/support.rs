//! Shared test fixtures.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::{ServeOptions, Server};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// A valid report of `device_id`, sampled now.
pub(crate) fn report(device_id: &str, cpu: f64, ram_used_mb: u64) -> Report {
    let mut r = Report::new(device_id, OffsetDateTime::now_utc());
    r.os_info = "Ubuntu 22.04 (Kernel: 5.15.0)".into();
    r.cpu_usage = cpu;
    r.ram_used_mb = ram_used_mb;
    r.ram_total_mb = 8192;
    r
}

/// Sends one request through the router without a socket.
pub(crate) async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("router is infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body.to_vec())
}

/// `POST /api/metrics` with a JSON body.
pub(crate) fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .expect("valid request")
}

/// `GET path`.
pub(crate) fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .body(Body::empty())
        .expect("valid request")
}

/// Parses a JSON body.
pub(crate) fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// A server really listening on 127.0.0.1:0; stops when dropped.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(crate) async fn start(server: Server) -> Self {
        let (listener, addr) = bind().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Serves `server` with `options` ([`Server::serve_with`]).
    pub(crate) async fn start_with(server: Server, options: ServeOptions) -> Self {
        let (listener, addr) = bind().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(server.serve_with(listener, options, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Serves any router with `options` ([`tailmon_server::serve_router`]).
    pub(crate) async fn start_router(router: Router, options: ServeOptions) -> Self {
        let (listener, addr) = bind().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(tailmon_server::serve_router(
            listener,
            router,
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Asks the server to shut down gracefully, without waiting for it.
    pub(crate) fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server to stop after [`begin_shutdown`](Self::begin_shutdown).
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        let served = self.served.take().expect("not awaited before");
        within(served).await.expect("the serve task did not panic")
    }

    pub(crate) fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn bind() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// Reads `stream` until the peer closes it (end of stream or reset) and
/// returns what came before; fails the test if that takes more than 20 s.
pub(crate) async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    within(async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
}

/// Awaits `future`, failing the test if it takes more than 20 s.
pub(crate) async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(std::time::Duration::from_secs(20), future)
        .await
        .expect("timed out after 20 s")
}

/// Fresh directories under cargo's per-target temporary directory.
pub(crate) struct TestDirs {
    root: std::path::PathBuf,
    next: std::sync::atomic::AtomicUsize,
}

impl TestDirs {
    /// A new set, named after the test, emptied first.
    pub(crate) fn new(test: &str) -> Self {
        let root = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
        let _ = std::fs::remove_dir_all(&root);
        Self {
            root,
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A directory not handed out before.
    pub(crate) fn fresh(&self) -> std::path::PathBuf {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.root.join(n.to_string())
    }
}
