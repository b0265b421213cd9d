//! Alerting per organisation: two organisations with the same device id
//! and the same rule name alert apart, and an alert, silence, rule or
//! channel of the other organisation answers as an unknown one on every
//! alerting route; an `alerts.db` written before organisations opens with
//! everything in `default`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use tailmon_core::{Disk, OffsetDateTime, OrgId, Report};
use tailmon_server::alerts::comparison::Op;
use tailmon_server::alerts::{AlertState, AlertsConfig, NotificationKind, RuleConfig};
use tailmon_server::auth::Role;
use tailmon_server::{Clock, Credentials, ManualClock, MemoryStore, Server, ServerBuilder, Store};
use tailmon_testkit::eventually;

use crate::alert_support::Recorder;
use crate::people::{self, Session, as_session, json_request};

/// `amy`'s password; `amy` is the admin of `acme` only.
const AMY_PASSWORD: &str = "acme-password-1";

fn acme() -> OrgId {
    OrgId::new("acme").unwrap()
}

fn report(device: &str, at: OffsetDateTime, cpu: f64) -> Report {
    let mut report = Report::new(device, at);
    report.cpu_usage = cpu;
    report.ram_used_mb = 1;
    report.ram_total_mb = 4;
    report
}

/// The file's rule of `default`: `cpu-high`, CPU above 80 %, at once, to `app`.
fn file_rule() -> RuleConfig {
    RuleConfig {
        channels: vec!["app".into()],
        ..RuleConfig::threshold("cpu-high", "cpu_usage", Op::Above, 80.0)
    }
}

/// An HTTP receiver on 127.0.0.1:0 that records the JSON bodies it gets.
struct Hook {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    async fn start() -> Self {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let app = Router::new()
            .fallback(
                |State(bodies): State<Arc<Mutex<Vec<Value>>>>, body: Bytes| async move {
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    bodies.lock().unwrap().push(value);
                    "ok"
                },
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{address}/hook"),
            bodies,
        }
    }

    fn kinds(&self) -> Vec<(String, String)> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["kind"].as_str().unwrap_or("").to_owned(),
                    b["device_id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

/// A server with two organisations: `default` (admin `root`, the file's
/// rule `cpu-high`, the application's channel `app`) and `acme` (admin
/// `amy`, nothing at first), one store and a manual clock.
struct Tenants {
    server: Server,
    router: Router,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    app: Arc<Recorder>,
    root: Session,
    amy: Session,
}

impl Tenants {
    async fn new() -> Self {
        let credentials = people::people();
        credentials.create_org(&acme(), None).unwrap();
        credentials
            .add_user_in("amy", AMY_PASSWORD, &acme(), Role::Admin)
            .unwrap();
        Self::with(credentials).await
    }

    async fn with(credentials: Arc<Credentials>) -> Self {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let app = Recorder::new();
        let server = ServerBuilder::new()
            .credentials(credentials)
            .clock(clock.clone())
            .store(store.clone())
            .alerts(AlertsConfig {
                default_rules: false,
                rules: vec![file_rule()],
                ..AlertsConfig::default()
            })
            .alert_channel("app", app.clone())
            .build()
            .unwrap();
        let router = server.router();
        let root = people::login(&router, "root", people::ADMIN_PASSWORD).await;
        let amy = people::login(&router, "amy", AMY_PASSWORD).await;
        Self {
            server,
            router,
            store,
            clock,
            app,
            root,
            amy,
        }
    }

    /// `method path` with `body`, as `who`.
    async fn call(
        &self,
        who: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let request = as_session(json_request(method, path, body), who);
        let (status, _, body) = people::send(&self.router, request).await;
        (status, body)
    }

    async fn get(&self, who: &Session, path: &str) -> Value {
        let (status, body) = self.call(who, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// A report of `default`'s device, through ingest and the alert task.
    async fn report_in_default(&self, device: &str, cpu: f64) {
        let engine = self.server.alerts();
        let seen = engine.stats().reports_seen;
        self.server
            .ingest()
            .ingest(report(device, self.clock.now(), cpu))
            .await
            .unwrap();
        eventually("the engine evaluates the report", async || {
            let now = engine.stats().reports_seen;
            (now > seen).then_some(()).ok_or(format!("{now} seen"))
        })
        .await;
    }

    /// A report of `acme`'s device: stored in `acme`, then handed to the
    /// engines as the alert task hands on a fleet change of `acme`.
    async fn report_in_acme(&self, device: &str, cpu: f64) {
        let report = report(device, self.clock.now(), cpu);
        self.store.insert(&acme(), report.clone()).await.unwrap();
        self.server.org_alerts().observe(&acme(), &report);
    }

    /// Asserts that `who`'s `method path_with(id)` answers as it does for
    /// an id that exists in no organisation: the same status and the same
    /// body, but for the id itself.
    async fn answers_as_unknown(
        &self,
        who: &Session,
        method: Method,
        path_with: impl Fn(&str) -> String,
        id: &str,
        body: Option<Value>,
    ) {
        let unknown = "nothing-of-that-name";
        let (status, answer) = self
            .call(who, method.clone(), &path_with(id), body.clone())
            .await;
        let (unknown_status, unknown_answer) =
            self.call(who, method, &path_with(unknown), body).await;
        assert_eq!(
            (status, answer.to_string().replace(id, "<id>")),
            (
                unknown_status,
                unknown_answer.to_string().replace(unknown, "<id>")
            ),
            "{}",
            path_with(id)
        );
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    }
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect()
}

fn names(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_organisations_with_the_same_device_and_rule_alert_apart() {
    let t = Tenants::new().await;
    let hook = Hook::start().await;

    // `acme` starts with no rule and no channel, whatever the file says.
    assert_eq!(t.get(&t.amy, "/api/v1/alert-rules").await, json!([]));
    assert_eq!(t.get(&t.amy, "/api/v1/alert-channels").await, json!([]));
    // Its admin makes a channel and a rule of the same name as `default`'s.
    let (status, body) = t
        .call(
            &t.amy,
            Method::POST,
            "/api/v1/alert-channels",
            Some(json!({"name": "hook", "type": "webhook", "url": hook.url})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = t
        .call(
            &t.amy,
            Method::POST,
            "/api/v1/alert-rules",
            Some(json!({"name": "cpu-high", "metric": "cpu_usage", "op": ">", "threshold": 90.0, "channels": ["hook"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        names(&t.get(&t.root, "/api/v1/alert-rules").await),
        [("cpu-high".to_owned(), "file".to_owned())]
    );
    assert_eq!(
        names(&t.get(&t.amy, "/api/v1/alert-rules").await),
        [("cpu-high".to_owned(), "dashboard".to_owned())]
    );
    assert_eq!(
        names(&t.get(&t.root, "/api/v1/alert-channels").await),
        [("app".to_owned(), "application".to_owned())]
    );
    assert_eq!(
        names(&t.get(&t.amy, "/api/v1/alert-channels").await),
        [("hook".to_owned(), "dashboard".to_owned())]
    );

    // Both have a `web-1`: `default`'s is hot, `acme`'s is not.
    t.report_in_default("web-1", 95.0).await;
    t.report_in_acme("web-1", 85.0).await;
    let firing = t.get(&t.root, "/api/v1/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 1, "{firing}");
    assert_eq!(firing[0]["device_id"], "web-1");
    assert_eq!(firing[0]["value"], 95.0);
    assert_eq!(firing[0]["state"], "firing");
    let id = firing[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(t.get(&t.amy, "/api/v1/alerts").await, json!([]));
    assert_eq!(
        ids(&t.get(&t.root, "/api/v1/alerts/history").await),
        [id.as_str()]
    );
    assert_eq!(t.get(&t.amy, "/api/v1/alerts/history").await, json!([]));

    // `default`'s alert is unknown to `acme`: acknowledging it answers as
    // for an alert nobody has, and changes nothing.
    t.answers_as_unknown(
        &t.amy,
        Method::POST,
        |id| format!("/api/v1/alerts/{id}/ack"),
        &id,
        None,
    )
    .await;
    assert_eq!(
        t.get(&t.root, "/api/v1/alerts").await[0]["acknowledged_by"],
        Value::Null
    );

    // A dry run reads the caller's devices only.
    let probe = json!({"name": "probe", "metric": "cpu_usage", "op": ">", "threshold": 50.0});
    for (who, value) in [(&t.root, 95.0), (&t.amy, 85.0)] {
        let (status, run) = t
            .call(
                who,
                Method::POST,
                "/api/v1/alert-rules/test",
                Some(probe.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["devices_checked"], 1, "{run}");
        assert_eq!(
            run["matches"],
            json!([{"device_id": "web-1", "metric": "cpu_usage", "value": value, "holds": true}])
        );
    }

    // `acme`'s `web-1` gets hot: an alert of the same id, its own.
    t.report_in_acme("web-1", 99.0).await;
    let acme_firing = t.get(&t.amy, "/api/v1/alerts").await;
    assert_eq!(ids(&acme_firing), [id.as_str()]);
    assert_eq!(acme_firing[0]["value"], 99.0);
    assert_eq!(acme_firing[0]["threshold"], 90.0);
    let (status, acked) = t
        .call(
            &t.amy,
            Method::POST,
            &format!("/api/v1/alerts/{id}/ack"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledged_by"], "amy");
    // `default`'s alert of that id is untouched.
    let firing = t.get(&t.root, "/api/v1/alerts").await;
    assert_eq!(
        (
            firing[0]["value"].clone(),
            firing[0]["acknowledged_by"].clone()
        ),
        (json!(95.0), Value::Null)
    );

    // Each was told through its own organisation's channels only, with the
    // device's address as before.
    eventually("acme's webhook is told", async || {
        (hook.kinds() == [("firing".to_owned(), "web-1".to_owned())])
            .then_some(())
            .ok_or(format!("{:?}", hook.kinds()))
    })
    .await;
    let told = hook.bodies.lock().unwrap()[0].clone();
    assert_eq!(told["url"], "http://localhost:3000/device.html?id=web-1");
    assert_eq!(told["value"], 99.0);
    eventually("default's channel is told", async || {
        (!t.app.sent().is_empty())
            .then_some(())
            .ok_or("nothing".to_owned())
    })
    .await;
    assert_eq!(
        t.app.kinds(),
        [(NotificationKind::Firing, "web-1".to_owned())]
    );
    assert_eq!(t.app.sent()[0].value, Some(95.0));

    // Silences: `root`'s is `default`'s only.
    let until = t.clock.now() + time::Duration::hours(1);
    let (status, silence) = t
        .call(
            &t.root,
            Method::POST,
            "/api/v1/silences",
            Some(json!({"device": "web-*", "until": until.format(&time::format_description::well_known::Rfc3339).unwrap()})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{silence}");
    let silence_id = silence["id"].as_str().unwrap().to_owned();
    assert_eq!(t.get(&t.amy, "/api/v1/silences").await, json!([]));
    assert_eq!(
        t.get(&t.amy, "/api/v1/alerts").await[0]["silenced_until"],
        Value::Null
    );
    t.answers_as_unknown(
        &t.amy,
        Method::DELETE,
        |id| format!("/api/v1/silences/{id}"),
        &silence_id,
        None,
    )
    .await;
    assert_eq!(
        ids(&t.get(&t.root, "/api/v1/silences").await),
        [silence_id.as_str()]
    );

    // Rules and channels of the other organisation are unknown, to change,
    // delete or test alike.
    let (status, body) = t
        .call(
            &t.amy,
            Method::POST,
            "/api/v1/alert-rules",
            Some(json!({"name": "acme-only", "metric": "cpu_usage", "op": ">", "threshold": 99.5})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rule =
        |name: &str| json!({"name": name, "metric": "cpu_usage", "op": ">", "threshold": 99.0});
    t.answers_as_unknown(
        &t.root,
        Method::PUT,
        |name| format!("/api/v1/alert-rules/{name}"),
        "acme-only",
        Some(rule("acme-only")),
    )
    .await;
    t.answers_as_unknown(
        &t.root,
        Method::DELETE,
        |name| format!("/api/v1/alert-rules/{name}"),
        "acme-only",
        None,
    )
    .await;
    for (who, name) in [(&t.amy, "app"), (&t.root, "hook")] {
        t.answers_as_unknown(
            who,
            Method::POST,
            |name| format!("/api/v1/alert-channels/{name}/test"),
            name,
            None,
        )
        .await;
        t.answers_as_unknown(
            who,
            Method::DELETE,
            |name| format!("/api/v1/alert-channels/{name}"),
            name,
            None,
        )
        .await;
    }
    // `acme`'s rule is still there; `default`'s `cpu-high` is still the file's.
    assert_eq!(
        names(&t.get(&t.amy, "/api/v1/alert-rules").await),
        [
            ("cpu-high".to_owned(), "dashboard".to_owned()),
            ("acme-only".to_owned(), "dashboard".to_owned())
        ]
    );
    assert_eq!(
        names(&t.get(&t.root, "/api/v1/alert-rules").await),
        [("cpu-high".to_owned(), "file".to_owned())]
    );
    // Its own channel tests fine.
    let (status, body) = t
        .call(
            &t.amy,
            Method::POST,
            "/api/v1/alert-channels/hook/test",
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));

    // A device deleted in one organisation ends its alerts there only.
    t.server.org_alerts().forget_device(&acme(), "web-1");
    assert_eq!(t.get(&t.amy, "/api/v1/alerts").await, json!([]));
    assert_eq!(ids(&t.get(&t.root, "/api/v1/alerts").await), [id.as_str()]);
}

#[tokio::test]
async fn the_timer_evaluates_every_organisation_on_its_own_devices() {
    let t = Tenants::new().await;
    let (status, body) = t
        .call(
            &t.amy,
            Method::POST,
            "/api/v1/alert-rules",
            Some(json!({"name": "gone", "kind": "offline", "devices": "web-*"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    t.report_in_default("web-1", 10.0).await;
    t.report_in_acme("web-2", 10.0).await;
    t.clock.advance(Duration::from_secs(3600));
    t.server.org_alerts().evaluate_now().await;
    // Only `acme` has an offline rule, and only its own device goes offline.
    let offline = t.get(&t.amy, "/api/v1/alerts").await;
    assert_eq!(offline.as_array().unwrap().len(), 1, "{offline}");
    assert_eq!(
        (
            offline[0]["device_id"].clone(),
            offline[0]["metric"].clone()
        ),
        (json!("web-2"), json!("offline"))
    );
    assert_eq!(t.get(&t.root, "/api/v1/alerts").await, json!([]));
    assert_eq!(
        t.server.org_alerts().organisations(),
        [OrgId::default(), acme()]
    );
    assert_eq!(
        t.server.org_alerts().engine(&acme()).alerts()[0].state,
        AlertState::Firing
    );
}

/// A report with one disk, `/`, `percent` full.
fn disk_report(device: &str, at: OffsetDateTime, percent: f64) -> Report {
    let mut report = report(device, at, 1.0);
    let total = 1_000_000_000_u64;
    report.disks = Some(vec![Disk {
        mount_point: "/".into(),
        fs_type: "ext4".into(),
        total_bytes: total,
        used_bytes: (total as f64 * percent / 100.0) as u64,
        available_bytes: None,
    }]);
    report
}

#[tokio::test]
async fn the_disk_forecast_reads_the_organisation_s_own_history() {
    let t = Tenants::new().await;
    let rule = json!({"name": "disk-filling", "kind": "disk_full", "within": "1d", "window": "6h"});
    for who in [&t.root, &t.amy] {
        let (status, body) = t
            .call(who, Method::POST, "/api/v1/alert-rules", Some(rule.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // Three hours of `web-1` in each: `acme`'s disk gains 2 % an hour
    // (full in about 22 h), `default`'s stays at 70 %.
    for step in 0..=36 {
        let now = t.clock.now();
        let filling = disk_report("web-1", now, 50.0 + 2.0 * f64::from(step) * 5.0 / 60.0);
        let steady = disk_report("web-1", now, 70.0);
        t.store.insert(&acme(), filling.clone()).await.unwrap();
        t.store
            .insert(&OrgId::default(), steady.clone())
            .await
            .unwrap();
        t.server.org_alerts().observe(&acme(), &filling);
        t.server.org_alerts().observe(&OrgId::default(), &steady);
        t.clock.advance(Duration::from_secs(300));
    }
    t.server.org_alerts().evaluate_now().await;
    let firing = t.get(&t.amy, "/api/v1/alerts").await;
    assert_eq!(firing.as_array().unwrap().len(), 1, "{firing}");
    assert_eq!(
        (firing[0]["device_id"].clone(), firing[0]["metric"].clone()),
        (json!("web-1"), json!("disk_used_percent:/"))
    );
    assert_eq!(t.get(&t.root, "/api/v1/alerts").await, json!([]));
    // The dry run too.
    let probe = json!({"name": "probe", "kind": "disk_full", "within": "1d", "window": "6h"});
    let mut hours = Vec::new();
    for who in [&t.root, &t.amy] {
        let (status, run) = t
            .call(
                who,
                Method::POST,
                "/api/v1/alert-rules/test",
                Some(probe.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["matches"].as_array().unwrap().len(), 1, "{run}");
        hours.push(run["matches"][0]["hours_to_full"].as_f64());
    }
    assert_eq!(hours[0], None);
    assert!(
        hours[1].is_some_and(|h| (20.0..24.0).contains(&h)),
        "{hours:?}"
    );
}

#[cfg(feature = "sqlite")]
mod database {
    use super::*;

    use crate::support::TestDirs;
    use tailmon_server::alerts::ALERTS_DATABASE_FILE;

    /// `tests/fixtures/alerts-db-before-orgs/`: see its README.
    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alerts-db-before-orgs/alerts.db"
    );

    /// A server on `dir`'s alerts database, as the fixture's was made.
    fn server_on(dir: &std::path::Path, app: Arc<Recorder>) -> Server {
        // A minute after the fixture's last change.
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_090).unwrap();
        ServerBuilder::new()
            .open_access()
            .clock(Arc::new(ManualClock::new(at)))
            .alerts(AlertsConfig {
                default_rules: false,
                ..AlertsConfig::default()
            })
            .alert_channel("app", app)
            .alerts_database(dir.join(ALERTS_DATABASE_FILE))
            .build()
            .unwrap()
    }

    fn rule_names(engine: &tailmon_server::alerts::AlertEngine) -> Vec<String> {
        engine.rules().into_iter().map(|r| r.rule.name).collect()
    }

    #[tokio::test]
    async fn an_alerts_database_written_before_organisations_opens_into_default() {
        let dirs = TestDirs::new("alerts_database_before_orgs");
        let dir = dirs.fresh();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(FIXTURE, dir.join(ALERTS_DATABASE_FILE)).unwrap();

        let server = server_on(&dir, Recorder::new());
        let default = server.alerts();
        assert_eq!(rule_names(default), ["cpu-high", "ram-high"]);
        let channels: Vec<(String, Value)> = default
            .channels()
            .into_iter()
            .map(|c| {
                let view = serde_json::to_value(&c).unwrap();
                (c.name, view["source"].clone())
            })
            .collect();
        assert_eq!(
            channels,
            [
                ("app".to_owned(), json!("application")),
                ("hook".to_owned(), json!("dashboard"))
            ]
        );
        let alerts = default.alerts();
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (
                alerts[0].device_id.as_str(),
                alerts[0].state,
                alerts[0].acknowledged_by.as_deref()
            ),
            ("web-1", AlertState::Firing, Some("alice"))
        );
        let history: Vec<(String, AlertState)> = default
            .history(10, None)
            .into_iter()
            .map(|a| (a.device_id, a.state))
            .collect();
        assert_eq!(
            history,
            [
                ("web-1".to_owned(), AlertState::Firing),
                ("web-2".to_owned(), AlertState::Resolved)
            ]
        );
        let silences = default.silences();
        assert_eq!(silences.len(), 1);
        assert_eq!(
            (
                silences[0].device.as_deref(),
                silences[0].comment.as_deref()
            ),
            (Some("db-*"), Some("maintenance"))
        );
        // Nothing of it in another organisation.
        let acme_engine = server.org_alerts().engine(&acme());
        assert!(acme_engine.rules().is_empty());
        assert!(acme_engine.channels().is_empty());
        assert!(acme_engine.alerts().is_empty());
        assert!(acme_engine.history(10, None).is_empty());
        assert!(acme_engine.silences().is_empty());

        // `acme` keeps its own across a restart, beside `default`'s.
        acme_engine
            .create_rule(RuleConfig::threshold(
                "cpu-high",
                "cpu_usage",
                Op::Above,
                70.0,
            ))
            .unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_090).unwrap();
        acme_engine.observe(&report("web-1", now, 75.0));
        assert_eq!(acme_engine.alerts().len(), 1);
        drop(acme_engine);
        drop(server);

        let server = server_on(&dir, Recorder::new());
        assert_eq!(
            server.org_alerts().organisations(),
            [OrgId::default(), acme()]
        );
        let acme_engine = server.org_alerts().engine(&acme());
        assert_eq!(rule_names(&acme_engine), ["cpu-high"]);
        assert_eq!(acme_engine.rules()[0].rule.threshold, Some(70.0));
        let alerts = acme_engine.alerts();
        assert_eq!(
            (alerts.len(), alerts[0].value),
            (1, Some(75.0)),
            "{alerts:?}"
        );
        assert_eq!(acme_engine.history(10, None).len(), 1);
        assert_eq!(rule_names(server.alerts()), ["cpu-high", "ram-high"]);
        assert_eq!(server.alerts().history(10, None).len(), 2);
        assert_eq!(server.alerts().alerts()[0].value, Some(97.0));

        // Removing the organisation removes what alerting kept of it.
        server.org_alerts().remove_organisation(&acme()).unwrap();
        assert!(
            server
                .org_alerts()
                .remove_organisation(&OrgId::default())
                .is_err()
        );
        drop(acme_engine);
        drop(server);
        let server = server_on(&dir, Recorder::new());
        assert_eq!(server.org_alerts().organisations(), [OrgId::default()]);
        assert!(server.org_alerts().engine(&acme()).rules().is_empty());
        assert_eq!(server.alerts().history(10, None).len(), 2);
    }
}
