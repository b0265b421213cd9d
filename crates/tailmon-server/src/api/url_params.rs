//! Path and query parameters, decoded as axum's `Path` and `Query` do but
//! refused in the API's shape: 400 with the JSON error body (axum's own
//! rejections are plain text).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A route's path parameters, as [`axum::extract::Path`]; a value that is
/// not valid (not UTF-8 once percent-decoded, say) gets 400
/// `{"error": ..., "field": "path"}`.
pub(crate) struct Path<T>(pub(crate) T);

/// A request's query string, as [`axum::extract::Query`]; one that does not
/// decode (a parameter given twice, a value of the wrong type) gets 400
/// `{"error": ..., "field": "query"}`.
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection| ApiError::BadParameter {
                message: format!("the URL's path is not valid: {}", rejection.body_text()),
                field: "path",
            })
    }
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let reason = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::BadParameter {
                    message: format!("the query string is not valid: {reason}"),
                    field: "query",
                }
            })
    }
}
