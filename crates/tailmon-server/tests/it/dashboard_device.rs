//! The device page (`device.html?id=ID`) in a real headless Chromium,
//! driven through ChromeDriver ([`tailmon_testkit::Browser`]), against a
//! real server on 127.0.0.1:0 with a real SQLite store whose history spans
//! a year of rollups, placed with a [`ManualClock`].
//!
//! Every wait polls the page up to a deadline; there are no fixed sleeps.

use std::sync::Arc;
use std::time::Duration;
use tailmon_server::store::OrgId;

use serde_json::{Value, json};
use tailmon_core::{
    CpuBreakdown, Disk, DiskIo, LoadAvg, NetworkInterface, OffsetDateTime, ProcessInfo, Report,
    Temperature,
};
use tailmon_server::auth::Role;
use tailmon_server::store::Durability;
use tailmon_server::{
    Clock, Credentials, Ingest, ManualClock, Server, ServerBuilder, SqliteStore, Store,
};
use tailmon_testkit::{Browser, browser_tools};

use crate::support::{Running, TestDirs};

const DEVICE: &str = "db-1";
const PASSWORD: &str = "correct-horse-battery-9";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The page has drawn its charts for the range it shows.
const CHARTS_READY: &str = "return document.body.dataset.loading === 'false' \
    && document.querySelector('figure.chart[data-chart=\"cpu\"]') !== null \
    && document.body.dataset.loaded";

/// A full report of `device` at `at`, its values a function of the time
/// (so a rollup bucket holds different values: its min and max differ).
fn report_at(device: &str, at: OffsetDateTime) -> Report {
    let t = at.unix_timestamp() as f64;
    let wave = (t / 5400.0).sin();
    let wiggle = ((t / 600.0).floor() % 7.0) * 3.0;
    let cpu = (40.0 + 25.0 * wave + wiggle).clamp(0.0, 100.0);
    let mut r = Report::new(device, at);
    r.os_info = "Debian GNU/Linux 12 (Kernel: 6.1.0)".into();
    r.cpu_usage = (cpu * 100.0).round() / 100.0;
    r.ram_total_mb = 16_384;
    r.ram_used_mb = 6_000 + (wiggle as u64) * 100;
    r.cpu_per_core = Some(vec![r.cpu_usage, (r.cpu_usage / 2.0).round()]);
    r.cpu_breakdown = Some(CpuBreakdown {
        user: (r.cpu_usage * 0.6).round(),
        system: (r.cpu_usage * 0.3).round(),
        iowait: 1.0,
        steal: 0.0,
    });
    r.load_avg = Some(LoadAvg {
        one: 0.5 + wiggle / 10.0,
        five: 0.5,
        fifteen: 0.25,
    });
    r.swap_total_mb = Some(2_048);
    r.swap_used_mb = Some(128);
    r.disks = Some(vec![Disk {
        mount_point: "/".into(),
        fs_type: "ext4".into(),
        total_bytes: 100 << 30,
        used_bytes: (40 << 30) + (wiggle as u64) * (1 << 28),
        available_bytes: Some(50 << 30),
    }]);
    r.disk_io = Some(vec![DiskIo {
        device: "sda".into(),
        read_bytes_per_sec: 1_000.0 * wiggle,
        write_bytes_per_sec: 20_000.0,
    }]);
    r.networks = Some(vec![NetworkInterface {
        interface: "eth0".into(),
        rx_bytes_per_sec: Some(50_000.0 + 1_000.0 * wiggle),
        tx_bytes_per_sec: Some(10_000.0),
        rx_bytes_total: 1 << 30,
        tx_bytes_total: 1 << 28,
        rx_errors: 0,
        tx_errors: 0,
    }]);
    r.temperatures = Some(vec![Temperature {
        label: "cpu".into(),
        celsius: 50.0 + wiggle,
    }]);
    r.uptime_seconds = Some(90_000);
    r.boot_time = Some(at - time::Duration::seconds(90_000));
    r.process_count = Some(120);
    r.top_processes = Some(vec![
        ProcessInfo {
            pid: 4242,
            name: "postgres".into(),
            cpu_percent: 12.5,
            rss_bytes: 512 << 20,
        },
        ProcessInfo {
            pid: 7,
            name: "nginx".into(),
            cpu_percent: 1.5,
            rss_bytes: 64 << 20,
        },
    ]);
    r.custom = Some([("queue.depth".to_owned(), 3.0 + wiggle)].into());
    r
}

/// A SQLite store in `dir` on `clock`.
fn open_store(dir: &std::path::Path, clock: &Arc<ManualClock>) -> SqliteStore {
    SqliteStore::builder(dir)
        .clock(clock.clone())
        .durability(Durability::Process)
        .open()
        .expect("store opens")
}

/// A server on 127.0.0.1:0 over `store`, on `clock`; open access unless
/// `credentials` are given.
async fn serve(
    store: SqliteStore,
    clock: &Arc<ManualClock>,
    credentials: Option<Arc<Credentials>>,
) -> (Running, Ingest) {
    let builder = ServerBuilder::new().clock(clock.clone()).store(store);
    let builder = match credentials {
        Some(credentials) => builder.credentials(credentials),
        None => builder.open_access(),
    };
    let server: Server = builder.build().expect("valid server");
    let ingest = server.ingest().clone();
    (Running::start(server).await, ingest)
}

/// The times of the stored history, oldest first, ending at `now`: every
/// 30 min over the year, every 10 min over the last 30 days, every minute
/// over the last day and every 10 s over the last hour; but none for six
/// hours three days ago.
fn history_times(now: OffsetDateTime) -> Vec<OffsetDateTime> {
    let end = now.unix_timestamp();
    let mut times = Vec::new();
    let mut push_every = |from: i64, to: i64, step: i64| {
        let mut t = from - from.rem_euclid(step);
        while t < to {
            if t >= from {
                times.push(t);
            }
            t += step;
        }
    };
    push_every(end - 365 * DAY, end - 30 * DAY, 30 * 60);
    push_every(end - 30 * DAY, end - DAY, 10 * 60);
    push_every(end - DAY, end - HOUR, 60);
    push_every(end - HOUR, end + 1, 10);
    // The agent was down for six hours three days ago.
    let (down, up) = (end - 3 * DAY - 6 * HOUR, end - 3 * DAY);
    times
        .into_iter()
        .filter(|t| !(down..up).contains(t))
        .map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap())
        .collect()
}

/// Stores a year of `DEVICE`'s history, in batches, before a server
/// (and so its retention) runs: a store drops on arrival raw reports older
/// than its last retention pass kept.
async fn store_history(store: &SqliteStore, now: OffsetDateTime) -> usize {
    let times = history_times(now);
    for chunk in times.chunks(2_000) {
        let reports = chunk.iter().map(|&at| report_at(DEVICE, at)).collect();
        store
            .insert_many(&OrgId::default(), reports)
            .await
            .expect("history stored");
    }
    times.len()
}

/// The clock the server runs on: now, in whole seconds (the browser's
/// clock decides the windows the page asks for).
fn clock_now() -> Arc<ManualClock> {
    let now = OffsetDateTime::now_utc();
    Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap(),
    ))
}

/// Waits for the page to draw its charts; on a timeout, fails with what
/// the page says and the browser console.
async fn charts_ready(browser: &Browser) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Value::String(_)) = browser.script(CHARTS_READY).await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let page = browser
                .script(
                    "return { href: location.href, body: {...document.body.dataset}, \
                      loading: document.getElementById('device-loading')?.textContent, \
                      error: document.getElementById('device-error')?.textContent, \
                      missing: document.getElementById('device-missing-text')?.textContent }",
                )
                .await;
            panic!(
                "no charts within 20 s: {page:?}\nconsole: {:?}",
                browser.console().await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the chart `figure[data-chart=ID]` holds: tier, point count, whether
/// a band is drawn and whether some band is wider than a line, the x range
/// of its data and of its scale.
async fn chart_state(browser: &Browser, id: &str) -> Value {
    browser
        .script(&format!(
            "const f = document.querySelector('figure.chart[data-chart=\"{id}\"]'); \
             if (!f || !f.chart || !f.chart.uplot) return null; \
             const u = f.chart.uplot; const xs = u.data[0]; \
             const series = f.chart.labels.length; \
             let wide = false; \
             if (u.data.length > 1 + series) {{ \
               const lo = u.data[1 + series], hi = u.data[2 + series]; \
               for (let i = 0; i < xs.length; i++) if (lo[i] !== null && hi[i] !== null && hi[i] > lo[i]) wide = true; \
             }} \
             return {{ tier: f.dataset.tier, band: f.dataset.band, bands: u.bands.length, wide, \
                       points: xs.filter((x, i) => u.data[1][i] !== null).length, \
                       gaps: u.data[1].filter(v => v === null).length, \
                       first: xs[0], last: xs[xs.length - 1], \
                       min: u.scales.x.min, max: u.scales.x.max }};"
        ))
        .await
        .expect("chart state")
}

/// Waits for the page to finish a fetch newer than `after` (the body's
/// `data-loaded` counter).
async fn wait_loaded_after(browser: &Browser, after: i64) -> i64 {
    let value = browser
        .wait_for(
            "the charts to load again",
            &format!(
                "return document.body.dataset.loading === 'false' \
                 && Number(document.body.dataset.loaded) > {after} \
                 && Number(document.body.dataset.loaded)"
            ),
        )
        .await;
    value.as_i64().expect("a counter")
}

async fn loaded(browser: &Browser) -> i64 {
    browser
        .script("return Number(document.body.dataset.loaded || 0)")
        .await
        .expect("counter")
        .as_i64()
        .unwrap_or(0)
}

/// Drags across the plot of chart `id` from `from` to `to` (fractions of
/// its width) with real mouse events (DevTools' Input domain).
async fn drag(browser: &Browser, id: &str, from: f64, to: f64) {
    let rect = browser
        .script(&format!(
            "const o = document.querySelector('figure.chart[data-chart=\"{id}\"] .u-over'); \
             o.scrollIntoView({{block: 'center'}}); \
             const r = o.getBoundingClientRect(); \
             return {{x: r.left, y: r.top, w: r.width, h: r.height}};"
        ))
        .await
        .expect("plot rectangle");
    let x = |f: f64| rect["x"].as_f64().unwrap() + rect["w"].as_f64().unwrap() * f;
    let y = rect["y"].as_f64().unwrap() + rect["h"].as_f64().unwrap() / 2.0;
    let event = |kind: &str, at: f64, buttons: u32| json!({"type": kind, "x": at, "y": y, "button": "left", "buttons": buttons, "clickCount": 1});
    browser
        .cdp("Input.dispatchMouseEvent", event("mouseMoved", x(from), 0))
        .await
        .unwrap();
    browser
        .cdp(
            "Input.dispatchMouseEvent",
            event("mousePressed", x(from), 1),
        )
        .await
        .unwrap();
    for step in 1..=8 {
        let at = from + (to - from) * f64::from(step) / 8.0;
        browser
            .cdp("Input.dispatchMouseEvent", event("mouseMoved", x(at), 1))
            .await
            .unwrap();
    }
    browser
        .cdp("Input.dispatchMouseEvent", event("mouseReleased", x(to), 0))
        .await
        .unwrap();
}

/// Presses and releases `key` (DevTools' Input domain: real key events).
async fn press(browser: &Browser, key: &str, code: u32) {
    // Enter types a carriage return: that is what activates a button.
    let text = if key == "Enter" { "\r" } else { "" };
    for kind in ["keyDown", "keyUp"] {
        let mut event =
            json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code});
        if kind == "keyDown" && !text.is_empty() {
            event["text"] = json!(text);
        }
        browser.cdp("Input.dispatchKeyEvent", event).await.unwrap();
    }
}

/// Console entries at error level (a script that threw, a CSP violation),
/// leaving out the answers the page expects (an unknown device's 404).
fn errors(entries: &[Value]) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| {
            e["level"] == "SEVERE"
                && !e["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Failed to load resource")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_page_charts_every_range_zooms_exports_and_fits_phone_and_desktop() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let dirs = TestDirs::new("dashboard_device_ranges");
    let clock = clock_now();
    let now = clock.now();
    let store = open_store(&dirs.fresh(), &clock);
    let stored = store_history(&store, now).await;
    let (running, _ingest) = serve(store, &clock, None).await;
    assert!(stored > 20_000, "a year of history: {stored} reports");
    let site = running.url();
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;

    // 1 h by default, live, from raw reports: no band.
    browser
        .goto(&format!("{site}/device.html?id={DEVICE}"))
        .await;
    charts_ready(&browser).await;
    let pressed = browser
        .script(
            "return document.querySelector('[data-range][aria-pressed=\"true\"]').dataset.range",
        )
        .await
        .unwrap();
    assert_eq!(pressed, "1h");
    assert_eq!(
        browser
            .script("return document.getElementById('live-toggle').checked")
            .await
            .unwrap(),
        true,
        "live mode is on for 1 h"
    );
    // Every chart the device's metrics allow, in the default order.
    let charts = browser
        .script(
            "return [...document.querySelectorAll('figure.chart')].map(f => \
             f.dataset.chart + (f.dataset.key ? ':' + f.dataset.key : ''))",
        )
        .await
        .unwrap();
    assert_eq!(
        charts,
        json!([
            "cpu",
            "cpu_cores",
            "cpu_breakdown",
            "memory",
            "swap",
            "load",
            "disk_usage",
            "disk_io",
            "network:eth0",
            "temperatures",
            "custom:queue.depth"
        ])
    );

    // Each range: points spanning it, at most 2,000 a series, so the server
    // answers from the finest tier that fits: raw for an hour, minute
    // rollups up to a day, hourly beyond, with their min-max band.
    let mut counter = loaded(&browser).await;
    for (range, span, tier) in [
        ("1h", HOUR, "raw"),
        ("6h", 6 * HOUR, "minute"),
        ("24h", DAY, "minute"),
        ("7d", 7 * DAY, "hour"),
        ("30d", 30 * DAY, "hour"),
        ("1y", 365 * DAY, "hour"),
    ] {
        browser.click(&format!("[data-range=\"{range}\"]")).await;
        counter = wait_loaded_after(&browser, counter).await;
        for id in ["cpu", "memory", "disk_usage", "temperatures"] {
            let chart = chart_state(&browser, id).await;
            assert_eq!(chart["tier"], tier, "{range} {id}: {chart}");
            let points = chart["points"].as_i64().unwrap();
            assert!(points > 20, "{range} {id}: {chart}");
            let first = chart["first"].as_f64().unwrap();
            let last = chart["last"].as_f64().unwrap();
            let span = span as f64;
            assert!(
                last - first > span * 0.9,
                "{range} {id}: data spans the range: {chart}"
            );
            let window = chart["max"].as_f64().unwrap() - chart["min"].as_f64().unwrap();
            assert!(
                (window - span).abs() < 120.0,
                "{range} {id}: the axis shows the range: {chart}"
            );
            if tier == "raw" {
                assert_eq!(chart["bands"], 0, "{range} {id}: {chart}");
            } else {
                assert_eq!(chart["band"], "true", "{range} {id}: {chart}");
                assert!(
                    chart["bands"].as_i64().unwrap() >= 1,
                    "{range} {id}: {chart}"
                );
            }
        }
        let cpu = chart_state(&browser, "cpu").await;
        // The six hours without reports break the line; nothing else does.
        let gaps = if span > 3 * DAY { 1 } else { 0 };
        assert_eq!(cpu["gaps"], gaps, "{range}: {cpu}");
        if tier != "raw" {
            assert_eq!(
                cpu["wide"], true,
                "{range}: some hour's min and max differ: {cpu}"
            );
        }
        let url = browser.script("return location.search").await.unwrap();
        assert!(
            url.as_str().unwrap().contains(&format!("range={range}")),
            "the range is in the address: {url}"
        );
        // Screen readers get the latest, smallest and largest value.
        let summary = browser
            .script(
                "return [...document.querySelectorAll('figure.chart[data-chart=\"cpu\"] table.chart-summary td')]\
                 .map(td => td.textContent)",
            )
            .await
            .unwrap();
        let summary: Vec<&str> = summary
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(summary.len(), 3, "{summary:?}");
        assert!(summary.iter().all(|v| v.ends_with('%')), "{summary:?}");
    }

    // A link reproduces the view.
    browser
        .goto(&format!("{site}/device.html?id={DEVICE}&range=30d"))
        .await;
    charts_ready(&browser).await;
    let cpu = chart_state(&browser, "cpu").await;
    assert_eq!(cpu["tier"], "hour", "{cpu}");
    assert!(
        (cpu["max"].as_f64().unwrap() - cpu["min"].as_f64().unwrap() - (30 * DAY) as f64).abs()
            < 120.0
    );

    // Zoom: a drag across 7 days' hourly chart refetches the span at one
    // minute per point, and says so in the address.
    browser.click("[data-range=\"7d\"]").await;
    let before_zoom = wait_loaded_after(&browser, loaded(&browser).await - 1).await;
    let _ = wait_loaded_after(&browser, before_zoom - 1).await;
    let hourly = chart_state(&browser, "cpu").await;
    assert_eq!(hourly["tier"], "hour");
    drag(&browser, "cpu", 0.40, 0.48).await;
    let _ = wait_loaded_after(&browser, before_zoom).await;
    let zoomed = chart_state(&browser, "cpu").await;
    assert_eq!(
        zoomed["tier"], "minute",
        "a finer tier for the zoomed span: {zoomed}"
    );
    let zoom_span = zoomed["max"].as_f64().unwrap() - zoomed["min"].as_f64().unwrap();
    assert!(
        zoom_span < (DAY as f64) && zoom_span > (6 * HOUR) as f64,
        "about 8 % of 7 days: {zoomed}"
    );
    // Reports came every 10 min there: six points an hour, not one.
    let hours = zoom_span / HOUR as f64;
    assert!(
        zoomed["points"].as_f64().unwrap() > hours * 5.0,
        "finer points than the hourly ones: {zoomed}"
    );
    let search = browser.script("return location.search").await.unwrap();
    let search = search.as_str().unwrap().to_owned();
    assert!(
        search.contains("from=") && search.contains("to="),
        "{search}"
    );
    // Every chart followed.
    let memory = chart_state(&browser, "memory").await;
    assert_eq!(memory["tier"], "minute", "{memory}");
    assert_eq!(memory["min"], zoomed["min"]);
    // Reset zoom returns to the 7 days.
    let counter = loaded(&browser).await;
    browser.click("#reset-zoom").await;
    wait_loaded_after(&browser, counter).await;
    assert_eq!(chart_state(&browser, "cpu").await["tier"], "hour");

    // The zoomed link, opened anew, shows the same span.
    browser.goto(&format!("{site}/device.html{search}")).await;
    charts_ready(&browser).await;
    let again = chart_state(&browser, "cpu").await;
    assert_eq!(again["tier"], "minute");
    assert_eq!(again["min"], zoomed["min"]);
    assert_eq!(again["max"], zoomed["max"]);

    // Export links give the reports of the range shown (the last hour).
    browser.click("[data-range=\"1h\"]").await;
    wait_loaded_after(&browser, loaded(&browser).await - 1).await;
    let links = browser
        .script("return ['csv', 'json'].map(f => document.getElementById('export-' + f).href)")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let csv_url = links[0].as_str().unwrap();
    assert!(
        csv_url.starts_with(&format!(
            "{site}/api/v1/devices/{DEVICE}/export?format=csv&from="
        )),
        "{csv_url}"
    );
    let csv = http.get(csv_url).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("device_id,timestamp,metric,value"));
    let cpu_rows = lines.filter(|l| l.contains(",cpu_usage,")).count();
    assert!(
        (350..=362).contains(&cpu_rows),
        "one row per report of the hour: {cpu_rows}"
    );
    let json_url = links[1].as_str().unwrap();
    let reports: Vec<Value> = http
        .get(json_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reports.len(), cpu_rows, "JSON: the same reports");
    assert!(reports.iter().all(|r| r["device_id"] == DEVICE));

    // Top processes, OS, uptime, boot time, status.
    let facts = browser
        .script(
            "return { os: document.getElementById('device-os').textContent, \
                      uptime: document.getElementById('device-uptime').textContent, \
                      boot: document.getElementById('device-boot').textContent, \
                      status: document.getElementById('device-status').textContent, \
                      rows: [...document.querySelectorAll('#processes-body tr')].map(tr => \
                         [...tr.children].map(c => c.textContent)) }",
        )
        .await
        .unwrap();
    assert_eq!(facts["os"], "Debian GNU/Linux 12 (Kernel: 6.1.0)");
    assert_eq!(facts["uptime"], "1 d 1 h");
    assert_ne!(facts["boot"], "—");
    assert!(
        ["ok", "warning", "critical"].contains(&facts["status"].as_str().unwrap()),
        "{facts}"
    );
    assert_eq!(
        facts["rows"],
        json!([
            ["postgres", "4242", "12.5%", "512.0 MB"],
            ["nginx", "7", "1.5%", "64.0 MB"]
        ])
    );

    // The shell's theme toggle repaints the charts in the theme's colours.
    for (theme, text) in [("light", "#56607e"), ("dark", "#9aa4c2"), ("system", "")] {
        browser
            .script(&format!(
                "const s = document.getElementById('theme-select'); s.value = '{theme}'; \
                 s.dispatchEvent(new Event('change')); return true"
            ))
            .await
            .unwrap();
        if !text.is_empty() {
            browser
                .wait_for(
                    &format!("the charts in the {theme} theme"),
                    &format!(
                        "const u = document.querySelector('figure.chart').chart.uplot; \
                         return u.axes[0].stroke(u, 0) === '{text}'"
                    ),
                )
                .await;
        }
    }

    // Screenshots of the week (rollups, with their bands): desktop and
    // phone, light and dark; nothing wider than the phone's screen.
    let counter = loaded(&browser).await;
    browser.click("[data-range=\"7d\"]").await;
    wait_loaded_after(&browser, counter).await;
    for scheme in ["light", "dark"] {
        browser.set_color_scheme(scheme).await;
        browser.set_viewport(1280, 800).await;
        browser.wait_for("charts repainted", CHARTS_READY).await;
        browser
            .screenshot(&format!("device-desktop-{scheme}"))
            .await;
        browser.set_viewport(360, 740).await;
        browser
            .wait_for(
                "charts as wide as the phone",
                "const f = document.querySelector('figure.chart'); \
                 return f && f.chart.uplot && f.chart.uplot.width <= 360 && f.chart.uplot.width > 200",
            )
            .await;
        let overflow = browser
            .script(
                "return { width: document.documentElement.scrollWidth, \
                   wide: [...document.querySelectorAll('body *')] \
                     .filter(e => e.getBoundingClientRect().right > 361 && e.getClientRects().length) \
                     .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id) }",
            )
            .await
            .unwrap();
        assert!(
            overflow["width"].as_i64().unwrap() <= 360,
            "nothing wider than 360 px: {overflow}"
        );
        browser.screenshot(&format!("device-phone-{scheme}")).await;
        browser
            .script("document.getElementById('device-charts').scrollIntoView(); return true")
            .await
            .unwrap();
        browser
            .screenshot(&format!("device-phone-{scheme}-charts"))
            .await;
        browser
            .script("window.scrollTo(0, 0); return true")
            .await
            .unwrap();
    }
    let console = browser.console().await;
    assert!(errors(&console).is_empty(), "{console:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_grows_the_charts_without_a_reload() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let dirs = TestDirs::new("dashboard_device_live");
    let clock = clock_now();
    let now = clock.now();
    let (running, ingest) = serve(open_store(&dirs.fresh(), &clock), &clock, None).await;
    for step in (0..60).rev() {
        ingest
            .ingest(report_at(DEVICE, now - time::Duration::seconds(step * 10)))
            .await
            .unwrap();
    }
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser
        .goto(&format!("{}/device.html?id={DEVICE}", running.url()))
        .await;
    charts_ready(&browser).await;
    browser
        .script("window.sameDocument = true; return true")
        .await
        .unwrap();
    let before = chart_state(&browser, "cpu").await;
    assert_eq!(before["points"], 60, "{before}");

    // Two new reports: each appears on the charts as it arrives.
    for n in 1..=2 {
        let at = now + time::Duration::seconds(10 * n);
        clock.set(at);
        let mut r = report_at(DEVICE, at);
        r.cpu_usage = 99.0;
        r.top_processes = Some(vec![ProcessInfo {
            pid: 99,
            name: format!("burner-{n}"),
            cpu_percent: 99.0,
            rss_bytes: 1 << 20,
        }]);
        ingest.ingest(r).await.unwrap();
        let expected = at.unix_timestamp() as f64;
        let grown = browser
            .wait_for(
                "the new report on the chart",
                &format!(
                    "const u = document.querySelector('figure.chart[data-chart=\"cpu\"]').chart.uplot; \
                     const xs = u.data[0]; \
                     return xs[xs.length - 1] === {expected} && u.data[1][xs.length - 1] === 99 \
                       && {{points: xs.length, max: u.scales.x.max}}"
                ),
            )
            .await;
        assert_eq!(grown["points"], 60 + n, "{grown}");
        assert!(grown["max"].as_f64().unwrap() >= expected);
        browser
            .wait_for(
                "the new top process",
                &format!(
                    "return document.querySelector('#processes-body th').textContent === 'burner-{n}'"
                ),
            )
            .await;
    }
    // The per-core and network charts grew too.
    assert_eq!(chart_state(&browser, "cpu_cores").await["points"], 62);
    assert_eq!(
        browser
            .script("return document.getElementById('device-conflict').hidden")
            .await
            .unwrap(),
        true,
        "one agent: no warning"
    );

    // Two agents take turns under the id: the page warns, live.
    for (n, instance) in [(3, "agent-a"), (4, "agent-b"), (5, "agent-a")] {
        let at = now + time::Duration::seconds(10 * n);
        clock.set(at);
        let mut r = report_at(DEVICE, at);
        r.agent_instance = Some(instance.into());
        if n == 5 {
            // Its clock 612 s ahead: stored at `at`, and said so.
            r.last_seen = at + time::Duration::seconds(612);
        }
        ingest.ingest(r).await.unwrap();
    }
    let skew = browser
        .wait_for(
            "the clock skew line",
            "return !document.getElementById('device-clock-row').hidden \
               && document.getElementById('device-clock-skew').textContent",
        )
        .await;
    assert_eq!(skew, "clock 612 s ahead");
    let warning = browser
        .wait_for(
            "the duplicate-id warning",
            "const w = document.getElementById('device-conflict'); \
             return !w.hidden && w.textContent",
        )
        .await;
    assert!(
        warning
            .as_str()
            .unwrap()
            .contains("Two agents are reporting as this device id"),
        "{warning}"
    );

    // No report for a minute by the server's clock: the status the server
    // sends, offline, and since when.
    assert_eq!(
        browser
            .script("return document.getElementById('device-offline-row').hidden")
            .await
            .unwrap(),
        true
    );
    clock.advance(Duration::from_secs(60));
    let offline = browser
        .wait_for(
            "the offline status",
            "const b = document.getElementById('device-status'); \
             return b.dataset.status === 'offline' \
               && !document.getElementById('device-offline-row').hidden \
               && document.getElementById('device-offline-since').dateTime",
        )
        .await;
    let last = (now + time::Duration::seconds(50)).unix_timestamp();
    let since = OffsetDateTime::parse(
        offline.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        since.unix_timestamp(),
        last,
        "offline since the last report"
    );

    // Back after the pause: the new point comes after a break in the line.
    let back = clock.now();
    ingest.ingest(report_at(DEVICE, back)).await.unwrap();
    let tail = browser
        .wait_for(
            "the report after the pause",
            &format!(
                "const u = document.querySelector('figure.chart[data-chart=\"cpu\"]').chart.uplot; \
                 const n = u.data[0].length; \
                 return u.data[0][n - 1] === {} && u.data[1].slice(n - 3)",
                back.unix_timestamp()
            ),
        )
        .await;
    let tail = tail.as_array().unwrap();
    assert!(
        tail[0].is_number() && tail[1].is_null() && tail[2].is_number(),
        "a gap before it: {tail:?}"
    );
    assert_eq!(
        browser
            .script("return window.sameDocument === true")
            .await
            .unwrap(),
        true,
        "no reload"
    );
}

/// Signs in as `ana` on the login page, then opens `page`.
async fn sign_in(browser: &Browser, site: &str, page: &str) {
    browser.goto(&format!("{site}/login")).await;
    browser
        .wait_for(
            "the login form",
            "return document.getElementById('login-form') !== null \
             && document.readyState === 'complete'",
        )
        .await;
    browser.type_into("#username", "ana").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
    browser
        .wait_for("signed in", "return location.pathname === '/'")
        .await;
    browser.goto(page).await;
    charts_ready(browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_charts_follow_the_user_to_a_new_browser() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let dirs = TestDirs::new("dashboard_device_prefs");
    let clock = clock_now();
    let now = clock.now();
    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("ana", PASSWORD, Role::Viewer)
        .expect("user added");
    let (running, ingest) =
        serve(open_store(&dirs.fresh(), &clock), &clock, Some(credentials)).await;
    for step in (0..30).rev() {
        ingest
            .ingest(report_at(DEVICE, now - time::Duration::seconds(step * 10)))
            .await
            .unwrap();
    }
    let site = running.url();
    let page = format!("{site}/device.html?id={DEVICE}");

    let shown = "return [...document.querySelectorAll('figure.chart')].map(f => f.dataset.chart)";

    let mut first = Browser::start(&chromium, &chromedriver).await;
    sign_in(&first, &site, &page).await;
    // Keep load, then memory, then CPU; nothing else.
    first.click("#customize-open").await;
    first
        .wait_for(
            "the dialog",
            "return document.getElementById('customize-dialog').open",
        )
        .await;
    first.set_viewport(1280, 800).await;
    first.screenshot("device-customize-desktop").await;
    first
        .script(
            "for (const li of document.querySelectorAll('#customize-list li')) \
               li.querySelector('input').checked = ['cpu', 'memory', 'load'].includes(li.dataset.chartId); \
             return true",
        )
        .await
        .unwrap();
    // Load to the top, then memory above CPU, with the dialog's buttons.
    for _ in 0..8 {
        first
            .click("#customize-list li[data-chart-id=\"load\"] .move-up")
            .await;
    }
    for _ in 0..3 {
        first
            .click("#customize-list li[data-chart-id=\"memory\"] .move-up")
            .await;
    }
    let counter = loaded(&first).await;
    first.click("#customize-save").await;
    wait_loaded_after(&first, counter).await;
    first
        .wait_for(
            "the dialog closed",
            "return !document.getElementById('customize-dialog').open",
        )
        .await;
    let order = first.script(shown).await.unwrap();
    assert_eq!(order, json!(["load", "memory", "cpu"]));
    first.quit().await;

    // A new profile: nothing in its storage, the server has the choice.
    let second = Browser::start(&chromium, &chromedriver).await;
    sign_in(&second, &site, &page).await;
    assert_eq!(
        second.script(shown).await.unwrap(),
        json!(["load", "memory", "cpu"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_show_as_text_and_unknown_devices_get_a_page_saying_so() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let dirs = TestDirs::new("dashboard_device_hostile");
    let clock = clock_now();
    let now = clock.now();
    let (running, ingest) = serve(open_store(&dirs.fresh(), &clock), &clock, None).await;
    const OS: &str = "<img src=x onerror=\"window.pwned=1\">Linux";
    const PROCESS: &str = "<script>window.pwned=2</script>";
    const LABEL: &str = "<b onmouseover=\"window.pwned=3\">hot</b>";
    const MOUNT: &str = "/mnt/<svg onload=window.pwned=4>";
    const INTERFACE: &str = "eth\"><img src=y onerror=window.pwned=5>";
    for step in (0..5).rev() {
        let mut r = report_at(DEVICE, now - time::Duration::seconds(step * 10));
        r.os_info = OS.into();
        r.top_processes = Some(vec![ProcessInfo {
            pid: 1,
            name: PROCESS.into(),
            cpu_percent: f64::from(5 - step as u8),
            rss_bytes: 1,
        }]);
        r.temperatures = Some(vec![Temperature {
            label: LABEL.into(),
            celsius: 40.0,
        }]);
        r.disks.as_mut().unwrap()[0].mount_point = MOUNT.into();
        r.networks.as_mut().unwrap()[0].interface = INTERFACE.into();
        r.custom = Some([("q.1".to_owned(), 1.0)].into());
        ingest.ingest(r).await.expect("valid report");
    }
    let site = running.url();
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser
        .goto(&format!("{site}/device.html?id={DEVICE}"))
        .await;
    charts_ready(&browser).await;
    let seen = browser
        .script(
            "const legend = (id) => [...document.querySelectorAll(`figure.chart[data-chart=\"${id}\"] .u-legend .u-label`)].map(e => e.textContent); \
             return { os: document.getElementById('device-os').textContent, \
                      process: document.querySelector('#processes-body th').textContent, \
                      temperature: legend('temperatures'), \
                      disk: legend('disk_usage'), \
                      network: document.querySelector('figure.chart[data-chart=\"network\"] .chart-title').textContent, \
                      networkKey: document.querySelector('figure.chart[data-chart=\"network\"]').dataset.key, \
                      summary: document.querySelector('figure.chart[data-chart=\"temperatures\"] table.chart-summary tbody th').textContent, \
                      injected: document.querySelectorAll('main img, main script, main svg, main b').length, \
                      pwned: window.pwned === undefined ? null : window.pwned }",
        )
        .await
        .unwrap();
    assert_eq!(seen["os"], OS);
    assert_eq!(seen["process"], PROCESS);
    assert_eq!(seen["temperature"][1], LABEL, "after the time");
    assert_eq!(seen["summary"], LABEL);
    assert_eq!(seen["disk"][1], MOUNT);
    assert_eq!(seen["network"], format!("Network: {INTERFACE}"));
    assert_eq!(seen["networkKey"], INTERFACE);
    assert_eq!(seen["injected"], 0, "{seen}");
    assert_eq!(seen["pwned"], Value::Null);

    // Every control is reachable with the Tab key, and works from it.
    let mut reached = Vec::new();
    for _ in 0..60 {
        press(&browser, "Tab", 9).await;
        let at = browser
            .script(
                "const e = document.activeElement; \
                 return e ? (e.dataset.range || e.id || e.tagName) : null",
            )
            .await
            .unwrap();
        let at = at.as_str().unwrap_or("").to_owned();
        if at == "customize-open" {
            reached.push(at);
            break;
        }
        reached.push(at);
    }
    for control in [
        "1h",
        "6h",
        "1y",
        "range-from",
        "range-to",
        "live-toggle",
        "export-csv",
        "export-json",
        "customize-open",
    ] {
        assert!(
            reached.iter().any(|r| r == control),
            "{control} not reached: {reached:?}"
        );
    }
    press(&browser, "Enter", 13).await;
    browser
        .wait_for(
            "the dialog, opened from the keyboard",
            "return document.getElementById('customize-dialog').open",
        )
        .await;
    press(&browser, "Escape", 27).await;
    browser
        .wait_for(
            "the dialog closed with Escape",
            "return !document.getElementById('customize-dialog').open",
        )
        .await;

    // An unknown device, a bad id, no id: a page that says so.
    for (query, says) in [
        ("?id=nobody-here", "No device \"nobody-here\""),
        (
            "?id=%3Cb%3Ebad%20id%3C%2Fb%3E",
            "\"<b>bad id</b>\" is not a device id",
        ),
        ("", "No device was named"),
    ] {
        browser.goto(&format!("{site}/device.html{query}")).await;
        let text = browser
            .wait_for(
                "the missing-device page",
                "const s = document.getElementById('device-missing'); \
                 return s && !s.hidden && document.getElementById('device-missing-text').textContent",
            )
            .await;
        assert!(text.as_str().unwrap().contains(says), "{query}: {text}");
        assert_eq!(
            browser
                .script("return document.querySelectorAll('main b').length")
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            browser
                .script("return document.getElementById('device-view').hidden")
                .await
                .unwrap(),
            true
        );
    }
    let console = browser.console().await;
    assert!(errors(&console).is_empty(), "{console:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_works_nested_under_a_prefix() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let dirs = TestDirs::new("dashboard_device_nested");
    let clock = clock_now();
    let now = clock.now();
    let server = ServerBuilder::new()
        .open_access()
        .clock(clock.clone())
        .store(open_store(&dirs.fresh(), &clock))
        .build()
        .expect("valid server");
    for step in (0..10).rev() {
        server
            .ingest()
            .ingest(report_at(DEVICE, now - time::Duration::seconds(step * 10)))
            .await
            .unwrap();
    }
    let app = axum::Router::new().nest("/monitor", server.router());
    let running = Running::start_router(app, tailmon_server::ServeOptions::new()).await;
    let site = running.url();
    let browser = Browser::start(&chromium, &chromedriver).await;
    browser
        .goto(&format!("{site}/monitor/device.html?id={DEVICE}&range=6h"))
        .await;
    charts_ready(&browser).await;
    let cpu = chart_state(&browser, "cpu").await;
    assert_eq!(cpu["points"], 10, "{cpu}");
    let links = browser
        .script(
            "return { export: document.getElementById('export-csv').href, \
                      back: document.querySelector('.back-link').href, \
                      address: location.pathname + location.search }",
        )
        .await
        .unwrap();
    assert!(
        links["export"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{site}/monitor/api/v1/devices/{DEVICE}/export?")),
        "{links}"
    );
    assert_eq!(links["back"], format!("{site}/monitor/"));
    assert_eq!(
        links["address"],
        format!("/monitor/device.html?id={DEVICE}&range=6h")
    );
}
