//! The original Tailmon's API: `POST /api/metrics`, `GET /api/all_metrics`.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use tailmon_core::{ErrorBody, Report};

use crate::api::json_body::JsonBody;
use crate::auth::access::Principal;
use crate::{ApiError, Ingest};

/// Takes one report; 200 once it is stored.
#[utoipa::path(
    post, path = "/api/metrics", tag = "reports",
    request_body(content = Report, description = "One report, the original Tailmon's shape."),
    responses(
        (status = 200, description = "Stored."),
        (status = 422, description = "The report broke a validation rule (`field` names it).", body = ErrorBody),
        (status = 429, description = "A new device would pass the device cap (`Retry-After`).", body = ErrorBody),
        (status = 503, description = "The store cannot take reports now (`Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn post_metrics(
    State(ingest): State<Ingest>,
    Extension(principal): Extension<Principal>,
    JsonBody(report): JsonBody<Report>,
) -> Result<StatusCode, ApiError> {
    let claim = principal.claim_device(&report.device_id)?;
    ingest.take(&principal.org(), report).await?;
    claim.keep();
    Ok(StatusCode::OK)
}
