//! Liveness.

use axum::Json;
use serde_json::{Value, json};

/// 200 while the server is up.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The server is up.", body = Object, example = json!({"status": "ok"})))
)]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
