//! Authentication and authorisation through the router: every route's
//! access, device-bound tokens, revocation, sessions and CSRF, rate limits
//! and login throttling, security headers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tailmon_core::OffsetDateTime;
use tailmon_server::alerts::engine::NewSilence;
use tailmon_server::alerts::{AlertEngine, AlertsConfig, RuleConfig};
use tailmon_server::auth::{Access, CSRF_HEADER, NewToken, RateLimit, Role};
use tailmon_server::{Credentials, ManualClock, ServerBuilder};
use tower::ServiceExt;

use crate::people::{self, ADMIN_PASSWORD, VIEWER_PASSWORD, people, with_bearer};
use crate::support::report;

/// A server with authentication on: an admin, a viewer, an agent token
/// bound to `web-*`, a read token; one device already reporting.
struct Fixture {
    router: Router,
    credentials: Arc<Credentials>,
    clock: Arc<ManualClock>,
    agent_token: String,
    read_token: String,
    alerts: AlertEngine,
}

impl Fixture {
    async fn new() -> Self {
        Self::with(|b| b).await
    }

    async fn with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Self {
        let credentials = people();
        let agent_token = credentials
            .create_token(NewToken::agent("web").device("web-*"))
            .unwrap()
            .token;
        let read_token = credentials
            .create_token(NewToken::read("script"))
            .unwrap()
            .token;
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let hot = RuleConfig::threshold(
            "hot",
            "cpu_usage",
            tailmon_server::alerts::comparison::Op::Above,
            90.0,
        );
        let server = configure(
            ServerBuilder::new()
                .credentials(credentials.clone())
                .clock(clock.clone())
                .alerts(AlertsConfig {
                    rules: vec![hot],
                    ..AlertsConfig::default()
                })
                .alert_channel("app", crate::alert_support::Recorder::new()),
        )
        .build()
        .unwrap();
        server
            .ingest()
            .ingest(report("web-1", 10.0, 100))
            .await
            .unwrap();
        Self {
            router: server.router(),
            credentials,
            clock,
            agent_token,
            read_token,
            alerts: server.alerts().clone(),
        }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        people::send(&self.router, request).await
    }

    /// Signs in; returns the `Cookie` header value and the CSRF token.
    async fn login(&self, username: &str, password: &str) -> (String, String) {
        let session = people::login(&self.router, username, password).await;
        let csrf = session.csrf().to_owned();
        (session.cookie, csrf)
    }
}

fn json_request(method: Method, path: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn with_session(mut request: Request<Body>, cookie: &str, csrf: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    request
        .headers_mut()
        .insert(CSRF_HEADER, csrf.parse().unwrap());
    request
}

fn from_address(mut request: Request<Body>, address: [u8; 4]) -> Request<Body> {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((address, 40000))));
    request
}

/// A request that exercises `path` with valid input, as its route wants,
/// for a caller whose password (if any) is `password`.
async fn request_for(
    fixture: &Fixture,
    method: &Method,
    path: &str,
    password: &str,
) -> Request<Body> {
    let reports_body = serde_json::to_value(vec![report("web-2", 1.0, 1)]).unwrap();
    let (uri, body) = match path {
        "/{*path}" => ("/css/base.css".to_owned(), None),
        "/api/v1/devices/{id}" | "/api/v1/devices/{id}/export" | "/api/v1/devices/{id}/metrics" => {
            (path.replace("{id}", "web-1"), None)
        }
        "/api/v1/devices/{id}/histories" => (
            "/api/v1/devices/web-1/histories?metric=cpu_usage".to_owned(),
            None,
        ),
        "/api/v1/devices/{id}/history" => (
            "/api/v1/devices/web-1/history?metric=cpu_usage".to_owned(),
            None,
        ),
        "/api/metrics" => (
            path.to_owned(),
            Some(serde_json::to_value(report("web-3", 1.0, 1)).unwrap()),
        ),
        "/api/v1/reports" => (path.to_owned(), Some(reports_body)),
        "/api/v1/login" => (
            path.to_owned(),
            Some(json!({"username": "root", "password": ADMIN_PASSWORD})),
        ),
        "/api/v1/tokens" if method == Method::POST => (
            path.to_owned(),
            Some(json!({"name": "new", "device": "x-*"})),
        ),
        "/api/v1/tokens/{id}" => {
            let victim = fixture
                .credentials
                .create_token(NewToken::read("victim"))
                .unwrap();
            (path.replace("{id}", &victim.info.id), None)
        }
        "/api/v1/users" if method == Method::POST => (
            path.to_owned(),
            Some(json!({"username": "new-user", "password": "long enough", "role": "viewer"})),
        ),
        "/api/v1/users/{name}" => {
            fixture
                .credentials
                .add_user("leaving", "long enough", Role::Viewer)
                .ok();
            let change = (method == Method::PATCH).then(|| json!({"role": "admin"}));
            ("/api/v1/users/leaving".to_owned(), change)
        }
        "/api/v1/preferences" if method == Method::PUT => {
            (path.to_owned(), Some(json!({"theme": "dark"})))
        }
        "/api/v1/session/org" => (path.to_owned(), Some(json!({"organisation": "default"}))),
        "/api/v1/organisations" if method == Method::POST => {
            (path.to_owned(), Some(json!({"name": "new-org"})))
        }
        "/api/v1/organisations/{name}" => {
            let org = tailmon_server::auth::OrgId::new("leaving").unwrap();
            fixture.credentials.create_org(&org, None).ok();
            ("/api/v1/organisations/leaving".to_owned(), None)
        }
        "/api/v1/organisations/{name}/limits" => (
            "/api/v1/organisations/default/limits".to_owned(),
            Some(json!({"max_devices": 5})),
        ),
        "/api/v1/session/password" => (
            path.to_owned(),
            Some(json!({"current_password": password, "new_password": password})),
        ),
        "/api/v1/alerts/{id}/ack" => {
            fixture.alerts.observe(&report("web-9", 99.0, 1));
            let id = fixture.alerts.alerts()[0].id.clone();
            (path.replace("{id}", &id), None)
        }
        "/api/v1/silences" if method == Method::POST => (
            path.to_owned(),
            Some(json!({"rule": "hot", "until": "2999-01-01T00:00:00Z"})),
        ),
        "/api/v1/silences/{id}" => {
            let silence = fixture
                .alerts
                .add_silence(
                    serde_json::from_value::<NewSilence>(
                        json!({"device": "web-*", "until": "2999-01-01T00:00:00Z"}),
                    )
                    .unwrap(),
                    None,
                )
                .unwrap();
            (path.replace("{id}", &silence.id), None)
        }
        "/api/v1/alert-rules" if method == Method::POST => (
            path.to_owned(),
            Some(json!({"name": "new-rule", "metric": "load_one", "op": ">", "threshold": 8})),
        ),
        "/api/v1/alert-rules/test" if method == Method::POST => (
            path.to_owned(),
            Some(json!({"name": "try", "kind": "offline"})),
        ),
        "/api/v1/alert-rules/test" => {
            let rule = json!({"name": "test", "kind": "offline"});
            fixture
                .alerts
                .create_rule(serde_json::from_value(rule.clone()).unwrap())
                .ok();
            (path.to_owned(), (method == Method::PUT).then_some(rule))
        }
        "/api/v1/alert-rules/{name}" => {
            let rule = json!({"name": "mine", "kind": "offline", "for": "5m"});
            fixture
                .alerts
                .create_rule(serde_json::from_value(rule.clone()).unwrap())
                .ok();
            let body = (method == Method::PUT).then_some(rule);
            ("/api/v1/alert-rules/mine".to_owned(), body)
        }
        "/api/v1/alert-channels" if method == Method::POST => (
            path.to_owned(),
            Some(json!({"name": "new-channel", "type": "webhook", "url": "http://127.0.0.1:9/"})),
        ),
        "/api/v1/alert-channels/{name}" => {
            let channel = json!({"name": "mine", "type": "webhook", "url": "http://127.0.0.1:9/"});
            fixture
                .alerts
                .create_channel(serde_json::from_value(channel.clone()).unwrap())
                .ok();
            let body = (method == Method::PUT).then_some(channel);
            ("/api/v1/alert-channels/mine".to_owned(), body)
        }
        // The application's channel, which always delivers.
        "/api/v1/alert-channels/{name}/test" => {
            ("/api/v1/alert-channels/app/test".to_owned(), None)
        }
        other => (other.to_owned(), None),
    };
    match body {
        Some(body) => json_request(method.clone(), &uri, body),
        None => Request::builder()
            .method(method.clone())
            .uri(uri)
            .body(Body::empty())
            .unwrap(),
    }
}

#[tokio::test]
async fn every_route_checks_who_calls_it() {
    let table = ServerBuilder::new().build().unwrap().route_table();
    assert!(table.len() >= 20, "the whole surface: {table:?}");
    for entry in &table {
        let route = format!("{} {}", entry.method, entry.path);
        // Nobody.
        let fixture = Fixture::new().await;
        let request = request_for(&fixture, &entry.method, entry.path, "").await;
        let (status, _, body) = fixture.send(request).await;
        if entry.access == Access::Public {
            assert!(status.is_success(), "{route} is public: {status} {body}");
        } else {
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{route} without credentials"
            );
            if status == StatusCode::UNAUTHORIZED && entry.path != "/" {
                assert!(body["error"].is_string(), "{route}: JSON error {body}");
            }
        }
        // A viewer.
        let fixture = Fixture::new().await;
        let (cookie, csrf) = fixture.login("ann", VIEWER_PASSWORD).await;
        let request = with_session(
            request_for(&fixture, &entry.method, entry.path, VIEWER_PASSWORD).await,
            &cookie,
            &csrf,
        );
        let (status, _, body) = fixture.send(request).await;
        match entry.access {
            Access::Public | Access::Read | Access::Person => {
                assert!(status.is_success(), "{route} for a viewer: {status} {body}")
            }
            _ => assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{route} for a viewer: {body}"
            ),
        }
        // An admin.
        let fixture = Fixture::new().await;
        let (cookie, csrf) = fixture.login("root", ADMIN_PASSWORD).await;
        let request = with_session(
            request_for(&fixture, &entry.method, entry.path, ADMIN_PASSWORD).await,
            &cookie,
            &csrf,
        );
        let (status, _, body) = fixture.send(request).await;
        assert!(status.is_success(), "{route} for an admin: {status} {body}");
        // Tokens: an agent token only reports, a read token only reads.
        for (token, allowed) in [
            (&fixture.agent_token, [Access::Public, Access::Report]),
            (&fixture.read_token, [Access::Public, Access::Read]),
        ] {
            let request = with_bearer(
                request_for(&fixture, &entry.method, entry.path, "").await,
                token,
            );
            let (status, _, body) = fixture.send(request).await;
            if allowed.contains(&entry.access) {
                assert!(status.is_success(), "{route} with a token: {status} {body}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{route} with a token: {body}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_token_bound_to_device_a_cannot_write_device_b() {
    let fixture = Fixture::new().await;
    let send = |device: &str, path: &str| {
        let body = if path == "/api/metrics" {
            serde_json::to_value(report(device, 5.0, 5)).unwrap()
        } else {
            serde_json::to_value(vec![report(device, 5.0, 5)]).unwrap()
        };
        with_bearer(json_request(Method::POST, path, body), &fixture.agent_token)
    };
    for path in ["/api/metrics", "/api/v1/reports"] {
        let (status, _, _) = fixture.send(send("web-7", path)).await;
        assert_eq!(status, StatusCode::OK, "{path}: web-* admits web-7");
        let (status, _, body) = fixture.send(send("db-1", path)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("db-1"), "{body}");
    }
    // Nothing of db-1 was stored.
    let (_, _, devices) = fixture
        .send(with_bearer(
            Request::get("/api/v1/devices").body(Body::empty()).unwrap(),
            &fixture.read_token,
        ))
        .await;
    let ids: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web-1", "web-7"]);
}

#[tokio::test]
async fn a_token_device_cap_holds() {
    let fixture = Fixture::with(|b| b.max_devices_per_token(2)).await;
    let post = |device: &str| {
        with_bearer(
            json_request(
                Method::POST,
                "/api/metrics",
                serde_json::to_value(report(device, 5.0, 5)).unwrap(),
            ),
            &fixture.agent_token,
        )
    };
    assert_eq!(fixture.send(post("web-a")).await.0, StatusCode::OK);
    assert_eq!(fixture.send(post("web-b")).await.0, StatusCode::OK);
    let (status, _, body) = fixture.send(post("web-c")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(fixture.send(post("web-a")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refused_reports_use_up_nothing_of_a_token_device_cap() {
    let fixture = Fixture::with(|b| b.max_devices_per_token(3)).await;
    let post = |path: &str, body: Value| {
        with_bearer(json_request(Method::POST, path, body), &fixture.agent_token)
    };
    let one = |device: &str, cpu: f64| {
        let mut report = serde_json::to_value(report("web-x", cpu, 5)).unwrap();
        report["device_id"] = json!(device);
        report
    };
    // The review's attack: reports the server refuses (422), one with a
    // 60 KB id, used up the cap.
    let long_id = format!("web-{}", "x".repeat(60_000));
    for (device, cpu) in [
        ("web-bad id", 5.0),
        (long_id.as_str(), 5.0),
        ("web-too-busy", 250.0),
    ] {
        let (status, _, body) = fixture.send(post("/api/metrics", one(device, cpu))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"].as_str().unwrap().len() < 1000,
            "the answer does not echo the whole id"
        );
    }
    // A batch refused as a whole (db-1 is not the token's) counts nothing.
    let batch = json!([one("web-7", 5.0), one("web-8", 5.0), one("db-1", 5.0)]);
    let (status, _, body) = fixture.send(post("/api/v1/reports", batch)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // A batch whose only report of a device is refused counts that one not.
    let batch = json!([one("web-1", 5.0), one("web-2", 250.0), one("web-2", 250.0)]);
    let (status, _, body) = fixture.send(post("/api/v1/reports", batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);
    // Two devices of the three are left: web-2's place was given back.
    for device in ["web-8", "web-9"] {
        let (status, _, body) = fixture.send(post("/api/metrics", one(device, 5.0))).await;
        assert_eq!(status, StatusCode::OK, "{device}: {body}");
    }
    let (status, _, body) = fixture.send(post("/api/metrics", one("web-10", 5.0))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the cap holds: {body}");
    // A device whose first report in a batch is refused and second stored counts.
    let fixture = Fixture::with(|b| b.max_devices_per_token(1)).await;
    let batch = json!([one("web-1", 250.0), one("web-1", 5.0)]);
    let (status, _, body) = fixture
        .send(with_bearer(
            json_request(Method::POST, "/api/v1/reports", batch),
            &fixture.agent_token,
        ))
        .await;
    assert_eq!(
        (status, body["accepted"].clone()),
        (StatusCode::OK, json!(1))
    );
    let (status, _, _) = fixture
        .send(with_bearer(
            json_request(Method::POST, "/api/metrics", one("web-2", 5.0)),
            &fixture.agent_token,
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "web-1 holds the only place");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let dir = std::env::temp_dir().join(format!(
        "tailmon-auth-revoke-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let server_side = Arc::new(Credentials::open(&dir).unwrap());
    let router = ServerBuilder::new()
        .credentials(server_side.clone())
        .build()
        .unwrap()
        .router();
    // What `tailmon-server token create` / `revoke` do, in another process.
    let command_side = Credentials::open(&dir).unwrap();
    let created = command_side.create_token(NewToken::agent("agent")).unwrap();
    let post = || {
        with_bearer(
            json_request(
                Method::POST,
                "/api/metrics",
                serde_json::to_value(report("any", 1.0, 1)).unwrap(),
            ),
            &created.token,
        )
    };
    let status = |r: Request<Body>| {
        let router = router.clone();
        async move { router.oneshot(r).await.unwrap().status() }
    };
    assert_eq!(status(post()).await, StatusCode::OK);
    assert!(command_side.revoke_token(&created.info.id).unwrap());
    assert_eq!(status(post()).await, StatusCode::UNAUTHORIZED);

    // Through the API, by an admin token's owner.
    let again = server_side
        .create_token(NewToken::agent("agent 2"))
        .unwrap();
    server_side
        .add_user("root", ADMIN_PASSWORD, Role::Admin)
        .unwrap();
    let login = router
        .clone()
        .oneshot(json_request(
            Method::POST,
            "/api/v1/login",
            json!({"username": "root", "password": ADMIN_PASSWORD}),
        ))
        .await
        .unwrap();
    let cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf =
        serde_json::from_slice::<Value>(&login.into_body().collect().await.unwrap().to_bytes())
            .unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let revoke = with_session(
        Request::delete(format!("/api/v1/tokens/{}", again.info.id))
            .body(Body::empty())
            .unwrap(),
        &cookie,
        &csrf,
    );
    assert_eq!(status(revoke).await, StatusCode::NO_CONTENT);
    let post_again = with_bearer(
        json_request(
            Method::POST,
            "/api/metrics",
            serde_json::to_value(report("any", 1.0, 1)).unwrap(),
        ),
        &again.token,
    );
    assert_eq!(status(post_again).await, StatusCode::UNAUTHORIZED);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_credentials_get_401_with_a_json_message() {
    let fixture = Fixture::new().await;
    for value in ["Bearer tmn_nope_nope", "Basic cm9vdDpyb290", "Bearer "] {
        let mut request = Request::get("/api/v1/devices").body(Body::empty()).unwrap();
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, value.parse().unwrap());
        let (status, headers, body) = fixture.send(request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{value}");
        assert!(body["error"].is_string(), "{body}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }
    // Public routes do not look at credentials, even bad ones.
    let mut probe = Request::get("/healthz").body(Body::empty()).unwrap();
    probe.headers_mut().insert(
        header::AUTHORIZATION,
        "Bearer tmn_stale_token".parse().unwrap(),
    );
    assert_eq!(fixture.send(probe).await.0, StatusCode::OK);
    let (status, _, body) = fixture
        .send(json_request(
            Method::POST,
            "/api/v1/login",
            json!({"username": "root", "password": "wrong password"}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "wrong username or password");
    // A browser asking for the dashboard is sent to the login page.
    let mut request = Request::get("/").body(Body::empty()).unwrap();
    request
        .headers_mut()
        .insert(header::ACCEPT, "text/html".parse().unwrap());
    let response = fixture.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&page).contains("url=/login"));
}

#[tokio::test]
async fn sessions_need_csrf_to_change_things_and_expire() {
    let fixture = Fixture::new().await;
    let (cookie, csrf) = fixture.login("root", ADMIN_PASSWORD).await;
    let delete = |csrf: &str| {
        with_session(
            Request::delete("/api/v1/devices/web-1")
                .body(Body::empty())
                .unwrap(),
            &cookie,
            csrf,
        )
    };
    let (status, _, body) = fixture.send(delete("wrong")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let mut cross_site = delete(&csrf);
    cross_site
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    cross_site
        .headers_mut()
        .insert(header::HOST, "tailmon.example".parse().unwrap());
    assert_eq!(fixture.send(cross_site).await.0, StatusCode::FORBIDDEN);
    // Behind a reverse proxy that rewrote Host, the forwarded host counts.
    let mut proxied = with_session(
        Request::delete("/api/v1/devices/web-0")
            .body(Body::empty())
            .unwrap(),
        &cookie,
        &csrf,
    );
    proxied
        .headers_mut()
        .insert(header::ORIGIN, "https://monitor.example".parse().unwrap());
    proxied
        .headers_mut()
        .insert(header::HOST, "127.0.0.1:3000".parse().unwrap());
    proxied
        .headers_mut()
        .insert("x-forwarded-host", "monitor.example".parse().unwrap());
    let (status, _, body) = fixture.send(proxied).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "allowed, and no web-0: {body}"
    );
    // Reading needs no CSRF token.
    let mut read = Request::get("/api/v1/devices").body(Body::empty()).unwrap();
    read.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    assert_eq!(fixture.send(read).await.0, StatusCode::OK);
    assert_eq!(fixture.send(delete(&csrf)).await.0, StatusCode::NO_CONTENT);

    // The session ends after its lifetime.
    fixture
        .clock
        .advance(tailmon_server::auth::DEFAULT_SESSION_TTL + Duration::from_secs(1));
    let mut read = Request::get("/api/v1/devices").body(Body::empty()).unwrap();
    read.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    assert_eq!(fixture.send(read).await.0, StatusCode::UNAUTHORIZED);

    // Logging out ends it at once.
    let (cookie, csrf) = fixture.login("root", ADMIN_PASSWORD).await;
    let logout = with_session(
        Request::post("/api/v1/logout").body(Body::empty()).unwrap(),
        &cookie,
        &csrf,
    );
    let (status, headers, _) = fixture.send(logout).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let mut read = Request::get("/api/v1/devices").body(Body::empty()).unwrap();
    read.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    assert_eq!(fixture.send(read).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn secure_cookies_are_marked_secure() {
    let fixture = Fixture::with(|b| b.secure_cookies(true)).await;
    let (_, headers, _) = fixture
        .send(json_request(
            Method::POST,
            "/api/v1/login",
            json!({"username": "ann", "password": VIEWER_PASSWORD}),
        ))
        .await;
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
}

#[tokio::test]
async fn the_rate_limit_trips_and_recovers() {
    let fixture = Fixture::with(|b| {
        b.rate_limit_per_address(RateLimit::new(1, 3))
            .rate_limit_per_token(RateLimit::new(2, 2))
    })
    .await;
    // A public route (health probes are outside the address's limit: see
    // edge_refusals.rs).
    let get = |address| {
        from_address(
            Request::get("/api/openapi.json")
                .body(Body::empty())
                .unwrap(),
            address,
        )
    };
    for _ in 0..3 {
        assert_eq!(fixture.send(get([10, 0, 0, 1])).await.0, StatusCode::OK);
    }
    let (status, headers, body) = fixture.send(get([10, 0, 0, 1])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(body["error"].is_string());
    // Another address is not held back.
    assert_eq!(fixture.send(get([10, 0, 0, 2])).await.0, StatusCode::OK);
    fixture.clock.advance(Duration::from_secs(1));
    assert_eq!(fixture.send(get([10, 0, 0, 1])).await.0, StatusCode::OK);

    // Per token, whatever the address.
    let read = |address| {
        from_address(
            with_bearer(
                Request::get("/api/v1/devices").body(Body::empty()).unwrap(),
                &fixture.read_token,
            ),
            address,
        )
    };
    assert_eq!(fixture.send(read([10, 0, 1, 1])).await.0, StatusCode::OK);
    assert_eq!(fixture.send(read([10, 0, 1, 2])).await.0, StatusCode::OK);
    assert_eq!(
        fixture.send(read([10, 0, 1, 3])).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    fixture.clock.advance(Duration::from_millis(500));
    assert_eq!(fixture.send(read([10, 0, 1, 4])).await.0, StatusCode::OK);
}

#[tokio::test]
async fn password_guessing_is_throttled_but_never_locks_the_owner_out() {
    let fixture = Fixture::with(|b| b.rate_limit_per_address(None)).await;
    let attempt = |password: &str, address| {
        from_address(
            json_request(
                Method::POST,
                "/api/v1/login",
                json!({"username": "root", "password": password}),
            ),
            address,
        )
    };
    // The attack of the review: five wrong passwords for the admin.
    for _ in 0..5 {
        assert_eq!(
            fixture.send(attempt("guess", [10, 0, 0, 9])).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The guessing address waits now, even with the right password.
    let (status, headers, _) = fixture.send(attempt(ADMIN_PASSWORD, [10, 0, 0, 9])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.contains_key(header::RETRY_AFTER));
    // The owner, from an address that has not failed, signs in.
    let (status, _, body) = fixture.send(attempt(ADMIN_PASSWORD, [10, 0, 0, 10])).await;
    assert_eq!(status, StatusCode::OK, "locked out: {body}");
    // A second attacking address gets one guess, then is held with the name.
    assert_eq!(
        fixture.send(attempt("guess", [10, 0, 0, 11])).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, headers, _) = fixture.send(attempt("guess", [10, 0, 0, 11])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "held by the name");
    let wait: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    fixture.clock.advance(Duration::from_secs(12));
    let (status, _, _) = fixture.send(attempt(ADMIN_PASSWORD, [10, 0, 0, 9])).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let fixture = Fixture::new().await;
    for path in [
        "/",
        "/login",
        "/js/login.js",
        "/api/v1/devices",
        "/healthz",
        "/api/nope",
    ] {
        let (_, headers, _) = fixture
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("worker-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("manifest-src 'self'"), "{path}: {csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn the_dashboard_pages_have_no_inline_script() {
    let fixture = Fixture::new().await;
    let (cookie, _) = fixture.login("ann", VIEWER_PASSWORD).await;
    for path in ["/", "/login", "/device.html"] {
        let mut request = Request::get(path).body(Body::empty()).unwrap();
        request
            .headers_mut()
            .insert(header::COOKIE, cookie.parse().unwrap());
        let response = fixture.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = String::from_utf8(
            response
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            assert!(tag.contains(" src="), "{path}: inline script {tag}");
        }
        let handler = html.split(|c: char| c.is_whitespace()).any(|word| {
            word.strip_prefix("on").is_some_and(|rest| {
                rest.split_once('=').is_some_and(|(name, _)| {
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase())
                })
            })
        });
        assert!(!handler, "{path}: no inline event handlers");
        assert!(!html.contains("style=\""), "{path}: no inline style");
    }
}

#[tokio::test]
async fn admins_manage_tokens_and_users_through_the_api() {
    let fixture = Fixture::new().await;
    let (cookie, csrf) = fixture.login("root", ADMIN_PASSWORD).await;
    let (status, _, created) = fixture
        .send(with_session(
            json_request(
                Method::POST,
                "/api/v1/tokens",
                json!({"name": "db hosts", "device": "db-*"}),
            ),
            &cookie,
            &csrf,
        ))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, _, _) = fixture
        .send(with_bearer(
            json_request(
                Method::POST,
                "/api/metrics",
                serde_json::to_value(report("db-1", 1.0, 1)).unwrap(),
            ),
            &token,
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, list) = fixture
        .send(with_session(
            Request::get("/api/v1/tokens").body(Body::empty()).unwrap(),
            &cookie,
            &csrf,
        ))
        .await;
    let listed = list.to_string();
    assert!(listed.contains("db hosts"));
    assert!(
        !listed.contains(token.rsplit('_').next().unwrap()),
        "the list never shows a secret"
    );

    // Users: bad input is refused with a message, the last admin stays.
    for (body, expected) in [
        (
            json!({"username": "bob", "password": "short", "role": "viewer"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"username": "ann", "password": "long enough", "role": "viewer"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"username": "bob", "password": "long enough", "role": "king"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _, answer) = fixture
            .send(with_session(
                json_request(Method::POST, "/api/v1/users", body),
                &cookie,
                &csrf,
            ))
            .await;
        assert_eq!(status, expected, "{answer}");
        assert!(answer["error"].is_string());
    }
    let (status, _, answer) = fixture
        .send(with_session(
            Request::delete("/api/v1/users/root")
                .body(Body::empty())
                .unwrap(),
            &cookie,
            &csrf,
        ))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    // Removing a viewer ends their sessions at once.
    let (viewer_cookie, _) = fixture.login("ann", VIEWER_PASSWORD).await;
    let (status, _, _) = fixture
        .send(with_session(
            Request::delete("/api/v1/users/ann")
                .body(Body::empty())
                .unwrap(),
            &cookie,
            &csrf,
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut read = Request::get("/api/v1/devices").body(Body::empty()).unwrap();
    read.headers_mut()
        .insert(header::COOKIE, viewer_cookie.parse().unwrap());
    assert_eq!(fixture.send(read).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn open_access_lets_anybody_in() {
    let router = ServerBuilder::new().open_access().build().unwrap().router();
    let response = router
        .clone()
        .oneshot(
            Request::delete("/api/v1/devices/none")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "allowed, but no such device"
    );
}

/// Whether `cookie` still opens a session (200 on a read) or not (401).
async fn session_status(fixture: &Fixture, cookie: &str) -> StatusCode {
    let mut read = Request::get("/api/v1/session").body(Body::empty()).unwrap();
    read.headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    fixture.send(read).await.0
}

#[tokio::test]
async fn sessions_end_when_the_credentials_they_came_from_change() {
    let fixture = Fixture::new().await;
    let (viewer, _) = fixture.login("ann", VIEWER_PASSWORD).await;
    assert_eq!(session_status(&fixture, &viewer).await, StatusCode::OK);

    // A password set elsewhere (the `user passwd` command) ends it.
    fixture
        .credentials
        .set_password("ann", "another-password")
        .unwrap();
    assert_eq!(
        session_status(&fixture, &viewer).await,
        StatusCode::UNAUTHORIZED
    );

    // Removed and made again as an admin, with no request in between: the
    // old session does not come back, let alone as an admin.
    let (viewer, _) = fixture.login("ann", "another-password").await;
    fixture.credentials.remove_user("ann").unwrap();
    fixture
        .credentials
        .add_user("ann", "another-password", Role::Admin)
        .unwrap();
    assert_eq!(
        session_status(&fixture, &viewer).await,
        StatusCode::UNAUTHORIZED
    );

    // A role change ends it too.
    let (ann, _) = fixture.login("ann", "another-password").await;
    fixture.credentials.set_role("ann", Role::Viewer).unwrap();
    assert_eq!(
        session_status(&fixture, &ann).await,
        StatusCode::UNAUTHORIZED
    );

    // So does an admin's change through the API.
    let (ann, _) = fixture.login("ann", "another-password").await;
    let (admin, csrf) = fixture.login("root", ADMIN_PASSWORD).await;
    let patch = |name: &str, body: Value| {
        with_session(
            json_request(Method::PATCH, &format!("/api/v1/users/{name}"), body),
            &admin,
            &csrf,
        )
    };
    let (status, _, body) = fixture
        .send(patch("ann", json!({"password": "third-password"})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        session_status(&fixture, &ann).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(session_status(&fixture, &admin).await, StatusCode::OK);
    let (status, _, body) = fixture
        .send(patch("nobody", json!({"role": "admin"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, body) = fixture.send(patch("ann", json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn changing_ones_own_password_renews_this_session_and_ends_the_others() {
    let fixture = Fixture::new().await;
    let (laptop, _) = fixture.login("ann", VIEWER_PASSWORD).await;
    let (phone, csrf) = fixture.login("ann", VIEWER_PASSWORD).await;
    let change = |current: &str| {
        with_session(
            json_request(
                Method::POST,
                "/api/v1/session/password",
                json!({"current_password": current, "new_password": "a-new-password"}),
            ),
            &phone,
            &csrf,
        )
    };
    let (status, _, body) = fixture.send(change("not my password")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(session_status(&fixture, &laptop).await, StatusCode::OK);

    let (status, headers, body) = fixture.send(change(VIEWER_PASSWORD)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let renewed = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(renewed, phone);
    assert!(body["csrf_token"].is_string());
    assert_eq!(session_status(&fixture, &renewed).await, StatusCode::OK);
    assert_eq!(
        session_status(&fixture, &phone).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        session_status(&fixture, &laptop).await,
        StatusCode::UNAUTHORIZED
    );
    fixture.login("ann", "a-new-password").await;
}

#[tokio::test]
async fn answers_that_carry_secrets_are_never_cached() {
    let fixture = Fixture::new().await;
    let (cookie, csrf) = fixture.login("root", ADMIN_PASSWORD).await;
    for request in [
        Request::get("/api/v1/session").body(Body::empty()).unwrap(),
        Request::get("/api/v1/tokens").body(Body::empty()).unwrap(),
        json_request(Method::POST, "/api/v1/tokens", json!({"name": "n"})),
    ] {
        let path = request.uri().to_string();
        let (status, headers, body) = fixture.send(with_session(request, &cookie, &csrf)).await;
        assert!(status.is_success(), "{path}: {body}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
    }
    let (_, headers, _) = fixture
        .send(json_request(
            Method::POST,
            "/api/v1/login",
            json!({"username": "root", "password": ADMIN_PASSWORD}),
        ))
        .await;
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "login");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let fixture = Fixture::new().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let mut request = Request::get("/api/v1/devices").body(Body::empty()).unwrap();
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("{scheme} {}", fixture.read_token).parse().unwrap(),
        );
        assert_eq!(fixture.send(request).await.0, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn strict_transport_security_is_sent_only_when_asked_for() {
    let fixture = Fixture::new().await;
    let (_, headers, _) = fixture
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    let fixture =
        Fixture::with(|b| b.strict_transport_security(Some(Duration::from_secs(31_536_000)))).await;
    for path in ["/healthz", "/api/v1/devices", "/api/nope"] {
        let (_, headers, _) = fixture
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000",
            "{path}"
        );
    }
}

#[tokio::test]
async fn without_authentication_only_local_and_configured_host_names_are_answered() {
    // DNS rebinding: a page on attacker.example points its name at
    // 127.0.0.1 and reads (or deletes) through the operator's browser.
    let router = ServerBuilder::new()
        .open_access()
        .allowed_hosts(vec!["monitor.lan".into()])
        .build()
        .unwrap()
        .router();
    let send = |host: &'static str, method: Method| {
        let router = router.clone();
        async move {
            let request = Request::builder()
                .method(method)
                .uri("/api/v1/devices/none")
                .header(header::HOST, host)
                .body(Body::empty())
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    for host in ["attacker.example:3000", "localhost.attacker.example"] {
        for method in [Method::GET, Method::DELETE] {
            let (status, body) = send(host, method).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
            assert!(
                body["error"].as_str().unwrap().contains("--allowed-hosts"),
                "{body}"
            );
        }
    }
    for host in [
        "localhost:3000",
        "127.0.0.1:3000",
        "[::1]:3000",
        "monitor.lan",
    ] {
        let (status, _) = send(host, Method::DELETE).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{host}: allowed, no such device"
        );
    }
    // With authentication on, a foreign page has no session: any host is served.
    let fixture = Fixture::new().await;
    let mut request = with_bearer(
        Request::get("/api/v1/devices").body(Body::empty()).unwrap(),
        &fixture.read_token,
    );
    request
        .headers_mut()
        .insert(header::HOST, "monitor.example.net".parse().unwrap());
    assert_eq!(fixture.send(request).await.0, StatusCode::OK);
}
