//! The layer in front of each route: lets a request through only if its
//! caller may use a route asking the route's [`Access`], with CSRF for
//! signed-in browsers; sends a signed-out browser to the login page.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{OriginalUri, Request};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::auth::access::{Access, Principal};
use crate::auth::auth_error::AuthError;
use crate::auth::csrf::check_csrf;
use crate::auth::guard::Guard;

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

/// The 401's message to a report sent without credentials: what to do.
pub(crate) const NO_TOKEN_TO_REPORT: &str = "this server takes reports only from agents with a token: \
     create one with `tailmon-server token create` and give it to the agent (TAILMON_TOKEN, sent as \
     Authorization: Bearer ...), or run the server with --auth none to take reports from anybody";

/// The caller of `request` if it may use a route asking `access`; else why not.
fn check(guard: &Guard, access: Access, request: &Request) -> Result<Principal, Refusal> {
    if access == Access::Public {
        // Nothing to check: a stale token on a health probe is no reason to refuse it.
        return Ok(Principal::Anonymous);
    }
    let address = crate::http::client_address::ClientAddress::of(request.extensions()).0;
    let principal = guard.identify(request.headers(), address)?;
    if !principal.allows(access) {
        if matches!(principal, Principal::Anonymous) {
            if wants_html(request) {
                return Err(Refusal::SignIn(Box::new(login_redirect(request))));
            }
            if access == Access::Report && !request.headers().contains_key(header::AUTHORIZATION) {
                // Most likely an agent without a token, the original's among them.
                return Err(AuthError::Unauthorized(NO_TOKEN_TO_REPORT.into()).into());
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
            Access::Owner => "this needs an owner of the server".into(),
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
