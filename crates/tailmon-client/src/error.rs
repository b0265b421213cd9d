use std::fmt;
use std::time::Duration;

/// Why a [`Client`](crate::Client) call failed. Opaque: ask it with the
/// predicates rather than matching on its insides.
pub struct Error {
    kind: Kind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug)]
enum Kind {
    Builder(String),
    Timeout,
    Connect,
    Status {
        code: u16,
        message: Option<String>,
        retry_after: Option<Duration>,
    },
    Decode,
    Request,
}

impl Error {
    pub(crate) fn builder(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Builder(message.into()),
            source: None,
        }
    }

    /// An error status; `retry_after` is the wait the server asked for
    /// with `Retry-After`, if it did.
    pub(crate) fn from_status(
        code: u16,
        message: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            kind: Kind::Status {
                code,
                message,
                retry_after,
            },
            source: None,
        }
    }

    pub(crate) fn decode(source: serde_json::Error) -> Self {
        Self {
            kind: Kind::Decode,
            source: Some(Box::new(source)),
        }
    }

    /// A success status whose answer is not what a Tailmon server sends.
    pub(crate) fn unreadable_answer(why: impl Into<String>) -> Self {
        Self {
            kind: Kind::Decode,
            source: Some(why.into().into()),
        }
    }

    pub(crate) fn from_transport(error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            Kind::Timeout
        } else if error.is_connect() {
            Kind::Connect
        } else if error.is_builder() {
            Kind::Builder(error.to_string())
        } else {
            Kind::Request
        };
        Self {
            kind,
            source: Some(Box::new(error)),
        }
    }

    /// The request took longer than the client's timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, Kind::Timeout)
    }

    /// The server could not be reached at all.
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, Kind::Connect)
    }

    /// The server answered with a non-success status; see [`status`](Self::status).
    pub fn is_status(&self) -> bool {
        matches!(self.kind, Kind::Status { .. })
    }

    /// The HTTP status the server answered with, if it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            Kind::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The server's own words about the error (its JSON `error` field), if any.
    pub fn server_message(&self) -> Option<&str> {
        match &self.kind {
            Kind::Status { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// How long the server asked to wait before trying again, with a
    /// `Retry-After` header on its error answer (in seconds, or as an HTTP
    /// date, taken from now); `None` if it did not ask. A Tailmon server sends
    /// it with 429 (rate limit, device cap) and 503 (store unavailable, disk
    /// full). The value is the server's, uncapped: the agent caps it at
    /// 5 minutes.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            Kind::Status { retry_after, .. } => retry_after,
            _ => None,
        }
    }

    /// The server does not have the endpoint: it answered 404 Not Found or
    /// 405 Method Not Allowed, as a server older than the endpoint does (the
    /// original Tailmon has no `POST /api/v1/reports`; send the reports one
    /// by one with [`Client::send`](crate::Client::send) then). A proxy in
    /// front of the server answers the same while the server is being
    /// deployed, so one such answer proves little: the agent takes a server
    /// to lack the batch endpoint only once `POST /api/metrics` on it has
    /// stored a report meanwhile.
    pub fn is_not_found_or_unsupported(&self) -> bool {
        matches!(
            self.kind,
            Kind::Status {
                code: 404 | 405,
                ..
            }
        )
    }

    /// The server refused the client's credentials: 401 Unauthorized (no
    /// token, or one it does not know) or 403 Forbidden (a token not allowed
    /// to do this). Not [retryable](Self::is_retryable) as such: the same
    /// request with the same token fails again until the token, or the
    /// server's list of tokens, is changed. The agent keeps its reports
    /// meanwhile.
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self.kind,
            Kind::Status {
                code: 401 | 403,
                ..
            }
        )
    }

    /// A request body could not be encoded, or the server's answer decoded:
    /// a success status with a body that is not what a Tailmon server
    /// answers (an HTML page of a captive portal or a misrouted proxy, say).
    /// Nothing proves the server stored anything then.
    pub fn is_decode(&self) -> bool {
        matches!(self.kind, Kind::Decode)
    }

    /// Whether sending the same request again later may succeed: transport
    /// failures, timeouts, 408, 429 and 5xx. A 4xx that blames the request is not.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            Kind::Timeout | Kind::Connect | Kind::Request => true,
            Kind::Status { code, .. } => code == 408 || code == 429 || code >= 500,
            Kind::Builder(_) | Kind::Decode => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Builder(message) => write!(f, "invalid client settings: {message}"),
            Kind::Timeout => f.write_str("request timed out"),
            Kind::Connect => f.write_str("could not connect to the server"),
            Kind::Status {
                code,
                message: Some(message),
                ..
            } => {
                write!(f, "server answered {code}: {message}")
            }
            Kind::Status {
                code,
                message: None,
                ..
            } => write!(f, "server answered {code}"),
            Kind::Decode => f.write_str("could not decode the server's answer"),
            Kind::Request => f.write_str("request failed"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("tailmon_client::Error");
        d.field("kind", &self.kind);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_endpoint_is_told_apart_from_a_bad_request() {
        for code in [404, 405] {
            let error = Error::from_status(code, None, None);
            assert!(error.is_not_found_or_unsupported(), "{code}");
            assert!(!error.is_retryable(), "{code}");
        }
        for code in [400, 413, 422, 429, 500, 503] {
            assert!(
                !Error::from_status(code, None, None).is_not_found_or_unsupported(),
                "{code}"
            );
        }
        assert!(!Error::builder("x").is_not_found_or_unsupported());
    }

    #[test]
    fn refused_credentials_are_told_apart() {
        for code in [401, 403] {
            let error = Error::from_status(code, None, None);
            assert!(error.is_unauthorized(), "{code}");
            assert!(!error.is_retryable(), "{code}");
        }
        for code in [400, 404, 429, 500] {
            assert!(
                !Error::from_status(code, None, None).is_unauthorized(),
                "{code}"
            );
        }
        assert!(!Error::builder("x").is_unauthorized());
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503] {
            assert!(
                Error::from_status(code, None, None).is_retryable(),
                "{code}"
            );
        }
        for code in [400, 401, 404, 405, 413, 415, 422] {
            assert!(
                !Error::from_status(code, None, None).is_retryable(),
                "{code}"
            );
        }
    }
}
