//! Every alert channel against a real receiver on loopback: an axum server
//! recording each request (the HTTP providers), Debian's
//! `prometheus-alertmanager`, and an SMTP server (`aiosmtpd`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tailmon_core::ProcessInfo;
use tailmon_server::alerts::channels::{ChannelConfig, EmailSecurity, http_client, notifier};
use tailmon_server::alerts::notification::{
    Notification, NotificationKind, Notifier, NotifyError, Severity,
};
use tailmon_testkit::{ALERTMANAGER, Alertmanager, RunningBinary, eventually};
use time::macros::datetime;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }
}

#[derive(Clone, Default)]
struct Log {
    requests: Arc<Mutex<Vec<Recorded>>>,
    status: Arc<AtomicU16>,
}

/// An HTTP receiver on 127.0.0.1:0 answering every request with the status
/// it is told (200 at first) and recording it.
struct Receiver {
    base: String,
    log: Log,
}

impl Receiver {
    async fn start() -> Self {
        let log = Log::default();
        log.status.store(200, Ordering::SeqCst);
        let app = Router::new().fallback(record).with_state(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            log,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.requests.lock().unwrap().clone()
    }

    /// The one request received so far.
    fn only(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

async fn record(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    log.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
    });
    let status = StatusCode::from_u16(log.status.load(Ordering::SeqCst)).unwrap();
    (
        status,
        if status.is_success() {
            "ok"
        } else {
            "no such hook"
        },
    )
}

fn sample(kind: NotificationKind) -> Notification {
    Notification {
        kind,
        alert_id: "cpu-high/web-1".into(),
        rule: "cpu-high".into(),
        severity: Severity::Critical,
        device_id: "web-1".into(),
        org: tailmon_core::OrgId::default(),
        metric: "cpu_usage".into(),
        value: Some(93.5),
        op: ">".into(),
        threshold: 80.0,
        since: datetime!(2026-01-01 10:00:00 UTC),
        at: datetime!(2026-01-01 10:05:00 UTC),
        url: "http://monitor.test/device.html?id=web-1".into(),
        top_processes: Some(vec![ProcessInfo {
            pid: 4242,
            name: "nginx".into(),
            cpu_percent: 71.5,
            rss_bytes: 64 * 1024 * 1024,
        }]),
        summary: "CRITICAL cpu-high on web-1: cpu_usage 93.5 > 80 for 5m".into(),
    }
}

fn channel(config: Value) -> Arc<dyn Notifier> {
    let config: ChannelConfig = serde_json::from_value(config).unwrap();
    notifier(&config, &http_client().unwrap()).unwrap()
}

/// The facts every message must carry, found in `text`.
fn assert_names_everything(text: &str) {
    for needle in [
        "web-1",
        "cpu-high",
        "cpu_usage",
        "93.5",
        "> 80",
        "5m",
        "http://monitor.test/device.html?id=web-1",
        "nginx (pid 4242)",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text}");
    }
}

#[tokio::test]
async fn webhook_posts_the_notification_json_signed_with_hmac_sha256() {
    let receiver = Receiver::start().await;
    let hook = channel(
        json!({"type": "webhook", "url": format!("{}/hook", receiver.base), "secret": "s3cret"}),
    );
    let sent = sample(NotificationKind::Firing);
    hook.send(&sent).await.unwrap();

    let got = receiver.only();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/hook"));
    assert!(got.header("content-type").starts_with("application/json"));
    assert_eq!(got.json(), serde_json::to_value(&sent).unwrap());
    assert_eq!(got.json()["kind"], "firing");
    assert_eq!(got.json()["top_processes"][0]["name"], "nginx");

    let signature = got.header("x-tailmon-signature");
    let hex = signature.strip_prefix("sha256=").expect("sha256= prefix");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
    mac.update(&got.body);
    mac.verify_slice(&bytes)
        .expect("the signature is the body's HMAC");

    // Without a secret, no signature.
    let plain = Receiver::start().await;
    channel(json!({"type": "webhook", "url": plain.base}))
        .send(&sent)
        .await
        .unwrap();
    assert!(plain.only().headers.get("x-tailmon-signature").is_none());
}

#[tokio::test]
async fn slack_gets_text_and_blocks() {
    let receiver = Receiver::start().await;
    channel(json!({"type": "slack", "url": format!("{}/services/T0/B0/xyz", receiver.base)}))
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap();
    let got = receiver.only();
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/services/T0/B0/xyz")
    );
    assert!(got.header("content-type").starts_with("application/json"));
    let body = got.json();
    // mrkdwn: `&`, `<` and `>` escaped.
    let unescape = |v: &Value| {
        v.as_str()
            .unwrap()
            .replace("&gt;", ">")
            .replace("&lt;", "<")
    };
    assert!(body["text"].as_str().unwrap().contains("threshold &gt; 80"));
    assert_names_everything(&unescape(&body["text"]));
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "[FIRING] CRITICAL cpu-high on web-1"
    );
    assert_eq!(body["blocks"][1]["text"]["type"], "mrkdwn");
    assert_names_everything(&unescape(&body["blocks"][1]["text"]["text"]));
}

#[tokio::test]
async fn discord_gets_an_embed() {
    let receiver = Receiver::start().await;
    channel(json!({"type": "discord", "url": format!("{}/api/webhooks/1/abc", receiver.base)}))
        .send(&sample(NotificationKind::Resolved))
        .await
        .unwrap();
    let got = receiver.only();
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/api/webhooks/1/abc")
    );
    let body = got.json();
    assert_eq!(body["content"], "[RESOLVED] CRITICAL cpu-high on web-1");
    let embed = &body["embeds"][0];
    assert_eq!(embed["url"], "http://monitor.test/device.html?id=web-1");
    assert_eq!(embed["color"], 0x2e_a0_43, "green when resolved");
    assert_eq!(embed["timestamp"], "2026-01-01T10:05:00Z");
    assert_names_everything(embed["description"].as_str().unwrap());
}

#[tokio::test]
async fn teams_gets_an_adaptive_card() {
    let receiver = Receiver::start().await;
    channel(json!({"type": "teams", "url": format!("{}/workflows/1", receiver.base)}))
        .send(&sample(NotificationKind::Escalation))
        .await
        .unwrap();
    let got = receiver.only();
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/workflows/1")
    );
    let body = got.json();
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["body"][0]["text"],
        "[ESCALATION] CRITICAL cpu-high on web-1"
    );
    let text: Vec<&str> = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert_names_everything(&text.join("\n"));
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
    assert_eq!(
        card["actions"][0]["url"],
        "http://monitor.test/device.html?id=web-1"
    );
}

#[tokio::test]
async fn ntfy_publishes_json_to_the_topic_with_the_token() {
    let receiver = Receiver::start().await;
    channel(
        json!({"type": "ntfy", "url": receiver.base, "topic": "ops-alerts", "token": "tk_123"}),
    )
    .send(&sample(NotificationKind::Firing))
    .await
    .unwrap();
    let got = receiver.only();
    assert_eq!((got.method.as_str(), got.path.as_str()), ("POST", "/"));
    assert_eq!(got.header("authorization"), "Bearer tk_123");
    let body = got.json();
    assert_eq!(body["topic"], "ops-alerts");
    assert_eq!(body["title"], "[FIRING] CRITICAL cpu-high on web-1");
    assert_eq!(body["priority"], 5);
    assert_eq!(body["click"], "http://monitor.test/device.html?id=web-1");
    assert_names_everything(body["message"].as_str().unwrap());
}

#[tokio::test]
async fn telegram_calls_send_message_for_the_chat() {
    let receiver = Receiver::start().await;
    channel(json!({"type": "telegram", "bot_token": "123:ABC", "chat_id": -10042, "api_url": receiver.base}))
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap();
    let got = receiver.only();
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("POST", "/bot123:ABC/sendMessage")
    );
    let body = got.json();
    assert_eq!(body["chat_id"], "-10042");
    assert_names_everything(body["text"].as_str().unwrap());
}

#[tokio::test]
async fn pagerduty_triggers_then_resolves_with_the_alert_id_as_dedup_key() {
    let receiver = Receiver::start().await;
    receiver.log.status.store(202, Ordering::SeqCst); // what Events v2 answers
    let pager = channel(
        json!({"type": "pagerduty", "routing_key": "R0UT1NG", "url": format!("{}/v2/enqueue", receiver.base)}),
    );
    pager.send(&sample(NotificationKind::Firing)).await.unwrap();
    pager
        .send(&sample(NotificationKind::Resolved))
        .await
        .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.method == Method::POST && r.path == "/v2/enqueue")
    );
    let trigger = requests[0].json();
    assert_eq!(trigger["routing_key"], "R0UT1NG");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["dedup_key"], "cpu-high/web-1");
    assert_eq!(trigger["payload"]["source"], "web-1");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["timestamp"], "2026-01-01T10:00:00Z");
    assert_eq!(trigger["payload"]["custom_details"]["threshold"], 80.0);
    assert_eq!(trigger["payload"]["custom_details"]["held_for"], "5m 0s");
    assert_eq!(
        trigger["payload"]["custom_details"]["top_processes"][0]["pid"],
        4242
    );
    assert_eq!(
        trigger["links"][0]["href"],
        "http://monitor.test/device.html?id=web-1"
    );
    assert!(
        trigger["payload"]["summary"]
            .as_str()
            .unwrap()
            .contains("cpu_usage 93.5 > 80")
    );
    let resolve = requests[1].json();
    assert_eq!(
        resolve,
        json!({"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": "cpu-high/web-1"})
    );
}

#[tokio::test]
async fn twilio_sends_one_form_encoded_message_per_number_with_basic_auth() {
    let receiver = Receiver::start().await;
    receiver.log.status.store(201, Ordering::SeqCst); // what the Messages API answers
    channel(json!({
        "type": "twilio", "account_sid": "AC123", "auth_token": "t0ken", "from": "+15005550006",
        "to": ["+15550001111", "+15550002222"], "api_url": receiver.base,
    }))
    .send(&sample(NotificationKind::Firing))
    .await
    .unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for (request, to) in requests.iter().zip(["+15550001111", "+15550002222"]) {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, "/2010-04-01/Accounts/AC123/Messages.json");
        assert_eq!(
            request.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        // base64("AC123:t0ken")
        assert_eq!(request.header("authorization"), "Basic QUMxMjM6dDBrZW4=");
        let form: Vec<(String, String)> = form_urlencoded(&request.body);
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(field("To"), Some(to));
        assert_eq!(field("From"), Some("+15005550006"));
        let body = field("Body").unwrap();
        assert!(body.contains("cpu_usage 93.5 > 80"), "{body}");
        assert!(
            body.contains("http://monitor.test/device.html?id=web-1"),
            "{body}"
        );
        assert!(body.contains("FIRING"), "{body}");
    }
    assert!(requests.iter().all(|r| r.query.is_none()));
}

/// `a=b&c=d` decoded (`+` is a space, `%XX` a byte).
fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    };
    std::str::from_utf8(body)
        .unwrap()
        .split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect()
}

#[tokio::test]
async fn a_refusal_and_an_absent_receiver_are_errors_that_say_so() {
    let receiver = Receiver::start().await;
    receiver.log.status.store(404, Ordering::SeqCst);
    let err = channel(json!({"type": "slack", "url": receiver.base}))
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::Refused { status: 404, body } if body == "no such hook"),
        "{err:?}"
    );

    let closed = free_port();
    let err = channel(json!({"type": "webhook", "url": format!("http://{closed}/")}))
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Unreachable(_)), "{err:?}");

    // A secret in the URL (here a bot token) never shows in the error.
    let err = channel(json!({"type": "telegram", "bot_token": "123:S3CRET", "chat_id": 1, "api_url": format!("http://{closed}")}))
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("S3CRET"), "{err}");
}

#[tokio::test]
async fn bad_settings_are_refused_when_the_channel_is_made() {
    let http = http_client().unwrap();
    for bad in [
        json!({"type": "webhook", "url": "not a url"}),
        json!({"type": "slack", "url": "ftp://hooks.example.net/x"}),
        json!({"type": "ntfy", "topic": " "}),
        json!({"type": "twilio", "account_sid": "AC1", "auth_token": "t", "from": "+1", "to": []}),
        json!({"type": "email", "host": "smtp.example.net", "from": "nobody", "to": ["a@example.net"]}),
    ] {
        let config: ChannelConfig = serde_json::from_value(bad.clone()).unwrap();
        let result = notifier(&config, &http);
        assert!(
            matches!(result, Err(NotifyError::Config(_))),
            "{bad} gave {:?}",
            result.err()
        );
    }
}

/// The channels of every `toml` block of `text`, each checked by [`notifier`].
fn channel_examples(text: &str) -> Vec<ChannelConfig> {
    let client = http_client().unwrap();
    let mut configs = Vec::new();
    for block in text.split("```toml\n").skip(1) {
        let block = block.split("```").next().unwrap();
        let parsed: toml::Table = block.parse().unwrap_or_else(|e| panic!("{e}\n{block}"));
        for channel in parsed["alerts"]["channels"].as_array().unwrap() {
            let mut channel = channel.as_table().unwrap().clone();
            assert!(channel.remove("name").is_some(), "no name in {block}");
            let config: ChannelConfig = toml::Value::Table(channel)
                .try_into()
                .unwrap_or_else(|e| panic!("{e}\n{block}"));
            if let Err(e) = notifier(&config, &client) {
                panic!("{e}\n{block}");
            }
            configs.push(config);
        }
    }
    configs
}

#[test]
fn every_toml_example_of_the_channel_docs_makes_a_channel() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/alert-channels.md")).unwrap();
    let headings: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("## `")?.strip_suffix('`'))
        .collect();
    let kinds: Vec<&str> = channel_examples(&doc)
        .iter()
        .map(ChannelConfig::kind)
        .collect();
    assert_eq!(
        kinds, headings,
        "one example a type, in the order of the sections"
    );
    assert_eq!(kinds.len(), 10);

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## Alert channels\n")
        .nth(1)
        .expect("the README's section");
    let section = section.split("\n## ").next().unwrap();
    assert_eq!(channel_examples(section).len(), 2);
}

/// A port nobody listens on (bound then released).
pub(crate) fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Whether `tool` is usable; without it the test fails under `CI` (which
/// `.ci/run` sets, installing it first) and is skipped elsewhere.
pub(crate) fn have(tool: &str, usable: bool, install: &str) -> bool {
    if usable {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have {tool} ({install}; .ci/run installs it)"
    );
    eprintln!("skipping: {tool} is missing ({install})");
    false
}

pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tailmon-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn alertmanager_receives_and_lists_the_alert_then_its_resolution() {
    if !have(
        "prometheus-alertmanager",
        Path::new(ALERTMANAGER).exists(),
        "apt-get install prometheus-alertmanager",
    ) {
        return;
    }
    let dir = scratch_dir("alertmanager");
    let alertmanager = Alertmanager::start(
        &dir,
        "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
    )
    .await;
    let base = alertmanager.url().to_owned();
    let http = reqwest::Client::new();

    let channel = channel(json!({"type": "alertmanager", "url": base}));
    // Alertmanager drops alerts that ended before now, so the times are real.
    let now = time::OffsetDateTime::now_utc();
    let mut firing = sample(NotificationKind::Firing);
    firing.since = now - time::Duration::minutes(5);
    firing.at = now;
    channel.send(&firing).await.unwrap();

    let listed = eventually("the alert listed", async || {
        let alerts: Value = http
            .get(format!("{base}/api/v2/alerts"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        alerts
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|a| a["labels"]["alertname"] == "cpu-high")
                    .cloned()
            })
            .ok_or_else(|| alerts.to_string())
    })
    .await;
    assert_eq!(listed["labels"]["device"], "web-1");
    assert_eq!(listed["labels"]["severity"], "critical");
    assert_eq!(listed["labels"]["metric"], "cpu_usage");
    assert_eq!(listed["status"]["state"], "active");
    assert_eq!(
        listed["annotations"]["url"],
        "http://monitor.test/device.html?id=web-1"
    );
    assert!(
        listed["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("93.5 > 80")
    );
    assert_eq!(
        time::OffsetDateTime::parse(
            listed["startsAt"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .unwrap()
        .unix_timestamp(),
        firing.since.unix_timestamp()
    );

    let mut resolved = firing.clone();
    resolved.kind = NotificationKind::Resolved;
    resolved.at = time::OffsetDateTime::now_utc();
    channel.send(&resolved).await.unwrap();
    eventually("the alert no longer active", async || {
        let alerts: Value = http
            .get(format!("{base}/api/v2/alerts?active=true"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let still = alerts.as_array().is_some_and(|a| {
            a.iter()
                .any(|a| a["labels"]["alertname"] == "cpu-high" && a["status"]["state"] == "active")
        });
        if still {
            Err(alerts.to_string())
        } else {
            Ok(())
        }
    })
    .await;
    drop(alertmanager);
    let _ = std::fs::remove_dir_all(&dir);
}

fn aiosmtpd_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `python3 -m aiosmtpd` on loopback, printing every message it receives.
async fn start_smtp() -> (RunningBinary, SocketAddr) {
    let addr = free_port();
    let running = RunningBinary::start(
        Command::new("python3")
            .env("PYTHONUNBUFFERED", "1")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Debugging",
                "-l",
            ])
            .arg(addr.to_string()),
    );
    eventually("the SMTP server listening", async || {
        tokio::net::TcpStream::connect(addr)
            .await
            .map(drop)
            .map_err(|e| format!("{e}; stderr: {}", running.stderr()))
    })
    .await;
    (running, addr)
}

fn email(addr: SocketAddr, security: EmailSecurity) -> Arc<dyn Notifier> {
    let config = ChannelConfig::Email {
        host: addr.ip().to_string(),
        port: addr.port(),
        security,
        username: None,
        password: None,
        from: "Tailmon <tailmon@example.net>".into(),
        to: vec!["ops@example.net".into(), "oncall@example.net".into()],
    };
    notifier(&config, &http_client().unwrap()).unwrap()
}

#[tokio::test]
async fn email_reaches_a_real_smtp_server() {
    if !have("aiosmtpd", aiosmtpd_installed(), "pip install aiosmtpd") {
        return;
    }
    let (smtp, addr) = start_smtp().await;
    email(addr, EmailSecurity::None)
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap();
    smtp.stdout_line_containing("Subject: [FIRING] CRITICAL cpu-high on web-1")
        .await;
    smtp.stdout_line_containing("END MESSAGE").await;
    let printed = smtp.stdout();
    assert!(
        printed.contains("From: Tailmon <tailmon@example.net>"),
        "{printed}"
    );
    assert!(
        printed.contains("To: ops@example.net, oncall@example.net"),
        "{printed}"
    );
    assert_names_everything(&printed);
}

#[tokio::test]
async fn starttls_is_required_not_hoped_for() {
    if !have("aiosmtpd", aiosmtpd_installed(), "pip install aiosmtpd") {
        return;
    }
    // This server offers no STARTTLS: the channel must not fall back to
    // plain text, and nothing is delivered.
    let (smtp, addr) = start_smtp().await;
    let err = email(addr, EmailSecurity::Starttls)
        .send(&sample(NotificationKind::Firing))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NotifyError::Unreachable(_) | NotifyError::Refused { .. }
        ),
        "{err:?}"
    );
    assert!(!smtp.stdout().contains("cpu-high"), "{}", smtp.stdout());
}
