//! Cross-site request forgery: a signed-in browser's requests that change
//! something repeat the session's CSRF token, and a foreign `Origin` is
//! refused.

use axum::http::{HeaderMap, header};

use crate::auth::auth_error::AuthError;
use crate::auth::secret;
use crate::auth::sessions::CSRF_HEADER;

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
