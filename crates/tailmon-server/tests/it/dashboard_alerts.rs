//! The dashboard's alerts (the fleet view's panel and card marks, the
//! device page's section, `alerts.html`) in a real headless Chromium
//! against a real server on 127.0.0.1:0.
//!
//! Two setups:
//! - the real server as it is, whose API has no alert routes yet: every
//!   page must degrade quietly (a 404 from `api/v1/alerts`);
//! - the real server behind a stand-in of the alerts API of
//!   /work/issue16-contract.md (routes the test serves in front of the
//!   server's router, keeping what the page sends), so the page's forms,
//!   acknowledgements and "Send test" are driven end to end in the browser.
//!   When the engine's API lands, these tests move onto it.
//!
//! Every wait polls the page up to a deadline; there are no fixed sleeps.
//! Screenshots go to `target/screenshots/alerts-*.png`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tailmon_core::OffsetDateTime;
use tailmon_server::{ServeOptions, Server, ServerBuilder};
use tailmon_testkit::{Browser, browser_tools};

use crate::support::{Running, report};

/// Console entries that show the page broke: uncaught errors, CSP
/// violations, and anything the dashboard itself logged as a warning or
/// an error. Chromium's own "Failed to load resource" line for an answer
/// the page expects (the 404 of a server without alerts) is left out.
fn broken(entries: &[Value]) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| {
            let message = e["message"].as_str().unwrap_or("");
            let level = e["level"].as_str().unwrap_or("");
            (level == "SEVERE" && !message.contains("Failed to load resource"))
                || message.contains("Content Security Policy")
                || message.contains("Uncaught")
                || message.contains("tailmon:")
        })
        .collect()
}

/// The page scrolls sideways (something is wider than the viewport).
const SCROLLS_SIDEWAYS: &str =
    "return document.documentElement.scrollWidth > document.documentElement.clientWidth";

/// An open-access server (everyone is an admin) with three devices.
async fn server_with_devices() -> Server {
    let server = ServerBuilder::new()
        .open_access()
        .build()
        .expect("valid server");
    for (id, cpu) in [("db-1", 95.0), ("web-1", 20.0), ("cache-1", 10.0)] {
        server
            .ingest()
            .ingest(report(id, cpu, 1000))
            .await
            .expect("valid report");
    }
    server
}

/// Presses `key` (with its Windows virtual key code) through DevTools.
async fn press(browser: &Browser, key: &str, code: u32) {
    for kind in ["rawKeyDown", "keyUp"] {
        browser
            .cdp(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code}),
            )
            .await
            .unwrap_or_else(|e| panic!("pressing {key}: {e}"));
    }
    if key == "Enter" {
        browser
            .cdp(
                "Input.dispatchKeyEvent",
                json!({"type": "char", "key": "Enter", "text": "\r", "windowsVirtualKeyCode": 13}),
            )
            .await
            .unwrap_or_else(|e| panic!("pressing Enter: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_alerts_api_every_page_degrades_quietly() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let running = Running::start(server_with_devices().await).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;

    // The fleet view: no panel, no mark, a link to the alerts page.
    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "the fleet view to learn there are no alerts",
            "return document.body.dataset.loaded === 'true' \
             && document.body.dataset.alerts === 'unavailable'",
        )
        .await;
    let fleet = browser
        .script(
            "return { panel: document.getElementById('alerts-panel').hidden, \
               marks: document.querySelectorAll('.alert-mark, .device-card[data-alerts]').length, \
               nav: document.getElementById('nav-alerts')?.getAttribute('href') }",
        )
        .await
        .unwrap();
    assert_eq!(
        fleet,
        json!({"panel": true, "marks": 0, "nav": "alerts.html"})
    );
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");

    // The device page: its alerts section stays hidden.
    browser.goto(&format!("{site}/device.html?id=db-1")).await;
    browser
        .wait_for(
            "the device page to learn there are no alerts",
            "const s = document.getElementById('device-alerts'); \
             return s && s.dataset.count === 'unavailable' && s.hidden",
        )
        .await;
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");

    // The alerts page: one quiet note, no tabs, no error.
    browser.goto(&format!("{site}/alerts.html")).await;
    browser
        .wait_for(
            "the note that alerts are not available",
            "return document.body.dataset.alerts === 'unavailable' \
             && !document.getElementById('alerts-unavailable').hidden",
        )
        .await;
    let page = browser
        .script(
            "return { note: document.getElementById('alerts-unavailable').textContent, \
               tabs: document.getElementById('alerts-tabs').hidden, \
               panels: [...document.querySelectorAll('[role=tabpanel]')].filter(p => !p.hidden).length, \
               errors: [...document.querySelectorAll('.form-error')].filter(p => !p.hidden).length, \
               current: document.getElementById('nav-alerts').getAttribute('aria-current') }",
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({
            "note": "Alerts are not available on this server.",
            "tabs": true, "panels": 0, "errors": 0, "current": "page"
        })
    );
    browser.screenshot("alerts-unavailable-desktop").await;
    browser.set_viewport(360, 740).await;
    assert_eq!(
        browser.script(SCROLLS_SIDEWAYS).await.unwrap(),
        json!(false)
    );
    browser.screenshot("alerts-unavailable-phone").await;
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");

    // Every file the service worker keeps for offline use is served.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let sw = http
        .get(format!("{site}/sw.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shell = sw
        .split_once("const SHELL = [")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("the SHELL list")
        .0;
    let files: Vec<&str> = shell
        .split(',')
        .map(|s| s.trim().trim_matches('\''))
        .filter(|s| !s.is_empty())
        .collect();
    for file in [
        "alerts.html",
        "css/alerts.css",
        "js/alerts.js",
        "js/fleet-alerts.js",
    ] {
        assert!(files.contains(&file), "{file} not in the shell cache");
    }
    for file in files {
        let status = http
            .get(format!("{site}/{file}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::OK, "{file}");
    }
    browser.quit().await;
}

// ---------- a stand-in of the contract's alerts API ----------

/// What the stand-in API holds, and every request the page sent it.
#[derive(Default)]
struct Stub {
    alerts: Vec<Value>,
    history: Vec<Value>,
    silences: Vec<Value>,
    rules: Vec<Value>,
    channels: Vec<Value>,
    /// (method, path and query, JSON body or null), in order.
    seen: Vec<(String, String, Value)>,
    next_id: u32,
}

type Shared = Arc<Mutex<Stub>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn ok(value: Value) -> Response {
    axum::Json(value).into_response()
}

/// The redacted form of a channel (the contract's `ChannelConfig::redacted`).
fn redacted(mut channel: Value) -> Value {
    for key in [
        "secret",
        "token",
        "bot_token",
        "routing_key",
        "password",
        "auth_token",
    ] {
        if channel.get(key).is_some() {
            channel[key] = json!("••••");
        }
    }
    if ["slack", "discord", "teams"].contains(&channel["type"].as_str().unwrap_or("")) {
        if let Some(url) = channel["url"].as_str() {
            let origin: String = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            channel["url"] = json!(format!("{origin}/••••"));
        }
    }
    channel
}

/// The stand-in's one handler: the contract's routes, by method and path.
async fn stub_api(State(stub): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut s = stub.lock().unwrap();
    let full = uri
        .path_and_query()
        .map_or(uri.path().to_owned(), |p| p.as_str().to_owned());
    s.seen.push((method.to_string(), full, body.clone()));
    let parts: Vec<&str> = uri
        .path()
        .trim_start_matches("/api/v1/")
        .split('/')
        .collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["alerts"]) => ok(json!(s.alerts)),
        ("GET", ["alerts", "history"]) => ok(json!(s.history)),
        ("POST", ["alerts", id, "ack"]) => {
            let id = id.to_string();
            match s.alerts.iter_mut().find(|a| a["id"] == json!(id)) {
                Some(alert) => {
                    alert["acknowledged_by"] = json!("admin");
                    ok(alert.clone())
                }
                None => error(StatusCode::NOT_FOUND, "no such alert"),
            }
        }
        ("GET", ["silences"]) => ok(json!(s.silences)),
        ("POST", ["silences"]) => {
            if body.get("rule").is_none() && body.get("device").is_none() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a silence names a rule or a device",
                );
            }
            s.next_id += 1;
            let mut silence = body.clone();
            silence["id"] = json!(format!("s{}", s.next_id));
            s.silences.push(silence.clone());
            (StatusCode::CREATED, axum::Json(silence)).into_response()
        }
        ("DELETE", ["silences", id]) => {
            let id = id.to_string();
            s.silences.retain(|x| x["id"] != json!(id));
            StatusCode::NO_CONTENT.into_response()
        }
        ("GET", ["alert-rules"]) => ok(json!(s.rules)),
        ("POST", ["alert-rules"]) => {
            if s.rules.iter().any(|r| r["name"] == body["name"]) {
                return error(StatusCode::CONFLICT, "a rule with this name exists");
            }
            let mut rule = body.clone();
            rule["source"] = json!("dashboard");
            s.rules.push(rule.clone());
            (StatusCode::CREATED, axum::Json(rule)).into_response()
        }
        ("PUT" | "DELETE", ["alert-rules", name]) => {
            let name = name.to_string();
            let Some(at) = s.rules.iter().position(|r| r["name"] == json!(name)) else {
                return error(StatusCode::NOT_FOUND, "no such rule");
            };
            if s.rules[at]["source"] != json!("dashboard") {
                return error(StatusCode::CONFLICT, "rules from the file are read-only");
            }
            if method == Method::DELETE {
                s.rules.remove(at);
                return StatusCode::NO_CONTENT.into_response();
            }
            let mut rule = body.clone();
            rule["source"] = json!("dashboard");
            s.rules[at] = rule.clone();
            ok(rule)
        }
        ("GET", ["alert-channels"]) => ok(json!(s.channels)),
        ("POST", ["alert-channels"]) => {
            let mut channel = redacted(body.clone());
            channel["source"] = json!("dashboard");
            s.channels.push(channel.clone());
            (StatusCode::CREATED, axum::Json(channel)).into_response()
        }
        ("PUT" | "DELETE", ["alert-channels", name]) => {
            let name = name.to_string();
            let Some(at) = s.channels.iter().position(|c| c["name"] == json!(name)) else {
                return error(StatusCode::NOT_FOUND, "no such channel");
            };
            if method == Method::DELETE {
                s.channels.remove(at);
                return StatusCode::NO_CONTENT.into_response();
            }
            let mut channel = redacted(body.clone());
            channel["source"] = json!("dashboard");
            s.channels[at] = channel.clone();
            ok(channel)
        }
        ("POST", ["alert-channels", name, "test"]) => {
            if name.starts_with("broken") {
                error(
                    StatusCode::BAD_GATEWAY,
                    "slack: the webhook answered 404 Not Found: <b>no_service</b>",
                )
            } else {
                ok(json!({"ok": true}))
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The server's router behind the stand-in API: the alert routes answer
/// from `stub`, everything else (pages, devices, live) from the server.
async fn serve_with_stub(server: Server, stub: Shared) -> Running {
    let api = Router::new()
        .route("/api/v1/alerts", any(stub_api))
        .route("/api/v1/alerts/{*rest}", any(stub_api))
        .route("/api/v1/silences", any(stub_api))
        .route("/api/v1/silences/{*rest}", any(stub_api))
        .route("/api/v1/alert-rules", any(stub_api))
        .route("/api/v1/alert-rules/{*rest}", any(stub_api))
        .route("/api/v1/alert-channels", any(stub_api))
        .route("/api/v1/alert-channels/{*rest}", any(stub_api))
        .with_state(stub)
        .fallback_service(server.router());
    Running::start_router(api, ServeOptions::default()).await
}

/// Seconds ago, as RFC 3339.
fn ago(seconds: i64) -> String {
    (OffsetDateTime::now_utc() - time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn seeded() -> Stub {
    Stub {
        alerts: vec![
            json!({"id": "a1", "rule": "cpu-high", "severity": "critical", "device_id": "db-1",
                   "metric": "cpu_usage", "value": 95.0, "op": ">", "threshold": 80,
                   "state": "firing", "since": ago(600)}),
            json!({"id": "a2", "rule": "<img src=x onerror=window.tailmonPwned=1>",
                   "severity": "warning", "device_id": "db-1", "metric": "disk_used_percent:/",
                   "value": 83.456, "op": ">=", "threshold": 80, "state": "firing",
                   "since": ago(120)}),
            json!({"id": "a3", "rule": "ram-high", "severity": "warning", "device_id": "web-1",
                   "metric": "ram_used_percent", "value": null, "op": ">", "threshold": 70,
                   "state": "pending", "since": ago(30)}),
        ],
        history: vec![
            json!({"id": "h2", "rule": "cpu-high", "severity": "critical", "device_id": "db-1",
                   "metric": "cpu_usage", "value": 95.0, "op": ">", "threshold": 80,
                   "state": "firing", "started_at": ago(600)}),
            json!({"id": "h1", "rule": "offline", "severity": "critical", "device_id": "cache-1",
                   "state": "resolved", "started_at": ago(7200), "resolved_at": ago(3600)}),
        ],
        rules: vec![
            json!({"name": "cpu-high", "kind": "threshold", "metric": "cpu_usage", "op": ">",
                   "threshold": 80, "for": "1m", "severity": "critical", "devices": "*",
                   "channels": ["ops"], "source": "file"}),
            json!({"name": "offline", "kind": "offline", "for": "0s", "severity": "critical",
                   "devices": "*", "channels": [], "source": "default"}),
            json!({"name": "disk-soon", "kind": "disk_full", "within": "24h", "window": "6h",
                   "severity": "warning", "devices": "db-*", "channels": [],
                   "source": "dashboard"}),
        ],
        channels: vec![json!({"name": "ops", "type": "webhook",
                               "url": "https://example.net/hook", "secret": "••••",
                               "source": "file"})],
        ..Stub::default()
    }
}

/// The requests the page sent with `method` to the path `prefix` (any
/// query), or, when it ends with `/`, to any path starting with it.
fn sent(stub: &Shared, method: &str, prefix: &str) -> Vec<(String, Value)> {
    stub.lock()
        .unwrap()
        .seen
        .iter()
        .filter(|(m, p, _)| {
            let path = p.split_once('?').map_or(p.as_str(), |(path, _)| path);
            m == method && (path == prefix || (prefix.ends_with('/') && p.starts_with(prefix)))
        })
        .map(|(_, p, b)| (p.clone(), b.clone()))
        .collect()
}

/// Sets a form control's value as a user would (an input or change event).
async fn set_value(browser: &Browser, css: &str, value: &str) {
    let script = format!(
        "const e = document.querySelector({css:?}); e.value = {value:?}; \
         e.dispatchEvent(new Event('input', {{bubbles: true}})); \
         e.dispatchEvent(new Event('change', {{bubbles: true}})); return e.value"
    );
    assert_eq!(
        browser.script(&script).await.unwrap(),
        json!(value),
        "{css}"
    );
}

/// Opens the tab `name` with a click and waits for its answer.
async fn open_tab(browser: &Browser, name: &str) {
    browser.click(&format!("#tab-{name}")).await;
    browser
        .wait_for(
            &format!("the {name} tab"),
            &format!(
                "const p = document.getElementById('panel-{name}'); \
                 return !p.hidden && p.dataset.loaded === 'true'"
            ),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_show_on_the_fleet_view_and_the_device_page() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let stub: Shared = Arc::new(Mutex::new(seeded()));
    let running = serve_with_stub(server_with_devices().await, stub.clone()).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 900).await;

    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "the alerts panel",
            "return document.body.dataset.loaded === 'true' && document.body.dataset.alerts === '2' \
             && !document.getElementById('alerts-panel').hidden",
        )
        .await;
    let fleet = browser
        .script(
            "const card = (id) => document.querySelector('article[data-device-id=\"' + id + '\"]'); \
             return { title: document.getElementById('alerts-panel-title').textContent, \
               items: [...document.querySelectorAll('#alerts-list .alert-item')].map(li => [...li.children].map(c => c.textContent).join(' ')), \
               db: card('db-1').dataset.alerts, dbMark: card('db-1').querySelector('.alert-mark')?.getAttribute('aria-label'), \
               dbCritical: card('db-1').querySelector('.alert-mark').classList.contains('severity-critical'), \
               web: card('web-1').dataset.alerts ?? null, \
               imgs: document.querySelectorAll('#alerts-panel img').length, pwned: window.tailmonPwned ?? null }",
        )
        .await
        .unwrap();
    // Pending alerts are not on the fleet view; the worst comes first.
    assert_eq!(fleet["title"], json!("2 firing alerts"));
    let items = fleet["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{fleet}");
    let first = items[0].as_str().unwrap();
    assert!(
        first.contains("Critical")
            && first.contains("db-1")
            && first.contains("cpu-high")
            && first.contains("cpu_usage 95 > 80"),
        "{first}"
    );
    let second = items[1].as_str().unwrap();
    assert!(
        second.contains("<img src=x onerror=window.tailmonPwned=1>")
            && second.contains("disk_used_percent:/ 83.46 >= 80"),
        "{second}"
    );
    assert_eq!(fleet["db"], json!("2"));
    assert_eq!(fleet["dbMark"], json!("2 firing alerts on db-1"));
    assert_eq!(fleet["dbCritical"], json!(true));
    assert_eq!(fleet["web"], Value::Null);
    assert_eq!(fleet["imgs"], json!(0));
    assert_eq!(fleet["pwned"], Value::Null);
    browser.screenshot("alerts-fleet-desktop").await;

    // The alert resolves: the panel and the mark go, without a reload.
    stub.lock()
        .unwrap()
        .alerts
        .retain(|a| a["id"] != json!("a1"));
    browser
        .wait_for(
            "one alert left",
            "return document.body.dataset.alerts === '1' \
             && document.querySelector('article[data-device-id=\"db-1\"]').dataset.alerts === '1' \
             && !document.querySelector('article[data-device-id=\"db-1\"] .alert-mark').classList.contains('severity-critical')",
        )
        .await;
    browser.set_viewport(360, 740).await;
    assert_eq!(
        browser.script(SCROLLS_SIDEWAYS).await.unwrap(),
        json!(false)
    );
    browser.screenshot("alerts-fleet-phone").await;
    stub.lock().unwrap().alerts.clear();
    browser
        .wait_for(
            "no alert left",
            "return document.body.dataset.alerts === '0' \
             && document.getElementById('alerts-panel').hidden \
             && document.querySelectorAll('.alert-mark').length === 0",
        )
        .await;
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");

    // The device page lists its own firing alerts only.
    *stub.lock().unwrap() = seeded();
    browser.set_viewport(1280, 900).await;
    browser.goto(&format!("{site}/device.html?id=db-1")).await;
    browser
        .wait_for(
            "the device's alerts",
            "const s = document.getElementById('device-alerts'); return s && !s.hidden && s.dataset.count === '2'",
        )
        .await;
    let device = browser
        .script(
            "return { count: document.getElementById('device-alerts-count').textContent, \
               rules: [...document.querySelectorAll('#device-alerts-list .alert-rule')].map(e => e.textContent) }",
        )
        .await
        .unwrap();
    assert_eq!(
        device,
        json!({"count": "2 firing alerts",
               "rules": ["cpu-high", "<img src=x onerror=window.tailmonPwned=1>"]})
    );
    browser.screenshot("alerts-device-desktop").await;
    browser.goto(&format!("{site}/device.html?id=web-1")).await;
    browser
        .wait_for(
            "no firing alert on web-1 (its one alert is pending)",
            "const s = document.getElementById('device-alerts'); return s && s.dataset.count === '0' && s.hidden",
        )
        .await;
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alerts_page_acknowledges_silences_and_edits_rules_and_channels() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let stub: Shared = Arc::new(Mutex::new(seeded()));
    let running = serve_with_stub(server_with_devices().await, stub.clone()).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 900).await;

    // Firing: pending and firing alerts, hostile text as text, "—" for a
    // missing value; acknowledging one.
    browser.goto(&format!("{site}/alerts.html")).await;
    browser
        .wait_for(
            "the firing tab",
            "return document.getElementById('panel-firing').dataset.loaded === 'true'",
        )
        .await;
    let firing = browser
        .script(
            "return [...document.querySelectorAll('#firing-body tr')].map(r => \
               [...r.cells].slice(0, 5).map(c => c.textContent))",
        )
        .await
        .unwrap();
    assert_eq!(
        firing,
        json!([
            [
                "Critical",
                "db-1",
                "cpu-high",
                "cpu_usage 95 > 80",
                "Firing"
            ],
            [
                "Warning",
                "db-1",
                "<img src=x onerror=window.tailmonPwned=1>",
                "disk_used_percent:/ 83.46 >= 80",
                "Firing"
            ],
            [
                "Warning",
                "web-1",
                "ram-high",
                "ram_used_percent — > 70",
                "Pending"
            ],
        ])
    );
    assert_eq!(
        browser
            .script("return document.getElementById('firing-count').textContent")
            .await
            .unwrap(),
        json!("(2)")
    );
    browser.screenshot("alerts-firing-desktop").await;
    browser
        .click("#firing-body tr[data-alert-id=\"a1\"] button[data-action=\"ack\"]")
        .await;
    browser
        .wait_for(
            "the acknowledgement shown",
            "const r = document.querySelector('#firing-body tr[data-alert-id=\"a1\"]'); \
             return r && r.cells[6].textContent === 'Acknowledged by admin' && !r.querySelector('button')",
        )
        .await;
    assert_eq!(
        sent(&stub, "POST", "/api/v1/alerts/"),
        vec![("/api/v1/alerts/a1/ack".to_owned(), Value::Null)]
    );

    // History, newest first, a page at a time.
    open_tab(&browser, "history").await;
    let history = browser
        .script(
            "return [...document.querySelectorAll('#history-body tr')].map(r => \
               [r.cells[2].textContent, r.cells[4].textContent, r.cells[6].textContent === '\u{2014}'])",
        )
        .await
        .unwrap();
    assert_eq!(
        history,
        json!([["cpu-high", "Firing", true], ["offline", "Resolved", false]])
    );
    assert_eq!(
        sent(&stub, "GET", "/api/v1/alerts/history")[0].0,
        "/api/v1/alerts/history?limit=50"
    );
    assert_eq!(
        browser.script("return location.hash").await.unwrap(),
        json!("#history")
    );

    // Silences: a silence of a device until a time; the API's refusal of
    // one that names nothing is never sent (the form says so first).
    open_tab(&browser, "silences").await;
    browser.click("#silence-submit").await;
    browser
        .wait_for(
            "the form's complaint",
            "const e = document.getElementById('silence-error'); return !e.hidden && e.textContent",
        )
        .await;
    browser.type_into("#silence-device", "db-1").await;
    browser.type_into("#silence-comment", "maintenance").await;
    browser.click("#silence-submit").await;
    browser
        .wait_for(
            "the silence listed",
            "return [...document.querySelectorAll('#silences-body tr')].map(r => r.cells[1].textContent).join() === 'db-1'",
        )
        .await;
    let posted = sent(&stub, "POST", "/api/v1/silences");
    assert_eq!(posted.len(), 1, "{posted:?}");
    let body = &posted[0].1;
    assert_eq!(body["device"], json!("db-1"));
    assert_eq!(body["comment"], json!("maintenance"));
    assert!(body.get("rule").is_none(), "{body}");
    let until = OffsetDateTime::parse(
        body["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("until in RFC 3339");
    let ahead = until - OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::minutes(55) && ahead < time::Duration::minutes(61),
        "{ahead}"
    );
    // Delete asks once more in place, then deletes.
    browser
        .click("#silences-body button[data-action=\"delete-silence\"]")
        .await;
    browser
        .click("#silences-body button[data-action=\"delete-silence\"]")
        .await;
    browser
        .wait_for(
            "no silence left",
            "return !document.getElementById('silences-empty').hidden",
        )
        .await;
    assert_eq!(
        sent(&stub, "DELETE", "/api/v1/silences/")[0].0,
        "/api/v1/silences/s1"
    );

    // Rules: file and default rules are read-only; a new threshold rule
    // through the form; a dashboard rule edited, then deleted.
    open_tab(&browser, "rules").await;
    let rules = browser
        .script(
            "return [...document.querySelectorAll('#rules-body tr')].map(r => \
               [r.dataset.rule, r.cells[7].textContent, r.querySelectorAll('button').length])",
        )
        .await
        .unwrap();
    assert_eq!(
        rules,
        json!([
            ["cpu-high", "file (read-only)", 0],
            ["offline", "default (read-only)", 0],
            ["disk-soon", "dashboard", 2]
        ])
    );
    browser.click("#rule-new").await;
    browser
        .type_into("#rule-form input[name=name]", "load-high")
        .await;
    browser
        .type_into("#rule-form input[name=metric]", "load_one")
        .await;
    set_value(&browser, "#rule-form select[name=op]", ">=").await;
    browser
        .type_into("#rule-form input[name=threshold]", "4.5")
        .await;
    browser.type_into("#rule-form input[name=for]", "5m").await;
    set_value(&browser, "#rule-form select[name=severity]", "critical").await;
    browser
        .type_into("#rule-form input[name=devices]", "db-*")
        .await;
    browser
        .type_into("#rule-form input[name=channels]", "ops, pager")
        .await;
    browser
        .type_into("#rule-form input[name=escalate_after]", "15m")
        .await;
    browser
        .type_into("#rule-form input[name=escalate_channels]", "pager")
        .await;
    browser.screenshot("alerts-rule-form-desktop").await;
    browser.click("#rule-form button[type=submit]").await;
    browser
        .wait_for(
            "the new rule listed",
            "return !!document.querySelector('#rules-body tr[data-rule=\"load-high\"]') \
             && document.getElementById('rule-form-box').hidden",
        )
        .await;
    let posted = sent(&stub, "POST", "/api/v1/alert-rules");
    assert_eq!(
        posted[0].1,
        json!({"name": "load-high", "kind": "threshold", "metric": "load_one", "op": ">=",
               "threshold": 4.5, "for": "5m", "severity": "critical", "devices": "db-*",
               "channels": ["ops", "pager"],
               "escalate": [{"after": "15m", "channels": ["pager"]}]})
    );
    // The same name again: the API's 409 is shown in the form.
    browser.click("#rule-new").await;
    browser
        .type_into("#rule-form input[name=name]", "load-high")
        .await;
    set_value(&browser, "#rule-form select[name=kind]", "offline").await;
    browser.click("#rule-form button[type=submit]").await;
    browser
        .wait_for(
            "the API's refusal",
            "return document.getElementById('rule-form-error').textContent === 'a rule with this name exists'",
        )
        .await;
    browser.click("#rule-form button[data-action=cancel]").await;
    browser
        .click("#rules-body tr[data-rule=\"disk-soon\"] button[data-action=\"edit-rule\"]")
        .await;
    let edit = browser
        .script(
            "const f = (n) => document.getElementById('rule-form').elements.namedItem(n); \
             return { name: f('name').value, readOnly: f('name').readOnly, kind: f('kind').value, \
               within: f('within').value, metricShown: !f('metric').closest('fieldset').hidden }",
        )
        .await
        .unwrap();
    assert_eq!(
        edit,
        json!({"name": "disk-soon", "readOnly": true, "kind": "disk_full", "within": "24h", "metricShown": false})
    );
    browser
        .type_into("#rule-form input[name=within]", "12h")
        .await;
    browser.click("#rule-form button[type=submit]").await;
    browser
        .wait_for(
            "the edited rule",
            "const r = document.querySelector('#rules-body tr[data-rule=\"disk-soon\"]'); \
             return r && r.cells[2].textContent === 'full within 12h'",
        )
        .await;
    let put = sent(&stub, "PUT", "/api/v1/alert-rules/");
    assert_eq!(put[0].0, "/api/v1/alert-rules/disk-soon");
    assert_eq!(put[0].1["kind"], json!("disk_full"));
    assert_eq!(put[0].1["within"], json!("12h"));
    assert_eq!(put[0].1["window"], json!("6h"));
    assert_eq!(put[0].1["devices"], json!("db-*"));
    for _ in 0..2 {
        browser
            .click("#rules-body tr[data-rule=\"disk-soon\"] button[data-action=\"delete-rule\"]")
            .await;
    }
    browser
        .wait_for(
            "the rule deleted",
            "return !document.querySelector('#rules-body tr[data-rule=\"disk-soon\"]')",
        )
        .await;

    // Channels: a form per type with labelled fields; a Slack channel
    // created; "Send test" shows success, or the API's JSON error as text.
    open_tab(&browser, "channels").await;
    browser.click("#channel-new").await;
    let labels = browser
        .script(
            "const out = {}; const type = document.getElementById('channel-type'); \
             for (const o of type.options) { type.value = o.value; type.dispatchEvent(new Event('change')); \
               out[o.value] = [...document.querySelectorAll('#channel-fields label')].map(l => \
                 l.textContent + (document.getElementById(l.htmlFor) ? '' : ' (unlabelled)')); } \
             return out",
        )
        .await
        .unwrap();
    for (kind, fields) in [
        ("webhook", vec!["URL", "Signing secret (optional)"]),
        ("slack", vec!["Incoming webhook URL"]),
        ("discord", vec!["Webhook URL"]),
        ("teams", vec!["Incoming webhook URL"]),
        ("ntfy", vec!["Server", "Topic", "Access token (optional)"]),
        ("telegram", vec!["Bot token", "Chat id", "API address"]),
        (
            "pagerduty",
            vec!["Routing key (Events API v2)", "Events address"],
        ),
        ("alertmanager", vec!["Alertmanager address"]),
        (
            "email",
            vec![
                "SMTP server",
                "Port",
                "Security",
                "User name (optional)",
                "Password (optional)",
                "From",
                "To (comma separated)",
            ],
        ),
        (
            "twilio",
            vec![
                "Account SID",
                "Auth token",
                "From number",
                "To numbers (comma separated)",
                "API address",
            ],
        ),
    ] {
        assert_eq!(labels[kind], json!(fields), "{kind}");
    }
    set_value(&browser, "#channel-type", "slack").await;
    browser
        .type_into("#channel-form input[name=name]", "broken-slack")
        .await;
    browser
        .type_into(
            "#channel-form input[name=url]",
            "https://hooks.slack.com/services/T0/B0/XYZ",
        )
        .await;
    browser.screenshot("alerts-channel-form-desktop").await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the channel listed",
            "return !!document.querySelector('#channels-body tr[data-channel=\"broken-slack\"]')",
        )
        .await;
    assert_eq!(
        sent(&stub, "POST", "/api/v1/alert-channels")[0].1,
        json!({"name": "broken-slack", "type": "slack", "url": "https://hooks.slack.com/services/T0/B0/XYZ"})
    );
    browser
        .click(
            "#channels-body tr[data-channel=\"broken-slack\"] button[data-action=\"test-channel\"]",
        )
        .await;
    browser
        .wait_for(
            "the failed test",
            "const p = document.getElementById('channel-test-result'); \
             return p.classList.contains('is-error') && p.textContent === \
             'The test through broken-slack failed: slack: the webhook answered 404 Not Found: <b>no_service</b>'",
        )
        .await;
    browser
        .click("#channels-body tr[data-channel=\"ops\"] button[data-action=\"test-channel\"]")
        .await;
    browser
        .wait_for(
            "the good test",
            "const p = document.getElementById('channel-test-result'); \
             return p.classList.contains('is-ok') && p.textContent === 'Test sent through ops.'",
        )
        .await;
    // The file's channel is read-only; a dashboard email channel edited
    // keeps its redacted password as the server showed it.
    assert_eq!(
        browser
            .script("return document.querySelectorAll('#channels-body tr[data-channel=\"ops\"] button').length")
            .await
            .unwrap(),
        json!(1)
    );
    browser.click("#channel-new").await;
    set_value(&browser, "#channel-type", "email").await;
    browser
        .type_into("#channel-form input[name=name]", "mail")
        .await;
    browser
        .type_into("#channel-form input[name=host]", "smtp.example.net")
        .await;
    set_value(&browser, "#channel-form select[name=security]", "tls").await;
    browser
        .type_into("#channel-form input[name=password]", "hunter2")
        .await;
    browser
        .type_into("#channel-form input[name=from]", "tailmon@example.net")
        .await;
    browser
        .type_into(
            "#channel-form input[name=to]",
            "ops@example.net, ana@example.net",
        )
        .await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the mail channel",
            "return !!document.querySelector('#channels-body tr[data-channel=\"mail\"]')",
        )
        .await;
    assert_eq!(
        sent(&stub, "POST", "/api/v1/alert-channels")[1].1,
        json!({"name": "mail", "type": "email", "host": "smtp.example.net", "port": 587,
               "security": "tls", "password": "hunter2", "from": "tailmon@example.net",
               "to": ["ops@example.net", "ana@example.net"]})
    );
    browser
        .click("#channels-body tr[data-channel=\"mail\"] button[data-action=\"edit-channel\"]")
        .await;
    browser
        .type_into("#channel-form input[name=host]", "smtp2.example.net")
        .await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the edit saved",
            "return document.getElementById('channel-form-box').hidden",
        )
        .await;
    let put = sent(&stub, "PUT", "/api/v1/alert-channels/");
    assert_eq!(put[0].0, "/api/v1/alert-channels/mail");
    assert_eq!(put[0].1["host"], json!("smtp2.example.net"));
    assert_eq!(put[0].1["password"], json!("••••"));
    assert_eq!(put[0].1["type"], json!("email"));
    assert_eq!(
        browser
            .script("return window.tailmonPwned ?? null")
            .await
            .unwrap(),
        Value::Null
    );

    // Phone size: every tab fits 360 px.
    browser.set_viewport(360, 740).await;
    for tab in ["firing", "history", "silences", "rules", "channels"] {
        open_tab(&browser, tab).await;
        assert_eq!(
            browser.script(SCROLLS_SIDEWAYS).await.unwrap(),
            json!(false),
            "{tab} scrolls sideways at 360 px"
        );
        browser.screenshot(&format!("alerts-{tab}-phone")).await;
    }
    browser.click("#channel-new").await;
    assert_eq!(
        browser.script(SCROLLS_SIDEWAYS).await.unwrap(),
        json!(false)
    );
    browser.screenshot("alerts-channel-form-phone").await;
    // Both themes.
    browser.set_color_scheme("dark").await;
    open_tab(&browser, "firing").await;
    browser.screenshot("alerts-firing-phone-dark").await;
    browser.set_viewport(1280, 900).await;
    browser.screenshot("alerts-firing-desktop-dark").await;
    browser.set_viewport(360, 740).await;
    browser.set_color_scheme("light").await;
    open_tab(&browser, "firing").await;
    browser.screenshot("alerts-firing-phone-light").await;
    browser.set_viewport(1280, 900).await;
    browser.screenshot("alerts-firing-desktop-light").await;
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_reaches_the_tabs_and_their_actions() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let stub: Shared = Arc::new(Mutex::new(seeded()));
    let running = serve_with_stub(server_with_devices().await, stub.clone()).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 900).await;
    browser.goto(&format!("{site}/alerts.html")).await;
    browser
        .wait_for(
            "the firing tab",
            "return document.getElementById('panel-firing').dataset.loaded === 'true'",
        )
        .await;
    browser
        .script("document.activeElement.blur(); return null")
        .await
        .unwrap();
    // Tab reaches the selected tab; the arrows move between tabs.
    let mut reached = Vec::new();
    for _ in 0..30 {
        press(&browser, "Tab", 9).await;
        let id = browser
            .script("return document.activeElement.id || document.activeElement.dataset.action || document.activeElement.tagName")
            .await
            .unwrap();
        reached.push(id.clone());
        if id == json!("tab-firing") {
            break;
        }
    }
    assert_eq!(reached.last(), Some(&json!("tab-firing")), "{reached:?}");
    assert!(reached.contains(&json!("nav-alerts")), "{reached:?}");
    press(&browser, "ArrowRight", 39).await;
    browser
        .wait_for(
            "the history tab, by the keyboard",
            "return document.activeElement.id === 'tab-history' \
             && !document.getElementById('panel-history').hidden",
        )
        .await;
    press(&browser, "End", 35).await;
    browser
        .wait_for(
            "the last tab",
            "return document.activeElement.id === 'tab-channels'",
        )
        .await;
    press(&browser, "Home", 36).await;
    browser
        .wait_for(
            "the first tab",
            "return document.activeElement.id === 'tab-firing'",
        )
        .await;
    // From the tab, Tab goes into the panel and reaches the first
    // "Acknowledge"; Enter acknowledges.
    let mut found = false;
    for _ in 0..10 {
        press(&browser, "Tab", 9).await;
        if browser
            .script("return document.activeElement.dataset.action === 'ack'")
            .await
            .unwrap()
            == json!(true)
        {
            found = true;
            break;
        }
    }
    assert!(found, "Tab never reached an Acknowledge button");
    press(&browser, "Enter", 13).await;
    browser
        .wait_for(
            "an acknowledgement",
            "return [...document.querySelectorAll('#firing-body tr')].some(r => r.cells[6].textContent.startsWith('Acknowledged'))",
        )
        .await;
    assert_eq!(sent(&stub, "POST", "/api/v1/alerts/").len(), 1);
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");
    browser.quit().await;
}
