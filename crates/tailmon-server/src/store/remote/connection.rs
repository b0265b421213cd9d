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

/// Each organisation's requests in its own engine tenant: its id in a
/// header (Mimir's `X-Scope-OrgID`); the index of every device's newest
/// time in one more tenant, for the reads across organisations.
#[derive(Debug, Clone)]
pub(crate) struct TenantHeader {
    /// The header.
    pub(crate) name: HeaderName,
    /// The tenant of the index.
    pub(crate) index: String,
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
    pub(crate) tenant: Option<TenantHeader>,
}

impl Connection {
    /// A request to `url` carrying the credentials, the extra headers and,
    /// with a tenant header, `tenant` in it.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        tenant: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, url)
            .headers(self.headers.clone());
        if let (Some(header), Some(tenant)) = (&self.tenant, tenant) {
            request = request.header(header.name.clone(), tenant);
        }
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
