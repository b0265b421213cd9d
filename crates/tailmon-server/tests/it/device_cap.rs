//! The device cap: new ids beyond it get 429 while known devices keep reporting.

use axum::http::{StatusCode, header};
use tailmon_server::ServerBuilder;
use tower::ServiceExt;

use crate::support::{call, get, json, post_json, report};

fn body(id: &str) -> Vec<u8> {
    serde_json::to_vec(&report(id, 1.0, 1)).expect("json")
}

#[tokio::test]
async fn new_devices_beyond_the_cap_are_refused_known_ones_still_accepted() {
    let app = ServerBuilder::new()
        .open_access()
        .max_devices(2)
        .build()
        .expect("valid")
        .router();
    assert_eq!(
        call(&app, post_json("/api/metrics", body("a"))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, post_json("/api/metrics", body("b"))).await.0,
        StatusCode::OK
    );

    let response = app
        .clone()
        .oneshot(post_json("/api/metrics", body("c")))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));

    for _ in 0..3 {
        assert_eq!(
            call(&app, post_json("/api/metrics", body("a"))).await.0,
            StatusCode::OK
        );
    }
    let (status, error) = call(&app, post_json("/api/metrics", body("d"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        json(&error)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("device limit")
    );

    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    let ids: Vec<&str> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["device_id"].as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
}

#[tokio::test]
async fn a_flood_of_concurrent_new_ids_never_passes_the_cap() {
    let app = ServerBuilder::new()
        .open_access()
        .max_devices(10)
        .build()
        .expect("valid")
        .router();
    let mut tasks = Vec::new();
    for n in 0..200 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            call(&app, post_json("/api/metrics", body(&format!("flood-{n}"))))
                .await
                .0
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        let status = task.await.expect("task");
        assert!(
            status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        accepted += usize::from(status == StatusCode::OK);
    }
    assert_eq!(accepted, 10);
    let all = json(&call(&app, get("/api/all_metrics")).await.1);
    assert_eq!(all.as_array().expect("array").len(), 10);
}

#[tokio::test]
async fn in_process_ingest_says_which_refusals_are_worth_retrying() {
    let server = ServerBuilder::new()
        .open_access()
        .max_devices(1)
        .build()
        .expect("valid");
    let ingest = server.ingest();
    ingest
        .ingest(report("first", 1.0, 1))
        .await
        .expect("room for one");
    let over_cap = ingest
        .ingest(report("second", 1.0, 1))
        .await
        .expect_err("over the cap");
    assert!(
        matches!(
            over_cap,
            tailmon_server::IngestError::TooManyDevices { cap: 1 }
        ),
        "{over_cap:?}"
    );
    assert!(over_cap.is_retryable());
    let mut invalid = report("first", 1.0, 1);
    invalid.cpu_usage = f64::NAN;
    let invalid = ingest.ingest(invalid).await.expect_err("NaN is refused");
    assert!(
        matches!(invalid, tailmon_server::IngestError::Invalid(_)),
        "{invalid:?}"
    );
    assert!(!invalid.is_retryable());
}
