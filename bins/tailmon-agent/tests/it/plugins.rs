//! The agent binary with plugins from its configuration file: their values
//! reach the server, a plugin that hangs does not hold the reports back, and
//! the binary stops cleanly with the plugin's process still running.

use crate::in_process_server::InProcessServer;
use tailmon_testkit::eventually;
use tailmon_testkit::{RunningBinary, clean_command};

const DEVICE: &str = "agent-plugins-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_and_textfile_values_reach_the_server_while_a_plugin_hangs() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("agent-plugins-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let textfiles = dir.join("textfile");
    std::fs::create_dir_all(&textfiles).expect("temp dir");
    std::fs::write(
        textfiles.join("backup.prom"),
        "# TYPE backup_age_seconds gauge\nbackup_age_seconds{job=\"db\"} 3600\n",
    )
    .expect("write textfile");
    let started = dir.join("hang-started");
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
textfile_dir = "{textfiles}"

[[plugins]]
name = "hang"
command = ["/bin/sh", "-c", ": > {started}; exec sleep 1000"]
interval = "1h"
timeout = "1h"

[[plugins]]
name = "queue"
command = ["/bin/echo", "depth 7"]
interval = "1s"
"#,
            textfiles = textfiles.display(),
            started = started.display(),
        ),
    )
    .expect("write config");

    let server = InProcessServer::start(0).await;
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-agent"));
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("TAILMON_CONFIG", &config)
        .env("TAILMON_SERVER_URL", server.ingest_url())
        .env("TAILMON_INTERVAL", "0.2")
        .env("TAILMON_DEVICE_ID", DEVICE)
        .env("TAILMON_COLLECTORS", "none");
    let agent = RunningBinary::start(&mut command);

    let report = eventually(
        "a report with the plugin's and the textfile's values",
        async || {
            let latest = server
                .latest_of(DEVICE)
                .await
                .map_err(|seen| format!("{seen}; agent stderr:\n{}", agent.stderr()))?;
            let custom = latest.custom.clone().unwrap_or_default();
            if custom.contains_key("queue.depth") {
                Ok(latest)
            } else {
                Err(format!("custom so far: {custom:?}"))
            }
        },
    )
    .await;
    let custom = report.custom.expect("custom metrics");
    assert_eq!(custom.get("queue.depth"), Some(&7.0));
    assert_eq!(custom.get("backup_age_seconds.job.db"), Some(&3600.0));
    // The hanging plugin had started, and never ended: it gave nothing and
    // held nothing back.
    assert!(started.exists(), "the hanging plugin ran");
    assert!(!custom.keys().any(|k| k.starts_with("hang.")), "{custom:?}");
    agent.stop_cleanly("agent stopped").await;
    let _ = std::fs::remove_dir_all(&dir);
}
