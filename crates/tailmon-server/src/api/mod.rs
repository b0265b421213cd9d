//! The HTTP API and the dashboard: routes, request bodies and query
//! parameters, and the JSON error type every route answers with.
//!
//! May use: `auth`, `ingest`, `store`, `views` and `http`.

pub(crate) mod api_error;
pub(crate) mod content_encoding;
pub(crate) mod devices_query;
pub(crate) mod fleet_snapshot;
pub(crate) mod json_body;
pub(crate) mod openapi_document;
pub(crate) mod routes;
pub(crate) mod served_document;
pub(crate) mod time_param;
