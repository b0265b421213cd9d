use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::de::DeserializeOwned;
use tailmon_core::{
    BatchResult, DeviceSummary, ErrorBody, History, HistoryQuery, OffsetDateTime, Report,
};

use crate::Error;
use crate::retry_after::parse_retry_after;

/// How long one request may take before it fails with a timeout: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A typed client of the Tailmon API. Cheap to clone: clones share one
/// connection pool.
///
/// Over `https://` it verifies the server's certificate against the
/// system's trusted roots (and the Mozilla roots built in), plus any CA
/// given with [`ClientBuilder::ca_cert_pem`] or [`ClientBuilder::ca_cert_file`].
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    has_token: bool,
    timeout: Duration,
    metrics_url: reqwest::Url,
    all_metrics_url: reqwest::Url,
    reports_url: reqwest::Url,
    devices_url: reqwest::Url,
}

/// Builds a [`Client`].
///
/// ```no_run
/// # fn run() -> Result<(), tailmon_client::Error> {
/// let client = tailmon_client::Client::builder("https://monitor.example:3000")
///     .token("the agent's token")
///     .ca_cert_file("/etc/tailmon/ca.pem")
///     .build()?;
/// # Ok(())
/// # }
/// ```
#[must_use]
pub struct ClientBuilder {
    url: String,
    timeout: Duration,
    token: Option<String>,
    ca_certs: Vec<CaSource>,
}

/// Where an extra trusted CA comes from; read and parsed by `build`.
enum CaSource {
    Pem(Vec<u8>),
    File(PathBuf),
}

impl Client {
    /// A builder for a client of the server at `url`: its base URL
    /// (`http://host:3000`) or, as `TAILMON_SERVER_URL` has it, the ingest
    /// endpoint (`http://host:3000/api/metrics`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
            token: None,
            ca_certs: Vec::new(),
        }
    }

    /// Whether requests carry a token (`Authorization: Bearer …`).
    pub(crate) fn has_token(&self) -> bool {
        self.has_token
    }

    /// The ingest endpoint, `…/api/metrics`.
    pub(crate) fn metrics_url(&self) -> &reqwest::Url {
        &self.metrics_url
    }

    /// How long one request may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one report to `POST /api/metrics`. `Ok` means the server stored it.
    pub async fn send(&self, report: &Report) -> Result<(), Error> {
        let body = serde_json::to_vec(report).map_err(Error::decode)?;
        self.send_json(body).await
    }

    /// Sends several reports in one request to `POST /api/v1/reports`, the
    /// way an agent back-fills what it could not deliver.
    ///
    /// `Ok` means the server answered: the [`BatchResult`] counts the
    /// reports it stored (committed before it answered) and lists, by index
    /// in `reports`, those it refused and why. A refused report fails
    /// validation and will never be accepted; sending it again is pointless.
    ///
    /// `Err` means the batch as a whole was not taken, with the same
    /// conventions as [`send`](Self::send): [`Error::is_retryable`] for
    /// transport failures, 429 and 5xx; 413 when the batch is too large
    /// (more than [`tailmon_core::MAX_BATCH_REPORTS`] reports, or a body over
    /// the server's limit, 4 MiB by default); and
    /// [`Error::is_not_found_or_unsupported`] when the server predates the
    /// endpoint, so that the reports must go one by one through
    /// [`send`](Self::send).
    ///
    /// ```no_run
    /// # async fn run(reports: Vec<tailmon_core::Report>) -> Result<(), tailmon_client::Error> {
    /// let client = tailmon_client::Client::builder("http://127.0.0.1:3000").build()?;
    /// let result = client.send_batch(&reports).await?;
    /// for refused in &result.rejected {
    ///     eprintln!("report {} refused: {}", refused.index, refused.error);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn send_batch(&self, reports: &[Report]) -> Result<BatchResult, Error> {
        let body = serde_json::to_vec(reports).map_err(Error::decode)?;
        self.send_json_batch(body).await
    }

    /// Posts one report, already serialized, to `POST /api/metrics`.
    pub(crate) async fn send_json(&self, body: Vec<u8>) -> Result<(), Error> {
        let response = self.post_json(&self.metrics_url, body).await?;
        check(response).await.map(drop)
    }

    /// Posts a JSON array of reports, already serialized, to `POST /api/v1/reports`.
    pub(crate) async fn send_json_batch(&self, body: Vec<u8>) -> Result<BatchResult, Error> {
        let response = self.post_json(&self.reports_url, body).await?;
        decode(response).await
    }

    async fn post_json(
        &self,
        url: &reqwest::Url,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, Error> {
        self.http
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await
            .map_err(Error::from_transport)
    }

    /// Every device with its latest report and its status as the server
    /// computes it (`offline`, with `offline_since`, when it stopped
    /// reporting), from `GET /api/v1/devices`.
    pub async fn devices(&self) -> Result<Vec<DeviceSummary>, Error> {
        self.get_json(self.devices_url.clone()).await
    }

    /// One metric of one device over a range, in at most
    /// `query.max_points` points, from `GET /api/v1/devices/{id}/history`:
    /// the same [`HistoryQuery`] the server hands its store.
    ///
    /// ```no_run
    /// # async fn run(client: tailmon_client::Client) -> Result<(), tailmon_client::Error> {
    /// use tailmon_core::{HistoryQuery, OffsetDateTime};
    ///
    /// let to = OffsetDateTime::now_utc();
    /// let from = to - time::Duration::HOUR;
    /// let history = client.history(&HistoryQuery::new("web-1", "cpu_usage", from, to)).await?;
    /// println!("{} points", history.points.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn history(&self, query: &HistoryQuery) -> Result<History, Error> {
        let mut url = self.device_url(&query.device_id, "history");
        url.query_pairs_mut().append_pair("metric", &query.metric);
        append_range(&mut url, Some(query.from), Some(query.to));
        url.query_pairs_mut()
            .append_pair("points", &query.max_points.to_string());
        self.get_json(url).await
    }

    /// The raw reports of one device over `from..=to` (defaults: all kept),
    /// oldest first, from `GET /api/v1/devices/{id}/export?format=json`.
    pub async fn export(
        &self,
        device_id: &str,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
    ) -> Result<Vec<Report>, Error> {
        let mut url = self.device_url(device_id, "export");
        url.query_pairs_mut().append_pair("format", "json");
        append_range(&mut url, from, to);
        self.get_json(url).await
    }

    /// Removes a device and its history (`DELETE /api/v1/devices/{id}`);
    /// `false` if the server did not know it.
    pub async fn delete_device(&self, device_id: &str) -> Result<bool, Error> {
        let mut url = self.devices_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(device_id);
        }
        let response = self
            .http
            .delete(url)
            .send()
            .await
            .map_err(Error::from_transport)?;
        match check(response).await {
            Ok(_) => Ok(true),
            Err(error) if error.status() == Some(404) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn device_url(&self, device_id: &str, action: &str) -> reqwest::Url {
        let mut url = self.devices_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push(device_id).push(action);
        }
        url
    }

    async fn get_json<T: DeserializeOwned>(&self, url: reqwest::Url) -> Result<T, Error> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(Error::from_transport)?;
        decode(response).await
    }

    /// The latest report of every device, from `GET /api/all_metrics`.
    pub async fn all_metrics(&self) -> Result<Vec<Report>, Error> {
        self.get_json(self.all_metrics_url.clone()).await
    }
}

/// The JSON body of a successful answer.
async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, Error> {
    let bytes = check(response)
        .await?
        .bytes()
        .await
        .map_err(Error::from_transport)?;
    serde_json::from_slice(&bytes).map_err(Error::decode)
}

/// Adds `from` and `to` as RFC 3339 times, exact to the nanosecond (as
/// Unix seconds in a double they would be off by up to some hundred).
fn append_range(url: &mut reqwest::Url, from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) {
    let secs = |at: OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| at.unix_timestamp().to_string())
    };
    if let Some(from) = from {
        url.query_pairs_mut().append_pair("from", &secs(from));
    }
    if let Some(to) = to {
        url.query_pairs_mut().append_pair("to", &secs(to));
    }
}

/// Turns an error status into an [`Error`] carrying the server's message
/// and the wait it asked for with `Retry-After`.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, OffsetDateTime::now_utc()));
    let message = response
        .bytes()
        .await
        .ok()
        .and_then(|body| serde_json::from_slice::<ErrorBody>(&body).ok())
        .map(|body| body.error);
    Err(Error::from_status(status.as_u16(), message, retry_after))
}

impl ClientBuilder {
    /// How long one request may take. Defaults to [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `Authorization: Bearer <token>` with every request. Defaults to
    /// no token. The token never shows in the client's `Debug` output, and
    /// the header is marked sensitive.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Also trusts the CA certificates in `pem` (one or more PEM blocks
    /// `BEGIN CERTIFICATE`) when verifying the server, beside the system's
    /// roots: for a server whose certificate a private CA signed, or a
    /// self-signed one. Defaults to none. Checked by [`build`](Self::build).
    pub fn ca_cert_pem(mut self, pem: &[u8]) -> Self {
        self.ca_certs.push(CaSource::Pem(pem.to_vec()));
        self
    }

    /// As [`ca_cert_pem`](Self::ca_cert_pem), with the PEM read from `path`
    /// by [`build`](Self::build).
    pub fn ca_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_certs.push(CaSource::File(path.into()));
        self
    }

    /// Builds the client; fails on a URL that is not http(s), a token that
    /// cannot be a header value, and a CA that cannot be read or holds no
    /// certificate.
    pub fn build(self) -> Result<Client, Error> {
        let mut base = reqwest::Url::parse(self.url.trim())
            .map_err(|e| Error::builder(format!("invalid server URL {:?}: {e}", self.url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::builder(format!(
                "server URL {:?} must start with http:// or https://",
                self.url
            )));
        }
        let path = base.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/metrics").unwrap_or(path).to_owned();
        base.set_path(&format!("{path}/"));
        let join = |endpoint: &str| {
            base.join(endpoint)
                .map_err(|e| Error::builder(format!("invalid server URL: {e}")))
        };
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            headers.insert(AUTHORIZATION, bearer(token)?);
        }
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("tailmon/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers);
        if base.scheme() == "http" {
            // No TLS to verify: skip loading the system's trusted roots,
            // which takes milliseconds and some hundred kilobytes.
            http = http.tls_built_in_root_certs(false);
        }
        for source in &self.ca_certs {
            for certificate in ca_certificates(source)? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(Error::from_transport)?;
        Ok(Client {
            http,
            has_token: self.token.is_some(),
            timeout: self.timeout,
            metrics_url: join("api/metrics")?,
            all_metrics_url: join("api/all_metrics")?,
            reports_url: join("api/v1/reports")?,
            devices_url: join("api/v1/devices")?,
        })
    }
}

/// `Bearer <token>`, marked sensitive; the error never quotes the token.
fn bearer(token: &str) -> Result<HeaderValue, Error> {
    if token.is_empty() {
        return Err(Error::builder("the token is empty"));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Error::builder("the token holds characters not allowed in an HTTP header"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The certificates of one CA source; at least one.
fn ca_certificates(source: &CaSource) -> Result<Vec<reqwest::Certificate>, Error> {
    let (pem, origin) = match source {
        CaSource::Pem(pem) => (pem.clone(), "the CA PEM".to_owned()),
        CaSource::File(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::builder(format!(
                    "cannot read the CA certificate file {}: {e}",
                    path.display()
                ))
            })?;
            (pem, format!("the CA certificate file {}", path.display()))
        }
    };
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::builder(format!("invalid certificate in {origin}: {e}")))?;
    if ders.is_empty() {
        return Err(Error::builder(format!(
            "no certificate in {origin}: expected a PEM block \"-----BEGIN CERTIFICATE-----\""
        )));
    }
    ders.iter()
        .map(|der| {
            reqwest::Certificate::from_der(der)
                .map_err(|e| Error::builder(format!("invalid certificate in {origin}: {e}")))
        })
        .collect()
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("metrics_url", &self.metrics_url.as_str())
            .field("token", &self.has_token.then_some(REDACTED))
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| REDACTED))
            .field("ca_certs", &self.ca_certs.len())
            .finish()
    }
}

/// What `Debug` shows in place of a token.
const REDACTED: &str = "<redacted>";

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(input: &str) -> (String, String) {
        let c = Client::builder(input).build().expect("valid URL");
        (c.metrics_url.to_string(), c.all_metrics_url.to_string())
    }

    #[test]
    fn batch_url_sits_beside_the_ingest_url() {
        for input in ["http://h:3000", "http://h:3000/api/metrics"] {
            let c = Client::builder(input).build().expect("valid URL");
            assert_eq!(c.reports_url.as_str(), "http://h:3000/api/v1/reports");
        }
        let c = Client::builder("https://h/monitor/api/metrics")
            .build()
            .expect("valid URL");
        assert_eq!(c.reports_url.as_str(), "https://h/monitor/api/v1/reports");
    }

    #[test]
    fn accepts_base_or_ingest_url() {
        let expected = (
            "http://h:3000/api/metrics".to_owned(),
            "http://h:3000/api/all_metrics".to_owned(),
        );
        assert_eq!(urls("http://h:3000"), expected);
        assert_eq!(urls("http://h:3000/"), expected);
        assert_eq!(urls("http://h:3000/api/metrics"), expected);
        assert_eq!(urls("http://h:3000/api/metrics/"), expected);
        assert_eq!(
            urls("https://h/monitor/api/metrics").0,
            "https://h/monitor/api/metrics"
        );
    }

    #[tokio::test]
    async fn token_goes_as_a_bearer_header_and_never_into_debug() {
        let server =
            crate::scripted_server::ScriptedServer::start(|_, _| (200, String::new())).await;
        let builder = Client::builder(&server.url).token("s3cr3t-token");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let client = builder.build().expect("valid");
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(client.has_token());

        let report = Report::new("token-test", OffsetDateTime::now_utc());
        client.send(&report).await.expect("accepted");
        client.send_batch(&[report]).await.ok();
        let received = server.received();
        assert_eq!(received.len(), 2);
        for request in received {
            assert_eq!(
                request.authorization.as_deref(),
                Some("Bearer s3cr3t-token"),
                "{}",
                request.path
            );
        }
    }

    #[tokio::test]
    async fn no_token_no_authorization_header() {
        let server =
            crate::scripted_server::ScriptedServer::start(|_, _| (200, String::new())).await;
        let client = Client::builder(&server.url).build().expect("valid");
        assert!(!client.has_token());
        let report = Report::new("token-test", OffsetDateTime::now_utc());
        client.send(&report).await.expect("accepted");
        assert_eq!(server.received()[0].authorization, None);
    }

    #[tokio::test]
    async fn retry_after_of_an_error_answer_is_exposed() {
        use crate::scripted_server::{Answer, ScriptedServer};
        let in_a_minute = (OffsetDateTime::now_utc() + time::Duration::seconds(60))
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc2822)
            .expect("formats")
            .replace("+0000", "GMT");
        let server = ScriptedServer::scripted(move |path, _| match path {
            "/api/metrics" => Answer::json(503, r#"{"error":"disk full"}"#).retry_after("5"),
            _ => Answer::json(429, r#"{"error":"too many devices"}"#)
                .retry_after(in_a_minute.clone()),
        })
        .await;
        let client = Client::builder(&server.url).build().expect("valid");
        let report = Report::new("retry-after-test", OffsetDateTime::now_utc());
        let error = client.send(&report).await.expect_err("503");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(5)));
        assert_eq!(error.server_message(), Some("disk full"));
        let error = client.send_batch(&[report]).await.expect_err("429");
        let asked = error.retry_after().expect("an HTTP date");
        assert!(
            (Duration::from_secs(55)..=Duration::from_secs(60)).contains(&asked),
            "{asked:?}"
        );
        let server = ScriptedServer::start(|_, _| (503, String::new())).await;
        let client = Client::builder(&server.url).build().expect("valid");
        let report = Report::new("retry-after-test", OffsetDateTime::now_utc());
        let error = client.send(&report).await.expect_err("503");
        assert_eq!(error.retry_after(), None, "not asked");
    }

    #[test]
    fn unusable_tokens_are_refused_without_quoting_them() {
        let error = Client::builder("http://h")
            .token("")
            .build()
            .expect_err("empty");
        assert!(error.to_string().contains("token is empty"), "{error}");
        let error = Client::builder("http://h")
            .token("line\nbreak-secret")
            .build()
            .expect_err("a newline");
        assert!(error.to_string().contains("token"), "{error}");
        assert!(
            !format!("{error} {error:?}").contains("break-secret"),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn unusable_ca_certificates_are_refused_by_build() {
        let error = Client::builder("https://h")
            .ca_cert_pem(b"not a certificate")
            .build()
            .expect_err("no PEM block");
        assert!(
            error.to_string().contains("no certificate in the CA PEM"),
            "{error}"
        );
        let error = Client::builder("https://h")
            .ca_cert_pem(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
            .build()
            .expect_err("bad base64");
        assert!(error.to_string().contains("invalid certificate"), "{error}");
        let error = Client::builder("https://h")
            .ca_cert_file("/nonexistent/tailmon-ca.pem")
            .build()
            .expect_err("no such file");
        let message = error.to_string();
        assert!(
            message.contains("cannot read the CA certificate file /nonexistent/tailmon-ca.pem"),
            "{message}"
        );
    }

    #[test]
    fn refuses_non_http_urls() {
        for bad in ["ftp://h", "not a url", ""] {
            let error = Client::builder(bad).build().expect_err(bad);
            assert!(error.to_string().contains("server URL"), "{error}");
            assert!(!error.is_retryable());
        }
    }
}
