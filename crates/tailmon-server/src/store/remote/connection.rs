//! How the remote store reaches its engine: the URLs, the HTTP client and
//! what every request carries (credentials, extra headers).

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// Credentials sent with every request.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `Authorization: Basic …`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// `Authorization: Bearer …`.
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        match self {
            Self::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
        }
    }
}

/// The engine's endpoints and the client that reaches them.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) client: reqwest::Client,
    /// The remote-write endpoint, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub(crate) write_url: String,
    /// The base the Prometheus API paths are appended to, e.g.
    /// `http://127.0.0.1:9090` (no trailing slash).
    pub(crate) query_url: String,
    pub(crate) auth: Option<Auth>,
    pub(crate) headers: HeaderMap,
}

impl Connection {
    /// A request to `url` carrying the credentials and extra headers.
    pub(crate) fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, url)
            .headers(self.headers.clone());
        match &self.auth {
            Some(Auth::Basic { user, password }) => request.basic_auth(user, Some(password)),
            Some(Auth::Bearer(token)) => request.bearer_auth(token),
            None => request,
        }
    }
}

/// A header `name: value`, checked.
pub(crate) fn header(name: &str, value: &str) -> Option<(HeaderName, HeaderValue)> {
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let mut value = HeaderValue::from_str(value.trim()).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}
