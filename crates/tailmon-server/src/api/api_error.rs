use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tailmon_core::{ErrorBody, ValidationError};

use crate::StoreError;
use crate::auth::auth_error::AuthError;
use crate::http::error_answer::{ErrorHeaders, error_answer};
use crate::refusal_log::RefusalLog;
use crate::telemetry::RefusalReason;

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
    /// No credentials, or credentials that are not valid (an unknown or
    /// revoked token, an expired session, a wrong password). 401.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow this (a viewer deleting, a
    /// token writing another device, a missing CSRF token). 403.
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests from this address or token, or too many login
    /// attempts. 429, with `Retry-After`.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request would pass.
        retry_after_secs: u64,
    },
    /// The server is too busy to take this request now (every password
    /// check slot is taken). 503, with `Retry-After`.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
    /// A value in the request is refused (a short password, a bad name). 400.
    #[error("{0}")]
    BadRequest(String),
    /// No such token or user. 404.
    #[error("{0}")]
    Missing(String),
    /// The change conflicts with what exists (a user that exists, the last
    /// admin). 409.
    #[error("{0}")]
    Conflict(String),
    /// A service the server relies on failed (an alert channel's receiver). 502.
    #[error("{0}")]
    BadGateway(String),
    /// Something on the server's side failed (no randomness, an unwritable
    /// credentials file). 500; the details are logged, not sent.
    #[error("{0}")]
    Internal(String),
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
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Missing(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadGateway(_) => StatusCode::BAD_GATEWAY,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Store(StoreError::Unavailable(_)) | Self::Busy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Store(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            Self::Store(_) | Self::Internal(_) => ErrorBody::new("internal error"),
            other => ErrorBody::new(other.to_string()),
        }
    }
}

/// 503s for an unavailable store (a full disk, `--max-db-mb`): one line a
/// minute, with their count, however many requests meet it.
static STORE_UNAVAILABLE: std::sync::LazyLock<RefusalLog> =
    std::sync::LazyLock::new(RefusalLog::default);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            // Counted and logged, throttled, where it is decided.
            Self::Busy { .. } => {}
            // One condition met by every request while it lasts.
            Self::Store(StoreError::Unavailable(_)) => {
                if let Some(since_last_line) = STORE_UNAVAILABLE.count() {
                    tracing::error!(
                        error = %self,
                        since_last_line,
                        total = STORE_UNAVAILABLE.total(),
                        "the store cannot take requests now; they are answered 503"
                    );
                }
            }
            _ if status.is_server_error() => tracing::error!(error = %self, "request failed"),
            _ => {}
        }
        let reason = match &self {
            Self::TooManyDevices { .. } => Some(RefusalReason::DeviceLimit),
            Self::Invalid(ValidationError::LastSeenInFuture { .. }) => {
                Some(RefusalReason::ClockSkew)
            }
            _ => None,
        };
        let headers = ErrorHeaders {
            retry_after_secs: match self {
                Self::Store(StoreError::Unavailable(_)) | Self::TooManyDevices { .. } => Some(30),
                Self::RateLimited { retry_after_secs } | Self::Busy { retry_after_secs } => {
                    Some(retry_after_secs)
                }
                _ => None,
            },
            bearer_challenge: matches!(self, Self::Unauthorized(_)),
        };
        let mut response = error_answer(status, self.body(), headers);
        if let Some(reason) = reason {
            response.extensions_mut().insert(reason);
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthorized(message) => Self::Unauthorized(message),
            AuthError::Forbidden(message) => Self::Forbidden(message),
            AuthError::RateLimited { retry_after_secs } => Self::RateLimited { retry_after_secs },
            AuthError::Busy { retry_after_secs } => Self::Busy { retry_after_secs },
            AuthError::Conflict(message) => Self::Conflict(message),
            AuthError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<crate::IngestError> for ApiError {
    fn from(error: crate::IngestError) -> Self {
        use crate::IngestError as E;
        match error {
            E::Invalid(rule) => Self::Invalid(rule),
            E::TooManyDevices { cap } => Self::TooManyDevices { cap },
            E::Store(store) => Self::Store(store),
        }
    }
}

impl From<crate::views::PreferencesError> for ApiError {
    fn from(error: crate::views::PreferencesError) -> Self {
        use crate::views::PreferencesError as E;
        match error {
            E::Invalid { field, message } => Self::MalformedJson {
                message,
                field: Some(field.to_owned()),
            },
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::auth::CredentialsError> for ApiError {
    fn from(error: crate::auth::CredentialsError) -> Self {
        use crate::auth::CredentialsError as E;
        match error {
            E::Invalid(message) => Self::BadRequest(message),
            e @ (E::UserExists(_) | E::LastAdmin | E::OrgExists(_)) => {
                Self::Conflict(e.to_string())
            }
            e @ (E::NoSuchOrg(_) | E::NoSuchUser(_)) => Self::Missing(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}
