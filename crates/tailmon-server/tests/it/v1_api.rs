//! The versioned API through the router: devices, history, export, batch, delete.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::{ManualClock, ServerBuilder};
use tower::ServiceExt;

use crate::support::{call, get, json, post_json, report};

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn app(clock: &Arc<ManualClock>) -> Router {
    ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .unwrap()
        .router()
}

/// A router on `clock` tracking at most `cap` devices.
fn app_with_cap(clock: &Arc<ManualClock>, cap: usize) -> Router {
    ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .max_devices(cap)
        .build()
        .unwrap()
        .router()
}

fn at(device: &str, secs: i64, cpu: f64) -> Report {
    let mut r = report(device, cpu, 100);
    r.last_seen = start() + time::Duration::seconds(secs);
    r
}

async fn post_batch(app: &Router, reports: &[Report]) -> (StatusCode, Value) {
    let (status, body) = call(
        app,
        post_json("/api/v1/reports", serde_json::to_vec(reports).unwrap()),
    )
    .await;
    (status, json(&body))
}

#[tokio::test]
async fn batch_stores_the_valid_and_explains_the_refused() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    let mut bad = at("b", 5, 1.0);
    bad.cpu_usage = 150.0;
    let (status, answer) = post_batch(&app, &[at("a", 0, 1.0), bad, at("a", 10, 2.0)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "cpu_usage");
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(
        devices.as_array().unwrap().len(),
        1,
        "the refused device was not created"
    );

    // Too many reports, a body over the batch limit, not an array.
    let many: Vec<Report> = (0..1001).map(|i| at("a", i, 1.0)).collect();
    let (status, answer) = post_batch(&app, &many).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["field"], "reports");
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    assert_eq!(
        call(&app, post_json("/api/v1/reports", huge)).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        call(&app, post_json("/api/v1/reports", "{}")).await.0,
        StatusCode::BAD_REQUEST
    );

    // The batch limit, not the 64 KiB single-report one, applies: 1,000 reports pass.
    let full: Vec<Report> = (0..1000).map(|i| at("full", -i, 1.0)).collect();
    assert!(serde_json::to_vec(&full).unwrap().len() > 64 * 1024);
    let (status, answer) = post_batch(&app, &full).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["accepted"], 1000);
}

#[tokio::test]
async fn devices_carry_their_status_and_go_offline_after_three_intervals() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .expected_interval(Duration::from_secs(5))
        .build()
        .unwrap()
        .router();
    post_batch(&app, &[at("calm", 0, 10.0), at("hot", 0, 95.0)]).await;
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(devices[0]["device_id"], "calm");
    assert_eq!(devices[0]["status"], "ok");
    assert_eq!(devices[1]["status"], "critical");
    assert_eq!(devices[1]["cpu_usage"], 95.0);

    clock.advance(Duration::from_secs(15));
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(
        devices[0]["status"], "ok",
        "15 s is still within three intervals"
    );
    clock.advance(Duration::from_secs(1));
    let devices = json(&call(&app, get("/api/v1/devices")).await.1);
    assert_eq!(devices[0]["status"], "offline");
    assert_eq!(devices[1]["status"], "offline");
}

#[tokio::test]
async fn history_answers_points_and_refuses_bad_queries() {
    let clock = Arc::new(ManualClock::new(start() + time::Duration::seconds(60)));
    let app = app(&clock);
    let reports: Vec<Report> = (0..6)
        .map(|i| at("web", i * 5, f64::from(i as u8) * 10.0))
        .collect();
    post_batch(&app, &reports).await;

    let from = start().unix_timestamp();
    let path =
        format!("/api/v1/devices/web/history?metric=cpu_usage&from={from}&to=2027-01-15T08:00:25Z");
    let (status, body) = call(&app, get(&path)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let history = json(&body);
    assert_eq!(history["tier"], "raw");
    assert_eq!(history["metric"], "cpu_usage");
    assert_eq!(history["points"].as_array().unwrap().len(), 6);
    assert_eq!(
        history["points"][2],
        json!([1_800_000_010.0, 20.0, 20.0, 20.0])
    );

    // Defaults: the last hour, 1,000 points.
    let history = json(
        &call(&app, get("/api/v1/devices/web/history?metric=cpu_usage"))
            .await
            .1,
    );
    assert_eq!(history["points"].as_array().unwrap().len(), 6);

    // Few points asked for: minute buckets.
    let history = json(
        &call(
            &app,
            get(&format!(
                "/api/v1/devices/web/history?metric=cpu_usage&from={from}&points=2"
            )),
        )
        .await
        .1,
    );
    assert_eq!(history["tier"], "minute");
    // 1,800,000,000 is a minute boundary: all six reports fall in one bucket.
    assert_eq!(
        history["points"],
        json!([[1_800_000_000.0, 25.0, 0.0, 50.0]])
    );

    for (path, status, field) in [
        (
            "/api/v1/devices/nobody/history?metric=cpu_usage",
            StatusCode::NOT_FOUND,
            "device_id",
        ),
        (
            "/api/v1/devices/web/history?metric=gpu_usage",
            StatusCode::NOT_FOUND,
            "metric",
        ),
        (
            "/api/v1/devices/web/history",
            StatusCode::BAD_REQUEST,
            "metric",
        ),
        (
            "/api/v1/devices/web/history?metric=cpu_usage&from=yesterday",
            StatusCode::BAD_REQUEST,
            "from",
        ),
        (
            "/api/v1/devices/web/history?metric=cpu_usage&from=1900000000&to=1800000000",
            StatusCode::BAD_REQUEST,
            "from",
        ),
        (
            "/api/v1/devices/web/history?metric=cpu_usage&points=0",
            StatusCode::BAD_REQUEST,
            "points",
        ),
        (
            "/api/v1/devices/web/history?metric=cpu_usage&points=many",
            StatusCode::BAD_REQUEST,
            "points",
        ),
    ] {
        let (got, body) = call(&app, get(path)).await;
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(json(&body)["field"], field, "{path}");
    }
}

#[tokio::test]
async fn export_streams_csv_and_json() {
    let clock = Arc::new(ManualClock::new(start() + time::Duration::seconds(60)));
    let app = app(&clock);
    let mut first = at("web", 0, 10.0);
    first.disks = Some(vec![tailmon_core::Disk {
        mount_point: "/mnt/a,b".into(),
        fs_type: "ext4".into(),
        total_bytes: 4,
        used_bytes: 1,
        available_bytes: None,
    }]);
    post_batch(&app, &[first, at("web", 5, 20.0)]).await;

    let response = app
        .clone()
        .oneshot(get("/api/v1/devices/web/export?format=csv"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("web.csv")
    );
    let (_, body) = call(&app, get("/api/v1/devices/web/export?format=csv")).await;
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "device_id,timestamp,metric,value");
    assert_eq!(lines[1], "web,2027-01-15T08:00:00Z,cpu_usage,10");
    assert!(
        lines.contains(&"web,2027-01-15T08:00:00Z,\"disk_used_percent:/mnt/a,b\",25"),
        "{text}"
    );
    assert!(
        lines.contains(&"web,2027-01-15T08:00:05Z,cpu_usage,20"),
        "{text}"
    );

    let (status, body) = call(
        &app,
        get("/api/v1/devices/web/export?format=json&from=1800000004"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let reports: Vec<Report> = serde_json::from_slice(&body).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].cpu_usage, 20.0);

    let (_, body) = call(&app, get("/api/v1/devices/web/export?to=1700000000")).await;
    assert_eq!(body, b"[]", "an empty range is an empty array");
    assert_eq!(
        call(&app, get("/api/v1/devices/nobody/export")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, get("/api/v1/devices/web/export?format=xml"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn delete_removes_the_device_and_frees_its_place() {
    let clock = Arc::new(ManualClock::new(start() + time::Duration::seconds(60)));
    let app = app_with_cap(&clock, 1);
    post_batch(&app, &[at("old", 0, 1.0)]).await;
    let delete = || {
        Request::delete("/api/v1/devices/old")
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&app, delete()).await.0, StatusCode::NO_CONTENT);
    let (status, body) = call(&app, delete()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["field"], "device_id");
    assert_eq!(
        json(&call(&app, get("/api/all_metrics")).await.1),
        json!([])
    );
    assert_eq!(
        call(&app, get("/api/v1/devices/old/history?metric=cpu_usage"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The cap of one device has room again.
    let (status, answer) = post_batch(&app, &[at("new", 0, 1.0)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["accepted"], 1);
}

#[tokio::test]
async fn a_batch_bringing_a_device_over_the_cap_is_refused_whole_with_429() {
    let clock = Arc::new(ManualClock::new(start() + time::Duration::seconds(60)));
    let app = app_with_cap(&clock, 1);
    assert_eq!(
        post_batch(&app, &[at("first", 0, 1.0)]).await.0,
        StatusCode::OK
    );
    let (status, answer) = post_batch(&app, &[at("first", 5, 2.0), at("second", 5, 1.0)]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("device limit"));
    // Nothing of the batch was stored: the agent keeps it all and retries.
    let history = json(
        &call(
            &app,
            get("/api/v1/devices/first/history?metric=cpu_usage&from=1800000000"),
        )
        .await
        .1,
    );
    assert_eq!(history["points"].as_array().unwrap().len(), 1);
}
