//! The router's outermost layer: the `Host` check of open mode, the
//! per-address rate limit (which the health probes do not count against),
//! and the security headers on every answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::auth::auth_error::AuthError;
use crate::auth::guard::Guard;
use crate::auth::host_check::AllowedHosts;
use crate::http::client_address::ClientAddress;
use crate::http::security_headers;
use crate::refusal_log::RefusalLog;

/// The outermost layer: with authentication off, the `Host` check against
/// DNS rebinding; the per-address rate limit before anything else; the
/// security headers on every answer. A plain tower service (no boxed
/// futures): it sits on every request.
#[derive(Clone)]
pub(crate) struct EdgeLayer {
    pub(crate) guard: Arc<Guard>,
    pub(crate) edge: Arc<EdgeSettings>,
    /// Called at every request before anything else (the server keeps its
    /// store's retention running with it); must be cheap.
    pub(crate) on_request: RequestHook,
}

/// See [`EdgeLayer::on_request`].
pub(crate) type RequestHook = Arc<dyn Fn() + Send + Sync>;

/// What the edge checks and adds besides the guard's limits.
#[derive(Debug, Default)]
pub(crate) struct EdgeSettings {
    /// The hosts answered to; `None`: any (authentication is on).
    pub(crate) allowed_hosts: Option<AllowedHosts>,
    /// `Strict-Transport-Security`, when asked for.
    pub(crate) hsts: Option<HeaderValue>,
    /// Requests refused for their `Host`.
    pub(crate) refused_hosts: RefusalLog,
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            guard: self.guard.clone(),
            edge: self.edge.clone(),
            on_request: self.on_request.clone(),
        }
    }
}

/// See [`EdgeLayer`].
#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    guard: Arc<Guard>,
    edge: Arc<EdgeSettings>,
    on_request: RequestHook,
}

type EdgeFuture<F, E> = Either<Ready<Result<Response, E>>, EdgeAnswer<F>>;

pin_project_lite::pin_project! {
    /// The inner service's answer, given the edge's headers.
    pub(crate) struct EdgeAnswer<F> {
        #[pin]
        inner: F,
        edge: Arc<EdgeSettings>,
    }
}

impl<F, E> Future for EdgeAnswer<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.inner
            .poll(cx)
            .map_ok(|response| this.edge.finish(response))
    }
}

impl EdgeSettings {
    /// `response` with the security headers (and HSTS when asked for).
    fn finish(&self, response: Response) -> Response {
        let mut response = security_headers::add(response);
        if let Some(hsts) = &self.hsts {
            response
                .headers_mut()
                .entry(header::STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        response
    }

    /// Refuses a request for a host this server does not answer to.
    fn check_host(&self, request: &Request) -> Result<(), AuthError> {
        let Some(allowed) = &self.allowed_hosts else {
            return Ok(());
        };
        let host = request
            .headers()
            .get(header::HOST)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        if allowed.allows(host) {
            return Ok(());
        }
        let host = host
            .unwrap_or_default()
            .chars()
            .take(100)
            .collect::<String>();
        if let Some(since_last_line) = self.refused_hosts.count() {
            tracing::warn!(
                %host,
                since_last_line,
                total = self.refused_hosts.total(),
                "request for a host name this server does not answer to refused (authentication is off; add it with --allowed-hosts)"
            );
        }
        Err(AuthError::Forbidden(format!(
            "this server does not answer to host {host:?}; with authentication off it answers to localhost, IP addresses and the names given with --allowed-hosts"
        )))
    }
}

/// `GET` (or `HEAD`) `/healthz` or `/readyz`: a load balancer's or
/// orchestrator's probe. Probes come often from one address (a node, a
/// balancer) that may be the address of agents too, so they do not spend
/// its rate limit; they cost next to nothing, and the connection caps
/// still bound them.
fn is_probe(request: &Request) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && matches!(request.uri().path(), "/healthz" | "/readyz")
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = EdgeFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        (self.on_request)();
        let admitted = self.edge.check_host(&request).and_then(|()| {
            if is_probe(&request) {
                return Ok(());
            }
            self.guard
                .limit_address(ClientAddress::of(request.extensions()).0)
        });
        match admitted {
            Ok(()) => Either::Right(EdgeAnswer {
                inner: self.inner.call(request),
                edge: self.edge.clone(),
            }),
            Err(error) => Either::Left(ready(Ok(self.edge.finish(error.into_response())))),
        }
    }
}
