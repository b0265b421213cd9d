//! Organisations through the router: the owner's API, a user switching
//! between their organisations, the session's answer (unchanged for a
//! single tenant), tokens, users and preferences per organisation, and the
//! rate limits an organisation sets for itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tailmon_core::OffsetDateTime;
use tailmon_server::auth::{NewToken, OrgId, OrgLimits, RateLimit, Role};
use tailmon_server::{Credentials, ManualClock, ServerBuilder};

use crate::people::{
    ADMIN_PASSWORD, Session, VIEWER_PASSWORD, as_session, json_request, login, people, send,
    with_bearer,
};

fn acme() -> OrgId {
    OrgId::new("acme").unwrap()
}

struct Tenants {
    router: Router,
    credentials: Arc<Credentials>,
    clock: Arc<ManualClock>,
}

/// `root` (admin of default, so an owner) and `ann` (viewer of default).
fn tenants() -> Tenants {
    tenants_with(|b| b)
}

fn tenants_with(configure: impl FnOnce(ServerBuilder) -> ServerBuilder) -> Tenants {
    let credentials = people();
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let server = configure(
        ServerBuilder::new()
            .credentials(credentials.clone())
            .clock(clock.clone()),
    )
    .build()
    .unwrap();
    Tenants {
        router: server.router(),
        credentials,
        clock,
    }
}

impl Tenants {
    async fn call(
        &self,
        session: &Session,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = send(
            &self.router,
            as_session(json_request(method, uri, body), session),
        )
        .await;
        (status, body)
    }
}

#[tokio::test]
async fn the_owner_creates_limits_and_removes_organisations() {
    let t = tenants();
    let root = login(&t.router, "root", ADMIN_PASSWORD).await;

    let (status, body) = t
        .call(
            &root,
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "acme", "admin": "ann"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "acme");
    assert_eq!(body["limits"], json!({}));
    assert_eq!(t.credentials.role_in("ann", &acme()), Some(Role::Admin));
    // A second time, and with an admin who does not exist: nothing made.
    let (status, _) = t
        .call(
            &root,
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = t
        .call(
            &root,
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "beta", "admin": "nobody"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = t
        .call(
            &root,
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "not a name"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, list) = t
        .call(&root, Method::GET, "/api/v1/organisations", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "default"]);

    // Limits: set whole, then lifted by leaving them out.
    let limits = json!({
        "max_devices": 3,
        "rate_limit_per_token": {"per_second": 5, "burst": 50},
    });
    let (status, body) = t
        .call(
            &root,
            Method::PUT,
            "/api/v1/organisations/acme/limits",
            Some(limits.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["limits"], limits);
    assert_eq!(t.credentials.device_caps(), [(acme(), 3)]);
    for (uri, body, expected) in [
        (
            "/api/v1/organisations/nowhere/limits",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/organisations/not%20a%20name/limits",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/organisations/acme/limits",
            json!({"max_devices": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/organisations/acme/limits",
            json!({"rate_limit_per_token": {"per_second": 0, "burst": 1}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/organisations/acme/limits",
            json!({"max_devices": 3, "colour": "red"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, answer) = t.call(&root, Method::PUT, uri, Some(body.clone())).await;
        assert_eq!(status, expected, "{uri} {body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    assert_eq!(
        t.credentials
            .organisation(&acme())
            .unwrap()
            .limits
            .max_devices,
        Some(3),
        "a refused change changes nothing"
    );
    let (status, body) = t
        .call(
            &root,
            Method::PUT,
            "/api/v1/organisations/acme/limits",
            Some(json!({})),
        )
        .await;
    assert_eq!((status, &body["limits"]), (StatusCode::OK, &json!({})));
    assert!(t.credentials.device_caps().is_empty());

    // Nobody but an owner: not ann (an admin of acme), not a token.
    let ann = login(&t.router, "ann", VIEWER_PASSWORD).await;
    let (status, _) = t
        .call(&ann, Method::GET, "/api/v1/organisations", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let acme_token = t
        .credentials
        .create_token(NewToken::read("acme scripts").org(acme()))
        .unwrap()
        .token;
    let (status, _, _) = send(
        &t.router,
        with_bearer(
            json_request(Method::GET, "/api/v1/organisations", None),
            &acme_token,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Removing: default never; acme with its tokens and memberships.
    let (status, _) = t
        .call(&root, Method::DELETE, "/api/v1/organisations/default", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = t
        .call(&root, Method::DELETE, "/api/v1/organisations/acme", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = t
        .call(&root, Method::DELETE, "/api/v1/organisations/acme", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(t.credentials.role_in("ann", &acme()), None);
    let (status, _, _) = send(
        &t.router,
        with_bearer(
            json_request(Method::GET, "/api/v1/devices", None),
            &acme_token,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its tokens are revoked");

    // Once an owner is named, the other admins of default are not owners.
    t.credentials.set_owner("ann", true).unwrap();
    // (Taken out of acme, ann's sessions ended.)
    let ann = login(&t.router, "ann", VIEWER_PASSWORD).await;
    let (status, _) = t
        .call(&root, Method::GET, "/api/v1/organisations", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = t
        .call(&ann, Method::GET, "/api/v1/organisations", None)
        .await;
    assert_eq!(status, StatusCode::OK, "a viewer named owner");
}

#[tokio::test]
async fn a_user_switches_between_their_organisations_and_sees_only_one_at_a_time() {
    let t = tenants();
    let ann = login(&t.router, "ann", VIEWER_PASSWORD).await;
    let mut single = t.call(&ann, Method::GET, "/api/v1/session", None).await.1;

    t.credentials.create_org(&acme(), Some("ann")).unwrap();
    t.credentials
        .create_org(&OrgId::new("beta").unwrap(), Some("root"))
        .unwrap();
    // Joining an organisation ends no session: ann's lists acme at once.
    let root = login(&t.router, "root", ADMIN_PASSWORD).await;
    let default_token = t.credentials.create_token(NewToken::read("ours")).unwrap();
    let acme_token = t
        .credentials
        .create_token(NewToken::read("theirs").org(acme()))
        .unwrap();

    // root belongs to default and beta; ann to default and acme. A user
    // of one organisation would see the single-tenant answer.
    let (_, info) = t.call(&ann, Method::GET, "/api/v1/session", None).await;
    assert_eq!(info["organisation"], "default");
    assert_eq!(
        info["organisations"],
        json!([{"name": "acme", "role": "admin"}, {"name": "default", "role": "viewer"}])
    );
    let mut without = info.clone();
    let object = without.as_object_mut().unwrap();
    object.remove("organisation");
    object.remove("organisations");
    single["csrf_token"] = without["csrf_token"].clone();
    assert_eq!(without, single, "nothing else changes");
    t.credentials
        .add_user("cid", "correct horse", Role::Viewer)
        .unwrap();
    let cid = login(&t.router, "cid", "correct horse").await;
    let (_, info) = t.call(&cid, Method::GET, "/api/v1/session", None).await;
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["auth", "csrf_token", "role", "username"]);

    // As a viewer of default, ann may not list tokens; switched, she is
    // acme's admin and sees acme's only.
    let (status, _) = t.call(&ann, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, info) = t
        .call(
            &ann,
            Method::POST,
            "/api/v1/session/org",
            Some(json!({"organisation": "acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(
        (&info["organisation"], &info["role"]),
        (&json!("acme"), &json!("admin"))
    );
    let (status, tokens) = t.call(&ann, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [acme_token.info.id.as_str()]);
    // Another organisation's token and user answer as unknown ones.
    let unknown = t
        .call(
            &ann,
            Method::DELETE,
            "/api/v1/tokens/0000000000000000",
            None,
        )
        .await;
    let theirs = t
        .call(
            &ann,
            Method::DELETE,
            &format!("/api/v1/tokens/{}", default_token.info.id),
            None,
        )
        .await;
    assert_eq!(theirs.0, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.1["error"]
            .as_str()
            .unwrap()
            .replace(&default_token.info.id, "ID"),
        unknown.1["error"]
            .as_str()
            .unwrap()
            .replace("0000000000000000", "ID")
    );
    assert!(t.credentials.verify_token(&default_token.token).is_some());
    let (status, users) = t.call(&ann, Method::GET, "/api/v1/users", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        users,
        json!([{"username": "ann", "role": "admin", "created_at": users[0]["created_at"]}])
    );
    for method in [Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"role": "viewer"}));
        let (status, _) = t.call(&ann, method, "/api/v1/users/root", body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "root is not in acme");
    }
    assert_eq!(t.credentials.role("root"), Some(Role::Admin));
    // A user added here belongs to acme only.
    let (status, _) = t
        .call(
            &ann,
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "dan", "password": "long enough", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        t.credentials
            .memberships("dan")
            .into_iter()
            .collect::<Vec<_>>(),
        [(acme(), Role::Viewer)]
    );

    // An organisation she does not belong to answers as one that does not exist.
    let beta = t
        .call(
            &ann,
            Method::POST,
            "/api/v1/session/org",
            Some(json!({"organisation": "beta"})),
        )
        .await;
    let nowhere = t
        .call(
            &ann,
            Method::POST,
            "/api/v1/session/org",
            Some(json!({"organisation": "nowhere"})),
        )
        .await;
    assert_eq!(beta.0, StatusCode::NOT_FOUND);
    assert_eq!(
        beta.1["error"].as_str().unwrap().replace("beta", "X"),
        nowhere.1["error"].as_str().unwrap().replace("nowhere", "X")
    );
    let (_, info) = t.call(&ann, Method::GET, "/api/v1/session", None).await;
    assert_eq!(info["organisation"], "acme", "still in acme");

    // Tokens cannot switch; nor can a session without its CSRF token.
    let (status, _, _) = send(
        &t.router,
        with_bearer(
            json_request(
                Method::POST,
                "/api/v1/session/org",
                Some(json!({"organisation": "default"})),
            ),
            &default_token.token,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut request = json_request(
        Method::POST,
        "/api/v1/session/org",
        Some(json!({"organisation": "default"})),
    );
    request
        .headers_mut()
        .insert(axum::http::header::COOKIE, ann.cookie.parse().unwrap());
    assert_eq!(send(&t.router, request).await.0, StatusCode::FORBIDDEN);

    // root's own session is untouched by ann's switch.
    let (_, info) = t.call(&root, Method::GET, "/api/v1/session", None).await;
    assert_eq!(info["organisation"], "default");
}

#[tokio::test]
async fn preferences_are_kept_per_organisation() {
    let t = tenants();
    t.credentials.create_org(&acme(), Some("ann")).unwrap();
    let ann = login(&t.router, "ann", VIEWER_PASSWORD).await;
    let prefs = |theme: &str| Some(json!({"theme": theme}));
    let (status, _) = t
        .call(&ann, Method::PUT, "/api/v1/preferences", prefs("dark"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let switch = |org: &'static str| {
        t.call(
            &ann,
            Method::POST,
            "/api/v1/session/org",
            Some(json!({"organisation": org})),
        )
    };
    assert_eq!(switch("acme").await.0, StatusCode::OK);
    let (_, saved) = t.call(&ann, Method::GET, "/api/v1/preferences", None).await;
    assert_eq!(saved, json!({}), "nothing saved in acme yet");
    t.call(&ann, Method::PUT, "/api/v1/preferences", prefs("light"))
        .await;
    assert_eq!(switch("default").await.0, StatusCode::OK);
    let (_, saved) = t.call(&ann, Method::GET, "/api/v1/preferences", None).await;
    assert_eq!(saved, json!({"theme": "dark"}));
    assert_eq!(switch("acme").await.0, StatusCode::OK);
    let (_, saved) = t.call(&ann, Method::GET, "/api/v1/preferences", None).await;
    assert_eq!(saved, json!({"theme": "light"}));
}

fn from(mut request: Request<Body>, address: [u8; 4]) -> Request<Body> {
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((address, 40000))));
    request
}

#[tokio::test]
async fn an_organisation_limits_its_own_tokens_and_addresses() {
    let t = tenants_with(|b| {
        b.rate_limit_per_token(RateLimit::new(100, 100))
            .rate_limit_per_address(RateLimit::new(100, 100))
    });
    t.credentials.create_org(&acme(), Some("ann")).unwrap();
    let ours = t
        .credentials
        .create_token(NewToken::read("ours"))
        .unwrap()
        .token;
    let theirs = t
        .credentials
        .create_token(NewToken::read("theirs").org(acme()))
        .unwrap()
        .token;
    t.credentials
        .set_org_limits(
            &acme(),
            OrgLimits::none().rate_limit_per_token(RateLimit::new(1, 2).unwrap()),
        )
        .unwrap();
    let read = |token: &str, address: [u8; 4]| {
        from(
            with_bearer(json_request(Method::GET, "/api/v1/devices", None), token),
            address,
        )
    };
    // acme's token: its organisation's 2 at once, from any address.
    assert_eq!(
        send(&t.router, read(&theirs, [10, 0, 0, 1])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(&t.router, read(&theirs, [10, 0, 0, 2])).await.0,
        StatusCode::OK
    );
    let (status, headers, _) = send(&t.router, read(&theirs, [10, 0, 0, 3])).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    // default's token: the server's 100.
    for _ in 0..10 {
        assert_eq!(
            send(&t.router, read(&ours, [10, 0, 0, 4])).await.0,
            StatusCode::OK
        );
    }
    t.clock.advance(Duration::from_secs(1));
    assert_eq!(
        send(&t.router, read(&theirs, [10, 0, 0, 1])).await.0,
        StatusCode::OK
    );

    // Per address, for acme's callers only (sessions too), besides the server's.
    t.credentials
        .set_org_limits(
            &acme(),
            OrgLimits::none().rate_limit_per_address(RateLimit::new(1, 3).unwrap()),
        )
        .unwrap();
    let ann = login(&t.router, "ann", VIEWER_PASSWORD).await;
    let switched = send(
        &t.router,
        as_session(
            json_request(
                Method::POST,
                "/api/v1/session/org",
                Some(json!({"organisation": "acme"})),
            ),
            &ann,
        ),
    )
    .await;
    assert_eq!(switched.0, StatusCode::OK);
    let session_read = || {
        from(
            as_session(json_request(Method::GET, "/api/v1/devices", None), &ann),
            [10, 0, 0, 9],
        )
    };
    for _ in 0..3 {
        assert_eq!(send(&t.router, session_read()).await.0, StatusCode::OK);
    }
    assert_eq!(
        send(&t.router, session_read()).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        send(&t.router, read(&theirs, [10, 0, 0, 9])).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "acme's token from the same address shares the bucket"
    );
    assert_eq!(
        send(&t.router, read(&theirs, [10, 0, 0, 8])).await.0,
        StatusCode::OK,
        "per token: the server's again"
    );
    for _ in 0..5 {
        assert_eq!(
            send(&t.router, read(&ours, [10, 0, 0, 9])).await.0,
            StatusCode::OK,
            "default's callers are not held back"
        );
    }
}

#[test]
fn saved_choices_outlive_a_restart_in_the_organisations_their_owners_still_belong_to() {
    use tailmon_server::views::{Owner, PreferenceStore, Preferences, Theme};
    let dir = std::env::temp_dir().join(format!(
        "tailmon-org-prefs-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    let credentials = Arc::new(Credentials::open(&dir).unwrap());
    credentials
        .add_user("ann", "correct horse", Role::Admin)
        .unwrap();
    credentials.create_org(&acme(), Some("ann")).unwrap();
    credentials
        .add_user_in("cid", "correct horse", &acme(), Role::Admin)
        .unwrap();
    let preferences = Arc::new(PreferenceStore::open(&dir).unwrap());
    let mut dark = Preferences::default();
    dark.theme = Some(Theme::Dark);
    for name in ["ann", "cid"] {
        preferences
            .set_in(&acme(), &Owner::User(name.into()), dark.clone())
            .unwrap();
    }
    preferences
        .set(&Owner::User("ann".into()), dark.clone())
        .unwrap();
    // While the server is down, ann leaves acme.
    credentials.remove_membership("ann", &acme()).unwrap();

    let _server = ServerBuilder::new()
        .credentials(credentials)
        .preferences(preferences.clone())
        .build()
        .unwrap();
    assert_eq!(
        preferences.get_in(&acme(), &Owner::User("cid".into())),
        dark,
        "cid belongs to acme alone"
    );
    assert_eq!(
        preferences.get_in(&acme(), &Owner::User("ann".into())),
        Preferences::default()
    );
    assert_eq!(preferences.get(&Owner::User("ann".into())), dark);
    std::fs::remove_dir_all(&dir).unwrap();
}
