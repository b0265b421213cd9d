//! The alerting API: alerts and history, acknowledgements, silences, rules
//! and channels, with their checks (bad bodies get 400 naming the field,
//! read-only rules 409) and a channel test against a real receiver.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tailmon_server::alerts::{AlertsConfig, NamedChannel, RuleConfig};
use tailmon_server::{ConfigFile, ServerBuilder};

use crate::support::{call, get, json};

fn send(method: Method, path: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn answer(router: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let (status, body) = call(router, request).await;
    let value = if body.is_empty() {
        Value::Null
    } else {
        json(&body)
    };
    (status, value)
}

/// An open server with the file of the README's example.
fn router_with_file() -> (tailmon_server::Server, Router) {
    let file = ConfigFile::from_toml(
        r#"
[alerts]
repeat = "2h"

[[alerts.rules]]
name = "cpu-high"
metric = "cpu_usage"
op = ">"
threshold = 80
for = "1m"
severity = "critical"
channels = ["ops"]

[[alerts.channels]]
name = "ops"
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "s3cret"
"#,
    )
    .unwrap();
    let server = ServerBuilder::new()
        .open_access()
        .alerts(file.alerts)
        .build()
        .unwrap();
    let router = server.router();
    (server, router)
}

#[tokio::test]
async fn rules_list_their_source_and_only_dashboard_rules_change() {
    let (_server, router) = router_with_file();
    let (status, rules) = answer(&router, get("/api/v1/alert-rules")).await;
    assert_eq!(status, StatusCode::OK);
    let source = |name: &str| {
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["source"].clone())
    };
    assert_eq!(source("cpu-high"), Some(json!("file")));
    assert_eq!(source("offline"), Some(json!("default")));
    assert_eq!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "cpu-high")
            .unwrap()["for"],
        "1m"
    );

    // Bad bodies: 400 naming the field; nothing made.
    for (body, field) in [
        (
            json!({"name": "x", "metric": "cpu_usage", "op": ">", "threshold": 1, "colour": "red"}),
            "colour",
        ),
        (
            json!({"name": "x", "metric": "cpu_usage", "op": "=>", "threshold": 1}),
            "op",
        ),
        (
            json!({"name": "x", "metric": "cpu_usage", "op": ">"}),
            "threshold",
        ),
        (
            json!({"name": "x", "metric": "cpu_usag", "op": ">", "threshold": 1}),
            "metric",
        ),
        (
            json!({"name": "x", "metric": "cpu_usage", "op": ">", "threshold": 1, "for": "soon"}),
            "for",
        ),
        (
            json!({"name": "x", "metric": "cpu_usage", "op": ">", "threshold": 1, "channels": ["nope"]}),
            "channels",
        ),
        (
            json!({"name": "a b", "metric": "cpu_usage", "op": ">", "threshold": 1}),
            "name",
        ),
        (
            json!({"name": "x", "kind": "offline", "threshold": 1}),
            "threshold",
        ),
        (
            json!({"name": "x", "kind": "disk_full", "window": "1m"}),
            "window",
        ),
    ] {
        let (status, error) = answer(
            &router,
            send(Method::POST, "/api/v1/alert-rules", body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(error["error"].is_string());
    }
    let (_, after) = answer(&router, get("/api/v1/alert-rules")).await;
    assert_eq!(after, rules, "nothing changed");

    // A dashboard rule: made, replaced, removed.
    let rule = json!({"name": "load", "metric": "load_one", "op": ">", "threshold": 8, "channels": ["ops"]});
    let (status, made) = answer(
        &router,
        send(Method::POST, "/api/v1/alert-rules", rule.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["source"], "dashboard");
    let (status, _) = answer(&router, send(Method::POST, "/api/v1/alert-rules", rule)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let changed = json!({"name": "load", "metric": "load_five", "op": ">=", "threshold": 6});
    let (status, body) = answer(
        &router,
        send(Method::PUT, "/api/v1/alert-rules/load", changed),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["metric"], "load_five");
    // File and default rules are read-only.
    for name in ["cpu-high", "offline"] {
        let body = json!({"name": name, "kind": "offline"});
        let (status, error) = answer(
            &router,
            send(Method::PUT, &format!("/api/v1/alert-rules/{name}"), body),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{error}");
        let request = Request::delete(format!("/api/v1/alert-rules/{name}"))
            .body(Body::empty())
            .unwrap();
        let (status, error) = answer(&router, request).await;
        assert_eq!(status, StatusCode::CONFLICT, "{error}");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("configuration file")
        );
    }
    let request = Request::delete("/api/v1/alert-rules/load")
        .body(Body::empty())
        .unwrap();
    assert_eq!(answer(&router, request).await.0, StatusCode::NO_CONTENT);
    let request = Request::delete("/api/v1/alert-rules/load")
        .body(Body::empty())
        .unwrap();
    assert_eq!(answer(&router, request).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn silences_are_checked_listed_and_removed() {
    let (_server, router) = router_with_file();
    for (body, field) in [
        (
            json!({"rule": "cpu-high", "until": "2001-01-01T00:00:00Z"}),
            "until",
        ),
        (json!({"rule": "cpu-high", "until": "tomorrow"}), "until"),
        (json!({"rule": "cpu-high"}), "until"),
        (json!({"until": "2999-01-01T00:00:00Z", "why": "x"}), "why"),
    ] {
        let (status, error) = answer(
            &router,
            send(Method::POST, "/api/v1/silences", body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["field"], field, "{body}: {error}");
    }
    let body =
        json!({"device": "web-*", "until": "2999-01-01T00:00:00Z", "comment": "moving racks"});
    let (status, made) = answer(&router, send(Method::POST, "/api/v1/silences", body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["created_by"], "open access");
    let (_, list) = answer(&router, get("/api/v1/silences")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["comment"], "moving racks");
    let path = format!("/api/v1/silences/{}", made["id"].as_str().unwrap());
    let request = Request::delete(&path).body(Body::empty()).unwrap();
    assert_eq!(answer(&router, request).await.0, StatusCode::NO_CONTENT);
    let (_, list) = answer(&router, get("/api/v1/silences")).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn alerts_history_and_acks_answer_json() {
    let (server, router) = router_with_file();
    let (status, list) = answer(&router, get("/api/v1/alerts")).await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));
    for query in ["limit=0", "limit=1001", "limit=x", "before=yesterday"] {
        let (status, error) =
            answer(&router, get(&format!("/api/v1/alerts/history?{query}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error["field"], query.split('=').next().unwrap());
    }
    let (status, error) = answer(
        &router,
        send(Method::POST, "/api/v1/alerts/nope/ack", json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");

    server
        .alerts()
        .observe(&crate::support::report("web-1", 95.0, 1));
    let (_, list) = answer(&router, get("/api/v1/alerts")).await;
    let alert = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "cpu-high")
        .unwrap()
        .clone();
    assert_eq!(alert["state"], "pending");
    assert_eq!(alert["op"], ">");
    assert_eq!(
        (alert["value"].clone(), alert["threshold"].clone()),
        (json!(95.0), json!(80.0))
    );
    let path = format!("/api/v1/alerts/{}/ack", alert["id"].as_str().unwrap());
    let (status, acked) = answer(&router, send(Method::POST, &path, json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledged_by"], "open access");
    let (status, history) = answer(&router, get("/api/v1/alerts/history?limit=5")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(history.is_array());
}

/// A receiver on 127.0.0.1 that records every body.
async fn receiver(status: StatusCode) -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

/// A receiver that answers 200 only to bodies signed with `secret`.
async fn signature_checker(secret: &'static str) -> (String, Arc<Mutex<usize>>) {
    let good = Arc::new(Mutex::new(0));
    let keep = good.clone();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let keep = keep.clone();
                async move {
                    let expected =
                        tailmon_server::alerts::channels::webhook::signature(secret, &body)
                            .unwrap();
                    let sent = headers
                        .get("x-tailmon-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    if sent == expected {
                        *keep.lock().unwrap() += 1;
                        StatusCode::OK
                    } else {
                        StatusCode::UNAUTHORIZED
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), good)
}

#[tokio::test]
async fn channels_are_redacted_checked_and_tested_against_a_receiver() {
    let (_server, router) = router_with_file();
    let (status, list) = answer(&router, get("/api/v1/alert-channels")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "ops");
    assert_eq!(list[0]["source"], "file");
    assert_eq!(list[0]["type"], "webhook");
    assert_ne!(list[0]["secret"], "s3cret");
    assert!(!list.to_string().contains("s3cret"));

    for (body, field) in [
        (
            json!({"name": "x", "type": "pigeon", "url": "http://a/"}),
            "type",
        ),
        (
            json!({"name": "x", "type": "webhook", "url": "not a url"}),
            "type",
        ),
        (
            json!({"name": "x y", "type": "webhook", "url": "http://a/"}),
            "name",
        ),
    ] {
        let (status, error) = answer(
            &router,
            send(Method::POST, "/api/v1/alert-channels", body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(error["error"].is_string(), "{error}");
        if field != "type" {
            assert_eq!(error["field"], field, "{body}: {error}");
        }
    }

    let (url, got) = receiver(StatusCode::OK).await;
    let body = json!({"name": "hook", "type": "webhook", "url": url});
    let (status, made) = answer(&router, send(Method::POST, "/api/v1/alert-channels", body)).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["source"], "dashboard");
    let (status, ok) = answer(
        &router,
        send(Method::POST, "/api/v1/alert-channels/hook/test", json!({})),
    )
    .await;
    assert_eq!((status, ok), (StatusCode::OK, json!({"ok": true})));
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["kind"], "test");

    // A receiver that refuses: 502 with the error.
    let (refusing, _) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let body = json!({"name": "hook", "type": "webhook", "url": refusing});
    let (status, _) = answer(
        &router,
        send(Method::PUT, "/api/v1/alert-channels/hook", body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = answer(
        &router,
        send(Method::POST, "/api/v1/alert-channels/hook/test", json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{error}");
    assert!(error["error"].as_str().unwrap().contains("503"), "{error}");

    // Saved back as listed (secret redacted), the stored secret is kept:
    // the receiver checks the signature made with it.
    let (signed_url, signed_got) = signature_checker("first").await;
    let body = json!({"name": "signed", "type": "webhook", "url": signed_url, "secret": "first"});
    assert_eq!(
        answer(&router, send(Method::POST, "/api/v1/alert-channels", body))
            .await
            .0,
        StatusCode::CREATED
    );
    let (_, list) = answer(&router, get("/api/v1/alert-channels")).await;
    let mut listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "signed")
        .unwrap()
        .clone();
    assert_ne!(listed["secret"], "first");
    listed
        .as_object_mut()
        .unwrap()
        .retain(|k, _| !matches!(k.as_str(), "source" | "delivery"));
    let (status, body) = answer(
        &router,
        send(Method::PUT, "/api/v1/alert-channels/signed", listed),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = answer(
        &router,
        send(
            Method::POST,
            "/api/v1/alert-channels/signed/test",
            json!({}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(*signed_got.lock().unwrap(), 1);

    // The file's channel is read-only; a channel a rule uses cannot go.
    let request = Request::delete("/api/v1/alert-channels/ops")
        .body(Body::empty())
        .unwrap();
    assert_eq!(answer(&router, request).await.0, StatusCode::CONFLICT);
    let rule = json!({"name": "uses-hook", "kind": "offline", "channels": ["hook"]});
    assert_eq!(
        answer(&router, send(Method::POST, "/api/v1/alert-rules", rule))
            .await
            .0,
        StatusCode::CREATED
    );
    let request = Request::delete("/api/v1/alert-channels/hook")
        .body(Body::empty())
        .unwrap();
    assert_eq!(answer(&router, request).await.0, StatusCode::CONFLICT);
}

#[test]
fn the_config_types_are_what_the_file_says() {
    let config = AlertsConfig::default();
    assert!(config.default_rules);
    assert_eq!(config.repeat, std::time::Duration::from_secs(4 * 3600));
    let _: Option<NamedChannel> = None;
    let _: Option<RuleConfig> = None;
}

#[test]
fn the_readme_configuration_example_is_accepted() {
    let readme = include_str!("../../../../README.md");
    let (_, section) = readme
        .split_once("### Configuration file")
        .expect("the README has the section");
    let (_, from_fence) = section.split_once("```toml\n").expect("a TOML example");
    let (example, _) = from_fence.split_once("```").expect("closed");
    let file = ConfigFile::from_toml(example).unwrap();
    assert!(file.alerts.default_rules);
    assert_eq!(file.alerts.rules.len(), 2);
    assert_eq!(file.alerts.channels.len(), 2);
    ServerBuilder::new().alerts(file.alerts).build().unwrap();
}

#[tokio::test]
async fn a_rule_test_answers_which_devices_match_and_changes_nothing() {
    use crate::people::{self, ADMIN_PASSWORD, VIEWER_PASSWORD, as_session, json_request};
    let ops = crate::alert_support::Recorder::new();
    let server = ServerBuilder::new()
        .credentials(people::people())
        .alerts(AlertsConfig {
            default_rules: false,
            ..AlertsConfig::default()
        })
        .alert_channel("ops", ops.clone())
        .build()
        .unwrap();
    let router = server.router();
    for (device, cpu) in [("web-1", 95.0), ("web-2", 10.0)] {
        server
            .ingest()
            .ingest(crate::support::report(device, cpu, 1000))
            .await
            .unwrap();
    }
    let root = people::login(&router, "root", ADMIN_PASSWORD).await;
    let dry_run = |body: Value| {
        as_session(
            json_request(Method::POST, "/api/v1/alert-rules/test", Some(body)),
            &root,
        )
    };
    let rule = json!({"name": "cpu-hot", "metric": "cpu_usage", "op": ">", "threshold": 80,
                      "for": "10m", "channels": ["ops"]});
    let (status, run) = answer(&router, dry_run(rule.clone())).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        run,
        json!({"rule": "cpu-hot", "devices_checked": 2, "matches": [
            {"device_id": "web-1", "metric": "cpu_usage", "value": 95.0, "holds": true},
            {"device_id": "web-2", "metric": "cpu_usage", "value": 10.0, "holds": false},
        ]}),
        "`for` is not waited for"
    );
    let (_, run) = answer(
        &router,
        dry_run(json!({"name": "gone", "kind": "offline", "devices": "web-2"})),
    )
    .await;
    assert_eq!(
        (
            run["devices_checked"].clone(),
            run["matches"][0]["status"].clone()
        ),
        (json!(1), json!("online")),
        "{run}"
    );
    for (bad, field) in [
        (
            json!({"name": "x", "metric": "cpu_usag", "op": ">", "threshold": 1}),
            "metric",
        ),
        (
            json!({"name": "x", "kind": "offline", "channels": ["nobody"]}),
            "channels",
        ),
    ] {
        let (status, error) = answer(&router, dry_run(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
        assert_eq!(error["field"], field, "{error}");
    }
    // Nothing stored, no alert, nobody told.
    let (_, rules) = answer(&router, as_session(get("/api/v1/alert-rules"), &root)).await;
    assert_eq!(rules, json!([]));
    assert!(server.alerts().alerts().is_empty());
    let delivery = server.alerts().stats().delivery;
    assert_eq!((delivery.sent, delivery.pending), (0, 0));
    assert!(ops.sent().is_empty());
    // Admins only.
    let ann = people::login(&router, "ann", VIEWER_PASSWORD).await;
    let request = as_session(
        json_request(Method::POST, "/api/v1/alert-rules/test", Some(rule)),
        &ann,
    );
    let (status, _) = answer(&router, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_rule_named_test_stays_editable() {
    let (_server, router) = router_with_file();
    let rule = json!({"name": "test", "kind": "offline"});
    let (status, _) = answer(&router, send(Method::POST, "/api/v1/alert-rules", rule)).await;
    assert_eq!(status, StatusCode::CREATED);
    let changed = json!({"name": "test", "kind": "offline", "for": "5m"});
    let (status, body) = answer(
        &router,
        send(Method::PUT, "/api/v1/alert-rules/test", changed),
    )
    .await;
    assert_eq!((status, body["for"].clone()), (StatusCode::OK, json!("5m")));
    let request = Request::delete("/api/v1/alert-rules/test")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&router, request).await.0, StatusCode::NO_CONTENT);
}
