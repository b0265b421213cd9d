//! Isolation between organisations, through the router: two organisations
//! with the same device id each see their own; a device, token, user, rule,
//! channel, silence or alert of another organisation answers exactly as an
//! unknown one does, on every route of the route table; the owner's device
//! caps hold per organisation.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::auth::{CSRF_HEADER, NewToken, OrgId, OrgLimits, Role};
use tailmon_server::{Credentials, ManualClock, ServerBuilder};
use tower::ServiceExt;

/// The passwords of everybody here.
const PASSWORD: &str = "a long password";

/// Whatever the clock says in these tests: fixed, so that two servers
/// answer alike.
fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

fn acme() -> OrgId {
    OrgId::new("acme").unwrap()
}

fn globex() -> OrgId {
    OrgId::new("globex").unwrap()
}

fn report(device_id: &str, cpu: f64, at: OffsetDateTime) -> Report {
    let mut report = Report::new(device_id, at);
    report.os_info = "Debian 13".into();
    report.cpu_usage = cpu;
    report.ram_used_mb = 1024;
    report.ram_total_mb = 8192;
    report
}

/// Somebody calling: a session (cookie and CSRF token) or a bearer token.
#[derive(Clone)]
enum Caller {
    Nobody,
    Session { cookie: String, csrf: String },
    Bearer(String),
}

impl Caller {
    fn on(&self, mut request: Request<Body>) -> Request<Body> {
        let headers = request.headers_mut();
        match self {
            Self::Nobody => {}
            Self::Session { cookie, csrf } => {
                headers.insert(header::COOKIE, cookie.parse().unwrap());
                headers.insert(CSRF_HEADER, csrf.parse().unwrap());
            }
            Self::Bearer(token) => {
                headers.insert(
                    header::AUTHORIZATION,
                    format!("Bearer {token}").parse().unwrap(),
                );
            }
        }
        request
    }
}

/// One server with organisations `acme` and `globex`:
/// - `ann` is admin of acme, `bob` admin of globex, `vic` viewer of globex;
/// - each has an agent token and a read token;
/// - globex has `web-1`; acme, when `with_acme` is set, has its own
///   `web-1`, `only-a`, a rule, a channel, a silence and a firing alert.
struct Tenants {
    router: Router,
    credentials: Arc<Credentials>,
    acme_agent: String,
    acme_read: String,
    globex_agent: String,
    globex_read: String,
    /// What acme made, by the names the routes take.
    acme_token_id: String,
    acme_silence_id: Option<String>,
    acme_alert_id: Option<String>,
}

impl Tenants {
    async fn new(with_acme: bool) -> Self {
        let credentials = Arc::new(Credentials::in_memory());
        // The first user: the owner, admin of default.
        credentials
            .add_user("owner", PASSWORD, Role::Admin)
            .unwrap();
        for (org, admin) in [(acme(), "ann"), (globex(), "bob")] {
            credentials.create_org(&org, None).unwrap();
            credentials
                .add_user_in(admin, PASSWORD, &org, Role::Admin)
                .unwrap_or_else(|_| panic!("{admin}"));
        }
        credentials
            .add_user_in("vic", PASSWORD, &globex(), Role::Viewer)
            .unwrap();
        let token = |org: OrgId, new: NewToken| credentials.create_token(new.org(org)).unwrap();
        let acme_agent_token = token(acme(), NewToken::agent("acme-agents"));
        let acme_read = token(acme(), NewToken::read("acme-scripts")).token;
        let globex_agent = token(globex(), NewToken::agent("globex-agents")).token;
        let globex_read = token(globex(), NewToken::read("globex-scripts")).token;
        let clock = Arc::new(ManualClock::new(start()));
        let server = ServerBuilder::new()
            .credentials(credentials.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut tenants = Self {
            router: server.router(),
            credentials: credentials.clone(),
            acme_agent: acme_agent_token.token,
            acme_read,
            globex_agent,
            globex_read,
            acme_token_id: acme_agent_token.info.id,
            acme_silence_id: None,
            acme_alert_id: None,
        };
        let globex_agent = Caller::Bearer(tenants.globex_agent.clone());
        let (status, body) = tenants
            .send(
                &globex_agent,
                json_request(
                    Method::POST,
                    "/api/v1/reports",
                    json!([report("web-1", 20.0, start())]),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if with_acme {
            tenants.fill_acme().await;
        }
        tenants
    }

    /// acme's own things, made as its admin and its agent would.
    async fn fill_acme(&mut self) {
        let agent = Caller::Bearer(self.acme_agent.clone());
        let earlier = start() - time::Duration::seconds(10);
        let reports = json!([
            report("web-1", 95.0, earlier),
            report("only-a", 50.0, earlier)
        ]);
        let (status, body) = self
            .send(
                &agent,
                json_request(Method::POST, "/api/v1/reports", reports),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ann = self.login("ann").await;
        for (path, body) in [
            (
                "/api/v1/alert-rules",
                json!({"name": "only-a", "metric": "cpu_usage", "op": ">", "threshold": 40}),
            ),
            (
                "/api/v1/alert-channels",
                json!({"name": "only-a", "type": "webhook", "url": "http://127.0.0.1:9/"}),
            ),
            (
                "/api/v1/silences",
                json!({"device": "only-a", "until": "2999-01-01T00:00:00Z"}),
            ),
        ] {
            let (status, answer) = self
                .send(&ann, json_request(Method::POST, path, body))
                .await;
            assert!(status.is_success(), "{path}: {status} {answer}");
            if path == "/api/v1/silences" {
                self.acme_silence_id = answer["id"].as_str().map(str::to_owned);
            }
        }
        // The rule fires on acme's next report.
        let (status, body) = self
            .send(
                &agent,
                json_request(
                    Method::POST,
                    "/api/v1/reports",
                    json!([report("only-a", 60.0, start())]),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let router = self.router.clone();
        let ann_again = ann.clone();
        let id = tailmon_testkit::eventually("acme's alert fires", async || {
            let (_, alerts) = send_to(
                &router,
                &ann_again,
                Request::get("/api/v1/alerts").body(Body::empty()).unwrap(),
            )
            .await;
            alerts
                .as_array()
                .and_then(|all| all.first())
                .and_then(|alert| alert["id"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| alerts.to_string())
        })
        .await;
        self.acme_alert_id = Some(id);
    }

    async fn login(&self, username: &str) -> Caller {
        let session = crate::people::login(&self.router, username, PASSWORD).await;
        Caller::Session {
            csrf: session.csrf().to_owned(),
            cookie: session.cookie,
        }
    }

    async fn send(&self, caller: &Caller, request: Request<Body>) -> (StatusCode, Value) {
        send_to(&self.router, caller, request).await
    }

    /// The status and the body, as text (JSON normalised: see [`normalise`]).
    async fn answer(&self, caller: &Caller, request: Request<Body>) -> (StatusCode, String) {
        let response = self
            .router
            .clone()
            .oneshot(caller.on(request))
            .await
            .unwrap();
        let status = response.status();
        let live = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        // A live stream never ends: its first snapshot is what it shows.
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                bytes.extend_from_slice(&data);
            }
            if live && snapshot_read(&bytes) {
                break;
            }
        }
        let text = match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut value) => {
                normalise(&mut value);
                value.to_string()
            }
            Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
        };
        (status, text)
    }
}

async fn send_to(router: &Router, caller: &Caller, request: Request<Body>) -> (StatusCode, Value) {
    let response = router.clone().oneshot(caller.on(request)).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn snapshot_read(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.find("event: snapshot")
        .is_some_and(|at| text[at..].contains("\n\n"))
}

/// Masks what differs between two servers by chance, not by what they hold:
/// fresh secrets and ids, creation times of credentials.
fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if ["id", "token", "csrf_token", "created_at", "expires_at"].contains(&key.as_str())
                {
                    *item = json!("…");
                } else {
                    normalise(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
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

/// A request of `path` aimed at acme's things (by the names they have in
/// the server that holds them), with a valid body where the route takes one.
fn aimed_at_acme(acme: &Tenants, method: &Method, path: &str) -> Request<Body> {
    let silence = acme.acme_silence_id.as_deref().unwrap_or("none");
    let alert = acme.acme_alert_id.as_deref().unwrap_or("none");
    let (uri, body): (String, Option<Value>) = match path {
        "/{*path}" => ("/css/base.css".into(), None),
        "/api/v1/devices/{id}/histories" => (
            "/api/v1/devices/only-a/histories?metric=cpu_usage".into(),
            None,
        ),
        "/api/v1/devices/{id}/history" => (
            "/api/v1/devices/only-a/history?metric=cpu_usage".into(),
            None,
        ),
        "/api/v1/live" => ("/api/v1/live?device=only-a".into(), None),
        "/api/metrics" => (
            path.into(),
            Some(serde_json::to_value(report("web-1", 30.0, start())).unwrap()),
        ),
        "/api/v1/reports" => (path.into(), Some(json!([report("web-1", 30.0, start())]))),
        "/api/v1/login" => (
            path.into(),
            Some(json!({"username": "bob", "password": PASSWORD})),
        ),
        "/api/v1/tokens" if method == Method::POST => {
            (path.into(), Some(json!({"name": "new", "device": "x-*"})))
        }
        "/api/v1/tokens/{id}" => (path.replace("{id}", &acme.acme_token_id), None),
        "/api/v1/users" if method == Method::POST => (
            path.into(),
            Some(json!({"username": "new-user", "password": PASSWORD, "role": "viewer"})),
        ),
        "/api/v1/users/{name}" => (
            "/api/v1/users/ann".into(),
            (method == Method::PATCH).then(|| json!({"role": "viewer"})),
        ),
        "/api/v1/preferences" if method == Method::PUT => {
            (path.into(), Some(json!({"theme": "dark"})))
        }
        "/api/v1/session/password" => (
            path.into(),
            Some(json!({"current_password": PASSWORD, "new_password": PASSWORD})),
        ),
        "/api/v1/alerts/{id}/ack" => (path.replace("{id}", alert), None),
        "/api/v1/silences" if method == Method::POST => (
            path.into(),
            Some(json!({"rule": "only-a", "until": "2999-01-01T00:00:00Z"})),
        ),
        "/api/v1/silences/{id}" => (path.replace("{id}", silence), None),
        "/api/v1/alert-rules" if method == Method::POST => (
            path.into(),
            Some(json!({"name": "only-a", "metric": "load_one", "op": ">", "threshold": 8})),
        ),
        "/api/v1/alert-rules/test" => (
            path.into(),
            (method != Method::DELETE).then(|| json!({"name": "only-a", "kind": "offline"})),
        ),
        "/api/v1/alert-rules/{name}" => (
            "/api/v1/alert-rules/only-a".into(),
            (method == Method::PUT).then(|| json!({"name": "only-a", "kind": "offline"})),
        ),
        "/api/v1/alert-channels" if method == Method::POST => (
            path.into(),
            Some(json!({"name": "only-a", "type": "webhook", "url": "http://127.0.0.1:9/"})),
        ),
        "/api/v1/alert-channels/{name}" => (
            "/api/v1/alert-channels/only-a".into(),
            (method == Method::PUT).then(
                || json!({"name": "only-a", "type": "webhook", "url": "http://127.0.0.1:9/"}),
            ),
        ),
        "/api/v1/alert-channels/{name}/test" => ("/api/v1/alert-channels/only-a/test".into(), None),
        "/api/v1/session/org" => (path.into(), Some(json!({"organisation": "acme"}))),
        other if other.contains("{name}") => (other.replace("{name}", "acme"), None),
        other => (other.replace("{id}", "only-a"), None),
    };
    let builder = Request::builder().method(method.clone()).uri(uri);
    match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

#[tokio::test]
async fn each_organisation_sees_its_own_device_of_the_same_id() {
    let tenants = Tenants::new(true).await;
    let acme_read = Caller::Bearer(tenants.acme_read.clone());
    let globex_read = Caller::Bearer(tenants.globex_read.clone());
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    for (caller, expected, ids) in [
        (&acme_read, 95.0, vec!["only-a", "web-1"]),
        (&globex_read, 20.0, vec!["web-1"]),
    ] {
        let (status, devices) = tenants.send(caller, get("/api/v1/devices")).await;
        assert_eq!(status, StatusCode::OK);
        let seen: Vec<&str> = devices
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].as_str().unwrap())
            .collect();
        assert_eq!(seen, ids);
        let (_, all) = tenants.send(caller, get("/api/all_metrics")).await;
        assert_eq!(all.as_array().unwrap().len(), ids.len());
        let web_1 = all
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device_id"] == "web-1")
            .unwrap();
        assert_eq!(web_1["cpu_usage"], expected);
        let (status, history) = tenants
            .send(
                caller,
                get("/api/v1/devices/web-1/history?metric=cpu_usage&from=2026-01-01T00:00:00Z"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{history}");
        let values: Vec<f64> = history["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_f64().unwrap())
            .collect();
        assert!(values.contains(&expected), "{history}");
        let (status, metrics) = tenants.answer(caller, get("/metrics")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            metrics.contains("device_id=\"only-a\""),
            ids.contains(&"only-a"),
            "{metrics}"
        );
        let (_, live) = tenants.answer(caller, get("/api/v1/live")).await;
        assert_eq!(live.contains("only-a"), ids.contains(&"only-a"), "{live}");
    }
    // globex deleting its web-1 leaves acme's.
    let bob = tenants.login("bob").await;
    let (status, _) = tenants
        .send(
            &bob,
            Request::delete("/api/v1/devices/web-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = tenants
        .send(&acme_read, get("/api/v1/devices/web-1/metrics"))
        .await;
    assert_eq!(status, StatusCode::OK, "acme's web-1 is still there");
    let (status, _) = tenants
        .send(&globex_read, get("/api/v1/devices/web-1/metrics"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Everybody of globex, and nobody.
async fn globex_callers(t: &Tenants) -> Vec<(&'static str, Caller)> {
    vec![
        ("nobody", Caller::Nobody),
        ("globex's admin", t.login("bob").await),
        ("globex's viewer", t.login("vic").await),
        (
            "globex's agent token",
            Caller::Bearer(t.globex_agent.clone()),
        ),
        ("globex's read token", Caller::Bearer(t.globex_read.clone())),
    ]
}

#[tokio::test]
async fn every_route_answers_another_organisations_things_as_unknown_ones() {
    // The same calls by globex's people, to a server where acme has things
    // of those names and to one where it has none: the same answers.
    let with = Tenants::new(true).await;
    let without = Tenants::new(false).await;
    let table = ServerBuilder::new().build().unwrap().route_table();
    assert!(table.len() >= 30, "the whole surface: {table:?}");
    let (callers_with, callers_without) =
        (globex_callers(&with).await, globex_callers(&without).await);
    for entry in &table {
        let route = format!("{} {}", entry.method, entry.path);
        for ((who, caller_with), (_, caller_without)) in callers_with.iter().zip(&callers_without) {
            let (status_with, body_with) = with
                .answer(caller_with, aimed_at_acme(&with, &entry.method, entry.path))
                .await;
            let (status_without, body_without) = without
                .answer(
                    caller_without,
                    aimed_at_acme(&with, &entry.method, entry.path),
                )
                .await;
            assert_eq!(
                (status_with, &body_with),
                (status_without, &body_without),
                "{route} by {who}: acme's things must look unknown"
            );
        }
    }
    // And acme's things are all still there, untouched.
    let ann = with.login("ann").await;
    let acme_read = Caller::Bearer(with.acme_read.clone());
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let (_, devices) = with.send(&acme_read, get("/api/v1/devices")).await;
    let cpus: Vec<(String, f64)> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap().to_owned(),
                d["cpu_usage"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cpus,
        [("only-a".to_owned(), 60.0), ("web-1".to_owned(), 95.0)]
    );
    for (path, what) in [
        ("/api/v1/alert-rules", "only-a"),
        ("/api/v1/alert-channels", "only-a"),
        ("/api/v1/silences", "only-a"),
        ("/api/v1/alerts", "only-a"),
    ] {
        let (status, body) = with.send(&ann, get(path)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.to_string().contains(what), "{path}: {body}");
    }
    assert!(
        with.credentials
            .tokens_in(&acme())
            .iter()
            .any(|t| t.id == with.acme_token_id),
        "acme's token stays"
    );
    assert_eq!(with.credentials.role_in("ann", &acme()), Some(Role::Admin));
}

#[tokio::test]
async fn an_organisations_device_cap_holds_for_it_alone() {
    let tenants = Tenants::new(false).await;
    tenants
        .credentials
        .set_org_limits(&globex(), OrgLimits::none().max_devices(2))
        .unwrap();
    let post = |token: &str, device: &str| {
        let caller = Caller::Bearer(token.to_owned());
        let request = json_request(
            Method::POST,
            "/api/v1/reports",
            json!([report(device, 5.0, start())]),
        );
        let tenants = &tenants;
        async move { tenants.send(&caller, request).await }
    };
    // globex has web-1; a second device fits, a third does not.
    assert_eq!(post(&tenants.globex_agent, "web-2").await.0, StatusCode::OK);
    let (status, body) = post(&tenants.globex_agent, "web-3").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"].as_str().unwrap().contains('2'), "{body}");
    // Known devices still report; acme has no cap of its own.
    assert_eq!(post(&tenants.globex_agent, "web-1").await.0, StatusCode::OK);
    for device in ["web-1", "web-2", "web-3"] {
        assert_eq!(post(&tenants.acme_agent, device).await.0, StatusCode::OK);
    }
    // Raising the cap lets the third in, at once.
    tenants
        .credentials
        .set_org_limits(&globex(), OrgLimits::none().max_devices(3))
        .unwrap();
    assert_eq!(post(&tenants.globex_agent, "web-3").await.0, StatusCode::OK);
}

#[tokio::test]
async fn removing_an_organisations_devices_leaves_the_others() {
    let server = ServerBuilder::new()
        .open_access()
        .max_devices(4)
        .build()
        .unwrap();
    let ingest = server.ingest();
    let now = OffsetDateTime::now_utc();
    for org in [acme(), globex()] {
        for device in ["web-1", "web-2"] {
            ingest
                .ingest_in(&org, report(device, 5.0, now))
                .await
                .unwrap();
        }
    }
    assert_eq!(ingest.delete_org_devices(&acme()).await.unwrap(), 2);
    let devices = ingest.store().devices().await.unwrap();
    let mut names: Vec<(&str, &str)> = devices
        .iter()
        .map(|(org, id)| (org.as_str(), id.as_str()))
        .collect();
    names.sort_unstable();
    assert_eq!(names, [("globex", "web-1"), ("globex", "web-2")]);
    assert_eq!(ingest.delete_org_devices(&acme()).await.unwrap(), 0);
    // The places under the server-wide cap (4, all taken before) are free again.
    ingest
        .ingest_in(&acme(), report("web-3", 5.0, now))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_organisation_removed_by_the_owner_takes_its_data_along() {
    let tenants = Tenants::new(true).await;
    let owner = tenants.login("owner").await;
    // The owner's list counts each organisation's devices.
    let (status, listed) = tenants
        .send(
            &owner,
            Request::get("/api/v1/organisations")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let counts: Vec<(&str, u64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["devices"].as_u64().unwrap()))
        .collect();
    assert_eq!(counts, [("acme", 2), ("default", 0), ("globex", 1)]);
    let (status, body) = tenants
        .send(
            &owner,
            Request::delete("/api/v1/organisations/acme")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Made again, with ann as its admin: it starts empty.
    let (status, body) = tenants
        .send(
            &owner,
            json_request(
                Method::POST,
                "/api/v1/organisations",
                json!({"name": "acme", "admin": "ann"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ann = tenants.login("ann").await;
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    for path in [
        "/api/v1/devices",
        "/api/all_metrics",
        "/api/v1/alerts",
        "/api/v1/silences",
        "/api/v1/alert-channels",
    ] {
        let (status, body) = tenants.send(&ann, get(path)).await;
        assert_eq!((status, body), (StatusCode::OK, json!([])), "{path}");
    }
    let (_, rules) = tenants.send(&ann, get("/api/v1/alert-rules")).await;
    assert!(!rules.to_string().contains("only-a"), "{rules}");
    let (status, _) = tenants
        .send(
            &ann,
            get("/api/v1/devices/only-a/history?metric=cpu_usage&from=2026-01-01T00:00:00Z"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "its history went too");
    // globex kept its own.
    let globex_read = Caller::Bearer(tenants.globex_read.clone());
    let (_, devices) = tenants.send(&globex_read, get("/api/v1/devices")).await;
    assert_eq!(devices.as_array().map(Vec::len), Some(1));
}
