//! The answer when a handler panics: a safety net, never the plan.

use std::any::Any;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Logs the panic and answers 500 in the API's error shape.
pub(crate) fn answer(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(%message, "handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":"internal error"}"#,
    )
        .into_response()
}
