//! `--metrics-listen ADDR`: the agent's latest report on `GET /metrics`, in
//! the same names as the server's (`tailmon_core::exposition`), for a
//! Prometheus that scrapes agents directly. HTTP/1.1 with hyper alone: no
//! router, one small answer.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tailmon_core::Report;
use tailmon_core::exposition;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Most connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;

/// How long a client may take to send its request's head: 10 s.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Binds `addr` now (so that a bad address fails at start), then serves the
/// latest of `reports` on its own task until the process ends.
pub(crate) async fn serve(
    addr: SocketAddr,
    reports: watch::Receiver<Option<Arc<Report>>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "metrics endpoint: accept failed");
                    continue;
                }
            };
            let reports = reports.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = answer(&request, &reports);
                    async move { Ok::<_, std::convert::Infallible>(answer) }
                });
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                drop(permit);
            });
        }
    });
    Ok(bound)
}

/// `GET /metrics`: the latest report's exposition (empty before the first);
/// 404 for any other path, 405 for any other method.
fn answer(
    request: &Request<Incoming>,
    reports: &watch::Receiver<Option<Arc<Report>>>,
) -> Response<String> {
    let plain = |status: StatusCode, text: &str| {
        let mut response = Response::new(text.to_owned());
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only /metrics is served here\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
    }
    let mut body = String::new();
    if let Some(report) = reports.borrow().as_deref() {
        exposition::write_report(&mut body, report);
    }
    let mut response = Response::new(body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(exposition::CONTENT_TYPE),
    );
    response
}
