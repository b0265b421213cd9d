//! `GET /api/openapi.json`: it documents every route of the router (the
//! route table the router is built from, and no route beside it), it is a
//! valid OpenAPI 3.1 document, and each path it lists answers on a running
//! server with a status it documents.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::http::{Method, StatusCode, header};
use serde_json::Value;
use tailmon_server::auth::{Access, CSRF_HEADER};
use tailmon_server::{Server, ServerBuilder};

use crate::people::people;
use crate::support::{Running, call, get, json};

/// The one route left out of the document, and why: the dashboard's
/// assets are files (scripts, styles, icons), not an API, and a catch-all
/// segment has no OpenAPI path template.
const LEFT_OUT: &[(Method, &str)] = &[(Method::GET, "/{*path}")];

fn open_server() -> Server {
    ServerBuilder::new().open_access().build().unwrap()
}

async fn document(server: &Server) -> Value {
    let (status, body) = call(&server.router(), get("/api/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    json(&body)
}

fn operation<'a>(doc: &'a Value, method: &Method, path: &str) -> Option<&'a Value> {
    doc["paths"]
        .get(path)?
        .get(method.as_str().to_ascii_lowercase())
}

#[tokio::test]
async fn every_route_of_the_router_is_documented() {
    let server = open_server();
    let doc = document(&server).await;
    let mut missing = Vec::new();
    for route in server.route_table() {
        if LEFT_OUT.contains(&(route.method.clone(), route.path)) {
            assert!(
                doc["paths"].get(route.path).is_none(),
                "{} is left out, yet documented",
                route.path
            );
            continue;
        }
        match operation(&doc, &route.method, route.path) {
            None => missing.push(format!("{} {}", route.method, route.path)),
            Some(op) => {
                // Its access, security and shared errors come from the table.
                let access = serde_json::to_value(route.access).unwrap();
                assert_eq!(
                    op["x-tailmon-access"], access,
                    "{} {}",
                    route.method, route.path
                );
                let security = op["security"].as_array().expect("security listed");
                assert_eq!(
                    security.is_empty(),
                    route.access == Access::Public,
                    "{} {}: {security:?}",
                    route.method,
                    route.path
                );
                if route.access != Access::Public {
                    for status in ["401", "403"] {
                        assert!(
                            op["responses"].get(status).is_some(),
                            "{} {} documents no {status}",
                            route.method,
                            route.path
                        );
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from /api/openapi.json (see api/routes/mod.rs for how to add one): {}",
        missing.join(", ")
    );
}

#[tokio::test]
async fn every_documented_operation_is_a_route() {
    let server = open_server();
    let doc = document(&server).await;
    let table: BTreeSet<(String, String)> = server
        .route_table()
        .into_iter()
        .map(|r| (r.method.as_str().to_ascii_lowercase(), r.path.to_owned()))
        .collect();
    let mut stale = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if !table.contains(&(method.clone(), path.clone())) {
                stale.push(format!("{method} {path}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "documented but not routed: {}",
        stale.join(", ")
    );
}

/// Every `.route(` of the server's sources: the router is built from the
/// route table alone, plus the JSON 404 of unknown API paths.
#[test]
fn no_route_bypasses_the_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
                if code.contains(call) {
                    let name = file.strip_prefix(&src).unwrap().display().to_string();
                    found.push(format!("{name}: {}", code.trim()));
                    let _ = number;
                }
            }
        }
    }
    assert_eq!(
        found,
        [
            "server.rs: router = router.route(path, guarded);",
            "server.rs: .route(\"/api/{*rest}\", axum::routing::any(not_found))",
        ],
        "a route outside the route table (Server::routes) escapes the OpenAPI test"
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let doc = document(&open_server()).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "tailmon_session");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["csrf"]["name"], CSRF_HEADER);
    // Every reference points at something the document holds.
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(refs.len() > 50, "{} references", refs.len());
    for reference in refs {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "{reference} points nowhere");
    }
    // The real types: a report's fields, the error body, a history point.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ErrorBody"]["required"],
        serde_json::json!(["error"])
    );
    for field in ["device_id", "cpu_usage", "last_seen", "disks", "custom"] {
        assert!(
            schemas["Report"]["properties"].get(field).is_some(),
            "{field}"
        );
    }
    assert_eq!(schemas["Point"]["prefixItems"].as_array().unwrap().len(), 4);
    let devices = operation(&doc, &Method::GET, "/api/v1/devices").unwrap();
    let params: BTreeSet<&str> = devices["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        BTreeSet::from(["status", "q", "sort", "order", "limit", "offset"])
    );

    // And the OpenAPI 3.1 schema itself says so.
    let validator = std::process::Command::new("python3")
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !validator {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have openapi-spec-validator (pip install openapi-spec-validator; .ci/run installs it)"
        );
        eprintln!("skipping the validator: pip install openapi-spec-validator");
        return;
    }
    let file = std::env::temp_dir().join(format!("tailmon-openapi-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => out.push(reference),
                    _ => references(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Each documented operation, called on a real server with made-up path
/// parameters (and `{}` as the body where one is taken), answers with a
/// status its operation documents: never the router's "no such route".
#[tokio::test]
async fn each_documented_path_answers_on_a_running_server() {
    let server = open_server();
    let doc = document(&server).await;
    let running = Running::start(server).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut wrong = Vec::new();
    let mut calls = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "no-such-thing"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_ascii_uppercase().parse().unwrap();
            let mut request =
                client.request(method.clone(), format!("{}{concrete}", running.url()));
            if op.get("requestBody").is_some() {
                request = request
                    .header(header::CONTENT_TYPE, "application/json")
                    .body("{}");
            }
            let response = request.send().await.unwrap();
            calls += 1;
            let status = response.status();
            let no_such_route = status == StatusCode::NOT_FOUND
                && path.starts_with("/api/")
                && response
                    .json::<Value>()
                    .await
                    .is_ok_and(|body| body["error"] == "no such route");
            if no_such_route || op["responses"].get(status.as_str()).is_none() {
                wrong.push(format!("{method} {concrete}: {status}"));
            }
        }
    }
    assert!(calls > 40, "{calls} calls");
    assert!(
        wrong.is_empty(),
        "answers the document does not list: {}",
        wrong.join(", ")
    );
}

#[tokio::test]
async fn served_public_with_an_etag() {
    // Signed in or not, under --auth required.
    let server = ServerBuilder::new().credentials(people()).build().unwrap();
    let router = server.router();
    let response = tower::ServiceExt::oneshot(router.clone(), get("/api/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let etag = response.headers()[header::ETAG].clone();
    let again = axum::http::Request::get("/api/openapi.json")
        .header(header::IF_NONE_MATCH, etag.clone())
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, body) = call(&router, again).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    // Built once: the same bytes, the same tag, from every router of the server.
    let (_, first) = call(&router, get("/api/openapi.json")).await;
    let (_, second) = call(&server.router(), get("/api/openapi.json")).await;
    assert_eq!(first, second);
    // Nothing of this server's is in it: no user name.
    let text = String::from_utf8(first).unwrap();
    assert!(!text.contains("\"root\"") && !text.contains("\"ann\""));
}

/// Found by schemathesis's `response_schema_conformance`: a type that
/// flattens a closed one (a listed token, a created token, a rule with its
/// source) was an `allOf` with a `$ref` to a schema with
/// `additionalProperties: false`, which refused the added fields, so no
/// answer matched; and `GET /api/all_metrics` was documented as device
/// summaries (with `status`) while it answers the reports as sent.
#[tokio::test]
async fn answers_that_add_fields_to_a_closed_type_are_not_refused_by_it() {
    let doc = document(&open_server()).await;
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let closed: BTreeSet<String> = schemas
        .iter()
        .filter(|(_, schema)| schema["additionalProperties"] == Value::Bool(false))
        .map(|(name, _)| format!("#/components/schemas/{name}"))
        .collect();
    assert!(
        closed.contains("#/components/schemas/TokenInfo"),
        "{closed:?}"
    );
    for name in ["ListedToken", "CreatedTokenBody", "RuleView"] {
        let parts = schemas[name]["allOf"].as_array().expect("an allOf");
        for part in parts {
            let reference = part["$ref"].as_str().unwrap_or_default();
            assert!(
                !closed.contains(reference),
                "{name} refers to closed {reference}"
            );
            assert_ne!(part["additionalProperties"], Value::Bool(false), "{name}");
        }
    }
    // The request bodies stay closed where they stand alone.
    assert_eq!(
        schemas["RuleConfig"]["additionalProperties"],
        Value::Bool(false)
    );
    let all_metrics = operation(&doc, &Method::GET, "/api/all_metrics").expect("documented");
    assert_eq!(
        all_metrics["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/Report"
    );
}
