//! `GET /metrics`: the fleet's latest values and the server's health, as
//! promtool and a real Prometheus (Debian's) read them; refused reports
//! counted by reason.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tailmon_core::{Disk, NetworkInterface, Temperature};
use tailmon_server::auth::NewToken;
use tailmon_server::{Credentials, MemoryStore, ServerBuilder, StoreError};
use tailmon_testkit::{Forwarding, StoreHooks, eventually};

use crate::support::{Running, TestDirs, call, get, json, post_json, report};

/// A report with disks, an interface, a sensor and a custom metric.
fn rich(id: &str, cpu: f64) -> tailmon_core::Report {
    let mut r = report(id, cpu, 2048);
    r.cpu_per_core = Some(vec![cpu, cpu / 2.0]);
    r.disks = Some(vec![Disk {
        mount_point: "/".into(),
        fs_type: "ext4".into(),
        total_bytes: 1000,
        used_bytes: 220,
        available_bytes: Some(780),
    }]);
    r.networks = Some(vec![NetworkInterface {
        interface: "eth0".into(),
        rx_bytes_per_sec: Some(10.0),
        tx_bytes_per_sec: Some(20.0),
        rx_bytes_total: 1000,
        tx_bytes_total: 2000,
        rx_errors: 0,
        tx_errors: 0,
    }]);
    r.temperatures = Some(vec![Temperature {
        label: "coretemp Package id 0".into(),
        celsius: 48.5,
    }]);
    r.uptime_seconds = Some(3600);
    r.custom = Some([("queue_depth".to_owned(), 7.0)].into());
    r
}

/// promtool, or `None` (with a loud message) outside CI; under CI a
/// missing promtool fails the test.
fn tool(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is missing under CI: .ci/run installs Debian's prometheus package"
    );
    eprintln!(
        "\n*** SKIPPED: {name} is not installed (apt-get install prometheus); \
         this test fails under CI=true ***\n"
    );
    None
}

fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_of_several_devices_pass_promtool() {
    let server = ServerBuilder::new().open_access().build().unwrap();
    let app = server.router();
    for (id, cpu) in [("web-1", 12.5), ("web-2", 50.0), ("db-1", 97.0)] {
        server.ingest().ingest(rich(id, cpu)).await.unwrap();
    }
    let (status, body) = call(&app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    for (series, value) in [
        ("tailmon_cpu_usage_percent{device_id=\"web-1\"}", 12.5),
        (
            "tailmon_cpu_core_usage_percent{device_id=\"db-1\",core=\"1\"}",
            48.5,
        ),
        (
            "tailmon_memory_used_bytes{device_id=\"web-2\"}",
            2048.0 * 1048576.0,
        ),
        (
            "tailmon_disk_used_percent{device_id=\"web-1\",mount=\"/\",fs_type=\"ext4\"}",
            22.0,
        ),
        (
            "tailmon_network_receive_bytes_total{device_id=\"web-1\",interface=\"eth0\"}",
            1000.0,
        ),
        (
            "tailmon_temperature_celsius{device_id=\"web-1\",sensor=\"coretemp Package id 0\"}",
            48.5,
        ),
        (
            "tailmon_custom{device_id=\"db-1\",name=\"queue_depth\"}",
            7.0,
        ),
        ("tailmon_device_up{device_id=\"db-1\"}", 1.0),
        (
            "tailmon_device_status{device_id=\"db-1\",status=\"critical\"}",
            1.0,
        ),
        ("tailmon_devices{status=\"ok\"}", 2.0),
        ("tailmon_devices{status=\"critical\"}", 1.0),
        ("tailmon_reports_received_total", 3.0),
        ("tailmon_reports_refused_total{reason=\"invalid\"}", 0.0),
        ("tailmon_ingest_duration_seconds_count", 3.0),
        ("tailmon_store_write_duration_seconds_count", 3.0),
        ("tailmon_alerts_firing", 0.0),
    ] {
        assert_eq!(sample(&body, series), Some(value), "{series} in\n{body}");
    }
    assert!(sample(&body, "process_resident_memory_bytes").is_some_and(|v| v > 0.0));
    assert!(sample(&body, "process_open_fds").is_some_and(|v| v > 0.0));

    // Gzip: the cached part and the health part, two members of one body.
    let response = tower::ServiceExt::oneshot(
        app.clone(),
        Request::get("/metrics")
            .header(header::ACCEPT_ENCODING, "gzip")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let mut unzipped = String::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(
        sample(&unzipped, "tailmon_cpu_usage_percent{device_id=\"db-1\"}"),
        Some(97.0)
    );
    assert!(unzipped.contains("# TYPE tailmon_reports_received_total counter"));

    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut child = std::process::Command::new(promtool)
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
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_needs_a_read_token_or_open_mode() {
    let credentials = Arc::new(Credentials::in_memory());
    let read = credentials
        .create_token(NewToken::read("prometheus"))
        .unwrap();
    let agent = credentials.create_token(NewToken::agent("agents")).unwrap();
    let app = ServerBuilder::new()
        .credentials(credentials)
        .build()
        .unwrap()
        .router();
    let with = |token: &str| {
        Request::get("/metrics")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        call(&app, get("/metrics")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&app, with(&read.token)).await.0, StatusCode::OK);
    assert_eq!(
        call(&app, with(&agent.token)).await.0,
        StatusCode::FORBIDDEN
    );
}

/// A store that refuses every write as a full disk does.
struct FullDisk(MemoryStore);

#[async_trait]
impl StoreHooks for FullDisk {
    type Inner = MemoryStore;
    fn inner(&self) -> &MemoryStore {
        &self.0
    }
    async fn after_insert(&self) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("the disk is full".into()))
    }
}

#[tokio::test]
async fn refused_reports_are_counted_by_reason() {
    let credentials = Arc::new(Credentials::in_memory());
    let agent = credentials.create_token(NewToken::agent("agents")).unwrap();
    let server = ServerBuilder::new()
        .credentials(credentials.clone())
        .max_devices(2)
        .build()
        .unwrap();
    let app = server.router();
    let send = |path: &str, body: Vec<u8>, token: Option<&str>| {
        let mut request = post_json(path, body);
        if let Some(token) = token {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        request
    };
    let body = |r: &tailmon_core::Report| serde_json::to_vec(r).unwrap();
    let token = Some(agent.token.as_str());

    // 401: the original agent, which sends no token, is told what to do.
    let (status, answer) = call(&app, send("/api/metrics", body(&report("a", 1.0, 1)), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let message = json(&answer)["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("tailmon-server token create") && message.contains("--auth none"),
        "{message}"
    );
    // 422, one by one and inside a batch, and in process.
    let (status, _) = call(
        &app,
        send("/api/metrics", body(&report("a", 150.0, 1)), token),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let batch = serde_json::to_vec(&[report("a", 1.0, 1), report("b", 150.0, 1)]).unwrap();
    let (status, _) = call(&app, send("/api/v1/reports", batch, token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(server.ingest().ingest(report("a", -1.0, 1)).await.is_err());
    // 429: a third device over the cap of two, in a batch of two.
    call(
        &app,
        send("/api/metrics", body(&report("b", 1.0, 1)), token),
    )
    .await;
    let batch = serde_json::to_vec(&[report("c", 1.0, 1), report("c", 2.0, 1)]).unwrap();
    let (status, _) = call(&app, send("/api/v1/reports", batch, token)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // 413.
    let (status, _) = call(
        &app,
        send("/api/metrics", vec![b' '; 2 * 1024 * 1024], token),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let read = credentials.create_token(NewToken::read("p")).unwrap();
    let metrics = |app: axum::Router| {
        let token = read.token.clone();
        async move {
            let request = Request::get("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            String::from_utf8(call(&app, request).await.1).unwrap()
        }
    };
    let text = metrics(app.clone()).await;
    let refused = |reason: &str| {
        sample(
            &text,
            &format!("tailmon_reports_refused_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(refused("unauthenticated"), Some(1.0));
    assert_eq!(
        refused("invalid"),
        Some(3.0),
        "one sent alone, one in a batch, one in process"
    );
    assert_eq!(
        refused("device_limit"),
        Some(2.0),
        "both reports of the batch"
    );
    assert_eq!(refused("too_large"), Some(1.0));
    assert_eq!(refused("store_unavailable"), Some(0.0));
    assert_eq!(sample(&text, "tailmon_reports_received_total"), Some(2.0));

    // 503: a full disk.
    let server = ServerBuilder::new()
        .open_access()
        .store(Forwarding(FullDisk(MemoryStore::new())))
        .build()
        .unwrap();
    let app = server.router();
    for _ in 0..3 {
        let (status, _) = call(&app, post_json("/api/metrics", body(&report("a", 1.0, 1)))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let text = String::from_utf8(call(&app, get("/metrics")).await.1).unwrap();
    assert_eq!(
        sample(
            &text,
            "tailmon_reports_refused_total{reason=\"store_unavailable\"}"
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn the_rate_limit_counts_as_a_refusal_with_the_address() {
    let server = ServerBuilder::new()
        .open_access()
        .rate_limit_per_address(tailmon_server::auth::RateLimit::new(1, 1))
        .build()
        .unwrap();
    let app = server.router();
    let running = Running::start(server).await;
    let client = reqwest::Client::new();
    let mut limited = 0;
    for _ in 0..3 {
        let status = client
            .post(format!("{}/api/metrics", running.url()))
            .json(&report("a", 1.0, 1))
            .send()
            .await
            .unwrap()
            .status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 1);
    let text = String::from_utf8(call(&app, get("/metrics")).await.1).unwrap();
    assert_eq!(
        sample(
            &text,
            "tailmon_reports_refused_total{reason=\"rate_limited\"}"
        ),
        Some(f64::from(limited))
    );
}

/// A free port on 127.0.0.1 (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's Prometheus, on 127.0.0.1, with `config`; killed when dropped.
struct Prometheus {
    child: tokio::process::Child,
    url: String,
}

impl Prometheus {
    async fn start(binary: &Path, dir: &Path, config: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let port = free_port();
        let child = tokio::process::Command::new(binary)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_server_with_a_read_token() {
    let Some(binary) = tool("prometheus") else {
        return;
    };
    let credentials = Arc::new(Credentials::in_memory());
    let read = credentials
        .create_token(NewToken::read("prometheus"))
        .unwrap();
    let server = ServerBuilder::new()
        .credentials(credentials)
        .build()
        .unwrap();
    server.ingest().ingest(rich("web-1", 33.5)).await.unwrap();
    let running = Running::start(server).await;
    let dirs = TestDirs::new("prometheus_scrape");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: tailmon\n    authorization:\n      credentials: {}\n    \
         static_configs:\n      - targets: ['{}']\n",
        read.token, running.addr
    );
    let prometheus = Prometheus::start(&binary, &dirs.fresh(), &config).await;
    let client = reqwest::Client::new();
    let query = |q: &'static str| {
        let client = client.clone();
        let url = format!("{}/api/v1/query", prometheus.url);
        async move {
            let answer: serde_json::Value = client
                .get(url)
                .query(&[("query", q)])
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let result = answer["data"]["result"].clone();
            match result.as_array() {
                Some(series) if !series.is_empty() => Ok(series.clone()),
                _ => Err(format!("no series yet: {answer}")),
            }
        }
    };
    let series = eventually("Prometheus has the device's CPU", async || {
        query("tailmon_cpu_usage_percent{device_id=\"web-1\"}").await
    })
    .await;
    assert_eq!(series[0]["value"][1], "33.5");
    assert_eq!(series[0]["metric"]["job"], "tailmon");
    let up = eventually("the scrape is up", async || {
        query("up{job=\"tailmon\"}").await
    })
    .await;
    assert_eq!(up[0]["value"][1], "1", "scraped with the read token");
    let received = query("tailmon_reports_received_total").await.unwrap();
    assert_eq!(received[0]["value"][1], "1");
}
