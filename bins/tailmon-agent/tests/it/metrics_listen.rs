//! `--metrics-listen`: the real agent serves its latest report on
//! `GET /metrics` in the server's names.

use std::time::Duration;

use tailmon_core::exposition::DEVICE_FAMILIES;
use tailmon_testkit::{RunningBinary, clean_command, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::in_process_server::InProcessServer;

const DEVICE: &str = "agent-metrics-test";

/// `GET path` over HTTP/1.0; the status line and the body.
async fn get(port: u16, path: &str) -> Result<(String, String), String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("no head")?;
    Ok((head.to_owned(), body.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_latest_report_in_the_servers_names() {
    let server = InProcessServer::start(0).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-agent"));
    command
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .env("TAILMON_SERVER_URL", server.ingest_url())
        .env("TAILMON_INTERVAL", "0.2")
        .env("TAILMON_DEVICE_ID", DEVICE)
        .env("TAILMON_METRICS_LISTEN", format!("127.0.0.1:{port}"));
    let agent = RunningBinary::start(&mut command);
    let series = format!("tailmon_cpu_usage_percent{{device_id=\"{DEVICE}\"}} ");
    let (head, body) = eventually("the agent serves its report", async || {
        let (head, body) = get(port, "/metrics")
            .await
            .map_err(|e| format!("{e}; stderr:\n{}", agent.stderr()))?;
        if body.contains(&series) {
            Ok((head, body))
        } else {
            Err(format!("{head}\n{body}"))
        }
    })
    .await;
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let total = format!("tailmon_memory_total_bytes{{device_id=\"{DEVICE}\"}} ");
    let memory: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix(&total))
        .expect("memory total")
        .parse()
        .unwrap();
    assert!(memory > 1 << 20, "{memory}");
    // Every family is one the server writes too, with the same type.
    for line in body.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = line.split_once(' ').unwrap();
        let family = DEVICE_FAMILIES
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not a device family"));
        assert_eq!(family.kind.word(), kind);
    }
    let (head, _) = get(port, "/other").await.unwrap();
    assert!(head.contains(" 404 "), "{head}");
    // Debian's promtool, when installed (the server's test requires it under CI).
    if std::path::Path::new("/usr/bin/promtool").exists() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("/usr/bin/promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.is_empty(),
            "promtool check metrics: {said}\n{body}"
        );
    }
    agent.stop_cleanly("agent stopped").await;
}
