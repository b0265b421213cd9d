//! The dashboard in a real headless Chromium, against a real server.
//!
//! Chromium's `--virtual-time-budget` runs the page's timers on virtual time,
//! so refreshes are counted exactly, without waiting in real time.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tailmon_core::Report;
use tailmon_server::{MemoryStore, ServerBuilder, Store, StoreError};

use crate::support::{Running, report};

/// A store that grows a device after the first read, to watch the page refresh.
struct GrowingStore {
    inner: MemoryStore,
    reads: AtomicUsize,
}

#[async_trait]
impl Store for GrowingStore {
    async fn insert(&self, report: Report) -> Result<(), StoreError> {
        self.inner.insert(report).await
    }

    async fn latest(&self) -> Result<Vec<Report>, StoreError> {
        if self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            self.inner.insert(report("late-device", 5.0, 100)).await?;
        }
        self.inner.latest().await
    }

    async fn devices(&self) -> Result<Vec<String>, StoreError> {
        self.inner.devices().await
    }
}

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TAILMON_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// Loads `url` for `budget_ms` of virtual time and returns the DOM.
async fn dump_dom(chromium: &PathBuf, url: &str, budget_ms: u32) -> String {
    let profile = std::env::temp_dir().join(format!(
        "tailmon-chromium-{}-{budget_ms}",
        std::process::id()
    ));
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(90),
        tokio::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                &format!("--user-data-dir={}", profile.display()),
                &format!("--virtual-time-budget={budget_ms}"),
                "--dump-dom",
                url,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium finished within 90 s")
    .expect("chromium started");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("DOM is UTF-8")
}

/// The `<article>` opening tag of one device's card.
fn card<'a>(dom: &'a str, device_id: &str) -> &'a str {
    let marker = format!("data-device-id=\"{device_id}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no card for {device_id}"));
    let start = dom[..at]
        .rfind("<article")
        .expect("card opens with <article");
    let end = at + dom[at..].find('>').expect("tag closes");
    &dom[start..=end]
}

/// The inner text of the card of `device_id` up to its closing tag.
fn card_body<'a>(dom: &'a str, device_id: &str) -> &'a str {
    let opening = card(dom, device_id);
    let start = dom.find(opening).expect("card present");
    let end = start + dom[start..].find("</article>").expect("card closes");
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_every_device_safely_and_refreshes_every_3_s() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium installed (.ci/run installs it)"
        );
        eprintln!("skipping: no Chromium found; install Debian's chromium or set TAILMON_CHROMIUM");
        return;
    };
    let store = Arc::new(GrowingStore {
        inner: MemoryStore::new(),
        reads: AtomicUsize::new(0),
    });
    let server = ServerBuilder::new()
        .store(store.clone())
        .build()
        .expect("valid");
    let ingest = server.ingest().clone();
    for (id, cpu, ram) in [
        ("calm", 10.0, 1000),
        ("busy", 65.0, 1000),
        ("hot", 85.0, 1000),
        ("full", 10.0, 7900),
    ] {
        ingest
            .ingest(report(id, cpu, ram))
            .await
            .expect("valid report");
    }
    let mut hostile = report("hostile", 1.0, 1);
    hostile.os_info = "<img src=x onerror=alert(1)>".into();
    ingest.ingest(hostile).await.expect("valid report");
    // Odd values straight into the store, as an older server might have kept them:
    // NaN goes out as null, and a zero total.
    let mut odd = report("odd", f64::NAN, 0);
    odd.ram_total_mb = 0;
    store.inner.insert(odd).await.expect("store accepts");

    let running = Running::start(server).await;
    let dom = dump_dom(&chromium, &format!("{}/", running.url()), 9_500).await;

    assert!(
        dom.contains("data-loaded=\"true\""),
        "page never loaded:\n{dom}"
    );
    // Fetched at 0, 3, 6 and 9 s of virtual time: a 3 s refresh.
    assert!(
        dom.contains("data-refreshes=\"4\""),
        "expected 4 refreshes in 9.5 s:\n{dom}"
    );

    for (id, status) in [
        ("calm", "status-ok"),
        ("busy", "status-warning"),
        ("hot", "status-critical"),
        ("full", "status-critical"),
        ("hostile", "status-ok"),
        ("late-device", "status-ok"),
    ] {
        assert!(
            card(&dom, id).contains(status),
            "{id} should be {status}: {}",
            card(&dom, id)
        );
    }
    // The odd device is shown without breaking the others.
    let odd = card_body(&dom, "odd");
    assert!(odd.contains("device-card"), "{odd}");
    assert_eq!(dom.matches("<article").count(), 7, "{dom}");

    // Device text is text, never markup.
    let hostile = card_body(&dom, "hostile");
    assert!(
        hostile.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{hostile}"
    );
    assert!(!dom.contains("<img src=\"x\""), "device text became markup");

    assert!(card_body(&dom, "busy").contains("65.0%"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_an_empty_state_with_no_devices() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have Chromium installed"
        );
        return;
    };
    let running = Running::start(ServerBuilder::new().build().expect("valid")).await;
    let dom = dump_dom(&chromium, &format!("{}/", running.url()), 1_000).await;
    assert!(dom.contains("data-loaded=\"true\""));
    assert!(dom.contains("No devices have reported yet"), "{dom}");
    assert_eq!(dom.matches("<article").count(), 0);
}
