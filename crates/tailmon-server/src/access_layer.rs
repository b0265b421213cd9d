//! The middleware that puts the [`Guard`] in front of routes.

use std::sync::Arc;

use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use crate::access::{Access, Principal};
use crate::client_address::ClientAddress;
use crate::guard::Guard;
use crate::secret;
use crate::sessions::CSRF_HEADER;

/// Per-address rate limit, before anything else.
pub(crate) async fn limit_address(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    match guard.limit_address(ClientAddress::of(request.extensions()).0) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Lets the request through to a route asking `access` only if its
/// caller may use it; hands the handler the [`Principal`].
pub(crate) async fn require(
    State((guard, access)): State<(Arc<Guard>, Access)>,
    mut request: Request,
    next: Next,
) -> Response {
    let principal = match guard.identify(request.headers()) {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    if !principal.allows(access) {
        if matches!(principal, Principal::Anonymous) {
            if wants_html(&request) {
                return login_redirect(&request);
            }
            return ApiError::Unauthorized(
                "sign in or send a token (Authorization: Bearer ...)".into(),
            )
            .into_response();
        }
        return ApiError::Forbidden(match access {
            Access::Admin => "this needs an admin".into(),
            Access::Report => "this needs an agent token or an admin".into(),
            _ => "these credentials may not read this".into(),
        })
        .into_response();
    }
    if let Principal::User { csrf, .. } = &principal
        && changes_state(request.method())
        && let Err(error) = check_csrf(request.headers(), csrf)
    {
        return error.into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A signed-in browser repeats its session's CSRF token in a header, which
/// another site's page cannot read nor set; its `Origin`, when sent, must
/// be this server.
pub(crate) fn check_csrf(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    check_origin(headers)?;
    let sent = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if secret::same(sent, expected) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "missing or wrong {CSRF_HEADER} header"
        )))
    }
}

/// Refuses a request whose `Origin` names another host than the one it
/// was sent to.
pub(crate) fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("cross-origin request refused".into()))
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
    // Under a prefix (`/monitor`), the login page is under it too.
    let inner = request.uri().path();
    let outer = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(inner, |o| o.0.path());
    let prefix = outer.strip_suffix(inner).unwrap_or("");
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
