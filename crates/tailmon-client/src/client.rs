use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use tailmon_core::{BatchResult, DeviceSummary, ErrorBody, History, OffsetDateTime, Report};

use crate::Error;

/// How long one request may take before it fails with a timeout: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A typed client of the Tailmon API. Cheap to clone: clones share one
/// connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    metrics_url: reqwest::Url,
    all_metrics_url: reqwest::Url,
    reports_url: reqwest::Url,
    devices_url: reqwest::Url,
}

/// Builds a [`Client`].
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    url: String,
    timeout: Duration,
}

impl Client {
    /// A builder for a client of the server at `url`: its base URL
    /// (`http://host:3000`) or, as `TAILMON_SERVER_URL` has it, the ingest
    /// endpoint (`http://host:3000/api/metrics`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            timeout: DEFAULT_TIMEOUT,
        }
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

    /// Every device with its latest report and status, from `GET /api/v1/devices`.
    pub async fn devices(&self) -> Result<Vec<DeviceSummary>, Error> {
        self.get_json(self.devices_url.clone()).await
    }

    /// One metric of one device over `from..=to` (defaults: the last hour),
    /// in at most `points` points (default 1,000), from
    /// `GET /api/v1/devices/{id}/history`.
    pub async fn history(
        &self,
        device_id: &str,
        metric: &str,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        points: Option<usize>,
    ) -> Result<History, Error> {
        let mut url = self.device_url(device_id, "history");
        url.query_pairs_mut().append_pair("metric", metric);
        append_range(&mut url, from, to);
        if let Some(points) = points {
            url.query_pairs_mut()
                .append_pair("points", &points.to_string());
        }
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

/// Adds `from` and `to` as Unix seconds.
fn append_range(url: &mut reqwest::Url, from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) {
    let secs = |at: OffsetDateTime| format!("{}", at.unix_timestamp_nanos() as f64 / 1e9);
    if let Some(from) = from {
        url.query_pairs_mut().append_pair("from", &secs(from));
    }
    if let Some(to) = to {
        url.query_pairs_mut().append_pair("to", &secs(to));
    }
}

/// Turns an error status into an [`Error`] carrying the server's message.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let message = response
        .bytes()
        .await
        .ok()
        .and_then(|body| serde_json::from_slice::<ErrorBody>(&body).ok())
        .map(|body| body.error);
    Err(Error::from_status(status.as_u16(), message))
}

impl ClientBuilder {
    /// How long one request may take. Defaults to [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client; fails on a URL that is not http(s).
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
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .user_agent(concat!("tailmon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::from_transport)?;
        Ok(Client {
            http,
            metrics_url: join("api/metrics")?,
            all_metrics_url: join("api/all_metrics")?,
            reports_url: join("api/v1/reports")?,
            devices_url: join("api/v1/devices")?,
        })
    }
}

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

    #[test]
    fn refuses_non_http_urls() {
        for bad in ["ftp://h", "not a url", ""] {
            let error = Client::builder(bad).build().expect_err(bad);
            assert!(error.to_string().contains("server URL"), "{error}");
            assert!(!error.is_retryable());
        }
    }
}
