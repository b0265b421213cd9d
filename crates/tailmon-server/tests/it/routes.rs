//! The router, driven without a socket.

use std::sync::Arc;
use tailmon_server::store::OrgId;

use axum::Router;
use axum::http::{StatusCode, header};
use tailmon_core::OffsetDateTime;
use tailmon_server::{ManualClock, ServerBuilder};
use tower::ServiceExt;

use crate::support::{call, get, json, post_json, report};

fn router() -> Router {
    ServerBuilder::new()
        .open_access()
        .build()
        .expect("defaults are valid")
        .router()
}

#[tokio::test]
async fn post_then_list_uses_the_original_shapes() {
    let app = router();
    let body = r#"{"device_id":"my-server","os_info":"CentOS 8","cpu_usage":25.3,"ram_used_mb":2048,"ram_total_mb":8192,"last_seen":"2025-07-10T14:30:00Z"}"#;
    let (status, _) = call(&app, post_json("/api/metrics", body)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = call(&app, get("/api/all_metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let all = json(&body);
    let device = &all.as_array().expect("an array")[0];
    assert_eq!(device["device_id"], "my-server");
    assert_eq!(device["os_info"], "CentOS 8");
    assert_eq!(device["cpu_usage"], 25.3);
    assert_eq!(device["ram_used_mb"], 2048);
    assert_eq!(device["ram_total_mb"], 8192);
    assert_eq!(device["last_seen"], "2025-07-10T14:30:00Z");
    assert!(
        device["received_at"].is_string(),
        "server stamps its receive time"
    );
}

#[tokio::test]
async fn latest_report_per_device_sorted_by_id() {
    let app = router();
    for (id, cpu) in [("b", 1.0), ("a", 2.0), ("b", 3.0)] {
        let body = serde_json::to_vec(&report(id, cpu, 100)).expect("serialise");
        assert_eq!(
            call(&app, post_json("/api/metrics", body)).await.0,
            StatusCode::OK
        );
    }
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    let summary: Vec<(String, f64)> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().unwrap_or_default().to_owned(),
                d["cpu_usage"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(summary, [("a".to_owned(), 2.0), ("b".to_owned(), 3.0)]);
}

#[tokio::test]
async fn receive_time_comes_from_the_server_clock_not_the_agent() {
    let server_now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid");
    let clock = Arc::new(ManualClock::new(server_now));
    let app = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .expect("valid")
        .router();
    let mut skewed = report("skewed", 5.0, 100);
    skewed.last_seen = server_now - time::Duration::days(3);
    skewed.received_at = Some(server_now + time::Duration::days(300));
    let body = serde_json::to_vec(&skewed).expect("serialise");
    assert_eq!(
        call(&app, post_json("/api/metrics", body)).await.0,
        StatusCode::OK
    );
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    assert_eq!(all[0]["received_at"], "2027-01-15T08:00:00Z");

    // Five minutes ahead is tolerated skew, stored as stamped.
    let mut ahead = report("ahead", 5.0, 100);
    ahead.last_seen = server_now + time::Duration::seconds(300);
    let (status, _) = call(
        &app,
        post_json("/api/metrics", serde_json::to_vec(&ahead).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    assert_eq!(all[0]["device_id"], "ahead");
    assert_eq!(all[0]["last_seen"], "2027-01-15T08:05:00Z");
    assert!(all[0].get("clock_skew_seconds").is_none(), "{all}");
}

#[tokio::test]
async fn a_report_from_a_clock_ahead_is_stored_at_receive_time_and_flagged() {
    let server_now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("valid");
    let clock = Arc::new(ManualClock::new(server_now));
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .expect("valid");
    let store = server.ingest().store().clone();
    let app = server.router();
    let cpu_history = |device: &'static str| {
        let store = store.clone();
        async move {
            let query = tailmon_server::store::HistoryQuery::new(
                device,
                "cpu_usage",
                server_now - time::Duration::hours(1),
                server_now + time::Duration::hours(1),
            );
            store
                .history(&OrgId::default(), &query)
                .await
                .expect("history")
                .expect("a known device")
                .points
                .iter()
                .map(|p| (p.at, p.avg))
                .collect::<Vec<_>>()
        }
    };

    // One report, 612 s ahead: stored at the receive time, not refused.
    let mut fast = report("fast", 42.0, 100);
    fast.last_seen = server_now + time::Duration::seconds(612);
    let (status, body) = call(
        &app,
        post_json("/api/metrics", serde_json::to_vec(&fast).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(cpu_history("fast").await, [(server_now, 42.0)]);
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    assert_eq!(all[0]["last_seen"], "2027-01-15T08:00:00Z");
    assert_eq!(all[0]["clock_skew_seconds"], 612);
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(devices[0]["device_id"], "fast");
    assert_eq!(devices[0]["clock_skew_seconds"], 612);

    // A batch (back-fill) from the same clock: every report moved back by
    // the newest one's skew, so order and spacing survive.
    clock.advance(std::time::Duration::from_secs(60));
    let now = server_now + time::Duration::seconds(60);
    let batch: Vec<_> = [20, 10, 0]
        .iter()
        .map(|before| {
            let mut r = report("fast", 50.0 + f64::from(*before), 100);
            r.last_seen = now + time::Duration::seconds(700 - i64::from(*before));
            r
        })
        .collect();
    let (status, body) = call(
        &app,
        post_json("/api/v1/reports", serde_json::to_vec(&batch).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["accepted"], 3);
    assert_eq!(
        cpu_history("fast").await,
        [
            (server_now, 42.0),
            (now - time::Duration::seconds(20), 70.0),
            (now - time::Duration::seconds(10), 60.0),
            (now, 50.0),
        ]
    );
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(devices[0]["clock_skew_seconds"], 700);

    // Other rules still refuse, with 422.
    let mut bad = report("fast", -1.0, 100);
    bad.last_seen = now + time::Duration::seconds(900);
    let (status, body) = call(
        &app,
        post_json("/api/metrics", serde_json::to_vec(&bad).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&body)["field"], "cpu_usage");

    // Once its clock is right, the flag goes.
    clock.advance(std::time::Duration::from_secs(5));
    let right = report_at("fast", now + time::Duration::seconds(5));
    let (status, _) = call(
        &app,
        post_json("/api/metrics", serde_json::to_vec(&right).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(devices[0]["clock_skew_seconds"], serde_json::Value::Null);
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    assert!(all[0].get("clock_skew_seconds").is_none(), "{all}");
}

fn report_at(device: &str, at: OffsetDateTime) -> tailmon_core::Report {
    let mut r = report(device, 1.0, 100);
    r.last_seen = at;
    r
}

#[tokio::test]
async fn healthz_answers_ok() {
    let (status, body) = call(&router(), get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_ready_when_the_store_answers() {
    let (status, body) = call(&router(), get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body), serde_json::json!({"status": "ready"}));
}

/// A memory store whose readiness probe fails while `down` is set.
struct FlakyStore {
    inner: tailmon_server::MemoryStore,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl tailmon_testkit::StoreHooks for FlakyStore {
    type Inner = tailmon_server::MemoryStore;
    fn inner(&self) -> &Self::Inner {
        &self.inner
    }
    async fn before_ready(&self) -> Result<(), tailmon_server::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(tailmon_server::StoreError::Unavailable("disk gone".into()))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn readyz_answers_503_while_the_store_does_not_answer() {
    let store = Arc::new(tailmon_testkit::Forwarding(FlakyStore {
        inner: tailmon_server::MemoryStore::new(),
        down: true.into(),
    }));
    // Under authentication too: probes carry no credentials.
    let app = ServerBuilder::new()
        .store(Arc::clone(&store))
        .build()
        .expect("valid")
        .router();
    let answer = app
        .clone()
        .oneshot(get("/readyz"))
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers()[header::RETRY_AFTER], "5");
    let (status, body) = call(&app, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body = json(&body);
    assert_eq!(body["error"], "not ready: the store does not answer");
    assert!(
        !body.to_string().contains("disk gone"),
        "the cause is logged, not sent: {body}"
    );
    // Liveness is not readiness.
    assert_eq!(call(&app, get("/healthz")).await.0, StatusCode::OK);
    store
        .0
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(call(&app, get("/readyz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn dashboard_assets_are_served_with_their_types() {
    let app = router();
    for (path, mime) in [
        ("/", "text/html; charset=utf-8"),
        ("/js/fleet.js", "text/javascript; charset=utf-8"),
        ("/css/base.css", "text/css; charset=utf-8"),
        ("/device.html", "text/html; charset=utf-8"),
        ("/manifest.webmanifest", "application/manifest+json"),
        ("/icons/icon-192.png", "image/png"),
    ] {
        let response = app.clone().oneshot(get(path)).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], mime, "{path}");
        let etag = response.headers()[header::ETAG].clone();
        let mut again = get(path);
        again.headers_mut().insert(header::IF_NONE_MATCH, etag);
        let response = app.clone().oneshot(again).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let (status, body) = call(&app, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    let html = String::from_utf8(body).expect("utf-8");
    assert!(html.contains(r#"<script type="module" src="js/fleet.js">"#));
    assert_eq!(
        call(&app, get("/no-such-asset.js")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unknown_api_routes_and_methods_answer_json() {
    let app = router();
    let (status, body) = call(&app, get("/api/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json(&body)["error"].is_string());
    let (status, body) = call(&app, get("/api/metrics")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(json(&body)["error"].is_string());
}

#[tokio::test]
async fn nests_inside_a_host_application() {
    let tailmon = ServerBuilder::new().open_access().build().expect("valid");
    let app = Router::new()
        .route("/hello", axum::routing::get(|| async { "host app" }))
        .nest("/monitor", tailmon.router());
    assert_eq!(call(&app, get("/hello")).await.1, b"host app");
    let body = serde_json::to_vec(&report("nested", 1.0, 1)).expect("json");
    assert_eq!(
        call(&app, post_json("/monitor/api/metrics", body)).await.0,
        StatusCode::OK
    );
    let all = json(&call(&app, get("/monitor/api/all_metrics")).await.1);
    assert_eq!(all[0]["device_id"], "nested");
    // The page works at the prefix: its relative links resolve under it.
    let (status, page) = call(&app, get("/monitor")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains(r#"<base href="/monitor/">"#));
    assert_eq!(
        call(&app, get("/monitor/js/fleet.js")).await.0,
        StatusCode::OK
    );
    // So does the device page, and the service worker may control the
    // prefix itself (the page at `/monitor` has no trailing slash).
    let (status, page) = call(&app, get("/monitor/device.html")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains(r#"<base href="/monitor/">"#));
    let response = app
        .clone()
        .oneshot(get("/monitor/sw.js"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["service-worker-allowed"], "/monitor");
}

#[tokio::test]
async fn a_signed_out_browser_is_sent_to_the_nested_login_page() {
    let tailmon = ServerBuilder::new().build().expect("valid");
    let app = Router::new().nest("/monitor", tailmon.router());
    for path in ["/monitor", "/monitor/api/v1/devices"] {
        let request = axum::http::Request::get(path)
            .header(header::ACCEPT, "text/html")
            .body(axum::body::Body::empty())
            .expect("request");
        let (status, page) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let page = String::from_utf8_lossy(&page);
        assert!(
            page.contains(r#"content="0;url=/monitor/login""#),
            "{path}: {page}"
        );
    }
    assert_eq!(call(&app, get("/monitor/login")).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, get("/monitor/js/login.js")).await.0,
        StatusCode::OK
    );
}

#[test]
fn build_refuses_bad_settings() {
    let error = ServerBuilder::new()
        .open_access()
        .max_devices(0)
        .build()
        .expect_err("refused");
    assert!(error.to_string().contains("max_devices"), "{error}");
    let error = ServerBuilder::new()
        .open_access()
        .max_body_bytes(10)
        .build()
        .expect_err("refused");
    assert!(error.to_string().contains("max_body_bytes"), "{error}");
}

#[tokio::test]
async fn the_whole_health_picture_round_trips_through_the_api() {
    let app = router();
    let body = r#"{"device_id":"rich","os_info":"Linux","cpu_usage":12.5,"ram_used_mb":1,"ram_total_mb":2,"last_seen":"2025-07-10T14:30:00Z",
        "cpu_per_core":[10.0,15.0],"cpu_breakdown":{"user":8.0,"system":3.0,"iowait":1.0,"steal":0.5},
        "load_avg":{"one":0.5,"five":0.4,"fifteen":0.3},"swap_used_mb":0,"swap_total_mb":1024,
        "disks":[{"mount_point":"/","fs_type":"ext4","total_bytes":100,"used_bytes":85}],
        "disk_io":[{"device":"sda","read_bytes_per_sec":10.0,"write_bytes_per_sec":20.0}],
        "networks":[{"interface":"eth0","rx_bytes_per_sec":1.5,"tx_bytes_per_sec":2.5,"rx_bytes_total":100,"tx_bytes_total":200,"rx_errors":0,"tx_errors":1}],
        "temperatures":[],"uptime_seconds":3600,"boot_time":"2025-07-10T13:30:00Z","process_count":99,
        "top_processes":[{"pid":1,"name":"init","cpu_percent":0.5,"rss_bytes":4096}],"custom":{"queue.depth":3.0}}"#;
    let (status, answer) = call(&app, post_json("/api/metrics", body)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    let mut sent: serde_json::Value = serde_json::from_str(body).expect("json");
    sent["received_at"] = all[0]["received_at"].clone();
    assert_eq!(all[0], sent, "every field comes back as sent");
}
