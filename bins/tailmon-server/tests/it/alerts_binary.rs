//! Alerting through the real binary: `--config` read (and a wrong file
//! refused with its line), a webhook channel receiving the firing alert
//! with a link to the device page, and no second announcement after a
//! restart on the same data directory.
#![allow(clippy::unwrap_used)] // a test that fails should fail loudly

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tailmon_testkit::{clean_command, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth_binary::http;
use crate::server_binary::stop_cleanly;
use crate::server_process::{announced_address, scratch_dir, start_in};

/// An HTTP receiver on 127.0.0.1 that answers 200 and keeps each body.
pub(crate) async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    bytes.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    keep.lock()
                        .unwrap()
                        .push(serde_json::from_str(body).unwrap_or(Value::Null));
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (address, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_configuration_file_is_refused_with_its_line() {
    let dir = scratch_dir("alerts-bad-config");
    let config = dir.join("tailmon.toml");
    std::fs::write(&config, "[alerts]\nrepeat = \"1h\"\nrepaet = \"2h\"\n").unwrap();
    let output = clean_command(env!("CARGO_BIN_EXE_tailmon-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "none",
            "--no-local-agent",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("TAILMON_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tailmon.toml:3: unknown field `repaet`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_reaches_a_webhook_once_across_a_restart() {
    let dir = scratch_dir("alerts-webhook");
    let (hook, got) = receiver().await;
    let config = dir.join("tailmon.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerts]
default_rules = false

[[alerts.rules]]
name = "always"
metric = "cpu_usage"
op = ">="
threshold = 0
severity = "critical"
channels = ["hook"]

[[alerts.channels]]
name = "hook"
type = "webhook"
url = "http://{hook}/alerts"
"#
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().to_string();
    let args = ["--config", config.as_str()];
    let env = [
        ("TAILMON_INTERVAL", "1"),
        ("TAILMON_DEVICE_ID", "alerting-host"),
    ];
    let server = start_in(&dir, &args, &env);
    let address = announced_address(&server).await;
    let firing = eventually("the webhook receives the alert", async || {
        got.lock()
            .unwrap()
            .first()
            .cloned()
            .ok_or("nothing yet".to_owned())
    })
    .await;
    assert_eq!(firing["kind"], "firing");
    assert_eq!(firing["rule"], "always");
    assert_eq!(firing["device_id"], "alerting-host");
    assert_eq!(
        firing["url"],
        format!("http://{address}/device.html?id=alerting-host")
    );
    let (status, _, body) = http(address, "GET", "/api/v1/alerts", &[], "").await;
    assert_eq!(status, 200, "{body}");
    let alerts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alerts[0]["state"], "firing");
    let since = alerts[0]["since"].clone();
    stop_cleanly(server).await;

    let server = start_in(&dir, &args, &env);
    let address = announced_address(&server).await;
    // Several reports of the restarted server evaluated...
    let restarted = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    eventually("three reports after the restart", async || {
        let (_, _, body) = http(
            address,
            "GET",
            "/api/v1/devices/alerting-host/history?metric=cpu_usage",
            &[],
            "",
        )
        .await;
        let history: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let after = history["points"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    // Points are [unix seconds, avg, min, max].
                    .filter_map(|p| p[0].as_f64())
                    .filter(|at| *at > restarted)
                    .count()
            })
            .unwrap_or(0);
        (after >= 3)
            .then_some(())
            .ok_or(format!("{after} reports: {body}"))
    })
    .await;
    // ... the same alert goes on, and was not announced again.
    let (_, _, body) = http(address, "GET", "/api/v1/alerts", &[], "").await;
    let alerts: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alerts[0]["since"], since, "{body}");
    assert_eq!(got.lock().unwrap().len(), 1, "{:?}", got.lock().unwrap());
    stop_cleanly(server).await;
}
