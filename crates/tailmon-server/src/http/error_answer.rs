//! The shape of every error answer: JSON `{"error": ..., "field": ...}`,
//! with `Retry-After` or a `WWW-Authenticate` challenge where they apply.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tailmon_core::ErrorBody;

/// What an error answer carries besides its status and body.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ErrorHeaders {
    /// Seconds the client should wait before retrying.
    pub(crate) retry_after_secs: Option<u64>,
    /// Whether to challenge for a bearer token (on 401).
    pub(crate) bearer_challenge: bool,
}

/// The message of an error answer, kept in the response's extensions for
/// the layers that log refusals.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMessage(pub(crate) String);

/// An error answer: `status`, `body` as JSON, and `headers`.
pub(crate) fn error_answer(status: StatusCode, body: ErrorBody, headers: ErrorHeaders) -> Response {
    let message = ErrorMessage(body.error.clone());
    let mut response = (status, Json(body)).into_response();
    response.extensions_mut().insert(message);
    if let Some(secs) = headers.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if headers.bearer_challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tailmon\""),
        );
    }
    response
}
