use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderValue};
use tailmon_core::{ErrorBody, Report};

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
        let response = self
            .http
            .post(self.metrics_url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await
            .map_err(Error::from_transport)?;
        check(response).await.map(drop)
    }

    /// The latest report of every device, from `GET /api/all_metrics`.
    pub async fn all_metrics(&self) -> Result<Vec<Report>, Error> {
        let response = self
            .http
            .get(self.all_metrics_url.clone())
            .send()
            .await
            .map_err(Error::from_transport)?;
        let bytes = check(response)
            .await?
            .bytes()
            .await
            .map_err(Error::from_transport)?;
        serde_json::from_slice(&bytes).map_err(Error::decode)
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
