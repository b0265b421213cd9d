//! Liveness.

use axum::Json;
use serde_json::{Value, json};

/// 200 while the server is up.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
