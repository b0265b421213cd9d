//! The original Tailmon's API: `POST /api/metrics`, `GET /api/all_metrics`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use tailmon_core::Report;

use crate::api::json_body::JsonBody;
use crate::auth::access::Principal;
use crate::{ApiError, Ingest};

/// Takes one report; 200 once it is stored.
pub(crate) async fn post_metrics(
    State(ingest): State<Ingest>,
    Extension(principal): Extension<Principal>,
    JsonBody(report): JsonBody<Report>,
) -> Result<StatusCode, ApiError> {
    let claim = principal.claim_device(&report.device_id)?;
    ingest.take(report).await?;
    claim.keep();
    Ok(StatusCode::OK)
}
