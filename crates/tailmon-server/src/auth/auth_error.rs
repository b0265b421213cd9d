use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tailmon_core::ErrorBody;

use crate::http::error_answer::{ErrorHeaders, error_answer};

/// Why the guard refused a request or a sign-in. Answered in the API's
/// error shape; the API's own error takes it in with `From`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// No credentials, or credentials that are not valid. 401.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow this. 403.
    #[error("{0}")]
    Forbidden(String),
    /// Too many requests or sign-in attempts. 429, with `Retry-After`.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request would pass.
        retry_after_secs: u64,
    },
    /// Every password-check slot is taken. 503, with `Retry-After`.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
    /// Authentication is off, so there is nothing to do this with. 409.
    #[error("{0}")]
    Conflict(String),
    /// Something on the server's side failed (no randomness). 500; the
    /// details are logged, not sent.
    #[error("{0}")]
    Internal(String),
}

impl AuthError {
    /// The HTTP status this refusal is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = match &self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "request failed");
                ErrorBody::new("internal error")
            }
            other => ErrorBody::new(other.to_string()),
        };
        let headers = ErrorHeaders {
            retry_after_secs: match self {
                Self::RateLimited { retry_after_secs } | Self::Busy { retry_after_secs } => {
                    Some(retry_after_secs)
                }
                _ => None,
            },
            bearer_challenge: matches!(self, Self::Unauthorized(_)),
        };
        error_answer(self.status(), body, headers)
    }
}
