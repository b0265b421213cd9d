//! Headers every answer carries, so a browser confines the dashboard.

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The Content-Security-Policy: scripts (module scripts too), styles,
/// requests, the service worker and the web app manifest only from the
/// server itself, no inline script, never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
manifest-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
frame-ancestors 'none'";

/// `Strict-Transport-Security` for `max_age`: browsers then reach the
/// server over HTTPS only, for that long. Sub-domains are left alone.
pub(crate) fn strict_transport_security(max_age: std::time::Duration) -> HeaderValue {
    HeaderValue::from_str(&format!("max-age={}", max_age.as_secs()))
        .unwrap_or(HeaderValue::from_static("max-age=31536000"))
}

/// Adds the security headers to `response` where it lacks them.
pub(crate) fn add(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
