//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this API.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::fleet_snapshot::if_none_match;
use crate::api::served_document::ServedDocument;

/// The document, built on the first request; 304 when `If-None-Match`
/// names its `ETag`.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "openapi",
    params(("If-None-Match" = Option<String>, Header, description = "The `ETag` of an earlier answer: 304 when it is the same document.")),
    responses(
        (status = 200, description = "This document (OpenAPI 3.1).", body = Object, headers(("ETag" = String))),
        (status = 304, description = "Not modified since the `ETag` in `If-None-Match`."),
    )
)]
pub(crate) async fn openapi_json(
    State(document): State<Arc<ServedDocument>>,
    headers: HeaderMap,
) -> Response {
    let (json, etag) = document.served();
    let mut response = if if_none_match(&headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json.clone(),
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::ETAG, etag.clone());
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
