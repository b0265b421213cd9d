use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tailmon_core::{ErrorBody, ValidationError};

use crate::StoreError;

/// Every error the API answers with, as `{"error": "...", "field": "..."}`.
/// 4xx say what the client got wrong; 5xx say little and are logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON, or not JSON of the expected shape. 400.
    #[error("{message}")]
    MalformedJson {
        /// What the decoder found wrong.
        message: String,
        /// The field at fault, when the decoder could tell.
        field: Option<String>,
    },
    /// The body is larger than the limit. 413.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not `application/json`. 415.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// The report broke a validation rule. 422.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A new device would pass the device cap. 429.
    #[error("device limit of {cap} reached; new devices are refused until some are removed")]
    TooManyDevices {
        /// The cap.
        cap: usize,
    },
    /// No such route. 404.
    #[error("no such route")]
    NotFound,
    /// A query parameter is missing or wrong (a bad time range). 400.
    #[error("{message}")]
    BadParameter {
        /// What is wrong.
        message: String,
        /// The parameter.
        field: &'static str,
    },
    /// No device of that id. 404.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// No metric of that name. 404.
    #[error("unknown metric {0:?}; see the metric names in the API documentation")]
    UnknownMetric(String),
    /// A batch holds more reports than allowed. 422.
    #[error("a batch holds at most {max} reports; got {len}")]
    TooManyReports {
        /// Reports sent.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The route exists but not with this method. 405.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The body could not be read from the connection. 400.
    #[error("could not read the request body")]
    BodyRead,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson { .. } | Self::BodyRead | Self::BadParameter { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::UnknownDevice(_) | Self::UnknownMetric(_) => StatusCode::NOT_FOUND,
            Self::TooManyReports { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyDevices { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> ErrorBody {
        match self {
            Self::MalformedJson {
                message,
                field: Some(field),
            } => ErrorBody::with_field(message.clone(), field.clone()),
            Self::Invalid(rule) => ErrorBody::with_field(rule.to_string(), rule.field()),
            Self::BadParameter { message, field } => ErrorBody::with_field(message.clone(), *field),
            Self::UnknownDevice(_) => ErrorBody::with_field(self.to_string(), "device_id"),
            Self::UnknownMetric(_) => ErrorBody::with_field(self.to_string(), "metric"),
            Self::TooManyReports { .. } => ErrorBody::with_field(self.to_string(), "reports"),
            Self::Store(StoreError::Unavailable(_)) => {
                ErrorBody::new("the server cannot store reports right now; retry later")
            }
            Self::Store(_) => ErrorBody::new("internal error"),
            other => ErrorBody::new(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if matches!(
            self,
            Self::Store(StoreError::Unavailable(_)) | Self::TooManyDevices { .. }
        ) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        response
    }
}
