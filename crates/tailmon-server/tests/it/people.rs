//! Router tests as people: an admin `root` and a viewer `ann`, signing in
//! and sending requests with their session or a token.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tailmon_server::Credentials;
use tailmon_server::auth::{CSRF_HEADER, Role};
use tower::ServiceExt;

/// `root`'s password; `root` is an admin.
pub(crate) const ADMIN_PASSWORD: &str = "admin-password-1";
/// `ann`'s password; `ann` is a viewer.
pub(crate) const VIEWER_PASSWORD: &str = "viewer-password-1";

/// Credentials in memory with `root` (admin) and `ann` (viewer).
pub(crate) fn people() -> Arc<Credentials> {
    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("root", ADMIN_PASSWORD, Role::Admin)
        .unwrap();
    credentials
        .add_user("ann", VIEWER_PASSWORD, Role::Viewer)
        .unwrap();
    credentials
}

/// Sends `request`: the status, the headers and the body as JSON (null when it is not).
pub(crate) async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

/// A signed-in person: the `Cookie` header value and the login's answer.
pub(crate) struct Session {
    /// `tailmon_session=…`, for the `Cookie` header.
    pub(crate) cookie: String,
    /// The login's answer (the session info, with `csrf_token`).
    pub(crate) info: Value,
}

impl Session {
    /// The CSRF token to repeat in requests that change things.
    pub(crate) fn csrf(&self) -> &str {
        self.info["csrf_token"].as_str().unwrap()
    }
}

/// Signs `username` in; fails the test unless the login succeeds.
pub(crate) async fn login(router: &Router, username: &str, password: &str) -> Session {
    let (status, headers, info) = send(
        router,
        json_request(
            Method::POST,
            "/api/v1/login",
            Some(json!({"username": username, "password": password})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Session { cookie, info }
}

/// A request with `body` as JSON, or none.
pub(crate) fn json_request(method: Method, uri: &str, body: Option<Value>) -> Request<Body> {
    let builder = Request::builder().method(method).uri(uri);
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

/// `request` with `session`'s cookie and CSRF token.
pub(crate) fn as_session(mut request: Request<Body>, session: &Session) -> Request<Body> {
    let headers = request.headers_mut();
    headers.insert(header::COOKIE, session.cookie.parse().unwrap());
    headers.insert(CSRF_HEADER, session.csrf().parse().unwrap());
    request
}

/// `request` with `token` as its bearer.
pub(crate) fn with_bearer(mut request: Request<Body>, token: &str) -> Request<Body> {
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    request
}
