//! A real Alertmanager (Debian's `prometheus-alertmanager`) started on a
//! free loopback port, and the alert settings of replicas that notify it:
//! what the replica tests of both test crates share.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use crate::{RunningBinary, eventually};

/// Where Debian's package installs Alertmanager.
pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A running Alertmanager, stopped when dropped.
#[derive(Debug)]
pub struct Alertmanager {
    running: RunningBinary,
    url: String,
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (its YAML), its state in `dir`,
    /// clustering off, and waits until `/-/ready` answers 200.
    pub async fn start(dir: &Path, config: &str) -> Alertmanager {
        std::fs::create_dir_all(dir).expect("Alertmanager's folder");
        let config_path = dir.join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("alertmanager.yml");
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let running = RunningBinary::start(
            Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address={address}"))
                .arg("--cluster.listen-address="),
        );
        let url = format!("http://{address}");
        let client = reqwest::Client::new();
        eventually("alertmanager ready", async || {
            match client.get(format!("{url}/-/ready")).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                other => Err(format!("{other:?}; stderr: {}", running.stderr())),
            }
        })
        .await;
        Alertmanager { running, url }
    }

    /// Its base URL (`http://127.0.0.1:PORT`), as a Tailmon `alertmanager`
    /// channel's `url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.running.stderr()
    }
}

/// An Alertmanager configuration sending every alert to the webhook at
/// `hook_url`, grouped by alert name and device, after a second, and their
/// resolution too.
pub fn webhook_route(hook_url: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: ['alertname', 'device']\n  \
         group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: hook\n    webhook_configs:\n      \
         - url: '{hook_url}'\n        send_resolved: true\n"
    )
}

/// The `[alerts]` section every replica of a test gets: rule `cpu-high`
/// (CPU above 80 %, no hold) notifying channel `am`, Alertmanager at
/// `alertmanager_url`, and one `public_url`.
pub fn replica_alerts_toml(alertmanager_url: &str) -> String {
    format!(
        r#"[alerts]
public_url = "https://tailmon.example.com/"

[[alerts.rules]]
name = "cpu-high"
metric = "cpu_usage"
op = ">"
threshold = 80
severity = "critical"
channels = ["am"]

[[alerts.channels]]
name = "am"
type = "alertmanager"
url = "{alertmanager_url}"
"#
    )
}
