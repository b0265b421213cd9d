//! Run-time reload ([`Reloader::reload`]) of a served server: new
//! thresholds change every status at once (API, `ETag`s, live stream) on a
//! connection opened before; alert rules swap, keeping the state of those
//! that remain; a lowered rate limit holds from the next request; a
//! shorter retention applies at the pass that follows; the credentials
//! file is read again even when it looks unchanged; and a wrong
//! configuration changes nothing at all.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tailmon_core::{OffsetDateTime, Report};
use tailmon_server::alerts::comparison::Op;
use tailmon_server::alerts::rule::RuleKind;
use tailmon_server::alerts::{AlertState, AlertsConfig, NotificationKind, RuleConfig, Severity};
use tailmon_server::auth::{NewToken, RateLimit};
use tailmon_server::{
    Clock, Credentials, ManualClock, ReloadError, RuntimeConfig, Server, ServerBuilder,
};
use tailmon_testkit::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::alert_support::Recorder;
use crate::live::LiveReader;
use crate::support::{Running, TestDirs, call, get, json, report, within};

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

/// A report of `device` at `at` using `cpu` % of its CPU and 1/8 of its memory.
fn at(device: &str, at: OffsetDateTime, cpu: f64) -> Report {
    let mut r = report(device, cpu, 1024);
    r.last_seen = at;
    r
}

/// One HTTP/1.1 connection, kept open across requests.
struct KeepAlive {
    stream: TcpStream,
    received: Vec<u8>,
}

/// An answer: status, header lines (names in lower case), body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

impl KeepAlive {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            received: Vec::new(),
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = within(self.stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        self.received.extend_from_slice(&chunk[..n]);
    }

    /// `GET path` on this connection; the answer must have a length.
    async fn get(&mut self, path: &str) -> Answer {
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.stream.write_all(request.as_bytes()).await.unwrap();
        let end = loop {
            if let Some(end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.received[..end]).into_owned();
        self.received.drain(..end + 4);
        let mut answer = Answer {
            status: head[9..12].parse().unwrap(),
            head,
            body: Vec::new(),
        };
        let length: usize = answer
            .header("content-length")
            .unwrap_or_else(|| panic!("no content-length: {}", answer.head))
            .parse()
            .unwrap();
        while self.received.len() < length {
            self.fill().await;
        }
        answer.body = self.received.drain(..length).collect();
        answer
    }
}

#[tokio::test]
async fn new_thresholds_change_every_status_at_once_on_a_connection_opened_before() {
    let clock = Arc::new(ManualClock::new(start()));
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .build()
        .unwrap();
    let reloader = server.reloader();
    let ingest = server.ingest().clone();
    ingest.ingest(at("a", start(), 50.0)).await.unwrap();
    ingest.ingest(at("b", start(), 10.0)).await.unwrap();
    let running = Running::start(server).await;

    let mut live = LiveReader::open(running.addr, "/api/v1/live", None).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.next_json().await.0, "retry");
    let (name, snapshot) = live.next_json().await;
    assert_eq!(name, "snapshot");
    assert_eq!(snapshot[0]["status"], "ok");

    let mut connection = KeepAlive::connect(running.addr).await;
    let before = connection.get("/api/v1/devices").await;
    assert_eq!(before.status, 200);
    assert_eq!(json(&before.body)[0]["status"], "ok");
    let devices_etag = before.header("etag").unwrap().to_owned();
    let metrics_etag = connection
        .get("/api/all_metrics")
        .await
        .header("etag")
        .unwrap()
        .to_owned();

    let mut config = RuntimeConfig::default();
    config.thresholds.cpu_warning = 40.0;
    let summary = reloader.reload(config.clone()).await.unwrap();
    assert!(summary.thresholds);
    assert_eq!(summary.statuses_changed, 1, "only a crosses 40 %");
    assert_eq!(summary.to_string(), "thresholds (1 statuses changed)");

    // The live stream tells of a at once, and of b not at all.
    let (name, data) = live.next_json().await;
    assert_eq!(name, "device");
    assert_eq!(
        (data["device_id"].as_str(), data["status"].as_str()),
        (Some("a"), Some("warning"))
    );

    // The same connection, kept open across the reload, sees the new
    // statuses under new ETags.
    let after = connection.get("/api/v1/devices").await;
    assert_eq!(after.status, 200);
    let statuses: Vec<Value> = json(&after.body)
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert_eq!(statuses, ["warning", "ok"]);
    assert_ne!(after.header("etag").unwrap(), devices_etag);
    let all_metrics = connection.get("/api/all_metrics").await;
    assert_eq!(all_metrics.status, 200);
    assert_ne!(
        all_metrics.header("etag").unwrap(),
        metrics_etag,
        "the cache was made again"
    );
    let device = connection.get("/api/v1/devices?q=a").await;
    assert_eq!(json(&device.body)[0]["status"], "warning");

    // Reports from now on are judged by the new thresholds too.
    ingest
        .ingest(at("b", start() + time::Duration::SECOND, 45.0))
        .await
        .unwrap();
    let (_, data) = live.next_json().await;
    assert_eq!(
        (data["device_id"].as_str(), data["status"].as_str()),
        (Some("b"), Some("warning"))
    );

    // The same configuration again changes nothing.
    let summary = reloader.reload(config).await.unwrap();
    assert!(summary.is_empty(), "{summary:?}");
    assert_eq!(summary.to_string(), "nothing changed");
}

/// Ingests a report of `device` at the clock's time and waits until the
/// alert engine has evaluated it.
async fn report_to_alerts(server: &Server, clock: &ManualClock, device: &str, cpu: f64) {
    let seen = server.alerts().stats().reports_seen;
    server
        .ingest()
        .ingest(at(device, clock.now(), cpu))
        .await
        .unwrap();
    let alerts = server.alerts();
    eventually("the engine evaluates the report", async || {
        let now = alerts.stats().reports_seen;
        (now > seen)
            .then_some(())
            .ok_or(format!("{now} reports seen"))
    })
    .await;
}

async fn delivered(server: &Server) {
    let alerts = server.alerts();
    eventually("the queue is empty", async || {
        let pending = alerts.stats().delivery.pending;
        (pending == 0)
            .then_some(())
            .ok_or(format!("{pending} pending"))
    })
    .await;
}

fn cpu_rule(name: &str, threshold: f64) -> RuleConfig {
    RuleConfig {
        severity: Severity::Critical,
        channels: vec!["ops".into()],
        ..RuleConfig::threshold(name, "cpu_usage", Op::Above, threshold)
    }
}

fn only(rules: Vec<RuleConfig>) -> AlertsConfig {
    AlertsConfig {
        default_rules: false,
        rules,
        ..AlertsConfig::default()
    }
}

#[tokio::test]
async fn alert_rules_swap_and_those_that_remain_keep_their_alerts() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let ops = Recorder::new();
    let mut config = RuntimeConfig::default();
    config.alerts = only(vec![cpu_rule("kept", 80.0), cpu_rule("removed", 70.0)]);
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .runtime_config(config.clone())
        .alert_channel("ops", ops.clone())
        .build()
        .unwrap();
    let _router = server.router();
    let reloader = server.reloader();

    report_to_alerts(&server, &clock, "web", 90.0).await;
    delivered(&server).await;
    let firing: Vec<(String, AlertState)> = server
        .alerts()
        .alerts()
        .into_iter()
        .map(|a| (a.rule, a.state))
        .collect();
    assert_eq!(firing.len(), 2, "{firing:?}");
    assert!(firing.iter().all(|(_, state)| *state == AlertState::Firing));
    let kept = server
        .alerts()
        .alerts()
        .into_iter()
        .find(|a| a.rule == "kept")
        .unwrap();
    server.alerts().acknowledge(&kept.id, "ann").unwrap();
    // A rule made in the dashboard, which the file's reload leaves alone.
    server
        .alerts()
        .create_rule(cpu_rule("dashboard", 99.0))
        .unwrap();

    clock.advance(Duration::from_secs(60));
    config.alerts = only(vec![cpu_rule("kept", 80.0), cpu_rule("added", 85.0)]);
    let summary = reloader.reload(config).await.unwrap();
    assert_eq!(summary.alerts.rules.added, ["added"]);
    assert_eq!(summary.alerts.rules.removed, ["removed"]);
    assert!(summary.alerts.rules.changed.is_empty());
    assert_eq!(summary.alerts.alerts_ended, 1);
    assert_eq!(
        summary.to_string(),
        "alert rules (1 added, 1 removed), 1 alerts ended with their rules"
    );

    // The remaining rule's alert is as it was: firing since then, acknowledged.
    let under_way = server.alerts().alerts();
    assert_eq!(under_way.len(), 1, "{under_way:?}");
    assert_eq!(under_way[0].id, kept.id);
    assert_eq!(under_way[0].state, AlertState::Firing);
    assert_eq!(under_way[0].since, kept.since);
    assert_eq!(under_way[0].acknowledged_by.as_deref(), Some("ann"));
    // The removed rule's alert is resolved, in the history and to its channel.
    let history = server.alerts().history(10, None);
    let removed = history.iter().find(|a| a.rule == "removed").unwrap();
    assert_eq!(removed.state, AlertState::Resolved);
    assert_eq!(removed.resolved_at, Some(clock.now()));
    delivered(&server).await;
    let last = ops.sent().pop().unwrap();
    assert_eq!(
        (last.kind, last.rule.as_str()),
        (NotificationKind::Resolved, "removed")
    );

    // The new rule fires at the next report, through the same queue.
    report_to_alerts(&server, &clock, "web", 90.0).await;
    delivered(&server).await;
    let rules: Vec<String> = server
        .alerts()
        .alerts()
        .into_iter()
        .map(|a| a.rule)
        .collect();
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(rules.contains(&"added".to_owned()), "{rules:?}");
    let last = ops.sent().pop().unwrap();
    assert_eq!(
        (last.kind, last.rule.as_str()),
        (NotificationKind::Firing, "added")
    );
    let names: Vec<String> = server
        .alerts()
        .rules()
        .into_iter()
        .map(|r| r.rule.name)
        .collect();
    assert_eq!(names, ["kept", "added", "dashboard"]);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_file_rule_hides_a_dashboard_rule_of_its_name_only_while_it_is_there() {
    use tailmon_server::alerts::rule::RuleSource;

    let dirs = TestDirs::new("reload_hidden_rule");
    let dir = dirs.fresh();
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = RuntimeConfig::default();
    config.alerts = only(Vec::new());
    let server = ServerBuilder::new()
        .open_access()
        .runtime_config(config.clone())
        .alerts_database(dir.join("alerts.db"))
        .build()
        .unwrap();
    let reloader = server.reloader();
    let rules = || {
        server
            .alerts()
            .rules()
            .into_iter()
            .map(|r| (r.rule.name, r.source, r.rule.threshold))
            .collect::<Vec<_>>()
    };
    let mine = RuleConfig::threshold("shared", "cpu_usage", Op::Above, 95.0);
    server.alerts().create_rule(mine).unwrap();

    config.alerts = only(vec![RuleConfig::threshold(
        "shared",
        "cpu_usage",
        Op::Above,
        50.0,
    )]);
    let summary = reloader.reload(config.clone()).await.unwrap();
    assert_eq!(summary.alerts.rules.changed, ["shared"]);
    assert_eq!(rules(), [("shared".into(), RuleSource::File, Some(50.0))]);

    config.alerts = only(Vec::new());
    let summary = reloader.reload(config).await.unwrap();
    assert_eq!(summary.alerts.rules.changed, ["shared"]);
    assert_eq!(
        rules(),
        [("shared".into(), RuleSource::Dashboard, Some(95.0))],
        "the dashboard's rule, kept in alerts.db, is back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shorter_evaluation_period_takes_effect_at_once() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let mut config = RuntimeConfig::default();
    config.alerts = AlertsConfig {
        evaluate_every: Some(Duration::from_secs(3600)),
        ..only(vec![RuleConfig::of_kind("down", RuleKind::Offline)])
    };
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .runtime_config(config.clone())
        .build()
        .unwrap();
    let _router = server.router();
    report_to_alerts(&server, &clock, "a", 10.0).await;
    // Offline by the server's clock; the timer, once an hour, has not seen it.
    clock.advance(Duration::from_secs(60));

    config.alerts.evaluate_every = Some(Duration::from_secs(1));
    let summary = server.reloader().reload(config).await.unwrap();
    assert!(summary.alerts.settings);
    assert_eq!(summary.to_string(), "alert settings");
    assert_eq!(server.alerts().evaluate_every(), Duration::from_secs(1));
    let alerts = server.alerts();
    eventually(
        "the timer, now every second, finds a offline",
        async || match alerts.alerts().as_slice() {
            [alert] if alert.rule == "down" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
}

#[tokio::test]
async fn lowered_rate_limits_hold_from_the_next_request() {
    let clock = Arc::new(ManualClock::new(start()));
    let credentials = Arc::new(Credentials::in_memory());
    let token = credentials
        .create_token(NewToken::read("reader"))
        .unwrap()
        .token;
    let server = ServerBuilder::new()
        .credentials(credentials)
        .clock(clock.clone())
        .build()
        .unwrap();
    let reloader = server.reloader();
    let running = Running::start(server).await;
    let client = reqwest::Client::new();
    // A public route that counts against the address's limit (health
    // probes do not).
    let public = async || {
        client
            .get(format!("{}/api/openapi.json", running.url()))
            .send()
            .await
            .unwrap()
            .status()
    };
    let devices = async || {
        client
            .get(format!("{}/api/v1/devices", running.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
    };
    for _ in 0..5 {
        assert_eq!(public().await, 200, "the default allows bursts of 200");
    }

    let mut config = RuntimeConfig::default();
    config.rate_limit_per_address = RateLimit::new(1, 2);
    let summary = reloader.reload(config.clone()).await.unwrap();
    assert!(summary.rate_limit_per_address && !summary.rate_limit_per_token);
    assert_eq!(summary.to_string(), "rate limit per address");
    assert_eq!(public().await, 200);
    assert_eq!(public().await, 200);
    assert_eq!(public().await, 429, "two at once, then one a second");
    clock.advance(Duration::from_secs(1));
    assert_eq!(public().await, 200);

    // Per address off, per token lowered: the token is held back, a
    // request without one is not.
    config.rate_limit_per_address = None;
    config.rate_limit_per_token = RateLimit::new(1, 3);
    let summary = reloader.reload(config).await.unwrap();
    assert_eq!(
        summary.to_string(),
        "rate limit per address, rate limit per token"
    );
    for _ in 0..3 {
        assert_eq!(devices().await, 200);
    }
    assert_eq!(devices().await, 429);
    for _ in 0..10 {
        assert_eq!(public().await, 200, "no limit per address");
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_shorter_retention_applies_at_the_pass_that_follows() {
    use futures_util::StreamExt;
    use tailmon_server::{SqliteStore, Store};

    let dirs = TestDirs::new("reload_retention");
    let now = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(now));
    let store = Arc::new(
        SqliteStore::builder(dirs.fresh())
            .clock(clock.clone())
            .open()
            .unwrap(),
    );
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(store.clone())
        .runtime_config(RuntimeConfig::default())
        .build()
        .unwrap();
    let reloader = server.reloader();
    // The router starts the retention task (a pass at once, by the defaults).
    let _router = server.router();
    for last_seen in [now - time::Duration::hours(3), now] {
        server
            .ingest()
            .ingest(at("d", last_seen, 10.0))
            .await
            .unwrap();
    }
    let kept = async || {
        let reports = store
            .reports(
                &tailmon_server::store::OrgId::default(),
                "d",
                OffsetDateTime::UNIX_EPOCH,
                now + time::Duration::HOUR,
            )
            .await
            .unwrap()
            .unwrap();
        reports.count().await
    };
    assert_eq!(kept().await, 2, "48 h keeps both");

    let mut config = RuntimeConfig::default();
    config.retention.raw = Duration::from_secs(3600);
    let summary = reloader.reload(config).await.unwrap();
    assert!(summary.retention);
    assert_eq!(summary.to_string(), "retention");
    eventually(
        "the pass after the reload drops the report 3 h old",
        async || match kept().await {
            1 => Ok(()),
            n => Err(format!("{n} raw reports")),
        },
    )
    .await;
}

#[tokio::test]
async fn a_wrong_configuration_changes_nothing() {
    let clock = Arc::new(ManualClock::new(start()));
    let mut config = RuntimeConfig::default();
    config.alerts = only(vec![cpu_rule("kept", 80.0)]);
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .runtime_config(config.clone())
        .alert_channel("ops", Recorder::new())
        .build()
        .unwrap();
    let router = server.router();
    let reloader = server.reloader();
    server
        .ingest()
        .ingest(at("a", start(), 50.0))
        .await
        .unwrap();

    // Each wrong one lowers the CPU warning too, which alone would pass.
    let lowered = || {
        let mut c = config.clone();
        c.thresholds.cpu_warning = 40.0;
        c
    };
    let mut cases: Vec<(RuntimeConfig, &str)> = Vec::new();
    let mut c = lowered();
    c.thresholds.cpu_critical = 30.0;
    cases.push((c, "cpu_warning: 40 is above the critical threshold 30"));
    let mut c = lowered();
    c.thresholds.ram_warning = f64::NAN;
    cases.push((c, "ram_warning: must be a percentage"));
    let mut c = lowered();
    c.retention.minute = Duration::ZERO;
    cases.push((c, "minute_retention: must be at least one minute"));
    let mut c = lowered();
    c.alerts.rules.push(RuleConfig {
        channels: vec!["nowhere".into()],
        ..cpu_rule("new", 90.0)
    });
    cases.push((c, "no channel is named \"nowhere\""));
    let mut c = lowered();
    c.alerts.repeat = Duration::ZERO;
    cases.push((c, "alerts.repeat: must be at least 1m"));
    let mut c = lowered();
    c.alerts.public_url = Some("https://[::1".into());
    cases.push((c, "alerts.public_url"));
    for (wrong, expected) in cases {
        let error = reloader.reload(wrong).await.unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{error} should say {expected:?}"
        );
    }

    assert_eq!(reloader.current().await, config);
    let (_, body) = call(&router, get("/api/v1/devices")).await;
    assert_eq!(
        json(&body)[0]["status"],
        "ok",
        "the thresholds are as they were"
    );
    let names: Vec<String> = server
        .alerts()
        .rules()
        .into_iter()
        .map(|r| r.rule.name)
        .collect();
    assert_eq!(names, ["kept"]);
}

/// Writes `bytes` over `file` in place (same inode), padded with spaces to
/// `length`, and gives it back the modification time `modified`: to the
/// server's change check, the file looks untouched.
fn overwrite_unseen(
    file: &std::path::Path,
    bytes: &[u8],
    length: usize,
    modified: std::time::SystemTime,
) {
    use std::io::Write;
    let mut padded = bytes.to_vec();
    padded.resize(length, b' ');
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .unwrap();
    handle.write_all(&padded).unwrap();
    handle.set_modified(modified).unwrap();
}

#[tokio::test]
async fn the_credentials_file_is_read_again_even_when_it_looks_unchanged() {
    let dirs = TestDirs::new("reload_credentials");
    let (dir, elsewhere) = (dirs.fresh(), dirs.fresh());
    let credentials = Arc::new(Credentials::open(&dir).unwrap());
    let old = credentials
        .create_token(NewToken::read("old"))
        .unwrap()
        .token;
    // A token written to the file by other means (another set of the same
    // shape, copied over it).
    let other = Credentials::open(&elsewhere).unwrap();
    let new = other.create_token(NewToken::read("new")).unwrap().token;
    let file = credentials.path().unwrap();
    let (ours, theirs) = (
        std::fs::read(&file).unwrap(),
        std::fs::read(other.path().unwrap()).unwrap(),
    );
    let length = ours.len().max(theirs.len());
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    overwrite_unseen(&file, &ours, length, modified);

    let server = ServerBuilder::new()
        .credentials(credentials)
        .build()
        .unwrap();
    let reloader = server.reloader();
    let running = Running::start(server).await;
    let client = reqwest::Client::new();
    let devices = async |token: &str| {
        client
            .get(format!("{}/api/v1/devices", running.url()))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(devices(&old).await, 200);
    overwrite_unseen(&file, &theirs, length, modified);
    assert_eq!(
        devices(&new).await,
        401,
        "the file looks unchanged: not read again"
    );

    // A damaged file is refused, and the reload with it changes nothing.
    overwrite_unseen(&file, b"{\"version\": 1, \"tokens\": [", length, modified);
    let mut config = RuntimeConfig::default();
    config.thresholds.cpu_warning = 40.0;
    let error = reloader.reload(config.clone()).await.unwrap_err();
    assert!(matches!(error, ReloadError::Credentials(_)), "{error}");
    assert_eq!(reloader.current().await, RuntimeConfig::default());
    assert_eq!(devices(&old).await, 200);

    overwrite_unseen(&file, &theirs, length, modified);
    let summary = reloader.reload(config).await.unwrap();
    assert!(summary.credentials && summary.thresholds, "{summary:?}");
    assert_eq!(
        summary.to_string(),
        "thresholds (0 statuses changed), tokens and users"
    );
    assert_eq!(devices(&new).await, 200);
    assert_eq!(devices(&old).await, 401);
    // Read again, unchanged: nothing to say.
    let same = reloader.current().await;
    assert!(reloader.reload(same).await.unwrap().is_empty());
}
