//! The fleet view in a real headless Chromium (driven through ChromeDriver,
//! [`tailmon_testkit::Browser`]) against a real server on 127.0.0.1:0.
//!
//! Every wait polls the page up to a deadline; there are no fixed sleeps.
//! Screenshots go to `target/screenshots/fleet-*.png`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tailmon_core::{Disk, OffsetDateTime, Report};
use tailmon_server::auth::Role;
use tailmon_server::{Credentials, ManualClock, ServerBuilder};
use tailmon_testkit::{Browser, browser_tools};

use crate::support::{Running, report};

const PASSWORD: &str = "correct-horse-battery-9";

/// Signs `user` in through the login page and waits for the fleet view.
async fn sign_in(browser: &Browser, site: &str, user: &str) {
    browser.goto(&format!("{site}/login")).await;
    browser
        .wait_for(
            "the login page",
            "return document.readyState === 'complete' && document.getElementById('login-form') !== null",
        )
        .await;
    browser.type_into("#username", user).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
    fleet_loaded(browser).await;
}

/// Waits until the fleet view has drawn its cards and its header.
async fn fleet_loaded(browser: &Browser) {
    browser
        .wait_for(
            "the fleet view",
            "return location.pathname === '/' && document.body.dataset.loaded === 'true' \
             && document.getElementById('theme-select') !== null && !!window.tailmonFleet",
        )
        .await;
}

/// The visible text of the card of `id`, or null.
fn card_text(id: &str) -> String {
    format!(
        "const c = document.querySelector('article[data-device-id=\"' + CSS.escape({id:?}) + '\"]'); \
         return c ? c.innerText : null"
    )
}

/// A disk `used` of `total` GiB mounted at `/`.
fn root_disk(total_gib: u64, used_gib: u64) -> Disk {
    const GIB: u64 = 1024 * 1024 * 1024;
    Disk {
        mount_point: "/".into(),
        fs_type: "ext4".into(),
        total_bytes: total_gib * GIB,
        used_bytes: used_gib * GIB,
        available_bytes: Some((total_gib - used_gib) * GIB),
    }
}

/// The page scrolls sideways (something is wider than the viewport).
const SCROLLS_SIDEWAYS: &str =
    "return document.documentElement.scrollWidth > document.documentElement.clientWidth";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_view_shows_status_counts_offline_and_hostile_text_as_text() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let now = OffsetDateTime::now_utc();
    let clock = Arc::new(ManualClock::new(now - time::Duration::hours(2)));
    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("root", PASSWORD, Role::Admin)
        .expect("user added");
    let server = ServerBuilder::new()
        .credentials(credentials)
        .clock(clock.clone())
        .build()
        .expect("valid");
    let ingest = server.ingest().clone();
    // Reported two hours ago, then silent: offline.
    let mut gone = report("gone-box", 5.0, 1000);
    gone.last_seen = now - time::Duration::hours(2);
    ingest.ingest(gone).await.expect("valid report");
    clock.set(now);
    for (id, cpu, ram) in [
        ("calm", 10.0, 1000),
        ("busy", 65.0, 1000),
        ("hot", 95.0, 1000),
    ] {
        let mut r = report(id, cpu, ram);
        r.disks = Some(vec![root_disk(100, 40)]);
        ingest.ingest(r).await.expect("valid report");
    }
    let mut hostile = report("x-hostile", 1.0, 1);
    hostile.os_info = "<img src=x onerror=\"window.tailmonPwned=1\"><script>window.tailmonPwned=2</script>".into();
    ingest.ingest(hostile).await.expect("valid report");

    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    browser.set_color_scheme("dark").await;
    sign_in(&browser, &site, "root").await;

    let statuses = browser
        .script(
            "return Object.fromEntries(Array.from(document.querySelectorAll('article[data-device-id]')) \
             .map(c => [c.dataset.deviceId, c.dataset.status]))",
        )
        .await
        .expect("script runs");
    assert_eq!(
        statuses,
        json!({"calm": "ok", "busy": "warning", "hot": "critical", "gone-box": "offline", "x-hostile": "ok"})
    );
    // Counted per status, offline apart.
    let counts = browser
        .script(
            "const s = document.getElementById('summary').dataset; \
             return [s.total, s.ok, s.warning, s.critical, s.offline]",
        )
        .await
        .expect("script runs");
    assert_eq!(counts, json!(["5", "2", "1", "1", "1"]));
    // The offline card says since when (the last report, two hours ago).
    let gone = browser.script(&card_text("gone-box")).await.expect("runs");
    let gone = gone.as_str().expect("the offline card");
    assert!(gone.contains("Offline since"), "{gone}");
    assert!(gone.contains("2 h ago"), "{gone}");
    let since = browser
        .script("return document.querySelector('[data-device-id=\"gone-box\"] .offline-since time').getAttribute('datetime')")
        .await
        .expect("runs");
    let since = OffsetDateTime::parse(
        since.as_str().expect("a datetime"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert!(
        (since - (now - time::Duration::hours(2))).abs() < time::Duration::seconds(1),
        "{since}"
    );
    // Status colours: each status has its own stripe colour.
    let colours = browser
        .script(
            "return ['calm','busy','hot','gone-box'].map(id => getComputedStyle(\
             document.querySelector('[data-device-id=\"' + id + '\"] .status-badge')).color)",
        )
        .await
        .expect("runs");
    let colours: Vec<&str> = colours
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c.as_str().expect("colour"))
        .collect();
    for (i, a) in colours.iter().enumerate() {
        for b in &colours[i + 1..] {
            assert_ne!(a, b, "two statuses share a colour: {colours:?}");
        }
    }
    // The default metrics: CPU, RAM and disk.
    let calm = browser.script(&card_text("calm")).await.expect("runs");
    let calm = calm.as_str().expect("card");
    for expected in ["CPU", "10.0%", "RAM", "1000 MB / 8.0 GB", "DISK", "40.0%"] {
        assert!(calm.contains(expected), "calm lacks {expected}: {calm}");
    }

    // Device text is text: shown as written, never run.
    let hostile = browser.script(&card_text("x-hostile")).await.expect("runs");
    assert!(
        hostile
            .as_str()
            .expect("card")
            .contains("<img src=x onerror=\"window.tailmonPwned=1\"><script>"),
        "{hostile}"
    );
    let pwned = browser
        .script("return [window.tailmonPwned === undefined, document.querySelectorAll('#devices img, #devices script').length]")
        .await
        .expect("runs");
    assert_eq!(pwned, json!([true, 0]));

    // A card is a real link to the device page, reachable by keyboard.
    let link = browser
        .script("const a = document.querySelector('[data-device-id=\"busy\"] a.card-link'); a.focus(); \
                 return [a.getAttribute('href'), document.activeElement === a, a.tabIndex]")
        .await
        .expect("runs");
    assert_eq!(link, json!(["device.html?id=busy", true, 0]));

    // Search, filter and sort, over the whole list.
    browser.type_into("#fleet-search", "BUS").await;
    browser
        .wait_for("the search to leave one card", "return document.body.dataset.shown === '1'")
        .await;
    browser
        .script("const s = document.getElementById('fleet-search'); s.value = ''; s.dispatchEvent(new Event('input')); return null")
        .await
        .expect("runs");
    browser.click("button[data-filter='offline']").await;
    browser
        .wait_for(
            "the offline filter",
            "const shown = Array.from(document.querySelectorAll('article[data-device-id]:not([hidden])')); \
             return shown.length === 1 && shown[0].dataset.deviceId === 'gone-box'",
        )
        .await;
    browser.click("button[data-filter='all']").await;
    browser
        .script("const s = document.getElementById('fleet-sort'); s.value = 'cpu'; s.dispatchEvent(new Event('change')); return null")
        .await
        .expect("runs");
    let order = browser
        .wait_for(
            "sorting by CPU",
            "const ids = Array.from(document.querySelectorAll('article[data-device-id]:not([hidden])')).map(c => c.dataset.deviceId); \
             return ids[0] === 'hot' && ids",
        )
        .await;
    assert_eq!(order, json!(["hot", "busy", "calm", "gone-box", "x-hostile"]));
    assert!(
        browser
            .script("return location.search")
            .await
            .expect("runs")
            .as_str()
            .expect("string")
            .contains("sort=cpu"),
        "the sort is not in the address"
    );

    browser.screenshot("fleet-desktop-dark").await;
    browser.set_viewport(360, 740).await;
    browser
        .wait_for("the phone layout", "return window.innerWidth === 360")
        .await;
    assert_eq!(
        browser.script(SCROLLS_SIDEWAYS).await,
        Ok(json!(false)),
        "the fleet view scrolls sideways at 360 px"
    );
    browser.screenshot("fleet-phone-dark").await;
    browser.set_color_scheme("light").await;
    browser.screenshot("fleet-phone-light").await;
    browser.set_viewport(1280, 800).await;
    browser.screenshot("fleet-desktop-light").await;

    browser.quit().await;
}

/// Keeps the compiler quiet about helpers only some tests use.
#[allow(dead_code)]
fn unused(_: Value, _: Duration, _: Report) {}
