use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Largest request body accepted, in bytes: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON request body, decoded with errors in the API's shape: 415 for a
/// content type other than JSON, 413 over the body limit, 400 for JSON that
/// is malformed or of the wrong shape (naming the field at fault).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(DEFAULT_MAX_BODY_BYTES, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            match rejection.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit },
                _ => ApiError::BodyRead,
            }
        })?;
        decode(&bytes).map(JsonBody)
    }
}

/// The body limit in force, put in request extensions by the router so that
/// 413 answers can quote it.
#[derive(Clone, Copy)]
pub(crate) struct BodyLimit(pub(crate) usize);

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    use mime_guess::mime::{APPLICATION, JSON, Mime};
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Mime>().ok())
        .is_some_and(|m| {
            m.type_() == APPLICATION && (m.subtype() == JSON || m.suffix() == Some(JSON))
        })
}

/// Decodes JSON, naming the field at fault on a shape error.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(malformed)?;
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedJson {
            message: format!("invalid JSON body: {error}"),
            field: None,
        })?;
    Ok(value)
}

/// Decodes a JSON object already parsed, naming the field at fault. A
/// struct decoded from an object this way never takes an array's form,
/// which serde's derived structs otherwise accept.
pub(crate) fn decode_object<T: DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(serde_json::Value::Object(object)).map_err(malformed)
}

fn malformed<E: std::fmt::Display>(error: serde_path_to_error::Error<E>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let field =
        missing_field(&inner.to_string()).or_else(|| (path != "." && path != "?").then_some(path));
    ApiError::MalformedJson {
        message: format!("invalid JSON body: {inner}"),
        field,
    }
}

/// serde reports a missing field in its message rather than its path.
fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tailmon_core::Report;

    fn field_of(json: &str) -> Option<String> {
        match decode::<Report>(json.as_bytes()) {
            Err(ApiError::MalformedJson { field, .. }) => field,
            other => panic!("expected MalformedJson, got {other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_of(r#"{"device_id":"a"}"#).as_deref(), Some("os_info"));
        assert_eq!(
            field_of(r#"{"device_id":"a","os_info":"","cpu_usage":"high"}"#).as_deref(),
            Some("cpu_usage")
        );
        assert_eq!(
            field_of(r#"{"device_id":"a","os_info":"","cpu_usage":1,"ram_used_mb":-1}"#).as_deref(),
            Some("ram_used_mb")
        );
        assert_eq!(field_of("{"), None);
        assert_eq!(field_of("[] trailing"), None);
    }

    #[test]
    fn json_content_types() {
        let ok = |v: &str| is_json(Some(&header::HeaderValue::from_str(v).unwrap()));
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok("application/vnd.tailmon+json"));
        assert!(!ok("text/plain"));
        assert!(!ok("application/x-www-form-urlencoded"));
        assert!(!is_json(None));
    }
}
