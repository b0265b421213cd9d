//! The middleware that puts the [`Guard`] in front of routes.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;

use axum::http::HeaderValue;
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::auth::access::{Access, Principal};
use crate::auth::auth_error::AuthError;
use crate::auth::guard::Guard;
use crate::auth::host_check::AllowedHosts;
use crate::auth::secret;
use crate::auth::sessions::CSRF_HEADER;
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
}

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
        }
    }
}

/// See [`EdgeLayer`].
#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    guard: Arc<Guard>,
    edge: Arc<EdgeSettings>,
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
        let admitted = self.edge.check_host(&request).and_then(|()| {
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

/// The guard in front of one route: lets the request through only if its
/// caller may use a route asking `access`, and hands the handler the
/// [`Principal`].
#[derive(Clone)]
pub(crate) struct RequireLayer {
    pub(crate) guard: Arc<Guard>,
    pub(crate) access: Access,
}

impl<S> Layer<S> for RequireLayer {
    type Service = Require<S>;

    fn layer(&self, inner: S) -> Require<S> {
        Require {
            inner,
            guard: self.guard.clone(),
            access: self.access,
        }
    }
}

/// See [`RequireLayer`].
#[derive(Clone)]
pub(crate) struct Require<S> {
    inner: S,
    guard: Arc<Guard>,
    access: Access,
}

impl<S> Service<Request> for Require<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match check(&self.guard, self.access, &request) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                Either::Right(self.inner.call(request))
            }
            Err(refusal) => Either::Left(ready(Ok(refusal.into_response()))),
        }
    }
}

/// Why a request is refused: an API error, or a browser sent to sign in.
enum Refusal {
    Api(AuthError),
    SignIn(Box<Response>),
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        Self::Api(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::SignIn(page) => *page,
        }
    }
}

/// The caller of `request` if it may use a route asking `access`; else why not.
fn check(guard: &Guard, access: Access, request: &Request) -> Result<Principal, Refusal> {
    if access == Access::Public {
        // Nothing to check: a stale token on a health probe is no reason to refuse it.
        return Ok(Principal::Anonymous);
    }
    let principal = guard.identify(request.headers())?;
    if !principal.allows(access) {
        if matches!(principal, Principal::Anonymous) {
            if wants_html(request) {
                return Err(Refusal::SignIn(Box::new(login_redirect(request))));
            }
            return Err(AuthError::Unauthorized(
                "sign in or send a token (Authorization: Bearer ...)".into(),
            )
            .into());
        }
        return Err(AuthError::Forbidden(match access {
            Access::Admin => "this needs an admin".into(),
            Access::Report => "this needs an agent token or an admin".into(),
            Access::Person => "this needs a signed-in user, not a token".into(),
            _ => "these credentials may not read this".into(),
        })
        .into());
    }
    if let Principal::User { csrf, .. } = &principal
        && changes_state(request.method())
    {
        check_csrf(request.headers(), csrf)?;
    }
    Ok(principal)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A signed-in browser repeats its session's CSRF token in a header, which
/// another site's page cannot read nor set; its `Origin`, when sent, must
/// be this server.
pub(crate) fn check_csrf(headers: &HeaderMap, expected: &str) -> Result<(), AuthError> {
    check_origin(headers)?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if secret::same(sent, expected) {
        Ok(())
    } else {
        Err(AuthError::Forbidden(format!(
            "missing or wrong {CSRF_HEADER} header"
        )))
    }
}

/// Refuses a request whose `Origin` names another host than the one it
/// was sent to: its `Host`, or the `X-Forwarded-Host` a reverse proxy set
/// (a page of another site cannot set that header on a request without a
/// CORS preflight, which this server never grants).
pub(crate) fn check_origin(headers: &HeaderMap) -> Result<(), AuthError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    let same = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|host| !host.is_empty() && origin_host.eq_ignore_ascii_case(host))
    };
    if same("host") || same("x-forwarded-host") {
        Ok(())
    } else {
        Err(AuthError::Forbidden("cross-origin request refused".into()))
    }
}

fn wants_html(request: &Request) -> bool {
    request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
}

/// 401 for a browser: a page that sends it to the login page (no script,
/// so the Content-Security-Policy holds).
fn login_redirect(request: &Request) -> Response {
    // Under a prefix (`/monitor`), the login page is under it too. The
    // prefix's own path (`/monitor`) reaches the nested router as `/`.
    let inner = request.uri().path();
    let outer = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(inner, |o| o.0.path());
    let prefix = outer
        .strip_suffix(inner)
        .or_else(|| (inner == "/").then(|| outer.trim_end_matches('/')))
        .unwrap_or("");
    let login = format!("{prefix}/login")
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={login}\"><title>Sign in</title></head>\
         <body><p><a href=\"{login}\">Sign in to Tailmon</a></p></body></html>"
    );
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
