//! Plugins run as real child processes (`/bin/sh` scripts) beside a real
//! textfile directory; collections are checked for what they hold and for
//! never waiting on a plugin.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use tailmon_collect::Collector;
use tailmon_collect::plugins::{PluginCollector, PluginConfig, PluginSettings, PluginStatus};
use tailmon_core::{OffsetDateTime, Report};

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tailmon-it-plugins-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn sh(name: &str, script: &str) -> PluginConfig {
    PluginConfig::new(name, ["/bin/sh", "-c", script])
        .with_interval(Duration::from_secs(3600))
        .with_timeout(Duration::from_secs(3600))
}

async fn collect(collector: &mut PluginCollector) -> Report {
    let now = OffsetDateTime::now_utc();
    let mut report = Report::new("it-host", now);
    // What the host collector would have written before.
    report.ram_total_mb = 1024;
    // A bound for the test, not a wait: a collection that waited on a
    // plugin would hang here far longer.
    tokio::time::timeout(Duration::from_secs(5), collector.collect(&mut report))
        .await
        .expect("a collection never waits on a plugin")
        .expect("a plugin collection never fails");
    assert_eq!(report.validate(now), Ok(()), "the server would accept it");
    report
}

fn custom(report: &Report) -> BTreeMap<String, f64> {
    report.custom.clone().unwrap_or_default()
}

fn status(collector: &PluginCollector, name: &str) -> PluginStatus {
    collector
        .status()
        .into_iter()
        .find(|s| s.name == name)
        .expect("a configured plugin")
}

/// Polls `done` until it holds; fails the test after 20 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

thread_local! {
    static SINK: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
}

/// Log lines written on this thread while the guard of
/// [`capture`](Self::capture) lives (the tests run on a current-thread
/// runtime, where the plugins' tasks run too). One global subscriber writes
/// each line to the buffer of the thread that logged it: with thread-local
/// subscribers, tracing's cached interest of a call site first met on a
/// thread that does not capture could hide it from one that does.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|sink| sink.borrow_mut().take());
    }
}

impl Logs {
    fn capture(&self) -> CaptureGuard {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(|| ThreadSink)
                .finish();
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        SINK.with(|sink| *sink.borrow_mut() = Some(Arc::clone(&self.0)));
        CaptureGuard
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

/// Writes to the capturing buffer of the current thread, if any.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|sink| {
            if let Some(logs) = &*sink.borrow() {
                logs.lock().expect("logs").extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_hanging_plugin_never_delays_a_report() {
    let dir = temp_dir("hang");
    let started = dir.join("started");
    let settings = PluginSettings {
        plugins: vec![
            sh(
                "hang",
                &format!("echo 'never 1'; : > {}; exec sleep 1000", started.display()),
            ),
            sh("quick", "echo 'depth 3'"),
        ],
        textfile_dir: None,
    };
    let mut collector = PluginCollector::start(&settings).expect("valid");
    until("both plugins started and the quick one ended", || {
        started.exists() && status(&collector, "quick").runs == 1
    })
    .await;

    let report = collect(&mut collector).await;
    assert_eq!(
        custom(&report),
        BTreeMap::from([("quick.depth".to_owned(), 3.0)])
    );
    // The report was made while the hanging plugin's run was still under way.
    assert_eq!(status(&collector, "hang").runs, 0);
    assert!(started.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn line_and_json_plugins_fill_custom_metrics() {
    let settings = PluginSettings {
        plugins: vec![
            sh(
                "pg",
                "printf '# comment\\n\\nconnections 12\\nlag_seconds 0.25\\n'",
            ),
            sh(
                "redis",
                "echo '{\"used_memory\": 1048576, \"hit_ratio\": 0.93}'",
            ),
        ],
        textfile_dir: None,
    };
    let mut collector = PluginCollector::start(&settings).expect("valid");
    until("both plugins ran", || {
        collector.status().iter().all(|s| s.runs == 1)
    })
    .await;
    let report = collect(&mut collector).await;
    assert_eq!(
        custom(&report),
        BTreeMap::from([
            ("pg.connections".to_owned(), 12.0),
            ("pg.lag_seconds".to_owned(), 0.25),
            ("redis.hit_ratio".to_owned(), 0.93),
            ("redis.used_memory".to_owned(), 1_048_576.0),
        ])
    );
    assert!(collector.status().iter().all(|s| s.last_problem.is_none()));
}

#[tokio::test]
async fn a_failing_plugin_is_logged_and_isolated() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let settings = PluginSettings {
        plugins: vec![
            sh(
                "broken",
                "echo 'half 1'; echo 'cannot reach the database' >&2; exit 2",
            ),
            PluginConfig::new("missing", ["/nonexistent/tailmon-plugin"]),
            sh(
                "noisy",
                "echo 'ok 1'; echo 'bad line here'; echo 'also:bad x'",
            ),
            sh("good", "echo 'value 7'"),
        ],
        textfile_dir: None,
    };
    let mut collector = PluginCollector::start(&settings).expect("valid");
    until("every plugin ran", || {
        collector.status().iter().all(|s| s.runs == 1)
    })
    .await;
    let report = collect(&mut collector).await;
    assert_eq!(
        custom(&report),
        BTreeMap::from([("good.value".to_owned(), 7.0), ("noisy.ok".to_owned(), 1.0)])
    );

    assert_eq!(status(&collector, "broken").failures, 1);
    assert_eq!(
        status(&collector, "broken").last_problem.as_deref(),
        Some("failed (exit status: 2)")
    );
    assert!(
        status(&collector, "missing")
            .last_problem
            .is_some_and(|p| p.starts_with("could not be started"))
    );
    let text = logs.text();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{text}"))
            .to_owned()
    };
    let broken = line("plugin failed (exit status: 2)");
    assert!(
        broken.contains("WARN") && broken.contains("plugin=\"broken\""),
        "{broken}"
    );
    assert!(
        broken.contains("stderr=cannot reach the database"),
        "{broken}"
    );
    assert!(line("plugin could not be started").contains("plugin=\"missing\""));
    let noisy = line("plugin output skipped");
    assert!(noisy.contains("skipped=2"), "{noisy}");
    assert!(noisy.contains("line 2: not `name value`"), "{noisy}");
    assert!(!text.contains("plugin=\"good\""), "{text}");
}

#[tokio::test]
async fn stale_values_expire_after_three_intervals() {
    let dir = temp_dir("stale");
    let marker = dir.join("ran");
    // Succeeds once, then fails every 2 s; its value expires 6 s after the
    // good run (wide margins for a loaded machine).
    let plugin = PluginConfig::new(
        "once",
        [
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            format!(
                "test -e {m} && exit 1; : > {m}; echo 'value 1'",
                m = marker.display()
            ),
        ],
    )
    .with_interval(Duration::from_secs(2))
    .with_timeout(Duration::from_secs(2));
    let mut collector = PluginCollector::start(&PluginSettings {
        plugins: vec![plugin],
        textfile_dir: None,
    })
    .expect("valid");
    until("the first run", || status(&collector, "once").runs >= 1).await;
    assert_eq!(custom(&collect(&mut collector).await)["once.value"], 1.0);
    // Failed runs keep the last good values for three intervals, then not.
    until("a failed run", || status(&collector, "once").failures >= 1).await;
    assert_eq!(custom(&collect(&mut collector).await)["once.value"], 1.0);
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(20);
    loop {
        if custom(&collect(&mut collector).await).is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "values never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(status(&collector, "once").failures >= 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn textfile_directory_values_with_labels() {
    let dir = temp_dir("textfile");
    write(
        &dir.join("backup.prom"),
        "# HELP backup_age_seconds Age of the last backup.\n# TYPE backup_age_seconds gauge\nbackup_age_seconds{job=\"db\",host=\"db-1\"} 3600\n",
    );
    write(&dir.join("bad.prom"), "good 1\nbad{ 2\n");
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut collector = PluginCollector::start(&PluginSettings {
        plugins: vec![sh("p", "echo 'backup_age_seconds 5'")],
        textfile_dir: Some(dir.clone()),
    })
    .expect("valid");
    until("the plugin ran", || status(&collector, "p").runs == 1).await;
    let report = collect(&mut collector).await;
    assert_eq!(
        custom(&report),
        BTreeMap::from([
            ("backup_age_seconds.host.db-1.job.db".to_owned(), 3600.0),
            ("p.backup_age_seconds".to_owned(), 5.0),
        ])
    );
    let text = logs.text();
    assert!(
        text.contains("file=bad.prom") && text.contains("line 2: a label name must follow"),
        "{text}"
    );
    // Logged once per five minutes, not at each collection.
    collect(&mut collector).await;
    assert_eq!(logs.text().matches("file=bad.prom").count(), 1);

    // A fixed file is read again at the next collection.
    write(&dir.join("bad.prom"), "good 1\nfixed 22\n");
    let report = collect(&mut collector).await;
    assert_eq!(custom(&report).get("fixed"), Some(&22.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_report_never_holds_more_custom_metrics_than_the_server_takes() {
    let settings = PluginSettings {
        plugins: vec![sh(
            "many",
            "i=0; while [ $i -lt 200 ]; do echo \"m$i $i\"; i=$((i+1)); done",
        )],
        textfile_dir: None,
    };
    let mut collector = PluginCollector::start(&settings).expect("valid");
    until("the plugin ran", || status(&collector, "many").runs == 1).await;
    let report = collect(&mut collector).await;
    assert_eq!(custom(&report).len(), tailmon_core::MAX_CUSTOM_METRICS);
}

#[test]
fn plugins_start_only_inside_a_runtime_and_with_valid_settings() {
    let settings = PluginSettings {
        plugins: vec![PluginConfig::new("a", ["true"])],
        textfile_dir: None,
    };
    assert_eq!(
        PluginCollector::start(&settings)
            .expect_err("no runtime")
            .to_string(),
        "plugins must be started inside a Tokio runtime"
    );
    let twice = PluginSettings {
        plugins: vec![
            PluginConfig::new("a", ["true"]),
            PluginConfig::new("a", ["true"]),
        ],
        textfile_dir: None,
    };
    assert_eq!(
        PluginCollector::start(&twice)
            .expect_err("invalid")
            .to_string(),
        "plugin \"a\": name is used by another plugin"
    );
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}
