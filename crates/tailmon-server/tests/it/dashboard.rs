//! The dashboard in a real headless Chromium, against a real server,
//! driven through ChromeDriver ([`tailmon_testkit::Browser`]): the page
//! keeps a live stream open, so it is read once it has drawn what a test
//! waits for (polled, no fixed sleeps), not after a virtual-time budget.

use std::sync::Arc;
use tailmon_server::store::OrgId;

use tailmon_core::{Disk, LoadAvg, NetworkInterface, OffsetDateTime, Report, Temperature};
use tailmon_server::{MemoryStore, ServerBuilder, Store};

use tailmon_testkit::{Browser, browser_tools};

use crate::support::{Running, report};

/// A browser on `url`, once the page has drawn its data; None without Chromium.
async fn open_page(url: &str) -> Option<Browser> {
    let (chromium, chromedriver) = browser_tools()?;
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser.goto(url).await;
    browser
        .wait_for(
            "the page's data",
            "return document.body.dataset.loaded === 'true'",
        )
        .await;
    Some(browser)
}

/// The page's DOM as HTML.
async fn dom_of(browser: &Browser) -> String {
    let dom = browser
        .script("return document.documentElement.outerHTML")
        .await
        .expect("script runs");
    dom.as_str().expect("HTML").to_owned()
}

/// Opens `url` and returns its DOM once the page has drawn its data.
async fn page_dom(url: &str) -> Option<String> {
    let mut browser = open_page(url).await?;
    let dom = dom_of(&browser).await;
    browser.quit().await;
    Some(dom)
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
async fn dashboard_renders_every_device_safely_and_shows_new_ones_live() {
    let store = Arc::new(MemoryStore::new());
    // Odd values straight into the store, as an older server might have kept them:
    // NaN goes out as null, and a zero total.
    let mut odd = report("odd", f64::NAN, 0);
    odd.ram_total_mb = 0;
    store
        .insert(&OrgId::default(), odd)
        .await
        .expect("store accepts");
    let server = ServerBuilder::new()
        .open_access()
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
    let running = Running::start(server).await;
    let Some(mut browser) = open_page(&format!("{}/", running.url())).await else {
        return;
    };
    // A device that reports once the page is open shows up without a reload.
    ingest
        .ingest(report("late-device", 5.0, 100))
        .await
        .expect("valid report");
    browser
        .wait_for(
            "the new device",
            "return document.querySelector('article[data-device-id=\"late-device\"]') !== null",
        )
        .await;
    let dom = dom_of(&browser).await;
    browser.quit().await;

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
    assert!(odd.contains("—"), "{odd}");
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
    let running = Running::start(ServerBuilder::new().open_access().build().expect("valid")).await;
    let Some(dom) = page_dom(&format!("{}/", running.url())).await else {
        return;
    };
    assert!(dom.contains("data-loaded=\"true\""));
    assert!(dom.contains("No devices have reported yet"), "{dom}");
    assert_eq!(dom.matches("<article").count(), 0);
}

const GIB: u64 = 1024 * 1024 * 1024;

fn disk(mount_point: &str, total_gib: u64, used_gib: u64) -> Disk {
    Disk {
        mount_point: mount_point.into(),
        fs_type: "ext4".into(),
        total_bytes: total_gib * GIB,
        used_bytes: used_gib * GIB,
        available_bytes: None,
    }
}

fn interface(name: &str, rates: Option<(f64, f64)>) -> NetworkInterface {
    NetworkInterface {
        interface: name.into(),
        rx_bytes_per_sec: rates.map(|r| r.0),
        tx_bytes_per_sec: rates.map(|r| r.1),
        rx_bytes_total: 123_456,
        tx_bytes_total: 654_321,
        rx_errors: 0,
        tx_errors: 0,
    }
}

/// A report of a newer agent: every optional part, with its fullest disk at `disk_percent`.
fn rich_report(device_id: &str, disk_percent: u64) -> Report {
    let mut r = report(device_id, 10.0, 1000);
    r.load_avg = Some(LoadAvg {
        one: 0.52,
        five: 0.41,
        fifteen: 0.3,
    });
    r.swap_used_mb = Some(512);
    r.swap_total_mb = Some(2048);
    r.disks = Some(vec![
        disk("/", 100, 20),
        disk("/srv/data", 100, disk_percent),
    ]);
    r.networks = Some(vec![
        interface("eth0", Some((1_000_000.0, 200_000.0))),
        interface("wlan0", Some((258_291.2, 107_200.0))),
    ]);
    r.temperatures = Some(vec![
        Temperature {
            label: "nvme".into(),
            celsius: 41.0,
        },
        Temperature {
            label: "coretemp Package id 0".into(),
            celsius: 54.25,
        },
    ]);
    r.uptime_seconds = Some(3 * 86_400 + 4 * 3_600 + 59 * 60);
    r.boot_time = Some(OffsetDateTime::now_utc() - time::Duration::days(3));
    r.process_count = Some(312);
    r.cpu_per_core = Some(vec![5.0, 15.0]);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_load_swap_disk_network_and_uptime_of_newer_agents() {
    let server = ServerBuilder::new().open_access().build().expect("valid");
    let ingest = server.ingest().clone();

    // Disk at 85 %, every optional part present.
    ingest
        .ingest(rich_report("rich", 85))
        .await
        .expect("valid report");
    // Disk at 95 %; no swap; a first sample without network rates.
    let mut full = rich_report("full-disk", 95);
    full.swap_used_mb = Some(0);
    full.swap_total_mb = Some(0);
    full.networks = Some(vec![interface("eth0", None)]);
    full.temperatures = Some(Vec::new());
    full.uptime_seconds = Some(5 * 3_600 + 12 * 60 + 30);
    ingest.ingest(full).await.expect("valid report");
    // A disk at 80 %; a zero-size disk is ignored;
    // parts an agent did not send are dashes.
    let mut partial = report("partial", 10.0, 1000);
    partial.disks = Some(vec![disk("/", 100, 80), disk("/boot/efi", 0, 0)]);
    partial.uptime_seconds = Some(12 * 60 + 5);
    ingest.ingest(partial).await.expect("valid report");
    // A disk with a large reserve for root, as df counts it: 22 GiB used,
    // 33 GiB available, so 40 % full (not 22 % of the size).
    let mut reserved = report("reserved", 10.0, 1000);
    reserved.disks = Some(vec![Disk {
        available_bytes: Some(33 * GIB),
        ..disk("/", 100, 22)
    }]);
    ingest.ingest(reserved).await.expect("valid report");
    // An older agent: only the original fields.
    ingest
        .ingest(report("plain", 10.0, 1000))
        .await
        .expect("valid report");

    let running = Running::start(server).await;
    // Every metric on the cards (open mode: one shared set of preferences).
    let saved = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client")
        .put(format!("{}/api/v1/preferences", running.url()))
        .json(&serde_json::json!({"fleet_metrics": [
            "cpu", "ram", "disk", "swap", "load", "network", "temperature", "uptime", "processes"
        ]}))
        .send()
        .await
        .expect("server answers");
    assert!(saved.status().is_success(), "{}", saved.status());
    let Some(dom) = page_dom(&format!("{}/", running.url())).await else {
        return;
    };
    assert!(
        dom.contains("data-loaded=\"true\""),
        "page never loaded:\n{dom}"
    );

    // The status is the server's (its thresholds are on CPU and RAM).
    for id in ["rich", "full-disk", "partial", "plain", "reserved"] {
        assert!(
            card(&dom, id).contains("status-ok"),
            "{id} should be status-ok: {}",
            card(&dom, id)
        );
    }
    for count in [
        "data-total=\"5\"",
        "data-ok=\"5\"",
        "data-warning=\"0\"",
        "data-critical=\"0\"",
    ] {
        assert!(dom.contains(count), "summary lacks {count}:\n{dom}");
    }

    let rich = card_body(&dom, "rich");
    for expected in [
        "class=\"stat-value load-value\">0.52 · 0.41 · 0.30<",
        "class=\"metric-value swap-value\">512 MB / 2.0 GB<",
        "class=\"metric-percent swap-percent\">25.0%<",
        "class=\"metric-sub\">/srv/data<",
        "class=\"metric-value disk-value\">85.0 GB / 100.0 GB<",
        "class=\"metric-percent disk-percent\">85.0%<",
        "class=\"stat-value network-value\">↓ 1.2 MB/s ↑ 300 KB/s<",
        "class=\"stat-value uptime-value\">3 d 4 h<",
        "class=\"stat-value temperature-value\">54.3 °C<",
        "class=\"stat-value processes-value\">312<",
    ] {
        assert!(rich.contains(expected), "rich lacks {expected}:\n{rich}");
    }

    let full = card_body(&dom, "full-disk");
    for expected in [
        "class=\"metric-value swap-value\">no swap<",
        "class=\"metric-percent swap-percent\"><",
        "class=\"metric-sub\">/srv/data<",
        "class=\"metric-value disk-value\">95.0 GB / 100.0 GB<",
        "class=\"stat-value network-value\">—<",
        "class=\"stat-value uptime-value\">5 h 12 min<",
        // No sensors: a dash.
        "class=\"stat-value temperature-value\">—<",
    ] {
        assert!(
            full.contains(expected),
            "full-disk lacks {expected}:\n{full}"
        );
    }

    let partial = card_body(&dom, "partial");
    for expected in [
        "class=\"stat-value load-value\">—<",
        "class=\"metric-value swap-value\">—<",
        "class=\"metric-sub\">/<",
        "class=\"metric-value disk-value\">80.0 GB / 100.0 GB<",
        "class=\"stat-value network-value\">—<",
        "class=\"stat-value uptime-value\">12 min<",
        "class=\"stat-value processes-value\">—<",
    ] {
        assert!(
            partial.contains(expected),
            "partial lacks {expected}:\n{partial}"
        );
    }

    let reserved = card_body(&dom, "reserved");
    assert!(
        reserved.contains("class=\"metric-percent disk-percent\">40.0%<"),
        "used ÷ (used + available), as df: {reserved}"
    );

    // An older agent's card: CPU and RAM, dashes for what it never sent.
    let plain = card_body(&dom, "plain");
    assert!(plain.contains("10.0%"), "{plain}");
    assert!(
        plain.contains("class=\"stat-value load-value\">—<"),
        "{plain}"
    );
    assert!(!plain.contains("is-broken"), "{plain}");
}
