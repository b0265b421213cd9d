//! Liveness and readiness, for load balancers and Kubernetes probes.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tailmon_core::ErrorBody;

use crate::http::error_answer::{ErrorHeaders, error_answer};
use crate::ingest::Ingest;

/// A failing readiness probe is logged at most this often: probes come
/// every few seconds.
const NOT_READY_LOG_EVERY: Duration = Duration::from_secs(60);

/// 200 while the server is up.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The server is up.", body = Object, example = json!({"status": "ok"})))
)]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 `{"status":"ready"}` when the store answers (its migrations ran
/// when it opened); 503 with the JSON error shape and `Retry-After`
/// otherwise.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "The store answers and its migrations are done.", body = Object, example = json!({"status": "ready"})),
        (status = 503, description = "The store does not answer (`Retry-After`); the cause is in the server's log.", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(ingest): State<Ingest>) -> Response {
    match ingest.store().ready().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            static LOGGED: Mutex<Option<Instant>> = Mutex::new(None);
            let mut logged = LOGGED.lock().unwrap_or_else(PoisonError::into_inner);
            if logged.is_none_or(|at| at.elapsed() >= NOT_READY_LOG_EVERY) {
                *logged = Some(Instant::now());
                tracing::warn!(%error, "not ready: the store does not answer");
            }
            error_answer(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorBody::new("not ready: the store does not answer"),
                ErrorHeaders {
                    retry_after_secs: Some(5),
                    bearer_challenge: false,
                },
            )
        }
    }
}
