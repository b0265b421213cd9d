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
use crate::http::serve_options::MAX_DISCARDED_BODY_BYTES;
use crate::http::unread_body::{Discarded, UnreadBody, UnreadSlot, discard};

/// The router as one connection serves it: each request carries the peer's
/// address as [`ConnectInfo<SocketAddr>`] in its extensions, and its body is
/// due within the body read timeout, else the answer is 408. A body the
/// router answered without reading to its end is read and discarded (up to
/// [`MAX_DISCARDED_BODY_BYTES`], within the same deadline) before the answer
/// goes, so that a client still sending it can read the answer; unless
/// the client sent `Expect: 100-continue` and was never asked for the body,
/// which is answered at once and the connection closed.
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
        let unread: UnreadSlot<BodyDeadline<Incoming>> = Arc::default();
        // A client that waits for "100 Continue" before sending, and was not
        // told to send, has sent nothing to discard: it is told no at once.
        let waits_to_send = request
            .headers()
            .get(header::EXPECT)
            .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut request = request.map(|body| {
            if body.is_end_stream() {
                Body::new(body)
            } else {
                Body::new(UnreadBody::new(
                    BodyDeadline::new(body, timeout, Arc::clone(&expired)),
                    Arc::clone(&unread),
                ))
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
            let left = unread
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            let Some(left) = left else {
                return Ok(response);
            };
            if waits_to_send && !left.asked_for {
                return Ok(closing(response));
            }
            match discard(left.body, MAX_DISCARDED_BODY_BYTES).await {
                Discarded::Whole => Ok(response),
                Discarded::Cut => {
                    tracing::debug!(%peer, status = %response.status(), "unread request body too long or too slow to discard; closing after the answer");
                    Ok(closing(response))
                }
            }
        })
    }
}

/// 408 in the API's error shape, closing the connection: what is left of
/// the body is not worth reading. It carries the security headers, as
/// every answer does.
fn body_timed_out(timeout: Duration) -> Response<Body> {
    let response = error_answer(
        StatusCode::REQUEST_TIMEOUT,
        tailmon_core::ErrorBody::new(BodyTimedOut(timeout).to_string()),
        ErrorHeaders::default(),
    );
    crate::http::security_headers::add(closing(response))
}

/// `response`, telling the client that the connection closes after it.
fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
