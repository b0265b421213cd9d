//! The dashboard's alerts (the fleet view's panel and card marks, the
//! device page's section, `alerts.html`) in a real headless Chromium
//! against a real server on 127.0.0.1:0.
//!
//! Real alerts: file rules fire from reports the test ingests, the page
//! acknowledges, silences, creates rules and channels through its forms,
//! and "Send test" reaches an HTTP receiver the test runs on 127.0.0.1:0.
//! A server without alerting (its alert routes answering 404) leaves
//! every page quiet.
//!
//! Every wait polls the page up to a deadline; there are no fixed sleeps.
//! Screenshots go to `target/screenshots/alerts-*.png`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::any;
use serde_json::{Value, json};
use tailmon_core::OffsetDateTime;
use tailmon_server::alerts::AlertsConfig;
use tailmon_server::auth::Role;
use tailmon_server::{Credentials, ServeOptions, Server, ServerBuilder};
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
    // A server without alerting (an older one): every alert route is an
    // unknown API path, answered as the server answers those.
    let server = server_with_devices().await;
    let router = server.router();
    let gone = any(|| async {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such API path"})),
        )
    });
    let app = Router::new()
        .route("/api/v1/alerts", gone.clone())
        .route("/api/v1/alerts/{*rest}", gone.clone())
        .route("/api/v1/silences", gone.clone())
        .route("/api/v1/alert-rules", gone.clone())
        .route("/api/v1/alert-channels", gone)
        .fallback_service(router);
    let running = Running::start_router(app, ServeOptions::default()).await;
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

// ---------- the real alerts API, and a receiver for its notifications ----------

/// What the receiver was sent: (path, JSON body), in order.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// An HTTP receiver on 127.0.0.1:0 keeping every request; `/broken`
/// answers 500. Its base URL and what it received.
async fn receiver() -> (String, Received, tokio::task::JoinHandle<()>) {
    let received: Received = Arc::default();
    let keep = received.clone();
    let app = Router::new().fallback(any(move |uri: Uri, body: Bytes| {
        let keep = keep.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            keep.lock().unwrap().push((uri.path().to_owned(), body));
            if uri.path() == "/broken" {
                (StatusCode::INTERNAL_SERVER_ERROR, "<b>down</b>").into_response()
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, received, task)
}

/// An open-access server (everyone is an admin) with three calm devices,
/// no default rules, the file rule `cpu-high` (CPU above 80 %, at once,
/// critical, to `ops`) and the file channel `ops` (a webhook to `hooks`).
async fn server_with_rules(hooks: &str) -> Server {
    let alerts: AlertsConfig = serde_json::from_value(json!({
        "default_rules": false,
        "public_url": "http://monitor.example.net/",
        "rules": [{"name": "cpu-high", "metric": "cpu_usage", "op": ">", "threshold": 80,
                   "for": "0s", "severity": "critical", "devices": "*", "channels": ["ops"]}],
        "channels": [{"name": "ops", "type": "webhook", "url": format!("{hooks}/ops")}],
    }))
    .expect("valid alerts config");
    let server = ServerBuilder::new()
        .open_access()
        .alerts(alerts)
        .build()
        .expect("valid server");
    for (id, cpu) in [("db-1", 20.0), ("web-1", 20.0), ("cache-1", 10.0)] {
        server
            .ingest()
            .ingest(report(id, cpu, 1000))
            .await
            .expect("valid report");
    }
    server
}

/// Whether a JSON GET of `url` answers what `check` accepts; for
/// [`tailmon_testkit::eventually`].
async fn api_get(url: &str) -> Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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
async fn a_firing_alert_shows_on_the_fleet_view_and_the_device_page() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let (hooks, received, _receiver) = receiver().await;
    let server = server_with_rules(&hooks).await;
    let ingest = server.ingest().clone();
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 900).await;

    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "the fleet view, no alert",
            "return document.body.dataset.loaded === 'true' && document.body.dataset.alerts === '0' \
             && document.getElementById('alerts-panel').hidden",
        )
        .await;
    // db-1 gets hot: the rule fires, the page shows it without a reload.
    ingest.ingest(report("db-1", 95.0, 1000)).await.unwrap();
    browser
        .wait_for(
            "the alerts panel",
            "return document.body.dataset.alerts === '1' \
             && !document.getElementById('alerts-panel').hidden \
             && document.querySelector('article[data-device-id=\"db-1\"]').dataset.alerts === '1'",
        )
        .await;
    let fleet = browser
        .script(
            "const card = (id) => document.querySelector('article[data-device-id=\"' + id + '\"]'); \
             return { title: document.getElementById('alerts-panel-title').textContent, \
               items: [...document.querySelectorAll('#alerts-list .alert-item')].map(li => \
                 [...li.children].slice(0, 4).map(c => c.textContent)), \
               mark: card('db-1').querySelector('.alert-mark')?.getAttribute('aria-label'), \
               critical: card('db-1').querySelector('.alert-mark').classList.contains('severity-critical'), \
               web: card('web-1').dataset.alerts ?? null }",
        )
        .await
        .unwrap();
    assert_eq!(
        fleet,
        json!({"title": "1 firing alert",
               "items": [["Critical", "db-1", "cpu-high", "cpu_usage 95 > 80"]],
               "mark": "1 firing alert on db-1", "critical": true, "web": null})
    );
    // The file's channel was told.
    tailmon_testkit::eventually("the webhook told", async || {
        let got = received.lock().unwrap().clone();
        match got.iter().find(|(path, _)| path == "/ops") {
            Some((_, body))
                if body["kind"] == json!("firing") && body["device_id"] == json!("db-1") =>
            {
                Ok(())
            }
            _ => Err(format!("{got:?}")),
        }
    })
    .await;
    browser.screenshot("alerts-fleet-desktop").await;
    browser.set_viewport(360, 740).await;
    assert_eq!(
        browser.script(SCROLLS_SIDEWAYS).await.unwrap(),
        json!(false)
    );
    browser.screenshot("alerts-fleet-phone").await;

    // The device page lists its own alerts only.
    browser.set_viewport(1280, 900).await;
    browser.goto(&format!("{site}/device.html?id=db-1")).await;
    browser
        .wait_for(
            "the device's alerts",
            "const s = document.getElementById('device-alerts'); return s && !s.hidden && s.dataset.count === '1'",
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
        json!({"count": "1 firing alert", "rules": ["cpu-high"]})
    );
    browser.screenshot("alerts-device-desktop").await;
    // It cools down: the alert resolves and the section goes.
    ingest.ingest(report("db-1", 10.0, 1000)).await.unwrap();
    browser
        .wait_for(
            "the alert resolved on the device page",
            "const s = document.getElementById('device-alerts'); return s.dataset.count === '0' && s.hidden",
        )
        .await;
    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "no alert on the fleet view",
            "return document.body.dataset.loaded === 'true' && document.body.dataset.alerts === '0' \
             && document.getElementById('alerts-panel').hidden \
             && document.querySelectorAll('.alert-mark').length === 0",
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
    let (hooks, received, _receiver) = receiver().await;
    let server = server_with_rules(&hooks).await;
    let ingest = server.ingest().clone();
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 900).await;
    browser.goto(&format!("{site}/alerts.html")).await;
    browser
        .wait_for(
            "the firing tab, empty",
            "return document.getElementById('panel-firing').dataset.loaded === 'true' \
             && !document.getElementById('firing-empty').hidden",
        )
        .await;
    ingest.ingest(report("db-1", 95.0, 1000)).await.unwrap();
    browser
        .wait_for(
            "the firing alert",
            "return document.querySelectorAll('#firing-body tr').length === 1",
        )
        .await;
    let firing = browser
        .script(
            "const r = document.querySelector('#firing-body tr'); \
             return [...r.cells].slice(0, 7).map(c => c.textContent)",
        )
        .await
        .unwrap();
    // Severity, device, rule, condition, state, (since), notes: none.
    let firing = firing.as_array().unwrap();
    assert_eq!(
        [&firing[0..5], &firing[6..7]].concat(),
        json!([
            "Critical",
            "db-1",
            "cpu-high",
            "cpu_usage 95 > 80",
            "Firing",
            "\u{2014}"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(
        browser
            .script("return document.getElementById('firing-count').textContent")
            .await
            .unwrap(),
        json!("(1)")
    );
    browser.screenshot("alerts-firing-desktop").await;

    // Acknowledge.
    browser
        .click("#firing-body button[data-action=\"ack\"]")
        .await;
    browser
        .wait_for(
            "the acknowledgement shown",
            "const r = document.querySelector('#firing-body tr'); \
             return r && r.cells[6].textContent === 'Acknowledged by open access' && !r.querySelector('button')",
        )
        .await;
    let alerts = api_get(&format!("{site}/api/v1/alerts")).await;
    assert_eq!(alerts[0]["acknowledged_by"], json!("open access"));

    // History, newest first.
    open_tab(&browser, "history").await;
    let history = browser
        .script(
            "return [...document.querySelectorAll('#history-body tr')].map(r => \
               [r.cells[2].textContent, r.cells[4].textContent, r.cells[6].textContent])",
        )
        .await
        .unwrap();
    assert_eq!(history, json!([["cpu-high", "Firing", "\u{2014}"]]));
    assert_eq!(
        browser.script("return location.hash").await.unwrap(),
        json!("#history")
    );

    // Silences: the form refuses one that names nothing, then silences a
    // device for an hour; deleting asks once more in place.
    open_tab(&browser, "silences").await;
    browser.click("#silence-submit").await;
    browser
        .wait_for(
            "the form's complaint",
            "const e = document.getElementById('silence-error'); return !e.hidden && e.textContent",
        )
        .await;
    browser.type_into("#silence-device", "db-1").await;
    browser
        .type_into("#silence-comment", "maintenance <b>now</b>")
        .await;
    browser.click("#silence-submit").await;
    browser
        .wait_for(
            "the silence listed",
            "return [...document.querySelectorAll('#silences-body tr')].map(r => r.cells[1].textContent + '|' + r.cells[3].textContent).join() \
               === 'db-1|maintenance <b>now</b>'",
        )
        .await;
    let silences = api_get(&format!("{site}/api/v1/silences")).await;
    assert_eq!(silences[0]["device"], json!("db-1"));
    assert!(silences[0].get("rule").is_none(), "{silences}");
    let until = OffsetDateTime::parse(
        silences[0]["until"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("until in RFC 3339");
    let ahead = until - OffsetDateTime::now_utc();
    assert!(
        ahead > time::Duration::minutes(55) && ahead < time::Duration::minutes(61),
        "{ahead}"
    );
    browser.screenshot("alerts-silences-desktop").await;
    for _ in 0..2 {
        browser
            .click("#silences-body button[data-action=\"delete-silence\"]")
            .await;
    }
    browser
        .wait_for(
            "no silence left",
            "return !document.getElementById('silences-empty').hidden",
        )
        .await;
    assert_eq!(api_get(&format!("{site}/api/v1/silences")).await, json!([]));

    // Rules: the file's rule is read-only; a rule made through the form
    // fires on the next report; edited, then deleted.
    open_tab(&browser, "rules").await;
    let rules = browser
        .script(
            "return [...document.querySelectorAll('#rules-body tr')].map(r => \
               [r.dataset.rule, r.cells[2].textContent, r.cells[7].textContent, r.querySelectorAll('button').length])",
        )
        .await
        .unwrap();
    assert_eq!(
        rules,
        json!([["cpu-high", "cpu_usage > 80", "file (read-only)", 0]])
    );
    browser.click("#rule-new").await;
    browser
        .type_into("#rule-form input[name=name]", "ram-half")
        .await;
    browser
        .type_into("#rule-form input[name=metric]", "ram_used_percent")
        .await;
    set_value(&browser, "#rule-form select[name=op]", ">=").await;
    browser
        .type_into("#rule-form input[name=threshold]", "50")
        .await;
    browser.type_into("#rule-form input[name=for]", "0s").await;
    browser
        .type_into("#rule-form input[name=devices]", "web-*")
        .await;
    browser
        .type_into("#rule-form input[name=channels]", "ops")
        .await;
    browser
        .type_into("#rule-form input[name=escalate_after]", "15m")
        .await;
    browser
        .type_into("#rule-form input[name=escalate_channels]", "ops")
        .await;
    browser.screenshot("alerts-rule-form-desktop").await;
    // "Test": the devices the form's rule matches now, nothing stored.
    browser.click("#rule-form button[data-action=test]").await;
    let tested = browser
        .wait_for(
            "the rule's dry run",
            "const rows = document.querySelectorAll('#rule-test-result tbody tr');              return rows.length > 0 && [...rows].map(r => [...r.cells].map(c => c.textContent))",
        )
        .await;
    let rows = tested.as_array().expect("rows");
    assert_eq!(rows.len(), 1, "only web-* devices: {tested}");
    let row: Vec<&str> = rows[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        (row[0], row[1], row[3]),
        ("web-1", "ram_used_percent", "No")
    );
    assert!(row[2].parse::<f64>().is_ok_and(|v| v < 50.0), "{row:?}");
    let stored = api_get(&format!("{site}/api/v1/alert-rules")).await;
    assert_eq!(
        stored.as_array().map(Vec::len),
        Some(1),
        "not stored: {stored}"
    );
    browser.click("#rule-form button[type=submit]").await;
    browser
        .wait_for(
            "the new rule listed",
            "return !!document.querySelector('#rules-body tr[data-rule=\"ram-half\"]') \
             && document.getElementById('rule-form-box').hidden",
        )
        .await;
    let stored = api_get(&format!("{site}/api/v1/alert-rules")).await;
    let rule = stored
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == json!("ram-half"))
        .expect("the rule stored");
    assert_eq!(rule["source"], json!("dashboard"));
    assert_eq!(rule["metric"], json!("ram_used_percent"));
    assert_eq!(rule["op"], json!(">="));
    assert_eq!(rule["threshold"], json!(50.0));
    assert_eq!(rule["for"], json!("0s"));
    assert_eq!(rule["severity"], json!("warning"));
    assert_eq!(rule["devices"], json!("web-*"));
    assert_eq!(rule["channels"], json!(["ops"]));
    assert_eq!(
        rule["escalate"],
        json!([{"after": "15m", "channels": ["ops"]}])
    );
    ingest.ingest(report("web-1", 20.0, 6000)).await.unwrap();
    tailmon_testkit::eventually("the new rule fires", async || {
        let alerts = api_get(&format!("{site}/api/v1/alerts")).await;
        let list = alerts.as_array().cloned().unwrap_or_default();
        if list
            .iter()
            .any(|a| a["rule"] == json!("ram-half") && a["device_id"] == json!("web-1"))
        {
            Ok(())
        } else {
            Err(format!("{alerts}"))
        }
    })
    .await;
    // The same name again: the API's refusal shows in the form.
    browser.click("#rule-new").await;
    browser
        .type_into("#rule-form input[name=name]", "ram-half")
        .await;
    set_value(&browser, "#rule-form select[name=kind]", "offline").await;
    browser.click("#rule-form button[type=submit]").await;
    let refusal = browser
        .wait_for(
            "the API's refusal",
            "const e = document.getElementById('rule-form-error'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(refusal.as_str().unwrap().contains("ram-half"), "{refusal}");
    browser.click("#rule-form button[data-action=cancel]").await;
    browser
        .click("#rules-body tr[data-rule=\"ram-half\"] button[data-action=\"edit-rule\"]")
        .await;
    let edit = browser
        .script(
            "const f = (n) => document.getElementById('rule-form').elements.namedItem(n); \
             return { name: f('name').value, readOnly: f('name').readOnly, kind: f('kind').value, \
               threshold: f('threshold').value, op: f('op').value, after: f('escalate_after').value }",
        )
        .await
        .unwrap();
    assert_eq!(
        edit,
        json!({"name": "ram-half", "readOnly": true, "kind": "threshold", "threshold": "50",
               "op": ">=", "after": "15m"})
    );
    browser
        .type_into("#rule-form input[name=threshold]", "60")
        .await;
    browser.click("#rule-form button[type=submit]").await;
    browser
        .wait_for(
            "the edited rule",
            "const r = document.querySelector('#rules-body tr[data-rule=\"ram-half\"]'); \
             return r && r.cells[2].textContent === 'ram_used_percent >= 60'",
        )
        .await;
    for _ in 0..2 {
        browser
            .click("#rules-body tr[data-rule=\"ram-half\"] button[data-action=\"delete-rule\"]")
            .await;
    }
    browser
        .wait_for(
            "the rule deleted",
            "return !document.querySelector('#rules-body tr[data-rule=\"ram-half\"]')",
        )
        .await;

    // Channels: a form per type with labelled fields.
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
    // A webhook with a secret, through the form; "Send test" reaches the
    // receiver.
    set_value(&browser, "#channel-type", "webhook").await;
    browser
        .type_into("#channel-form input[name=name]", "hook2")
        .await;
    browser
        .type_into("#channel-form input[name=url]", &format!("{hooks}/hook2"))
        .await;
    browser
        .type_into("#channel-form input[name=secret]", "s3cret")
        .await;
    browser.screenshot("alerts-channel-form-desktop").await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the channel listed",
            "const r = document.querySelector('#channels-body tr[data-channel=\"hook2\"]'); \
             return r && r.cells[3].textContent === 'dashboard' && r.querySelectorAll('button').length === 3",
        )
        .await;
    let channels = api_get(&format!("{site}/api/v1/alert-channels")).await;
    let hook2 = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == json!("hook2"))
        .expect("the channel stored")
        .clone();
    assert_eq!(hook2["type"], json!("webhook"));
    assert_eq!(hook2["url"], json!(format!("{hooks}/hook2")));
    assert_eq!(hook2["secret"], json!("\u{2022}\u{2022}\u{2022}\u{2022}"));
    browser
        .click("#channels-body tr[data-channel=\"hook2\"] button[data-action=\"test-channel\"]")
        .await;
    browser
        .wait_for(
            "the good test",
            "const p = document.getElementById('channel-test-result'); \
             return p.classList.contains('is-ok') && p.textContent === 'Test sent through hook2.'",
        )
        .await;
    let got = received.lock().unwrap().clone();
    let test = got
        .iter()
        .find(|(path, _)| path == "/hook2")
        .unwrap_or_else(|| panic!("no test at the receiver: {got:?}"));
    assert_eq!(test.1["kind"], json!("test"));
    // ntfy, through its own form: server, topic, token.
    browser.click("#channel-new").await;
    set_value(&browser, "#channel-type", "ntfy").await;
    browser
        .type_into("#channel-form input[name=name]", "phone")
        .await;
    browser
        .type_into("#channel-form input[name=url]", &hooks)
        .await;
    browser
        .type_into("#channel-form input[name=topic]", "ops-alerts")
        .await;
    browser
        .type_into("#channel-form input[name=token]", "tk_1")
        .await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the ntfy channel listed",
            "const r = document.querySelector('#channels-body tr[data-channel=\"phone\"]'); \
             return r && r.cells[1].textContent === 'ntfy' && r.cells[2].textContent.endsWith(' \\u00b7 ops-alerts')",
        )
        .await;
    browser
        .click("#channels-body tr[data-channel=\"phone\"] button[data-action=\"test-channel\"]")
        .await;
    browser
        .wait_for(
            "the ntfy test",
            "return document.getElementById('channel-test-result').textContent === 'Test sent through phone.'",
        )
        .await;
    let got = received.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|(_, body)| body["topic"] == json!("ops-alerts")),
        "no ntfy publish at the receiver: {got:?}"
    );
    // Email, through its form: stored with the password redacted.
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
        .type_into("#channel-form input[name=port]", "465")
        .await;
    browser
        .type_into("#channel-form input[name=username]", "tailmon")
        .await;
    browser
        .type_into("#channel-form input[name=password]", "hunter2")
        .await;
    browser
        .type_into(
            "#channel-form input[name=from]",
            "Tailmon <tailmon@example.net>",
        )
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
            "the email channel listed",
            "return !!document.querySelector('#channels-body tr[data-channel=\"mail\"]')",
        )
        .await;
    let channels = api_get(&format!("{site}/api/v1/alert-channels")).await;
    let mail = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == json!("mail"))
        .expect("the email channel stored")
        .clone();
    for (key, value) in [
        ("type", json!("email")),
        ("host", json!("smtp.example.net")),
        ("port", json!(465)),
        ("security", json!("tls")),
        ("username", json!("tailmon")),
        ("password", json!("\u{2022}\u{2022}\u{2022}\u{2022}")),
        ("from", json!("Tailmon <tailmon@example.net>")),
        ("to", json!(["ops@example.net", "ana@example.net"])),
    ] {
        assert_eq!(mail[key], value, "{key}: {mail}");
    }
    // A channel whose receiver fails: the API's error, as text.
    browser.click("#channel-new").await;
    browser
        .type_into("#channel-form input[name=name]", "broken")
        .await;
    browser
        .type_into("#channel-form input[name=url]", &format!("{hooks}/broken"))
        .await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the broken channel listed",
            "return !!document.querySelector('#channels-body tr[data-channel=\"broken\"]')",
        )
        .await;
    browser
        .click("#channels-body tr[data-channel=\"broken\"] button[data-action=\"test-channel\"]")
        .await;
    let failed = browser
        .wait_for(
            "the failed test",
            "const p = document.getElementById('channel-test-result'); \
             return p.classList.contains('is-error') && p.textContent",
        )
        .await;
    let failed = failed.as_str().unwrap();
    assert!(
        failed.starts_with("The test through broken failed: ") && failed.contains("500"),
        "{failed}"
    );
    assert_eq!(
        browser
            .script("return document.querySelectorAll('#channel-test-result *').length")
            .await
            .unwrap(),
        json!(0)
    );
    // The file's channel is read-only (only "Send test").
    assert_eq!(
        browser
            .script("return document.querySelectorAll('#channels-body tr[data-channel=\"ops\"] button').length")
            .await
            .unwrap(),
        json!(1)
    );
    // Editing: the secret, redacted by the server, starts empty; left
    // empty, the server keeps the stored one.
    browser
        .click("#channels-body tr[data-channel=\"hook2\"] button[data-action=\"edit-channel\"]")
        .await;
    let secret = browser
        .script(
            "const i = document.querySelector('#channel-form input[name=secret]'); \
             return [i.value, i.placeholder, document.querySelector('#channel-form input[name=url]').value]",
        )
        .await
        .unwrap();
    assert_eq!(
        secret,
        json!([
            "",
            "Stored \u{2014} leave empty to keep it",
            format!("{hooks}/hook2")
        ])
    );
    browser
        .type_into("#channel-form input[name=url]", &format!("{hooks}/hook3"))
        .await;
    browser.click("#channel-form button[type=submit]").await;
    browser
        .wait_for(
            "the edit saved",
            "return document.getElementById('channel-form-box').hidden",
        )
        .await;
    let channels = api_get(&format!("{site}/api/v1/alert-channels")).await;
    let hook2 = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == json!("hook2"))
        .expect("the channel kept")
        .clone();
    assert_eq!(hook2["url"], json!(format!("{hooks}/hook3")));
    assert_eq!(hook2["secret"], json!("\u{2022}\u{2022}\u{2022}\u{2022}"));
    // Deleting a dashboard channel.
    for _ in 0..2 {
        browser
            .click(
                "#channels-body tr[data-channel=\"broken\"] button[data-action=\"delete-channel\"]",
            )
            .await;
    }
    browser
        .wait_for(
            "the channel deleted",
            "return !document.querySelector('#channels-body tr[data-channel=\"broken\"]')",
        )
        .await;

    // Phone size: every tab fits 360 px; both themes.
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
    for scheme in ["dark", "light"] {
        browser.set_color_scheme(scheme).await;
        browser.set_viewport(360, 740).await;
        open_tab(&browser, "firing").await;
        browser
            .screenshot(&format!("alerts-firing-phone-{scheme}"))
            .await;
        browser.set_viewport(1280, 900).await;
        browser
            .screenshot(&format!("alerts-firing-desktop-{scheme}"))
            .await;
    }
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_reaches_the_tabs_and_acknowledges() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let (hooks, _received, _receiver) = receiver().await;
    let server = server_with_rules(&hooks).await;
    let ingest = server.ingest().clone();
    let running = Running::start(server).await;
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
    // Reported once the server runs (its alert engine starts with it).
    ingest.ingest(report("db-1", 95.0, 1000)).await.unwrap();
    browser
        .wait_for(
            "the firing alert",
            "return document.querySelectorAll('#firing-body button[data-action=\"ack\"]').length === 1",
        )
        .await;
    browser
        .script("document.activeElement.blur(); return null")
        .await
        .unwrap();
    // Tab reaches the header's link and the selected tab; the arrows, Home
    // and End move between tabs.
    let mut reached = Vec::new();
    for _ in 0..30 {
        press(&browser, "Tab", 9).await;
        let id = browser
            .script("return document.activeElement.id || document.activeElement.tagName")
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
    // From the tab, Tab goes into the panel and reaches "Acknowledge";
    // Enter acknowledges.
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
    assert!(found, "Tab never reached the Acknowledge button");
    press(&browser, "Enter", 13).await;
    browser
        .wait_for(
            "the acknowledgement",
            "const r = document.querySelector('#firing-body tr'); \
             return r && r.cells[6].textContent.startsWith('Acknowledged by')",
        )
        .await;
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_acknowledges_but_gets_no_admin_forms() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    const PASSWORD: &str = "correct-horse-battery-9";
    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("ana", PASSWORD, Role::Viewer)
        .expect("user added");
    let alerts: AlertsConfig = serde_json::from_value(json!({
        "default_rules": false,
        "rules": [{"name": "cpu-high", "metric": "cpu_usage", "op": ">", "threshold": 80,
                   "for": "0s", "severity": "warning"}],
    }))
    .expect("valid alerts config");
    let server = ServerBuilder::new()
        .credentials(credentials)
        .alerts(alerts)
        .build()
        .expect("valid server");
    let ingest = server.ingest().clone();
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 900).await;
    browser.goto(&format!("{site}/login")).await;
    browser
        .wait_for(
            "the login page",
            "return document.readyState === 'complete' && document.getElementById('login-form') !== null",
        )
        .await;
    browser.type_into("#username", "ana").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
    browser
        .wait_for("signed in", "return location.pathname === '/'")
        .await;
    browser.goto(&format!("{site}/alerts.html")).await;
    browser
        .wait_for(
            "the firing tab",
            "return document.getElementById('panel-firing').dataset.loaded === 'true'",
        )
        .await;
    ingest.ingest(report("db-1", 95.0, 1000)).await.unwrap();
    browser
        .wait_for(
            "the alert, with Acknowledge",
            "return !!document.querySelector('#firing-body button[data-action=\"ack\"]')",
        )
        .await;
    let page = browser
        .script(
            "return { admin: document.body.dataset.admin, \
               channelsTab: document.getElementById('tab-channels').hidden, \
               silenceForm: document.getElementById('silence-admin').hidden, \
               newRule: document.getElementById('rules-admin-actions').hidden }",
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"admin": "false", "channelsTab": true, "silenceForm": true, "newRule": true})
    );
    browser
        .click("#firing-body button[data-action=\"ack\"]")
        .await;
    browser
        .wait_for(
            "acknowledged by the viewer",
            "const r = document.querySelector('#firing-body tr'); \
             return r && r.cells[6].textContent === 'Acknowledged by ana'",
        )
        .await;
    open_tab(&browser, "rules").await;
    assert_eq!(
        browser
            .script("return document.querySelectorAll('#rules-body button').length")
            .await
            .unwrap(),
        json!(0)
    );
    let console = browser.console().await;
    assert!(broken(&console).is_empty(), "{console:#?}");
    browser.quit().await;
}
