use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body as _, Incoming};
use tower::ServiceExt;

use crate::http::body_deadline::{BodyDeadline, BodyTimedOut};
use crate::http::error_answer::{ErrorHeaders, error_answer};

/// The router as one connection serves it: each request carries the peer's
/// address as [`ConnectInfo<SocketAddr>`] in its extensions, and its body is
/// due within the body read timeout, else the answer is 408.
#[derive(Clone)]
pub(crate) struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    body_timeout: Duration,
}

impl ConnectionService {
    pub(crate) fn new(router: Router, peer: SocketAddr, body_timeout: Duration) -> Self {
        Self {
            router,
            peer,
            body_timeout,
        }
    }
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let expired = Arc::new(AtomicBool::new(false));
        let timeout = self.body_timeout;
        let mut request = request.map(|body| {
            if body.is_end_stream() {
                Body::new(body)
            } else {
                Body::new(BodyDeadline::new(body, timeout, Arc::clone(&expired)))
            }
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        let peer = self.peer;
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            if expired.load(Ordering::Acquire) {
                tracing::debug!(%peer, "request body too slow; answered 408");
                return Ok(body_timed_out(timeout));
            }
            Ok(response)
        })
    }
}

/// 408 in the API's error shape, closing the connection: what is left of
/// the body is not worth reading. It carries the security headers, as
/// every answer does.
fn body_timed_out(timeout: Duration) -> Response<Body> {
    let mut response = error_answer(
        StatusCode::REQUEST_TIMEOUT,
        tailmon_core::ErrorBody::new(BodyTimedOut(timeout).to_string()),
        ErrorHeaders::default(),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    crate::http::security_headers::add(response)
}
