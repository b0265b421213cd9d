//! Every kind of bad input gets a clear 4xx in the JSON error shape and
//! changes nothing.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tailmon_server::ServerBuilder;

use crate::support::{call, get, json, post_json, report};

fn valid() -> Value {
    serde_json::to_value(report("victim", 10.0, 100)).expect("json")
}

fn with(field: &str, value: Value) -> Vec<u8> {
    let mut body = valid();
    body[field] = value;
    serde_json::to_vec(&body).expect("json")
}

fn without(field: &str) -> Vec<u8> {
    let mut body = valid();
    body.as_object_mut().expect("object").remove(field);
    serde_json::to_vec(&body).expect("json")
}

#[tokio::test]
async fn each_bad_input_is_refused_and_stores_nothing() {
    let app = ServerBuilder::new()
        .open_access()
        .build()
        .expect("valid")
        .router();
    // A good report first, to prove bad ones leave it alone.
    let good = valid();
    let good_bytes = serde_json::to_vec(&good).expect("json");
    assert_eq!(
        call(&app, post_json("/api/metrics", good_bytes)).await.0,
        StatusCode::OK
    );
    let before = json(&call(&app, get("/api/all_metrics")).await.1);

    let over_limit = vec![b' '; 64 * 1024 + 1];
    let cases: Vec<(&str, Request<Body>, StatusCode, Option<&str>)> = vec![
        (
            "not JSON",
            post_json("/api/metrics", "{not json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "empty body",
            post_json("/api/metrics", ""),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "JSON array",
            post_json("/api/metrics", "[]"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "trailing garbage",
            post_json(
                "/api/metrics",
                [serde_json::to_vec(&valid()).expect("json"), b"x".to_vec()].concat(),
            ),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "missing field",
            post_json("/api/metrics", without("cpu_usage")),
            StatusCode::BAD_REQUEST,
            Some("cpu_usage"),
        ),
        (
            "wrong type",
            post_json("/api/metrics", with("ram_used_mb", json!("lots"))),
            StatusCode::BAD_REQUEST,
            Some("ram_used_mb"),
        ),
        (
            "negative memory",
            post_json("/api/metrics", with("ram_total_mb", json!(-5))),
            StatusCode::BAD_REQUEST,
            Some("ram_total_mb"),
        ),
        (
            "bad timestamp",
            post_json("/api/metrics", with("last_seen", json!("yesterday"))),
            StatusCode::BAD_REQUEST,
            Some("last_seen"),
        ),
        (
            "body over 64 KiB",
            post_json("/api/metrics", over_limit),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            "form content type",
            Request::post("/api/metrics")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(serde_json::to_vec(&valid()).expect("json")))
                .expect("request"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            "no content type",
            Request::post("/api/metrics")
                .body(Body::from(serde_json::to_vec(&valid()).expect("json")))
                .expect("request"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
        ),
        (
            "empty device_id",
            post_json("/api/metrics", with("device_id", json!(""))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("device_id"),
        ),
        (
            "device_id with markup",
            post_json("/api/metrics", with("device_id", json!("<b>x</b>"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("device_id"),
        ),
        (
            "device_id too long",
            post_json("/api/metrics", with("device_id", json!("a".repeat(129)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("device_id"),
        ),
        (
            "os_info too long",
            post_json("/api/metrics", with("os_info", json!("x".repeat(257)))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("os_info"),
        ),
        (
            "os_info control char",
            post_json("/api/metrics", with("os_info", json!("a\u{7}b"))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("os_info"),
        ),
        (
            "cpu 1e308",
            post_json("/api/metrics", with("cpu_usage", json!(1e308))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cpu_usage"),
        ),
        (
            "cpu negative",
            post_json("/api/metrics", with("cpu_usage", json!(-1))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cpu_usage"),
        ),
        (
            "cpu over 100",
            post_json("/api/metrics", with("cpu_usage", json!(100.01))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cpu_usage"),
        ),
        (
            "zero total",
            post_json("/api/metrics", with("ram_total_mb", json!(0))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("ram_total_mb"),
        ),
        (
            "used over total",
            post_json("/api/metrics", with("ram_used_mb", json!(8193))),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("ram_used_mb"),
        ),
        // A `last_seen` in the future is not refused: it is stored at the
        // receive time and flagged (routes.rs,
        // a_report_from_a_clock_ahead_is_stored_at_receive_time_and_flagged).
    ];

    for (name, request, expected, field) in cases {
        let (status, body) = call(&app, request).await;
        assert_eq!(
            status,
            expected,
            "{name}: {}",
            String::from_utf8_lossy(&body)
        );
        let error = json(&body);
        assert!(
            error["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: error message missing: {error}"
        );
        match field {
            Some(field) => assert_eq!(error["field"], field, "{name}"),
            None => assert!(
                error.get("field").is_none(),
                "{name}: unexpected field {error}"
            ),
        }
    }

    let after = json(&call(&app, get("/api/all_metrics")).await.1);
    assert_eq!(after, before, "bad input changed what is stored");
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = ServerBuilder::new()
        .open_access()
        .max_body_bytes(1024)
        .build()
        .expect("valid")
        .router();
    let mut body = valid();
    body["padding"] = json!("x".repeat(2000));
    let (status, body) = call(
        &app,
        post_json("/api/metrics", serde_json::to_vec(&body).expect("json")),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("1024")
    );
}

#[tokio::test]
async fn new_fields_are_validated_with_the_same_error_shape() {
    let app = ServerBuilder::new()
        .open_access()
        .build()
        .expect("valid")
        .router();
    let cases = [
        ("cpu_per_core", json!([10.0, 101.0]), "cpu_per_core[1]"),
        (
            "load_avg",
            json!({"one": -1, "five": 0, "fifteen": 0}),
            "load_avg.one",
        ),
        (
            "disks",
            json!([{"mount_point": "/", "fs_type": "ext4", "total_bytes": 10, "used_bytes": 11}]),
            "disks[0].used_bytes",
        ),
        (
            "networks",
            json!([{"interface": "eth0", "rx_bytes_per_sec": -5, "rx_bytes_total": 0, "tx_bytes_total": 0, "rx_errors": 0, "tx_errors": 0}]),
            "networks[0].rx_bytes_per_sec",
        ),
        (
            "temperatures",
            json!([{"label": "cpu", "celsius": -500}]),
            "temperatures[0].celsius",
        ),
        ("custom", json!({"bad name": 1}), "custom"),
        (
            "disks",
            json!(vec![
                json!({"mount_point": "/", "fs_type": "ext4", "total_bytes": 1, "used_bytes": 1});
                257
            ]),
            "disks",
        ),
    ];
    for (key, value, field) in cases {
        let (status, body) = call(&app, post_json("/api/metrics", with(key, value))).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(json(&body)["field"], field);
    }
    // A wrong type in a nested field is malformed JSON, naming the path.
    let (status, body) = call(
        &app,
        post_json("/api/metrics", with("load_avg", json!({"one": "high"}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["field"], "load_avg.one");
    assert_eq!(
        json(&call(&app, get("/api/all_metrics")).await.1),
        json!([])
    );
}

/// Found by schemathesis (scripts/schemathesis.sh): a query string axum
/// could not decode (a parameter given twice) and a path segment that is
/// not UTF-8 were refused with axum's plain-text 400, not the JSON shape.
#[tokio::test]
async fn query_strings_and_paths_that_do_not_decode_get_the_json_error() {
    let app = ServerBuilder::new()
        .open_access()
        .build()
        .expect("valid")
        .router();
    assert_eq!(
        call(
            &app,
            post_json("/api/metrics", serde_json::to_vec(&valid()).expect("json"))
        )
        .await
        .0,
        StatusCode::OK
    );
    let cases = [
        (
            "/api/v1/devices/victim/history?metric=cpu_usage&points=1&points=2",
            "query",
            "duplicate field `points`",
        ),
        (
            "/api/v1/devices/victim/export?format=csv&format=json",
            "query",
            "duplicate field `format`",
        ),
        (
            "/api/v1/alerts/history?limit=1&limit=2",
            "query",
            "duplicate field `limit`",
        ),
        ("/api/v1/devices/%FF/metrics", "path", "Invalid UTF-8"),
        (
            "/api/v1/devices/%FF/history?metric=cpu_usage",
            "path",
            "Invalid UTF-8",
        ),
    ];
    for (uri, field, says) in cases {
        let response = tower::ServiceExt::oneshot(app.clone(), get(uri))
            .await
            .expect("router is infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/json",
            "{uri}"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let error = json(&body);
        assert_eq!(error["field"], field, "{uri}: {error}");
        assert!(
            error["error"].as_str().expect("a message").contains(says),
            "{uri}: {error}"
        );
    }
}
