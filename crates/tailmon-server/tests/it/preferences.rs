//! `GET` and `PUT /api/v1/preferences` through the router: each caller's
//! own set, checked values, CSRF for sessions, and forgotten with its
//! user or token.

use std::sync::Arc;

use tower::ServiceExt;

use crate::people::{self, ADMIN_PASSWORD, VIEWER_PASSWORD, people};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tailmon_server::auth::{CSRF_HEADER, NewToken};
use tailmon_server::views::{Owner, PreferenceStore};
use tailmon_server::{Credentials, ServerBuilder};

const PATH: &str = "/api/v1/preferences";

/// Who a request comes from.
#[derive(Clone)]
enum Caller {
    Session { cookie: String, csrf: String },
    SessionWithoutCsrf { cookie: String },
    Bearer(String),
    Nobody,
}

struct Fixture {
    router: Router,
    credentials: Arc<Credentials>,
    preferences: Arc<PreferenceStore>,
}

impl Fixture {
    fn new() -> Self {
        let credentials = people();
        let preferences = Arc::new(PreferenceStore::in_memory());
        let server = ServerBuilder::new()
            .credentials(credentials.clone())
            .preferences(preferences.clone())
            .rate_limit_per_address(None)
            .build()
            .unwrap();
        Self {
            router: server.router(),
            credentials,
            preferences,
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let (status, _, body) = people::send(&self.router, request).await;
        (status, body)
    }

    async fn login(&self, username: &str, password: &str) -> Caller {
        let session = people::login(&self.router, username, password).await;
        let csrf = session.csrf().to_owned();
        Caller::Session {
            cookie: session.cookie,
            csrf,
        }
    }

    async fn get(&self, caller: &Caller) -> (StatusCode, Value) {
        self.send(request(Method::GET, caller, None)).await
    }

    async fn put(&self, caller: &Caller, body: &str) -> (StatusCode, Value) {
        self.send(request(Method::PUT, caller, Some(body))).await
    }

    async fn admin(&self, method: Method, path: &str, caller: &Caller, body: Value) -> StatusCode {
        let mut request = request(method, caller, Some(&body.to_string()));
        *request.uri_mut() = path.parse().unwrap();
        self.send(request).await.0
    }
}

fn request(method: Method, caller: &Caller, body: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(PATH);
    match caller {
        Caller::Session { cookie, csrf } => {
            builder = builder
                .header(header::COOKIE, cookie)
                .header(CSRF_HEADER, csrf);
        }
        Caller::SessionWithoutCsrf { cookie } => builder = builder.header(header::COOKIE, cookie),
        Caller::Bearer(token) => {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        Caller::Nobody => {}
    }
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

const CONTRACT_EXAMPLE: &str = r#"{"fleet_metrics": ["cpu","ram","disk"], "device_charts": ["cpu","memory","load"], "theme": "system"}"#;

#[tokio::test]
async fn each_caller_has_their_own_preferences() {
    let fixture = Fixture::new();
    let ann = fixture.login("ann", VIEWER_PASSWORD).await;
    let root = fixture.login("root", ADMIN_PASSWORD).await;
    let read = Caller::Bearer(
        fixture
            .credentials
            .create_token(NewToken::read("script"))
            .unwrap()
            .token,
    );

    assert_eq!(fixture.get(&ann).await, (StatusCode::OK, json!({})));
    let (status, saved) = fixture.put(&ann, CONTRACT_EXAMPLE).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let expected: Value = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
    assert_eq!(saved, expected, "the answer is what is saved");
    assert_eq!(fixture.get(&ann).await, (StatusCode::OK, expected.clone()));

    // Another user, and a read token, see none of it and keep their own.
    assert_eq!(fixture.get(&root).await, (StatusCode::OK, json!({})));
    assert_eq!(fixture.get(&read).await, (StatusCode::OK, json!({})));
    let (status, _) = fixture
        .put(
            &root,
            r#"{"theme":"dark","device_charts":["disk_usage","cpu"]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = fixture.put(&read, r#"{"theme":"light"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fixture.get(&ann).await.1, expected);
    assert_eq!(
        fixture.get(&root).await.1,
        json!({"device_charts":["disk_usage","cpu"],"theme":"dark"}),
        "order is the user's"
    );
    assert_eq!(fixture.get(&read).await.1, json!({"theme":"light"}));

    // A PUT replaces the whole set.
    let (status, _) = fixture.put(&ann, r#"{"theme":"dark"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fixture.get(&ann).await.1, json!({"theme":"dark"}));
}

#[tokio::test]
async fn who_may_read_and_write_them() {
    let fixture = Fixture::new();
    let ann = fixture.login("ann", VIEWER_PASSWORD).await;
    let Caller::Session { cookie, .. } = ann.clone() else {
        unreachable!()
    };
    let agent = Caller::Bearer(
        fixture
            .credentials
            .create_token(NewToken::agent("agents"))
            .unwrap()
            .token,
    );
    assert_eq!(
        fixture.get(&Caller::Nobody).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fixture.put(&Caller::Nobody, "{}").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fixture.get(&agent).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        fixture.put(&agent, r#"{"theme":"dark"}"#).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = fixture
        .put(
            &Caller::SessionWithoutCsrf { cookie },
            r#"{"theme":"dark"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a session's PUT needs CSRF");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-csrf-token"),
        "{body}"
    );
    assert_eq!(fixture.get(&ann).await.1, json!({}), "nothing changed");
}

#[tokio::test]
async fn bad_input_is_refused_with_the_key_at_fault_and_changes_nothing() {
    let fixture = Fixture::new();
    let ann = fixture.login("ann", VIEWER_PASSWORD).await;
    assert_eq!(fixture.put(&ann, CONTRACT_EXAMPLE).await.0, StatusCode::OK);
    let before = fixture.get(&ann).await.1;
    let seventeen = format!(
        r#"{{"fleet_metrics": [{}]}}"#,
        vec![r#""cpu""#; 17].join(",")
    );
    for (body, field) in [
        (r#"{"colour":"red"}"#, None),
        (r#"{"theme":"blue"}"#, Some("theme")),
        (r#"{"theme":1}"#, Some("theme")),
        (
            r#"{"fleet_metrics":["cpu","gpu"]}"#,
            Some("fleet_metrics[1]"),
        ),
        (r#"{"device_charts":"cpu"}"#, Some("device_charts")),
        (
            r#"{"fleet_metrics":["cpu","ram","cpu"]}"#,
            Some("fleet_metrics"),
        ),
        (seventeen.as_str(), Some("fleet_metrics")),
        ("[]", None),
        ("{", None),
    ] {
        let (status, answer) = fixture.put(&ann, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{body}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{body}: {answer}");
        }
    }
    let (status, answer) = fixture.put(&ann, r#"{"colour":"red"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{answer}"
    );
    // Not JSON, and too large.
    let mut plain = request(Method::PUT, &ann, Some(r#"{"theme":"dark"}"#));
    plain
        .headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
    assert_eq!(
        fixture.send(plain).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let padded = format!(r#"{{"theme":"dark"{}}}"#, " ".repeat(5000));
    let (status, answer) = fixture.put(&ann, &padded).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("4096"),
        "{answer}"
    );
    assert_eq!(fixture.get(&ann).await.1, before, "nothing changed");
}

#[tokio::test]
async fn removing_a_user_or_revoking_a_token_forgets_theirs() {
    let fixture = Fixture::new();
    let root = fixture.login("root", ADMIN_PASSWORD).await;
    let ann = fixture.login("ann", VIEWER_PASSWORD).await;
    assert_eq!(
        fixture.put(&ann, r#"{"theme":"dark"}"#).await.0,
        StatusCode::OK
    );
    let read = fixture
        .credentials
        .create_token(NewToken::read("script"))
        .unwrap();
    let reader = Caller::Bearer(read.token.clone());
    assert_eq!(
        fixture.put(&reader, r#"{"theme":"light"}"#).await.0,
        StatusCode::OK
    );
    let token_owner = Owner::Token(read.info.id.clone());
    assert_eq!(
        fixture.preferences.get(&token_owner).theme,
        Some(tailmon_server::views::Theme::Light)
    );

    let path = format!("/api/v1/tokens/{}", read.info.id);
    assert_eq!(
        fixture
            .admin(Method::DELETE, &path, &root, json!(null))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        fixture.preferences.get(&token_owner),
        Default::default(),
        "a revoked token's preferences are gone"
    );

    assert_eq!(
        fixture
            .admin(Method::DELETE, "/api/v1/users/ann", &root, json!(null))
            .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        fixture.preferences.get(&Owner::User("ann".into())),
        Default::default()
    );
    // A new user of the same name starts afresh.
    assert_eq!(
        fixture
            .admin(
                Method::POST,
                "/api/v1/users",
                &root,
                json!({"username": "ann", "password": VIEWER_PASSWORD, "role": "viewer"}),
            )
            .await,
        StatusCode::CREATED
    );
    let ann_again = fixture.login("ann", VIEWER_PASSWORD).await;
    assert_eq!(fixture.get(&ann_again).await.1, json!({}));
}

#[tokio::test]
async fn open_mode_shares_one_set() {
    let preferences = Arc::new(PreferenceStore::in_memory());
    let router = ServerBuilder::new()
        .open_access()
        .preferences(preferences.clone())
        .build()
        .unwrap()
        .router();
    let send = |request: Request<Body>| {
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let mut put = request(
        Method::PUT,
        &Caller::Nobody,
        Some(r#"{"fleet_metrics":["load"]}"#),
    );
    put.headers_mut()
        .insert(header::HOST, "localhost".parse().unwrap());
    assert_eq!(send(put).await.0, StatusCode::OK);
    let mut get = request(Method::GET, &Caller::Nobody, None);
    get.headers_mut()
        .insert(header::HOST, "localhost".parse().unwrap());
    assert_eq!(
        send(get).await,
        (StatusCode::OK, json!({"fleet_metrics":["load"]}))
    );
    assert_eq!(
        preferences.get(&Owner::Open).fleet_metrics.map(|m| m.len()),
        Some(1)
    );
}
