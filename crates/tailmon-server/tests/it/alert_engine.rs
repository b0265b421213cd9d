//! The alert engine's timing, driven by a `ManualClock`: `for`, hysteresis,
//! repeat, escalation (and none once acknowledged), silences, the offline
//! and predictive rules, no duplicate across a restart.

use std::sync::Arc;
use std::time::Duration;

use tailmon_core::{Disk, OffsetDateTime, ProcessInfo, Report};
use tailmon_server::alerts::comparison::Op;
use tailmon_server::alerts::rule::{Escalation, RuleKind};
use tailmon_server::alerts::{AlertState, AlertsConfig, NotificationKind, RuleConfig, Severity};
use tailmon_server::{Clock, ManualClock, Server, ServerBuilder};
use tailmon_testkit::eventually;

use crate::alert_support::Recorder;

const MINUTE: Duration = Duration::from_secs(60);

/// A server on a manual clock with two recorded channels, `ops` and `pager`.
struct Bench {
    server: Server,
    clock: Arc<ManualClock>,
    ops: Arc<Recorder>,
    pager: Arc<Recorder>,
    _router: axum::Router,
}

impl Bench {
    fn new(rules: Vec<RuleConfig>) -> Self {
        Self::with(rules, |b| b)
    }

    fn with(
        rules: Vec<RuleConfig>,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let (ops, pager) = (Recorder::new(), Recorder::new());
        let server = configure(
            ServerBuilder::new()
                .open_access()
                .clock(clock.clone())
                .alerts(AlertsConfig {
                    default_rules: false,
                    rules,
                    ..AlertsConfig::default()
                })
                .alert_channel("ops", ops.clone())
                .alert_channel("pager", pager.clone()),
        )
        .build()
        .unwrap();
        // The router starts the engine's task.
        let router = server.router();
        Self {
            server,
            clock,
            ops,
            pager,
            _router: router,
        }
    }

    /// Ingests a report of `device` at the clock's time and waits until
    /// the engine has evaluated it.
    async fn report(&self, device: &str, cpu: f64) {
        let mut report = Report::new(device, self.clock.now());
        report.cpu_usage = cpu;
        report.ram_used_mb = 1;
        report.ram_total_mb = 4;
        self.ingest(report).await;
    }

    async fn ingest(&self, report: Report) {
        let seen = self.server.alerts().stats().reports_seen;
        self.server.ingest().ingest(report).await.unwrap();
        let alerts = self.server.alerts();
        eventually("the engine evaluates the report", async || {
            let now = alerts.stats().reports_seen;
            (now > seen)
                .then_some(())
                .ok_or(format!("{now} reports seen"))
        })
        .await;
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Waits until every queued notification was handed to its channel.
    async fn delivered(&self) {
        let alerts = self.server.alerts();
        eventually("the queue is empty", async || {
            let pending = alerts.stats().delivery.pending;
            (pending == 0)
                .then_some(())
                .ok_or(format!("{pending} pending"))
        })
        .await;
    }

    fn states(&self) -> Vec<(String, AlertState)> {
        self.server
            .alerts()
            .alerts()
            .into_iter()
            .map(|a| (a.device_id, a.state))
            .collect()
    }
}

fn cpu_rule(hold_for: Duration) -> RuleConfig {
    RuleConfig {
        hold_for,
        severity: Severity::Critical,
        channels: vec!["ops".into()],
        hysteresis: Some(5.0),
        ..RuleConfig::threshold("cpu-high", "cpu_usage", Op::Above, 80.0)
    }
}

#[tokio::test]
async fn an_alert_fires_after_for_and_resolves_past_the_hysteresis() {
    let bench = Bench::new(vec![cpu_rule(MINUTE)]);
    // A spike shorter than `for`: pending, then gone, nobody told.
    bench.report("web-1", 95.0).await;
    assert_eq!(bench.states(), [("web-1".into(), AlertState::Pending)]);
    bench.advance(Duration::from_secs(30));
    bench.report("web-1", 20.0).await;
    assert!(bench.states().is_empty());
    // (A store keeps one report per device and time.)
    bench.advance(Duration::from_secs(1));

    // Held for a minute: fires once.
    bench.report("web-1", 90.0).await;
    bench.advance(Duration::from_secs(30));
    bench.report("web-1", 91.0).await;
    assert_eq!(bench.states(), [("web-1".into(), AlertState::Pending)]);
    bench.advance(Duration::from_secs(31));
    bench.report("web-1", 85.0).await;
    assert_eq!(bench.states(), [("web-1".into(), AlertState::Firing)]);
    bench.delivered().await;
    let sent = bench.ops.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let firing = &sent[0];
    assert_eq!(firing.kind, NotificationKind::Firing);
    assert_eq!(
        (firing.rule.as_str(), firing.metric.as_str()),
        ("cpu-high", "cpu_usage")
    );
    assert_eq!((firing.value, firing.threshold), (Some(85.0), 80.0));
    assert!(
        firing.summary.contains("CRITICAL cpu-high on web-1"),
        "{}",
        firing.summary
    );
    assert!(firing.summary.contains("for 1m1s"), "{}", firing.summary);
    assert!(
        firing.url.ends_with("/device.html?id=web-1"),
        "{}",
        firing.url
    );

    // Hovering just under the threshold does not resolve it (hysteresis 5)...
    for cpu in [79.0, 81.0, 76.0, 80.5] {
        bench.advance(Duration::from_secs(10));
        bench.report("web-1", cpu).await;
    }
    assert_eq!(bench.states(), [("web-1".into(), AlertState::Firing)]);
    // ... coming back past it does, once.
    bench.advance(Duration::from_secs(10));
    bench.report("web-1", 74.0).await;
    bench.advance(Duration::from_secs(10));
    bench.report("web-1", 30.0).await;
    assert!(bench.states().is_empty());
    bench.delivered().await;
    assert_eq!(
        bench.ops.kinds(),
        [
            (NotificationKind::Firing, "web-1".into()),
            (NotificationKind::Resolved, "web-1".into())
        ]
    );
    let history = bench.server.alerts().history(10, None);
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, AlertState::Resolved);
    assert!(history[0].resolved_at.unwrap() > history[0].started_at.unwrap());
}

/// A report of `device` at the clock's time with one top process.
fn busy_report(bench: &Bench, device: &str, cpu: f64, process: &str) -> Report {
    let mut report = Report::new(device, bench.clock.now());
    report.cpu_usage = cpu;
    report.ram_used_mb = 1;
    report.ram_total_mb = 4;
    report.top_processes = Some(vec![ProcessInfo {
        pid: 42,
        name: process.into(),
        cpu_percent: cpu,
        rss_bytes: 1 << 20,
    }]);
    report
}

#[tokio::test]
async fn a_firing_alert_tells_the_top_processes_of_the_latest_report() {
    let bench = Bench::new(vec![
        cpu_rule(MINUTE),
        RuleConfig {
            name: "cpu-at-once".into(),
            ..cpu_rule(Duration::ZERO)
        },
    ]);
    // Over both thresholds: the rule without `for` fires with this
    // report's processes at once.
    bench
        .ingest(busy_report(&bench, "web-1", 95.0, "first"))
        .await;
    bench.delivered().await;
    let sent = bench.ops.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].rule, "cpu-at-once");
    let names = |n: &tailmon_server::alerts::Notification| -> Vec<String> {
        n.top_processes
            .iter()
            .flatten()
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(names(&sent[0]), ["first"]);
    // Still over it with other processes; the rule with `for` fires from the
    // timer, a minute on, with the latest report's.
    bench.advance(Duration::from_secs(30));
    bench
        .ingest(busy_report(&bench, "web-1", 92.0, "second"))
        .await;
    bench.advance(Duration::from_secs(31));
    bench.server.alerts().evaluate().await;
    bench.delivered().await;
    let sent = bench.ops.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(
        (sent[1].rule.as_str(), names(&sent[1])),
        ("cpu-high", vec!["second".to_owned()])
    );
}

#[tokio::test]
async fn repeats_and_escalation_follow_the_clock_and_stop_once_acknowledged() {
    let rule = RuleConfig {
        repeat: Some(Duration::from_secs(3600)),
        escalate: vec![Escalation {
            after: Duration::from_secs(15 * 60),
            channels: vec!["pager".into()],
        }],
        ..cpu_rule(Duration::ZERO)
    };
    let bench = Bench::new(vec![rule]);
    bench.report("web-1", 95.0).await;
    bench.report("web-2", 95.0).await;
    let alerts = bench.server.alerts();
    let web2 = alerts
        .alerts()
        .into_iter()
        .find(|a| a.device_id == "web-2")
        .unwrap();
    alerts.acknowledge(&web2.id, "ann").unwrap();

    bench.advance(14 * MINUTE);
    alerts.evaluate_now().await;
    bench.delivered().await;
    assert!(bench.pager.sent().is_empty(), "not before its delay");

    bench.advance(2 * MINUTE);
    alerts.evaluate_now().await;
    bench.delivered().await;
    assert_eq!(
        bench.pager.kinds(),
        [(NotificationKind::Escalation, "web-1".into())],
        "web-2 is acknowledged"
    );

    bench.advance(45 * MINUTE);
    alerts.evaluate_now().await;
    bench.delivered().await;
    assert_eq!(
        bench.ops.kinds(),
        [
            (NotificationKind::Firing, "web-1".into()),
            (NotificationKind::Firing, "web-2".into()),
            (NotificationKind::Repeat, "web-1".into()),
        ]
    );
    // Resolving tells the escalation's channels too.
    bench.report("web-1", 10.0).await;
    bench.delivered().await;
    assert_eq!(
        bench.pager.kinds().last(),
        Some(&(NotificationKind::Resolved, "web-1".into()))
    );
    let history = alerts.history(10, None);
    let acked = history.iter().find(|a| a.device_id == "web-2").unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("ann"));
    assert_eq!(acked.state, AlertState::Firing);
}

#[tokio::test]
async fn a_silence_holds_notifications_back_but_not_the_state() {
    let bench = Bench::new(vec![cpu_rule(Duration::ZERO)]);
    let alerts = bench.server.alerts();
    let until = bench.clock.now() + time::Duration::hours(1);
    alerts
        .add_silence(
            serde_json::from_value(serde_json::json!({
                "rule": "cpu-high", "device": "web-*",
                "until": until.format(&time::format_description::well_known::Rfc3339).unwrap(),
            }))
            .unwrap(),
            Some("ann"),
        )
        .unwrap();
    bench.report("web-1", 95.0).await;
    bench.report("db-1", 95.0).await;
    bench.delivered().await;
    assert_eq!(
        bench.ops.kinds(),
        [(NotificationKind::Firing, "db-1".into())]
    );
    let silenced = alerts
        .alerts()
        .into_iter()
        .find(|a| a.device_id == "web-1")
        .unwrap();
    assert_eq!(silenced.state, AlertState::Firing);
    assert_eq!(silenced.silenced_until, Some(until));
}

#[tokio::test]
async fn a_silent_device_goes_offline_and_comes_back() {
    let offline = RuleConfig {
        channels: vec!["ops".into()],
        ..RuleConfig::of_kind("offline", RuleKind::Offline)
    };
    // Agents report every 5 s: offline after 15 s.
    let bench = Bench::new(vec![offline]);
    bench.report("web-1", 5.0).await;
    let alerts = bench.server.alerts();
    bench.advance(Duration::from_secs(14));
    alerts.evaluate_now().await;
    assert!(bench.states().is_empty(), "not yet");
    bench.advance(Duration::from_secs(2));
    alerts.evaluate_now().await;
    assert_eq!(bench.states(), [("web-1".into(), AlertState::Firing)]);
    bench.delivered().await;
    let sent = bench.ops.sent();
    assert_eq!(
        (sent[0].kind, sent[0].value),
        (NotificationKind::Firing, None)
    );
    assert_eq!(sent[0].metric, "offline");

    bench.report("web-1", 5.0).await;
    bench.delivered().await;
    assert!(bench.states().is_empty());
    assert_eq!(
        bench.ops.kinds(),
        [
            (NotificationKind::Firing, "web-1".into()),
            (NotificationKind::Resolved, "web-1".into())
        ]
    );
}

/// A report with one disk, `/`, `percent` full.
fn disk_report(device: &str, at: OffsetDateTime, percent: f64) -> Report {
    let mut report = Report::new(device, at);
    report.ram_used_mb = 1;
    report.ram_total_mb = 4;
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
async fn the_predictive_rule_fires_on_a_filling_disk_and_not_on_a_steady_one() {
    let rule = RuleConfig {
        channels: vec!["ops".into()],
        within: Some(Duration::from_secs(24 * 3600)),
        window: Some(Duration::from_secs(6 * 3600)),
        ..RuleConfig::of_kind("disk-filling", RuleKind::DiskFull)
    };
    let bench = Bench::new(vec![rule]);
    // Three hours, a report every 5 minutes: one disk gains 2 % an hour
    // (from 50 %: full in about 22 h), the other stays at 70 %.
    for step in 0..=36 {
        let now = bench.clock.now();
        let filling = 50.0 + 2.0 * f64::from(step) * 5.0 / 60.0;
        bench.ingest(disk_report("filling", now, filling)).await;
        bench.ingest(disk_report("steady", now, 70.0)).await;
        bench.advance(5 * MINUTE);
    }
    let alerts = bench.server.alerts();
    alerts.evaluate_now().await;
    let firing = alerts.alerts();
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert_eq!(firing[0].device_id, "filling");
    assert_eq!(firing[0].metric, "disk_used_percent:/");
    assert_eq!(firing[0].state, AlertState::Firing);
    bench.delivered().await;
    let sent = bench.ops.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].summary.contains("full in about 2"),
        "{}",
        sent[0].summary
    );
}

#[tokio::test]
async fn a_channel_that_never_answers_does_not_delay_ingest() {
    let hanging = Recorder::hanging();
    let server = ServerBuilder::new()
        .open_access()
        .alerts(AlertsConfig {
            default_rules: false,
            rules: vec![RuleConfig {
                channels: vec!["stuck".into()],
                ..cpu_rule(Duration::ZERO)
            }],
            ..AlertsConfig::default()
        })
        .alert_channel("stuck", hanging.clone())
        .build()
        .unwrap();
    let running = crate::support::Running::start(server).await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/metrics", running.addr);
    for device in 0..50 {
        let report = crate::support::report(&format!("web-{device}"), 99.0, 1);
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            client.post(&url).json(&report).send(),
        )
        .await
        .expect("ingest answers while the channel hangs")
        .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    // The channel did get the first notification, and is still stuck on it.
    eventually("the channel is called", async || {
        (!hanging.sent().is_empty())
            .then_some(())
            .ok_or("nothing sent".to_owned())
    })
    .await;
    assert_eq!(hanging.sent().len(), 1);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_firing_alert_is_not_announced_again_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("tailmon-alerts-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join(tailmon_server::alerts::ALERTS_DATABASE_FILE);
    let _ = std::fs::remove_file(&db);
    let rules = vec![cpu_rule(Duration::ZERO)];

    let first = Bench::with(rules.clone(), |b| b.alerts_database(&db));
    first.report("web-1", 95.0).await;
    first.delivered().await;
    assert_eq!(
        first.ops.kinds(),
        [(NotificationKind::Firing, "web-1".into())]
    );
    let clock = first.clock.clone();
    drop(first);

    let second = Bench::with(rules, |b| b.alerts_database(&db));
    second.clock.set(clock.now() + time::Duration::minutes(1));
    assert_eq!(second.states(), [("web-1".into(), AlertState::Firing)]);
    second.report("web-1", 96.0).await;
    second.server.alerts().evaluate_now().await;
    second.delivered().await;
    assert!(second.ops.sent().is_empty(), "no second Firing");
    // The same alert goes on: it resolves once.
    second.advance(Duration::from_secs(1));
    second.report("web-1", 10.0).await;
    second.delivered().await;
    assert_eq!(
        second.ops.kinds(),
        [(NotificationKind::Resolved, "web-1".into())]
    );
    assert_eq!(second.server.alerts().history(10, None).len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn removing_a_rule_ends_its_alerts_in_the_history() {
    let bench = Bench::new(Vec::new());
    let alerts = bench.server.alerts();
    alerts
        .create_rule(RuleConfig {
            channels: vec!["ops".into()],
            ..cpu_rule(Duration::ZERO)
        })
        .unwrap();
    bench.report("web-1", 95.0).await;
    assert_eq!(bench.states(), [("web-1".into(), AlertState::Firing)]);
    alerts.delete_rule("cpu-high").unwrap();
    assert!(bench.states().is_empty());
    let history = alerts.history(10, None);
    assert_eq!(history[0].state, AlertState::Resolved);
}
