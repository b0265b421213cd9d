//! The answers the dashboard's pages read to administer the server: who is
//! signed in (`GET /api/v1/session`), the token list with what each token
//! wrote, and the user list after a change.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tailmon_server::auth::NewToken;
use tailmon_server::{Credentials, ServerBuilder};

use crate::people::{self, ADMIN_PASSWORD, Session, VIEWER_PASSWORD, json_request, people};
use crate::support::report;

struct Admin {
    router: Router,
    credentials: Arc<Credentials>,
}

impl Admin {
    fn new() -> Self {
        let credentials = people();
        let router = ServerBuilder::new()
            .credentials(credentials.clone())
            .max_devices_per_token(7)
            .rate_limit_per_address(None)
            .build()
            .unwrap()
            .router();
        Self {
            router,
            credentials,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, body) = people::send(&self.router, request).await;
        (status, body)
    }

    /// Signs in: the session's cookie and the answer (the session info).
    async fn login(&self, username: &str, password: &str) -> Session {
        people::login(&self.router, username, password).await
    }
}

fn as_session(method: Method, uri: &str, session: &Session, body: Option<Value>) -> Request<Body> {
    people::as_session(json_request(method, uri, body), session)
}

fn with_bearer(method: Method, uri: &str, token: &str, body: Option<Value>) -> Request<Body> {
    people::with_bearer(json_request(method, uri, body), token)
}

#[tokio::test]
async fn the_session_says_who_how_and_the_csrf_token() {
    let admin = Admin::new();
    let root = admin.login("root", ADMIN_PASSWORD).await;
    let (status, session) = admin
        .send(as_session(Method::GET, "/api/v1/session", &root, None))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        session,
        json!({"auth": "session", "username": "root", "role": "admin",
               "csrf_token": root.info["csrf_token"]}),
        "the login's answer and the session's agree"
    );
    assert_eq!(session, root.info);
    let ann = admin.login("ann", VIEWER_PASSWORD).await;
    let (_, session) = admin
        .send(as_session(Method::GET, "/api/v1/session", &ann, None))
        .await;
    assert_eq!(session["role"], "viewer");
    assert_eq!(session["username"], "ann");

    let read = admin
        .credentials
        .create_token(NewToken::read("script"))
        .unwrap();
    let (_, session) = admin
        .send(with_bearer(
            Method::GET,
            "/api/v1/session",
            &read.token,
            None,
        ))
        .await;
    assert_eq!(session["auth"], "token");
    assert_eq!(session["token"]["kind"], "read");
    assert_eq!(session["token"]["id"], read.info.id.as_str());

    let open = ServerBuilder::new().open_access().build().unwrap().router();
    let request = Request::get("/api/v1/session")
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .unwrap();
    let (_, _, session) = people::send(&open, request).await;
    assert_eq!(session, json!({"auth": "open", "role": "admin"}));
}

#[tokio::test]
async fn the_token_list_shows_what_each_token_may_do_and_has_written() {
    let admin = Admin::new();
    let root = admin.login("root", ADMIN_PASSWORD).await;
    let (status, created) = admin
        .send(as_session(
            Method::POST,
            "/api/v1/tokens",
            &root,
            Some(json!({"name": "web servers", "kind": "agent", "device": "web-*", "max_devices": 5})),
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("tmn_"), "{created}");
    for (key, value) in [
        ("name", json!("web servers")),
        ("kind", json!("agent")),
        ("device", json!("web-*")),
        ("max_devices", json!(5)),
    ] {
        assert_eq!(created[key], value, "{key} in {created}");
    }
    let (_, unbounded) = admin
        .send(as_session(
            Method::POST,
            "/api/v1/tokens",
            &root,
            Some(json!({"name": "anything"})),
        ))
        .await;
    assert_eq!(unbounded["kind"], "agent", "agent is the default kind");
    for device in ["web-1", "web-2", "web-1"] {
        let (status, body) = admin
            .send(with_bearer(
                Method::POST,
                "/api/metrics",
                &token,
                Some(serde_json::to_value(report(device, 1.0, 1)).unwrap()),
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (status, list) = admin
        .send(as_session(Method::GET, "/api/v1/tokens", &root, None))
        .await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let web = &list[0];
    assert_eq!(web["id"], created["id"]);
    assert_eq!(web["name"], "web servers");
    assert_eq!(web["kind"], "agent");
    assert_eq!(web["device"], "web-*");
    assert_eq!(web["created_at"], created["created_at"]);
    assert_eq!(web["devices"], 2, "distinct devices written: {web}");
    assert_eq!(web["device_cap"], 5);
    assert!(
        web.get("token").is_none() && web.get("sha256").is_none(),
        "{web}"
    );
    assert_eq!(list[1]["devices"], 0);
    assert_eq!(list[1]["device_cap"], 7, "the server's default cap");
    assert!(list[1].get("device").is_none(), "any device: {}", list[1]);

    // Revoked: gone from the list, refused at once.
    let (status, _) = admin
        .send(as_session(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", created["id"].as_str().unwrap()),
            &root,
            None,
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = admin
        .send(as_session(Method::GET, "/api/v1/tokens", &root, None))
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, _) = admin
        .send(with_bearer(
            Method::POST,
            "/api/metrics",
            &token,
            Some(serde_json::to_value(report("web-1", 1.0, 1)).unwrap()),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_user_list_follows_role_and_password_changes() {
    let admin = Admin::new();
    let root = admin.login("root", ADMIN_PASSWORD).await;
    let (status, users) = admin
        .send(as_session(Method::GET, "/api/v1/users", &root, None))
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ann", "root"], "by name");
    assert!(users[0]["created_at"].is_string() && users[0]["role"] == "viewer");

    let (status, _) = admin
        .send(as_session(
            Method::PATCH,
            "/api/v1/users/ann",
            &root,
            Some(json!({"role": "admin", "password": "a new password"})),
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, users) = admin
        .send(as_session(Method::GET, "/api/v1/users", &root, None))
        .await;
    assert_eq!(users[0]["role"], "admin");
    let ann = admin.login("ann", "a new password").await;
    assert_eq!(ann.info["role"], "admin");

    let (status, body) = admin
        .send(as_session(
            Method::PATCH,
            "/api/v1/users/nobody",
            &root,
            Some(json!({"role": "viewer"})),
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = admin
        .send(as_session(
            Method::PATCH,
            "/api/v1/users/ann",
            &root,
            Some(json!({})),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].is_string());
}
