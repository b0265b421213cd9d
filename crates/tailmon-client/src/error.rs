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
    /// No connection: refused, unknown host, or another network failure.
    Connect(Connect),
    /// The connection was made, but no secure one, or no HTTP on it.
    Tls(Tls),
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
        let plain_http = error.url().is_some_and(|url| url.scheme() == "http");
        let kind = if error.is_timeout() {
            Kind::Timeout
        } else if let Some(tls) = tls_cause(&error, plain_http) {
            Kind::Tls(tls)
        } else if error.is_connect() {
            Kind::Connect(connect_cause(&error))
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

    /// The server could not be reached at all, or no secure connection
    /// could be made with it: see [`is_connection_refused`](Self::is_connection_refused),
    /// [`is_unknown_host`](Self::is_unknown_host) and [`is_tls`](Self::is_tls)
    /// for why.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind,
            Kind::Connect(_)
                | Kind::Tls(Tls::PlainHttpServer | Tls::Certificate(_) | Tls::Other(_))
        )
    }

    /// The server's host refused the connection: nothing listens at that
    /// address and port (the server is down, or the port is wrong).
    pub fn is_connection_refused(&self) -> bool {
        matches!(self.kind, Kind::Connect(Connect::Refused))
    }

    /// The server's host name does not resolve (DNS): a typo in the URL,
    /// or no name service.
    pub fn is_unknown_host(&self) -> bool {
        matches!(self.kind, Kind::Connect(Connect::UnknownHost))
    }

    /// TLS does not match between the client and the server: an
    /// `https://` URL for a plain HTTP server, a certificate the client does
    /// not trust or that is not valid for the host, or a plain `http://` URL
    /// for a server that speaks TLS. [`tls_problem`](Self::tls_problem)
    /// says which.
    pub fn is_tls(&self) -> bool {
        matches!(self.kind, Kind::Tls(_))
    }

    /// What the TLS mismatch is, in a few words, when [`is_tls`](Self::is_tls).
    pub fn tls_problem(&self) -> Option<String> {
        match &self.kind {
            Kind::Tls(tls) => Some(tls.to_string()),
            _ => None,
        }
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
            Kind::Timeout | Kind::Connect(_) | Kind::Tls(_) | Kind::Request => true,
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
            Kind::Connect(Connect::Refused) => {
                f.write_str("could not connect to the server: connection refused")
            }
            Kind::Connect(Connect::UnknownHost) => {
                f.write_str("could not connect to the server: its host name does not resolve")
            }
            Kind::Connect(Connect::Other) => f.write_str("could not connect to the server"),
            Kind::Tls(tls) => write!(f, "TLS mismatch: {tls}"),
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

/// Why no connection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connect {
    Refused,
    UnknownHost,
    Other,
}

/// How TLS does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tls {
    /// `https://` to a server that does not speak TLS.
    PlainHttpServer,
    /// The server's certificate is not trusted or not valid for the host.
    Certificate(String),
    /// `http://` to a server that does not answer HTTP: TLS, most likely.
    SecureServer,
    /// Another TLS failure.
    Other(String),
}

impl fmt::Display for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tls::PlainHttpServer => f.write_str(
                "the server does not speak TLS (an https:// URL for a plain HTTP server?)",
            ),
            Tls::Certificate(why) => {
                write!(f, "the server's certificate is not trusted or not valid: {why}")
            }
            Tls::SecureServer => f.write_str(
                "the server's answer is not HTTP (a plain http:// URL for a server that speaks TLS?)",
            ),
            Tls::Other(why) => write!(f, "TLS handshake failed: {why}"),
        }
    }
}

/// Every error in `error`'s chain, with the one an `io::Error` wraps
/// (which `io::Error::source` skips).
fn chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut all = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        all.push(current);
        next = match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    all
}

/// The TLS mismatch `error` shows, if any.
fn tls_cause(error: &reqwest::Error, plain_http: bool) -> Option<Tls> {
    for link in chain(error) {
        if let Some(tls) = link.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidMessage(_) => Tls::PlainHttpServer,
                rustls::Error::InvalidCertificate(why) => {
                    Tls::Certificate(certificate_problem(why))
                }
                other => Tls::Other(other.to_string()),
            });
        }
        // hyper's words for an answer that does not start with `HTTP/1.x`:
        // over plain HTTP, a TLS server's alert record is the usual one.
        if plain_http && link.to_string() == "invalid HTTP version parsed" {
            return Some(Tls::SecureServer);
        }
    }
    None
}

/// A certificate problem in a few words.
fn certificate_problem(error: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match error {
        E::UnknownIssuer => "signed by a CA this agent does not trust".to_owned(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "not issued for this host name".to_owned()
        }
        E::Expired | E::ExpiredContext { .. } => "expired".to_owned(),
        E::NotValidYet | E::NotValidYetContext { .. } => "not valid yet".to_owned(),
        E::Revoked => "revoked".to_owned(),
        E::BadSignature => "its signature does not verify".to_owned(),
        other => format!("{other:?}"),
    }
}

/// What made a request fail, as the agent's log tells it: each its own
/// line, each line at most once a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FailureCause {
    ConnectionRefused,
    UnknownHost,
    /// `https://` to a plain HTTP server.
    NotTls,
    /// A certificate not trusted or not valid.
    Certificate,
    /// `http://` to a TLS server.
    ServerWantsTls,
    OtherTls,
    Timeout,
    /// 404: no ingest endpoint at the URL.
    NotFound,
    /// 401: no credential, or one the server does not know.
    Credentials,
    /// 403: the server knows who asks but does not let it (a read-only
    /// token, an address it does not allow).
    Forbidden,
    /// Another 4xx that does not blame the reports.
    Unexpected,
    /// Anything else that may pass: another network failure, 408, 429,
    /// 5xx, an answer the agent cannot read.
    Transient,
}

impl Error {
    /// What made this request fail, for the agent's log.
    pub(crate) fn failure_cause(&self) -> FailureCause {
        match &self.kind {
            Kind::Connect(Connect::Refused) => FailureCause::ConnectionRefused,
            Kind::Connect(Connect::UnknownHost) => FailureCause::UnknownHost,
            Kind::Tls(Tls::PlainHttpServer) => FailureCause::NotTls,
            Kind::Tls(Tls::Certificate(_)) => FailureCause::Certificate,
            Kind::Tls(Tls::SecureServer) => FailureCause::ServerWantsTls,
            Kind::Tls(Tls::Other(_)) => FailureCause::OtherTls,
            Kind::Timeout => FailureCause::Timeout,
            Kind::Status { code: 404, .. } => FailureCause::NotFound,
            Kind::Status { code: 401, .. } => FailureCause::Credentials,
            Kind::Status { code: 403, .. } => FailureCause::Forbidden,
            _ if self.is_retryable() || self.is_decode() => FailureCause::Transient,
            _ => FailureCause::Unexpected,
        }
    }
}

/// Why no connection was made, from `error`'s chain.
fn connect_cause(error: &reqwest::Error) -> Connect {
    for link in chain(error) {
        if link
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return Connect::Refused;
        }
        // hyper-util's resolver failing: `ConnectError("dns error", …)`.
        if link.to_string() == "dns error" {
            return Connect::UnknownHost;
        }
    }
    Connect::Other
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
