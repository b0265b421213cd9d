//! Counts and logs every refused report that came over HTTP (`POST
//! /api/metrics`, `POST /api/v1/reports`), whoever refused it: the rate
//! limit, the guard, the body's decoding, ingest. A layer around the whole
//! router, so that it sees the outermost refusals too.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::http::client_address::ClientAddress;
use crate::http::error_answer::ErrorMessage;
use crate::telemetry::{RefusalReason, ServerMetrics};

/// On a refusal of a whole batch: how many reports it held.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReportsRefused(pub(crate) u64);

/// Whether a request sends reports.
fn sends_reports(request: &Request) -> bool {
    request.method() == Method::POST
        && matches!(request.uri().path(), "/api/metrics" | "/api/v1/reports")
}

/// The middleware: after a report route answered 4xx or 5xx, counts the
/// refusal by its reason (the answer's [`RefusalReason`] if it set one, else
/// its status) and logs it, throttled, with the client's address.
pub(crate) async fn count_refusals(
    State(metrics): State<Arc<ServerMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    if !sends_reports(&request) {
        return next.run(request).await;
    }
    let source = ClientAddress::of(request.extensions()).0;
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let extensions = response.extensions();
    let Some(reason) = extensions
        .get::<RefusalReason>()
        .copied()
        .or_else(|| RefusalReason::of_status(status.as_u16()))
    else {
        return response;
    };
    let reports = extensions.get::<ReportsRefused>().map_or(1, |r| r.0);
    let message = extensions
        .get::<ErrorMessage>()
        .map_or_else(|| status.to_string(), |m| m.0.clone());
    metrics.refused(reason, source, reports, &message);
    response
}
