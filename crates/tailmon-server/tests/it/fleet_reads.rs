//! Fleet reads through the router: the cached, compressed `/api/all_metrics`
//! and `/api/v1/devices` (ETag, 304), the device list's filters and pages,
//! statuses over time, duplicate agents, `/metrics` and `/histories`.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;
use tailmon_server::store::OrgId;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::{ManualClock, MemoryStore, ServerBuilder, Store};
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

fn at(device: &str, secs: i64, cpu: f64) -> Report {
    let mut r = report(device, cpu, 100);
    r.last_seen = start() + time::Duration::seconds(secs);
    r
}

async fn post(app: &Router, reports: &[Report]) {
    let (status, body) = call(
        app,
        post_json("/api/v1/reports", serde_json::to_vec(reports).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json(&body)["accepted"], reports.len());
}

/// A GET with headers; the status, the headers and the raw body.
async fn fetch(
    app: &Router,
    path: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body.to_vec())
}

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        other => panic!("no decoder for {other}"),
    }
    out
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn both_lists_are_compressed_as_accepted_with_etags_and_304() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    let reports: Vec<Report> = (0..50)
        .map(|i| at(&format!("web-{i:02}"), 0, 10.0))
        .collect();
    post(&app, &reports).await;
    for path in ["/api/all_metrics", "/api/v1/devices"] {
        let (status, plain_headers, plain) = fetch(&app, path, &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(plain_headers[header::VARY], "accept-encoding");
        assert!(plain_headers.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(json(&plain).as_array().unwrap().len(), 50);
        let mut etags = vec![plain_headers[header::ETAG].clone()];
        for (accept, expected) in [
            ("gzip", "gzip"),
            ("gzip, br", "br"),
            ("br;q=0.5, gzip", "gzip"),
        ] {
            let (status, headers, body) =
                fetch(&app, path, &[(header::ACCEPT_ENCODING, accept)]).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers[header::CONTENT_ENCODING], expected, "{accept}");
            assert_eq!(headers[header::VARY], "accept-encoding");
            assert!(body.len() < plain.len() / 3, "{accept}: compressed");
            assert_eq!(decode(expected, &body), plain, "{path} {accept}");
            let etag = headers[header::ETAG].clone();
            assert!(etag.to_str().unwrap().starts_with('"'), "a strong ETag");
            if !etags.contains(&etag) {
                etags.push(etag.clone());
            }
            // The same form again, conditionally: 304, no body.
            let (status, again, body) = fetch(
                &app,
                path,
                &[
                    (header::ACCEPT_ENCODING, accept),
                    (header::IF_NONE_MATCH, etag.to_str().unwrap()),
                ],
            )
            .await;
            assert_eq!(status, StatusCode::NOT_MODIFIED);
            assert!(body.is_empty());
            assert_eq!(again[header::ETAG], etag);
        }
        assert_eq!(etags.len(), 3, "each encoding has its own ETag");
        // gzip refused with q=0: not gzip.
        let (_, headers, body) = fetch(&app, path, &[(header::ACCEPT_ENCODING, "gzip;q=0")]).await;
        assert!(headers.get(header::CONTENT_ENCODING).is_none());
        assert_eq!(body, plain);
        #[cfg(feature = "sqlite")]
        {
            let (_, headers, body) = fetch(&app, path, &[(header::ACCEPT_ENCODING, "zstd")]).await;
            assert_eq!(headers[header::CONTENT_ENCODING], "zstd");
            assert_eq!(zstd::decode_all(&body[..]).unwrap(), plain);
        }
    }
    // A change makes a new ETag: the old one gets the new body.
    let (_, before, _) = fetch(&app, "/api/all_metrics", &[]).await;
    post(&app, &[at("web-00", 1, 20.0)]).await;
    let (status, after, body) = fetch(
        &app,
        "/api/all_metrics",
        &[(
            header::IF_NONE_MATCH,
            before[header::ETAG].to_str().unwrap(),
        )],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(after[header::ETAG], before[header::ETAG]);
    assert_eq!(json(&body)[0]["cpu_usage"], 20.0);
}

#[tokio::test]
async fn the_device_list_filters_sorts_and_pages() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    // a: offline (reported long ago); b ok; c critical; d warning; web-E ok.
    post(&app, &[at("a", 0, 10.0)]).await;
    clock.advance(Duration::from_secs(60));
    post(
        &app,
        &[
            at("b", 60, 5.0),
            at("c", 60, 95.0),
            at("d", 60, 65.0),
            at("web-E", 60, 30.0),
        ],
    )
    .await;
    let list = |query: &'static str| {
        let app = app.clone();
        async move {
            let (status, headers, body) = fetch(&app, query, &[]).await;
            assert_eq!(status, StatusCode::OK, "{query}");
            let total: usize = headers["x-total-count"].to_str().unwrap().parse().unwrap();
            (total, json(&body))
        }
    };
    let (total, all) = list("/api/v1/devices").await;
    assert_eq!(total, 5);
    assert_eq!(ids(&all), ["a", "b", "c", "d", "web-E"]);
    assert_eq!(all[0]["status"], "offline");
    assert_eq!(all[0]["offline_since"], "2027-01-15T08:00:00Z");
    assert!(all[1].get("offline_since").is_none());
    let (total, some) = list("/api/v1/devices?status=ok,offline").await;
    assert_eq!((total, ids(&some)), (3, vec!["a", "b", "web-E"]));
    let (_, some) = list("/api/v1/devices?q=WEB").await;
    assert_eq!(ids(&some), ["web-E"]);
    let (_, some) = list("/api/v1/devices?sort=cpu&order=desc").await;
    assert_eq!(ids(&some), ["c", "d", "web-E", "a", "b"]);
    let (_, some) = list("/api/v1/devices?sort=status&order=desc").await;
    assert_eq!(ids(&some), ["c", "d", "web-E", "b", "a"]);
    let (_, some) = list("/api/v1/devices?sort=last_seen&order=asc").await;
    assert_eq!(ids(&some)[0], "a");
    let (total, page) = list("/api/v1/devices?sort=name&order=desc&limit=2&offset=1").await;
    assert_eq!((total, ids(&page)), (5, vec!["d", "c"]));
    let (total, page) = list("/api/v1/devices?limit=2&offset=10").await;
    assert_eq!((total, ids(&page)), (5, vec![]));
    for (query, field) in [
        ("status=sleepy", "status"),
        ("sort=colour", "sort"),
        ("order=up", "order"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("offset=-3", "offset"),
        ("colour=red", "query"),
    ] {
        let (status, body) = call(&app, get(&format!("/api/v1/devices?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(json(&body)["field"], field, "{query}");
    }
}

#[tokio::test]
async fn a_device_goes_offline_with_time_and_a_back_fill_does_not_replace_its_latest() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    post(&app, &[at("a", 0, 95.0)]).await;
    let status = |app: Router| async move {
        let (_, body) = call(&app, get("/api/v1/devices")).await;
        json(&body)[0].clone()
    };
    assert_eq!(status(app.clone()).await["status"], "critical");
    clock.advance(Duration::from_secs(15));
    assert_eq!(status(app.clone()).await["status"], "critical");
    clock.advance(Duration::from_secs(1));
    let gone = status(app.clone()).await;
    assert_eq!(gone["status"], "offline");
    assert_eq!(gone["offline_since"], "2027-01-15T08:00:00Z");
    // An older report arriving late is history, not the latest.
    post(&app, &[at("a", -30, 10.0)]).await;
    let (_, body) = call(&app, get("/api/all_metrics")).await;
    assert_eq!(json(&body)[0]["cpu_usage"], 95.0);
    // A new one brings it back.
    post(&app, &[at("a", 16, 10.0)]).await;
    let back = status(app.clone()).await;
    assert_eq!(back["status"], "ok");
    assert!(back.get("offline_since").is_none());
    // Deleted: gone from both lists.
    let (code, _) = call(
        &app,
        Request::delete("/api/v1/devices/a")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (_, body) = call(&app, get("/api/all_metrics")).await;
    assert_eq!(json(&body), serde_json::json!([]));
    let (_, body) = call(&app, get("/api/v1/devices")).await;
    assert_eq!(json(&body), serde_json::json!([]));
}

#[tokio::test]
async fn the_lists_start_from_what_the_store_already_holds() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut stored = at("kept", 0, 10.0);
    stored.received_at = Some(start());
    store.insert(&OrgId::default(), stored).await.unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let app = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(store)
        .build()
        .unwrap()
        .router();
    let (_, body) = call(&app, get("/api/v1/devices")).await;
    assert_eq!(ids(&json(&body)), ["kept"]);
}

/// Posts one report of `device` from agent `instance`, `secs` after the start.
async fn from_agent(app: &Router, clock: &ManualClock, instance: &str, secs: i64) {
    clock.set(start() + time::Duration::seconds(secs));
    let mut r = at("shared", secs, 10.0);
    r.agent_instance = Some(instance.into());
    let (status, body) = call(
        app,
        post_json("/api/metrics", serde_json::to_vec(&r).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn two_agents_interleaving_under_one_id_are_marked_a_restart_is_not() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    for (secs, instance) in [(0, "a1"), (5, "a1"), (10, "b2"), (15, "b2")] {
        from_agent(&app, &clock, instance, secs).await;
    }
    let (_, body) = call(&app, get("/api/v1/devices")).await;
    let device = &json(&body)[0];
    assert!(
        device.get("id_conflict_at").is_none(),
        "a restart: {device}"
    );
    assert!(
        device.get("agent_instance").is_none(),
        "taken out: {device}"
    );
    let (_, body) = call(&app, get("/api/all_metrics")).await;
    assert!(json(&body)[0].get("agent_instance").is_none());

    // Now a second agent under the same id: b2, a1, b2, a1...
    from_agent(&app, &clock, "a1", 20).await;
    from_agent(&app, &clock, "b2", 21).await;
    let (_, body) = call(&app, get("/api/v1/devices")).await;
    let device = &json(&body)[0];
    assert_eq!(device["id_conflict_at"], "2027-01-15T08:00:21Z", "{device}");
    // Kept for ten minutes, then forgotten.
    clock.set(start() + time::Duration::seconds(21 + 600));
    let (_, body) = call(&app, get("/api/v1/devices")).await;
    assert!(json(&body)[0]["id_conflict_at"].is_string());
    clock.set(start() + time::Duration::seconds(21 + 601));
    let (_, body) = call(&app, get("/api/v1/devices")).await;
    assert!(json(&body)[0].get("id_conflict_at").is_none());
}

#[tokio::test]
async fn a_bad_agent_instance_is_refused() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    let mut r = at("x", 0, 1.0);
    r.agent_instance = Some("not valid!".into());
    let (status, body) = call(
        &app,
        post_json("/api/metrics", serde_json::to_vec(&r).unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json(&body)["field"], "agent_instance");
}

#[tokio::test]
async fn metrics_lists_a_devices_names_and_histories_answers_them_in_order() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    let mut r = at("m", 0, 40.0);
    r.cpu_per_core = Some(vec![30.0, 50.0]);
    post(&app, &[r.clone()]).await;
    clock.advance(Duration::from_secs(5));
    let mut r2 = at("m", 5, 60.0);
    r2.cpu_per_core = Some(vec![70.0, 50.0]);
    post(&app, &[r2.clone()]).await;

    let (status, body) = call(&app, get("/api/v1/devices/m/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let mut expected = Vec::new();
    tailmon_core::metric::for_each(&r2, |name, _| expected.push(name.to_owned()));
    assert_eq!(
        json(&body),
        serde_json::json!({"device_id": "m", "metrics": expected})
    );
    assert!(expected.contains(&"cpu_core:1".to_owned()));

    let (status, body) = call(
        &app,
        get("/api/v1/devices/m/histories?metric=cpu_core:0&metric=cpu_usage&from=1799999000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let histories = json(&body);
    let one = |i: usize| {
        let (_, single) = (i, &histories[i]);
        single.clone()
    };
    assert_eq!(histories.as_array().unwrap().len(), 2);
    assert_eq!(one(0)["metric"], "cpu_core:0");
    assert_eq!(one(1)["metric"], "cpu_usage");
    // Each is what /history answers alone.
    let (_, alone) = call(
        &app,
        get("/api/v1/devices/m/history?metric=cpu_usage&from=1799999000"),
    )
    .await;
    assert_eq!(one(1), json(&alone));

    for (path, status, field) in [
        (
            "/api/v1/devices/nope/metrics",
            StatusCode::NOT_FOUND,
            "device_id",
        ),
        (
            "/api/v1/devices/nope/histories?metric=cpu_usage",
            StatusCode::NOT_FOUND,
            "device_id",
        ),
        (
            "/api/v1/devices/m/histories?metric=cpu_usage&metric=bogus",
            StatusCode::BAD_REQUEST,
            "metric",
        ),
        (
            "/api/v1/devices/m/histories",
            StatusCode::BAD_REQUEST,
            "metric",
        ),
        (
            "/api/v1/devices/m/histories?metric=cpu_usage&points=0",
            StatusCode::BAD_REQUEST,
            "points",
        ),
    ] {
        let (code, body) = call(&app, get(path)).await;
        assert_eq!(code, status, "{path}");
        assert_eq!(json(&body)["field"], field, "{path}");
    }
    let many: String = (0..257).map(|_| "metric=cpu_usage&").collect();
    let (code, _) = call(&app, get(&format!("/api/v1/devices/m/histories?{many}"))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn history_and_export_answers_are_compressed_as_accepted() {
    let clock = Arc::new(ManualClock::new(start()));
    let app = app(&clock);
    let reports: Vec<Report> = (0..120)
        .map(|i| {
            let mut r = at("z", -600 + 5 * i, f64::from((i % 50) as u8));
            r.cpu_per_core = Some(vec![1.5, 2.5]);
            r
        })
        .collect();
    post(&app, &reports).await;
    let range = "from=1799999000&to=1800000000";
    for path in [
        format!("/api/v1/devices/z/histories?metric=cpu_usage&metric=cpu_core:1&{range}"),
        format!("/api/v1/devices/z/history?metric=cpu_usage&{range}"),
        format!("/api/v1/devices/z/export?format=json&{range}"),
        format!("/api/v1/devices/z/export?format=csv&{range}"),
    ] {
        let vary = |headers: &axum::http::HeaderMap| {
            headers.get_all(header::VARY).iter().any(|v| {
                v.to_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .contains("accept-encoding")
            })
        };
        let (status, headers, identity) = fetch(&app, &path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(headers.get(header::CONTENT_ENCODING).is_none(), "{path}");
        assert!(vary(&headers), "{path}: {headers:?}");
        assert!(identity.len() > 1000, "{path}: a body worth compressing");
        if path.contains("format=json") || !path.contains("export") {
            serde_json::from_slice::<Value>(&identity).unwrap();
        }
        for (accept, encoding) in [("gzip", "gzip"), ("br", "br"), ("gzip, br;q=0.1", "gzip")] {
            let (status, headers, body) =
                fetch(&app, &path, &[(header::ACCEPT_ENCODING, accept)]).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                headers[header::CONTENT_ENCODING],
                encoding,
                "{path} {accept}"
            );
            assert!(vary(&headers), "{path}");
            assert!(body.len() < identity.len() / 2, "{path} {accept}");
            assert_eq!(decode(encoding, &body), identity, "{path} {accept}");
            if path.contains("export") {
                // Streamed as it is read: no length known up front.
                assert!(headers.get(header::CONTENT_LENGTH).is_none(), "{path}");
            }
        }
    }
}
