//! The HTTP API and the dashboard: routes, request bodies and query
//! parameters, and the JSON error type every route answers with.
//!
//! May use: `auth`, `ingest`, `store`, `views`, `http`, `alerts`, `clock`,
//! `telemetry` and `refusal_log`.

pub(crate) mod api_error;
pub(crate) mod caller_org;
pub(crate) mod content_encoding;
pub(crate) mod devices_query;
pub(crate) mod fleet_snapshot;
pub(crate) mod json_body;
pub(crate) mod metrics_exposition;
pub(crate) mod openapi_document;
pub(crate) mod per_org;
pub(crate) mod report_refusals;
pub(crate) mod routes;
pub(crate) mod served_document;
pub(crate) mod time_param;
pub(crate) mod url_params;
