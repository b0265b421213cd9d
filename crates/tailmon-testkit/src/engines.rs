//! Real time-series engines for the remote store's tests: Debian's
//! Prometheus (`/usr/bin/prometheus`) and VictoriaMetrics
//! (`/usr/bin/victoria-metrics`), each on a free loopback port with its own
//! temporary data folder, killed and the folder removed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The engines the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Prometheus with its remote-write receiver, its admin API and an
    /// out-of-order window of 30 days (for back-filled reports).
    Prometheus,
    /// VictoriaMetrics single-node, with fresh samples queryable at once.
    VictoriaMetrics,
}

impl EngineKind {
    /// Both, for tests that run against each.
    pub const ALL: [EngineKind; 2] = [EngineKind::Prometheus, EngineKind::VictoriaMetrics];

    /// The binary Debian installs.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Prometheus => "/usr/bin/prometheus",
            Self::VictoriaMetrics => "/usr/bin/victoria-metrics",
        }
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Prometheus => "prometheus",
            Self::VictoriaMetrics => "victoria-metrics",
        }
    }
}

/// Prometheus's configuration: no scrape job, and the out-of-order window
/// back-filled reports need.
pub const PROMETHEUS_CONFIG: &str = "\
global:
  scrape_interval: 1h
storage:
  tsdb:
    out_of_order_time_window: 30d
";

/// A running engine. Dropping it kills the process and removes its folder.
#[derive(Debug)]
pub struct Engine {
    kind: EngineKind,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

static ENGINES: AtomicU64 = AtomicU64::new(0);

impl Engine {
    /// Starts `kind` and waits until it is ready. `None` (with a message)
    /// when its binary is missing, except under `CI=true`, where that
    /// panics: CI installs both.
    pub async fn start(kind: EngineKind) -> Option<Engine> {
        if !Path::new(kind.binary()).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{} is missing; .ci/run installs it",
                kind.binary()
            );
            eprintln!("skipped: {} is not installed", kind.binary());
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "tailmon-{}-{}-{}",
            kind.name(),
            std::process::id(),
            ENGINES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("the engine's folder");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut engine = Engine {
            kind,
            dir,
            port,
            child: None,
        };
        engine.start_again().await;
        Some(engine)
    }

    /// Which engine.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Its remote-write endpoint.
    pub fn remote_write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The base of its Prometheus API (`/api/v1/query` is under it).
    pub fn query_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the process as a service manager would (SIGTERM, SIGKILL
    /// after 30 s) and waits for it; the data stays. (VictoriaMetrics keeps
    /// its last second or so of samples in memory: SIGKILL would lose them.)
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let terminated = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while terminated && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the process again on the same folder and port, and waits
    /// until it is ready.
    pub async fn start_again(&mut self) {
        self.stop();
        let listen = format!("127.0.0.1:{}", self.port);
        let log = std::fs::File::create(self.dir.join("engine.log")).expect("the engine's log");
        let mut command = Command::new(self.kind.binary());
        match self.kind {
            EngineKind::Prometheus => {
                let config = self.dir.join("prometheus.yml");
                std::fs::write(&config, PROMETHEUS_CONFIG).expect("prometheus.yml");
                command
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        self.dir.join("data").display()
                    ))
                    .arg(format!("--web.listen-address={listen}"))
                    .arg("--web.enable-remote-write-receiver")
                    .arg("--web.enable-admin-api")
                    .arg("--log.level=warn");
            }
            EngineKind::VictoriaMetrics => {
                command
                    .arg(format!(
                        "-storageDataPath={}",
                        self.dir.join("data").display()
                    ))
                    .arg(format!("-httpListenAddr={listen}"))
                    .arg("-search.latencyOffset=0s")
                    .arg("-search.disableCache")
                    .arg("-dedup.minScrapeInterval=1ms")
                    .arg("-retentionPeriod=100y")
                    .arg("-loggerLevel=WARN");
            }
        }
        let stderr = log.try_clone().expect("the engine's log");
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {}: {e}", self.kind.binary()));
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let url = match self.kind {
            EngineKind::Prometheus => format!("http://127.0.0.1:{}/-/ready", self.port),
            EngineKind::VictoriaMetrics => format!("http://127.0.0.1:{}/health", self.port),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("{} exited ({status}): {}", self.kind.name(), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready in 60 s: {}",
                self.kind.name(),
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the engine logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("engine.log")).unwrap_or_default()
    }

    /// Makes what was written searchable now: VictoriaMetrics buffers
    /// fresh samples for up to a second (`/internal/force_flush`);
    /// Prometheus needs nothing.
    pub async fn flush(&self) {
        if self.kind == EngineKind::VictoriaMetrics {
            let url = format!("http://127.0.0.1:{}/internal/force_flush", self.port);
            let response = reqwest::get(&url).await.expect("force_flush");
            assert!(response.status().is_success(), "force_flush: {response:?}");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The data goes too: no need to let the engine save it.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
