//! The fleet view in a real headless Chromium (driven through ChromeDriver,
//! [`tailmon_testkit::Browser`]) against a real server on 127.0.0.1:0.
//!
//! Every wait polls the page up to a deadline; there are no fixed sleeps.
//! Screenshots go to `target/screenshots/fleet-*.png`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tailmon_core::{Disk, OffsetDateTime};
use tailmon_server::auth::Role;
use tailmon_server::{Credentials, ManualClock, ServerBuilder};
use tailmon_testkit::{Browser, RunningBinary, browser_tools, clean_command};

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

/// Fails on any console entry of the page that reports a
/// Content-Security-Policy violation or an uncaught error.
async fn assert_clean_console(browser: &Browser) {
    let bad: Vec<Value> = browser
        .console()
        .await
        .into_iter()
        .filter(|e| {
            e["message"].as_str().is_some_and(|m| {
                m.contains("Content Security Policy")
                    || m.contains("Content-Security-Policy")
                    || m.contains("Uncaught")
            })
        })
        .collect();
    assert!(bad.is_empty(), "the page broke a rule or threw: {bad:#?}");
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
        if id == "calm" {
            // Its clock runs 612 s ahead: stored at the receive time, flagged.
            r.last_seen = now + time::Duration::seconds(612);
        }
        ingest.ingest(r).await.expect("valid report");
    }
    let mut hostile = report("x-hostile", 1.0, 1);
    hostile.os_info =
        "<img src=x onerror=\"window.tailmonPwned=1\"><script>window.tailmonPwned=2</script>"
            .into();
    let mut disk = root_disk(10, 1);
    disk.mount_point = "/mnt/<b onmouseover=alert(1)>".into();
    hostile.disks = Some(vec![disk]);
    ingest.ingest(hostile).await.expect("valid report");
    // Device ids are letters, digits and `._:-` only; the oddest of them
    // still make a working link.
    ingest
        .ingest(report("z:odd..id-_", 1.0, 1))
        .await
        .expect("valid report");

    // Two agents reporting under one name, alternating.
    for instance in ["agent-a", "agent-b", "agent-a"] {
        let mut twin = report("y-twin", 3.0, 1000);
        twin.agent_instance = Some(instance.into());
        ingest.ingest(twin).await.expect("valid report");
    }

    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    browser.set_color_scheme("dark").await;
    sign_in(&browser, &site, "root").await;
    let twin = browser
        .script(
            "const c = document.querySelector('[data-device-id=\"y-twin\"] .id-conflict'); \
             return [c.hidden, c.textContent]",
        )
        .await
        .expect("runs");
    assert_eq!(twin, json!([false, "Two agents report under this name"]));
    let skews = browser
        .script(
            "return ['calm', 'busy'].map(id => { \
               const c = document.querySelector(`[data-device-id=\"${id}\"] .clock-skew`); \
               return [c.hidden, c.textContent]; })",
        )
        .await
        .expect("runs");
    assert_eq!(skews, json!([[false, "clock 612 s ahead"], [true, ""]]));

    let statuses = browser
        .script(
            "return Object.fromEntries(Array.from(document.querySelectorAll('article[data-device-id]')) \
             .map(c => [c.dataset.deviceId, c.dataset.status]))",
        )
        .await
        .expect("script runs");
    assert_eq!(
        statuses,
        json!({"calm": "ok", "busy": "warning", "hot": "critical", "gone-box": "offline", "x-hostile": "ok", "y-twin": "ok", "z:odd..id-_": "ok"})
    );
    // Counted per status, offline apart.
    let counts = browser
        .script(
            "const s = document.getElementById('summary').dataset; \
             return [s.total, s.ok, s.warning, s.critical, s.offline]",
        )
        .await
        .expect("script runs");
    assert_eq!(counts, json!(["7", "4", "1", "1", "1"]));
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
    assert!(
        hostile
            .as_str()
            .expect("card")
            .contains("/mnt/<b onmouseover=alert(1)>"),
        "{hostile}"
    );
    let odd_link = browser
        .script("return document.querySelector('[data-device-id=\"z:odd..id-_\"] a.card-link').getAttribute('href')")
        .await;
    assert_eq!(odd_link, Ok(json!("device.html?id=z%3Aodd..id-_")));
    let pwned = browser
        .script("return [window.tailmonPwned === undefined, document.querySelectorAll('#devices img, #devices script, #devices b').length]")
        .await
        .expect("runs");
    assert_eq!(pwned, json!([true, 0]));

    // A card is a real link to the device page, reachable by keyboard.
    let link = browser
        .script(
            "const a = document.querySelector('[data-device-id=\"busy\"] a.card-link'); a.focus(); \
                 return [a.getAttribute('href'), document.activeElement === a, a.tabIndex]",
        )
        .await
        .expect("runs");
    assert_eq!(link, json!(["device.html?id=busy", true, 0]));

    // Search, filter and sort, over the whole list.
    browser.type_into("#fleet-search", "BUS").await;
    browser
        .wait_for(
            "the search to leave one card",
            "return document.body.dataset.shown === '1'",
        )
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
    assert_eq!(
        order,
        json!([
            "hot",
            "busy",
            "calm",
            "gone-box",
            "y-twin",
            "x-hostile",
            "z:odd..id-_"
        ])
    );
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
    assert_clean_console(&browser).await;

    browser.quit().await;
}

/// A server with one admin, `root`, and one viewer, `ann`.
fn server_with_users() -> tailmon_server::Server {
    server_and_credentials().0
}

/// [`server_with_users`] and its credentials.
fn server_and_credentials() -> (tailmon_server::Server, Arc<Credentials>) {
    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("root", PASSWORD, Role::Admin)
        .expect("user added");
    credentials
        .add_user("ann", PASSWORD, Role::Viewer)
        .expect("user added");
    let server = ServerBuilder::new()
        .credentials(credentials.clone())
        .build()
        .expect("valid");
    (server, credentials)
}

/// [`server_with_users`] with `reports` stored, served on 127.0.0.1: the
/// running server and its address.
async fn serve(reports: Vec<tailmon_core::Report>) -> (Running, String) {
    let server = server_with_users();
    for report in reports {
        server.ingest().ingest(report).await.expect("valid report");
    }
    let running = Running::start(server).await;
    let site = running.url();
    (running, site)
}

/// Marks the card of `id` so that a later check can tell it is the same
/// element (patched in place), not a new one.
fn mark_card(id: &str) -> String {
    format!(
        "window.tailmonMarked = document.querySelector('article[data-device-id=\"{id}\"]'); \
         return window.tailmonMarked !== null"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_view_patches_a_card_in_place_when_a_report_arrives() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let server = server_with_users();
    let ingest = server.ingest().clone();
    ingest
        .ingest(report("live-1", 12.0, 1000))
        .await
        .expect("valid report");
    ingest
        .ingest(report("live-2", 20.0, 1000))
        .await
        .expect("valid report");
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    sign_in(&browser, &site, "ann").await;
    assert_eq!(browser.script(&mark_card("live-1")).await, Ok(json!(true)));
    browser
        .script("window.tailmonNoReload = true; return null")
        .await
        .expect("runs");

    // A new report: the same card shows it, without a reload.
    ingest
        .ingest(report("live-1", 97.5, 4096))
        .await
        .expect("valid report");
    browser
        .wait_for(
            "the card to show the new report",
            "const c = document.querySelector('article[data-device-id=\"live-1\"]'); \
             return c.innerText.includes('97.5%') && c.dataset.status === 'critical'",
        )
        .await;
    let same = browser
        .script(
            "return [window.tailmonNoReload === true, \
             document.querySelector('article[data-device-id=\"live-1\"]') === window.tailmonMarked, \
             document.getElementById('summary').dataset.critical, document.body.dataset.mode]",
        )
        .await
        .expect("runs");
    assert_eq!(
        same,
        json!([true, true, "1", "live"]),
        "the card was rebuilt, the page reloaded or the stream is not used"
    );

    // A new device appears; a deleted one goes; neither rebuilds the others.
    ingest
        .ingest(report("live-3", 5.0, 1000))
        .await
        .expect("valid report");
    browser
        .wait_for(
            "the new device's card",
            "return document.querySelector('article[data-device-id=\"live-3\"]') !== null \
             && document.querySelector('article[data-device-id=\"live-1\"]') === window.tailmonMarked",
        )
        .await;
    ingest.delete_device("live-2").await.expect("deleted");
    browser
        .wait_for(
            "the deleted device's card to go",
            "return document.querySelector('article[data-device-id=\"live-2\"]') === null \
             && document.getElementById('summary').dataset.total === '2'",
        )
        .await;
    browser.quit().await;
}

/// Ticks the metric `key` on or off in the open Customize dialog.
async fn choose(browser: &Browser, key: &str, on: bool) {
    browser
        .script(&format!(
            "const b = document.getElementById('choice-{key}'); \
             if (b.checked !== {on}) b.click(); return null"
        ))
        .await
        .expect("runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_card_metrics_follow_the_user_to_a_new_browser() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let server = server_with_users();
    let mut r = report("web-1", 12.0, 1000);
    r.load_avg = Some(tailmon_core::LoadAvg {
        one: 1.5,
        five: 1.25,
        fifteen: 1.0,
    });
    r.uptime_seconds = Some(3 * 3600 + 5 * 60);
    r.disks = Some(vec![root_disk(100, 40)]);
    server.ingest().ingest(r).await.expect("valid report");
    let running = Running::start(server).await;
    let site = running.url();

    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    sign_in(&browser, &site, "ann").await;
    let labels = "return Array.from(document.querySelectorAll('article[data-device-id=\"web-1\"] .metric-label, \
                  article[data-device-id=\"web-1\"] .stat-label')).map(e => e.textContent)";
    assert_eq!(
        browser.script(labels).await,
        Ok(json!(["CPU", "RAM", "Disk"]))
    );

    // Customize: no disk; load and uptime; uptime moved above load.
    browser.click("#customize-open").await;
    browser
        .wait_for(
            "the Customize dialog",
            "return document.getElementById('customize-dialog').open",
        )
        .await;
    choose(&browser, "disk", false).await;
    choose(&browser, "load", true).await;
    choose(&browser, "uptime", true).await;
    // Up three places: above temperature, network and load.
    for _ in 0..3 {
        browser
            .script(
                "document.querySelector('#customize-list button[aria-label=\"Move Uptime up\"]').click(); return null",
            )
            .await
            .expect("runs");
    }
    browser.screenshot("fleet-customize-desktop").await;
    browser.click("#customize-save").await;
    let wanted = json!(["CPU", "RAM", "Uptime", "Load"]);
    // The labels change at once, the values at the next animation frame:
    // wait for both.
    browser
        .wait_for(
            "the cards with the new metrics and their values",
            &format!(
                "const l = (function () {{ {labels} }})(); \
                 const t = (function () {{ {} }})(); \
                 return JSON.stringify(l) === {:?} && t !== null && t.includes('3 h 5 min')",
                card_text("web-1"),
                wanted.to_string()
            ),
        )
        .await;
    let values = browser.script(&card_text("web-1")).await.expect("runs");
    let values = values.as_str().expect("card");
    assert!(values.contains("1.50 · 1.25 · 1.00"), "{values}");
    assert!(values.contains("3 h 5 min"), "{values}");
    browser.quit().await;

    // Another browser, a fresh profile: the same choice, from the server.
    let mut other = Browser::start(&chromium, &chromedriver).await;
    sign_in(&other, &site, "ann").await;
    assert_eq!(other.script(labels).await, Ok(wanted));
    // Another user keeps the defaults.
    other
        .script("window.tailmonBeforeNavigation = true; return null")
        .await
        .expect("runs");
    other.click("#signout").await;
    other
        .wait_for(
            "the login page",
            "return location.pathname === '/login' && !window.tailmonBeforeNavigation",
        )
        .await;
    sign_in(&other, &site, "root").await;
    assert_eq!(
        other.script(labels).await,
        Ok(json!(["CPU", "RAM", "Disk"]))
    );
    other.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_theme_follows_the_system_and_the_toggle_is_kept() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let (_running, site) = serve(vec![report("web-1", 12.0, 1000)]).await;
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    // The login page in the dark, at both sizes.
    browser.set_color_scheme("dark").await;
    browser.goto(&format!("{site}/login")).await;
    browser
        .wait_for(
            "the login page",
            "return document.readyState === 'complete'",
        )
        .await;
    browser.set_viewport(1280, 800).await;
    browser.screenshot("login-desktop-dark").await;
    browser.set_viewport(360, 740).await;
    assert_eq!(browser.script(SCROLLS_SIDEWAYS).await, Ok(json!(false)));
    browser.screenshot("login-phone-dark").await;
    browser.set_viewport(1280, 800).await;

    browser.set_color_scheme("light").await;
    sign_in(&browser, &site, "ann").await;
    let background = "return getComputedStyle(document.documentElement).backgroundColor";
    let light = browser.script(background).await.expect("runs");
    browser.set_color_scheme("dark").await;
    let dark = browser.script(background).await.expect("runs");
    assert_ne!(light, dark, "the page ignores prefers-color-scheme");

    // The toggle wins over the system, and is kept.
    browser
        .script(
            "const s = document.getElementById('theme-select'); s.value = 'light'; \
             s.dispatchEvent(new Event('change')); return null",
        )
        .await
        .expect("runs");
    assert_eq!(browser.script(background).await, Ok(light.clone()));
    assert_eq!(
        browser
            .script("return document.documentElement.dataset.theme")
            .await,
        Ok(json!("light"))
    );
    browser
        .wait_for(
            "the theme saved in the preferences",
            "return fetch('api/v1/preferences').then(r => r.json()).then(p => p.theme === 'light')",
        )
        .await;
    browser.goto(&format!("{site}/")).await;
    fleet_loaded(&browser).await;
    assert_eq!(browser.script(background).await, Ok(light.clone()));
    assert_eq!(
        browser
            .script("return document.getElementById('theme-select').value")
            .await,
        Ok(json!("light"))
    );
    browser.quit().await;

    // A new browser: the saved theme, from the server.
    let mut other = Browser::start(&chromium, &chromedriver).await;
    other.set_color_scheme("dark").await;
    sign_in(&other, &site, "ann").await;
    assert_eq!(other.script(background).await, Ok(light));
    other.quit().await;
}

/// `<target>/<profile>/tailmon-agent`, built (offline) if needed.
fn agent_binary() -> PathBuf {
    // This test runs as <target>/<profile>/deps/it-<hash>.
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.ancestors().nth(2).expect("<target>/<profile>");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace");
    let mut build = std::process::Command::new(env!("CARGO"));
    build
        .args(["build", "--offline", "--quiet", "-p", "tailmon-agent"])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", profile_dir.parent().expect("<target>"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let output = build.output().expect("running cargo");
    assert!(
        output.status.success(),
        "building tailmon-agent: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    profile_dir.join("tailmon-agent")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_agent_gives_a_token_and_a_command_a_real_agent_runs() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let agent = agent_binary();
    let running = Running::start(server_with_users()).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    sign_in(&browser, &site, "root").await;
    browser
        .wait_for(
            "the empty state",
            "return !document.getElementById('empty-state').hidden",
        )
        .await;

    browser.click("#empty-add-agent").await;
    browser
        .wait_for(
            "the Add agent dialog",
            "const d = document.getElementById('add-agent-dialog'); return d !== null && d.open",
        )
        .await;
    browser.type_into("#agent-name", "lab machines").await;
    browser.type_into("#agent-device", "lab-*").await;
    browser.type_into("#agent-max", "0").await;
    browser.click("#agent-create").await;
    let error = browser
        .wait_for(
            "the device cap refused",
            "const e = document.querySelector('#add-agent-dialog .form-error'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(
        error.as_str().expect("text").contains("1 or more"),
        "{error}"
    );
    browser.type_into("#agent-max", "3").await;
    browser.screenshot("fleet-add-agent-desktop").await;
    browser.click("#agent-create").await;
    let shown = browser
        .wait_for(
            "the token and the commands",
            "const t = document.getElementById('agent-token'); \
             return t !== null && [t.textContent, document.getElementById('agent-command').textContent, \
                                   document.getElementById('agent-install').textContent, \
                                   document.getElementById('agent-unit').textContent]",
        )
        .await;
    let [token, command, install, unit] =
        [0, 1, 2, 3].map(|i| shown[i].as_str().expect("text").to_owned());
    assert!(!token.is_empty());
    assert_eq!(
        command,
        format!("TAILMON_SERVER_URL='{site}' TAILMON_TOKEN='{token}' tailmon-agent")
    );
    // The install lines write the URL and token to the unit's environment
    // file; the unit is the packaged one, word for word.
    assert!(
        install.contains(&format!(
            "printf '%s\\n' 'TAILMON_SERVER_URL={site}' 'TAILMON_TOKEN={token}'"
        )),
        "{install}"
    );
    assert!(
        install.ends_with("sudo systemctl enable --now tailmon-agent"),
        "{install}"
    );
    let packaged = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd/tailmon-agent.service"),
    )
    .expect("the packaged unit");
    assert_eq!(
        unit,
        packaged.trim_end(),
        "the dialog's unit is not the packaged one"
    );
    assert!(!unit.contains(&token), "the token is in the unit: {unit}");
    browser.screenshot("fleet-agent-token-desktop").await;
    browser.set_viewport(360, 740).await;
    browser.screenshot("fleet-agent-token-phone").await;
    browser.set_viewport(1280, 800).await;
    browser.click("#agent-done").await;

    // The very command, with the agent on the PATH and a device id the
    // token's pattern admits.
    let path = format!(
        "{}:{}",
        agent.parent().expect("its folder").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut agent = RunningBinary::start(
        clean_command("sh")
            .args(["-c", &format!("exec env {command}")])
            .env("PATH", path)
            .env("TAILMON_DEVICE_ID", "lab-7")
            .env("TAILMON_INTERVAL", "1"),
    );
    // Any status but offline: the machine running the test may be busy.
    let seen = "const c = document.querySelector('article[data-device-id=\"lab-7\"]'); \
                return c !== null && ['ok', 'warning', 'critical'].includes(c.dataset.status)";
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while browser.script(seen).await != Ok(json!(true)) {
        assert!(
            tokio::time::Instant::now() < deadline && agent.is_running(),
            "the agent's device never showed; the agent said:\n{}{}",
            agent.stdout(),
            agent.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    agent.kill();

    // The token is listed in the admin dialog, and revoked there.
    browser.click("#admin-open").await;
    browser
        .wait_for(
            "the token list",
            "return document.querySelectorAll('#admin-tokens tbody tr[data-token-id]').length === 1 \
             && document.querySelector('#admin-tokens tbody tr').innerText.includes('lab machines') \
             && document.querySelector('#admin-tokens tbody tr').innerText.includes('1 of 3')",
        )
        .await;
    browser.screenshot("fleet-admin-desktop").await;
    browser
        .script("document.querySelector('#admin-tokens tbody tr button').click(); return null")
        .await
        .expect("runs");
    browser
        .wait_for(
            "the confirmation",
            "const d = document.getElementById('confirm-dialog'); return d !== null && d.open",
        )
        .await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "the token gone",
            "return document.querySelectorAll('#admin-tokens tbody tr[data-token-id]').length === 0",
        )
        .await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let refused = http
        .post(format!("{site}/api/v1/reports"))
        .bearer_auth(&token)
        .json(&json!([report("lab-8", 1.0, 1)]))
        .send()
        .await
        .expect("server answers");
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    assert_clean_console(&browser).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_delete_devices_and_anyone_changes_their_password() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let (server, credentials) = server_and_credentials();
    server
        .ingest()
        .ingest(report("old-box", 12.0, 1000))
        .await
        .expect("valid report");
    server
        .ingest()
        .ingest(report("web-1", 12.0, 1000))
        .await
        .expect("valid report");
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    sign_in(&browser, &site, "root").await;

    // A device deleted from its card's menu, after a confirmation.
    browser
        .click("article[data-device-id='old-box'] button.card-menu")
        .await;
    let menu = browser
        .wait_for(
            "the card's menu",
            "const b = document.querySelector('article[data-device-id=\"old-box\"] button.card-menu'); \
             return b.getAttribute('aria-expanded') === 'true' \
                 && Array.from(document.querySelectorAll('[role=menu] [role=menuitem]')).map(i => i.textContent)",
        )
        .await;
    assert_eq!(menu, json!(["Open device page", "Delete device…"]));
    browser.screenshot("fleet-card-menu-desktop").await;
    browser
        .click("article[data-device-id='old-box'] [data-action='delete']")
        .await;
    browser
        .wait_for(
            "the confirmation",
            "const d = document.getElementById('confirm-dialog'); return d !== null && d.open",
        )
        .await;
    browser.screenshot("fleet-confirm-delete-desktop").await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "the card gone",
            "return document.querySelector('article[data-device-id=\"old-box\"]') === null",
        )
        .await;

    // A user added, made admin, given a new password, then removed.
    browser.click("#admin-open").await;
    browser
        .wait_for(
            "the user list",
            "return document.querySelectorAll('#admin-users tbody tr').length === 2",
        )
        .await;
    browser.type_into("#user-add-name", "bob").await;
    browser.type_into("#user-add-password", "short").await;
    browser.click("#user-add-submit").await;
    let error = browser
        .wait_for(
            "a refused password",
            "const e = document.querySelector('#admin-users .form-error'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(error.as_str().is_some_and(|e| !e.is_empty()), "{error}");
    browser.type_into("#user-add-password", PASSWORD).await;
    browser.click("#user-add-submit").await;
    browser
        .wait_for(
            "bob listed",
            "return document.querySelector('#admin-users tr[data-username=\"bob\"]') !== null",
        )
        .await;
    browser
        .script(
            "const s = document.querySelector('#admin-users tr[data-username=\"bob\"] select'); \
             s.value = 'admin'; s.dispatchEvent(new Event('change')); return null",
        )
        .await
        .expect("runs");
    browser
        .wait_for(
            "bob an admin on the server",
            "return fetch('api/v1/users').then(r => r.json()).then(l => l.some(u => u.username === 'bob' && u.role === 'admin'))",
        )
        .await;
    browser.set_color_scheme("light").await;
    browser.screenshot("fleet-admin-light-desktop").await;
    browser.set_viewport(360, 740).await;
    let fits = browser
        .wait_for(
            "the admin dialog at 360 px",
            "const d = document.getElementById('admin-dialog'); \
             return window.innerWidth === 360 && [d.scrollWidth <= d.clientWidth, \
                 d.getBoundingClientRect().right <= 360]",
        )
        .await;
    assert_eq!(
        fits,
        json!([true, true]),
        "the admin dialog is wider than a phone"
    );
    browser.screenshot("fleet-admin-light-phone").await;
    browser.set_color_scheme("dark").await;
    browser.screenshot("fleet-admin-dark-phone").await;
    browser.set_viewport(1280, 800).await;
    browser.screenshot("fleet-admin-dark-desktop").await;
    browser
        .script(
            "document.querySelector('#admin-users tr[data-username=\"bob\"] button[aria-label^=\"Set a new password\"]').click(); return null",
        )
        .await
        .expect("runs");
    browser
        .type_into("#user-new-password", "bob-new-password-42")
        .await;
    browser.click("#user-new-password-save").await;
    browser
        .wait_for(
            "the password dialog closed",
            "return document.getElementById('user-password-dialog') === null",
        )
        .await;
    assert_eq!(
        credentials.verify_password("bob", "bob-new-password-42"),
        Some(Role::Admin)
    );
    browser
        .script(
            "document.querySelector('#admin-users tr[data-username=\"bob\"] button[aria-label^=\"Remove\"]').click(); return null",
        )
        .await
        .expect("runs");
    browser
        .wait_for(
            "the confirmation",
            "const d = document.getElementById('confirm-dialog'); return d !== null && d.open",
        )
        .await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "bob gone",
            "return document.querySelector('#admin-users tr[data-username=\"bob\"]') === null \
             && document.querySelectorAll('#admin-users tbody tr').length === 2",
        )
        .await;
    browser.click("#admin-close").await;

    // A viewer sees no admin controls, but changes their own password.
    browser
        .script("window.tailmonBeforeNavigation = true; return null")
        .await
        .expect("runs");
    browser.click("#signout").await;
    browser
        .wait_for(
            "the login page",
            "return location.pathname === '/login' && !window.tailmonBeforeNavigation",
        )
        .await;
    assert_eq!(
        browser
            .script("return [document.getElementById('signed-out').hidden, localStorage.getItem('tailmon-last-devices')]")
            .await,
        Ok(json!([false, null])),
        "the login page does not say the user signed out, or the fleet was left in the browser"
    );
    sign_in(&browser, &site, "ann").await;
    let controls = browser
        .script(
            "return [document.getElementById('admin-open').hidden, document.getElementById('add-agent-open'), \
             document.querySelectorAll('button.card-menu').length]",
        )
        .await
        .expect("runs");
    assert_eq!(controls, json!([true, null, 0]));
    browser.click("#change-password").await;
    browser
        .wait_for(
            "the password dialog",
            "return document.getElementById('password-dialog').open",
        )
        .await;
    let fields = "#password-dialog input";
    browser
        .script(&format!(
            "const f = document.querySelectorAll('{fields}'); f[0].value = 'wrong-one'; \
             f[1].value = 'ann-new-password-42'; f[2].value = 'ann-new-password-42'; return null"
        ))
        .await
        .expect("runs");
    browser
        .click("#password-dialog button[type='submit']")
        .await;
    let error = browser
        .wait_for(
            "the wrong current password refused",
            "const e = document.querySelector('#password-dialog .form-error'); return !e.hidden && e.textContent",
        )
        .await;
    assert!(error.as_str().is_some_and(|e| !e.is_empty()), "{error}");
    browser
        .script(&format!(
            "const f = document.querySelectorAll('{fields}'); f[0].value = {PASSWORD:?}; \
             f[1].value = 'ann-new-password-42'; f[2].value = 'ann-new-password-42'; return null"
        ))
        .await
        .expect("runs");
    browser
        .click("#password-dialog button[type='submit']")
        .await;
    browser
        .wait_for(
            "the password changed",
            "return !document.querySelector('#password-dialog .form-ok').hidden",
        )
        .await;
    // Still signed in (the session was renewed), and writes still pass CSRF.
    let still = browser
        .script("return fetch('api/v1/session').then(r => r.status)")
        .await;
    assert_eq!(still, Ok(json!(200)));
    assert_eq!(
        credentials.verify_password("ann", "ann-new-password-42"),
        Some(Role::Viewer)
    );
    assert_clean_console(&browser).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installable_and_opens_without_the_server_showing_stale_data() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let (running, site) = serve(vec![report("web-1", 12.0, 1000)]).await;
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    sign_in(&browser, &site, "ann").await;

    // The manifest parses, with its icons.
    let manifest = browser
        .cdp("Page.getAppManifest", json!({}))
        .await
        .expect("the manifest");
    assert_eq!(manifest["errors"], json!([]), "{manifest}");
    let parsed: Value =
        serde_json::from_str(manifest["data"].as_str().expect("manifest text")).expect("JSON");
    let icons = parsed["icons"].as_array().expect("icons");
    for (size, purpose) in [
        ("192x192", "any"),
        ("512x512", "any"),
        ("512x512", "maskable"),
    ] {
        let icon = icons
            .iter()
            .find(|i| i["sizes"] == size && i["purpose"] == purpose)
            .unwrap_or_else(|| panic!("no {size} {purpose} icon in {parsed}"));
        let src = icon["src"].as_str().expect("src");
        let fetched = browser
            .script(&format!(
                "return fetch({src:?}).then(r => r.blob()).then(b => createImageBitmap(b)).then(i => i.width + 'x' + i.height)"
            ))
            .await;
        assert_eq!(fetched, Ok(json!(size)), "{src}");
    }

    // The service worker takes the page, then keeps what a reload fetched.
    browser
        .wait_for(
            "the service worker in control",
            "return navigator.serviceWorker.ready.then(() => navigator.serviceWorker.controller !== null)",
        )
        .await;
    browser.goto(&format!("{site}/")).await;
    fleet_loaded(&browser).await;
    browser
        .wait_for(
            "the page kept in the service worker's cache",
            "return caches.keys().then(k => Promise.all(k.map(n => caches.open(n).then(c => c.match(location.href))))) \
             .then(hits => hits.some(h => h !== undefined))",
        )
        .await;

    // The server goes away: the page still opens, with the last data and
    // a banner saying how old it is.
    drop(running);
    browser.goto(&format!("{site}/")).await;
    let banner = browser
        .wait_for(
            "the stale-data banner",
            "const b = document.getElementById('stale-banner'); \
             return b !== null && !b.hidden \
                 && document.querySelector('article[data-device-id=\"web-1\"]') !== null \
                 && b.textContent",
        )
        .await;
    assert!(
        banner
            .as_str()
            .expect("text")
            .starts_with("Stale data since "),
        "{banner}"
    );
    let stamp = browser
        .script("return document.querySelector('#stale-banner time').getAttribute('datetime')")
        .await
        .expect("runs");
    assert!(
        stamp.as_str().is_some_and(|s| s.ends_with('Z')),
        "the banner's time is not a date: {stamp}"
    );
    browser.screenshot("fleet-offline-desktop").await;
    browser.quit().await;
}

/// A benchmark, not a check (a loaded 2-core machine makes any bound
/// either loose or flaky): 1,000 devices drawn, then one report per device
/// per second for 10 s. Prints the numbers BENCHMARKS.md records:
///
/// `cargo test -p tailmon-server --test it -- --ignored --nocapture fleet_view_with_1000_devices`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: prints numbers"]
async fn fleet_view_with_1000_devices() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    const DEVICES: usize = 1000;
    let server = ServerBuilder::new()
        .open_access()
        .max_devices(DEVICES * 2)
        .build()
        .expect("valid");
    let ingest = server.ingest().clone();
    let mut batch = Vec::new();
    for i in 0..DEVICES {
        let mut r = report(&format!("node-{i:04}"), (i % 100) as f64, 1000);
        r.disks = Some(vec![root_disk(100, (i % 90) as u64)]);
        batch.push(r);
    }
    ingest.ingest_batch(batch).await.expect("valid reports");
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    browser.goto(&format!("{site}/")).await;
    let first = browser
        .wait_for(
            "1,000 cards",
            &format!(
                "const f = window.tailmonFleet; \
                 return f && f.loadedAtMs !== null && document.querySelectorAll('article[data-device-id]').length === {DEVICES} \
                     && [f.firstRenderMs, f.loadedAtMs, performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd]"
            ),
        )
        .await;
    println!(
        "1,000 devices: first draw {:.0} ms (building and placing every card), page loaded to cards drawn {:.0} ms after navigation start (DOMContentLoaded at {:.0} ms)",
        first[0].as_f64().unwrap_or(f64::NAN),
        first[1].as_f64().unwrap_or(f64::NAN),
        first[2].as_f64().unwrap_or(f64::NAN)
    );

    // Long tasks and frames while every device reports once a second.
    browser
        .script(
            "window.benchLong = []; window.benchFrames = []; \
             new PerformanceObserver(l => window.benchLong.push(...l.getEntries().map(e => e.duration))) \
                 .observe({type: 'longtask'}); \
             let last = performance.now(); \
             (function tick(now) { window.benchFrames.push(now - last); last = now; requestAnimationFrame(tick); })(last); \
             const f = window.tailmonFleet; window.benchStart = [f.flushes, f.totalFlushMs, f.updates]; \
             f.maxFlushMs = 0; return null",
        )
        .await
        .expect("runs");
    let seconds = 10;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    for round in 0..seconds {
        tick.tick().await;
        let batch = (0..DEVICES)
            .map(|i| {
                report(
                    &format!("node-{i:04}"),
                    ((i + round + 1) % 100) as f64,
                    1000,
                )
            })
            .collect();
        ingest.ingest_batch(batch).await.expect("valid reports");
    }
    tick.tick().await;
    let numbers = browser
        .script(
            "const f = window.tailmonFleet; const s = window.benchStart; \
             const frames = window.benchFrames.slice(1).sort((a, b) => a - b); \
             const p = q => frames[Math.min(frames.length - 1, Math.floor(q * frames.length))]; \
             return {mode: document.body.dataset.mode, flushes: f.flushes - s[0], updates: f.updates - s[2], \
                     flushMs: (f.totalFlushMs - s[1]), maxFlushMs: f.maxFlushMs, \
                     longTasks: window.benchLong.length, longestTaskMs: Math.max(0, ...window.benchLong), \
                     frames: frames.length, frameP50: p(0.5), frameP99: p(0.99), frameMax: frames[frames.length - 1]}",
        )
        .await
        .expect("runs");
    println!("{seconds} s of one report per device per second: {numbers}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_view_works_nested_under_a_prefix() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let server = server_with_users();
    server
        .ingest()
        .ingest(report("web-1", 12.0, 1000))
        .await
        .expect("valid report");
    let app = axum::Router::new().nest("/monitor", server.router());
    let running = Running::start_router(app, tailmon_server::ServeOptions::new()).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;

    // Signed out: the nested login page, then back to the nested fleet view.
    browser.goto(&format!("{site}/monitor")).await;
    browser
        .wait_for(
            "the nested login page",
            "return location.pathname === '/monitor/login' && document.readyState === 'complete' \
             && document.getElementById('login-form') !== null",
        )
        .await;
    browser.type_into("#username", "root").await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
    let at = browser
        .wait_for(
            "the nested fleet view, live",
            "return document.body.dataset.loaded === 'true' && document.body.dataset.mode === 'live' \
             && document.querySelector('article[data-device-id=\"web-1\"]') !== null && location.pathname",
        )
        .await;
    assert_eq!(at, json!("/monitor"));
    let link = browser
        .script(
            "return document.querySelector('article[data-device-id=\"web-1\"] a.card-link').href",
        )
        .await;
    assert_eq!(
        link,
        Ok(json!(format!("{site}/monitor/device.html?id=web-1")))
    );

    // The agent command names the prefix.
    browser.click("#add-agent-open").await;
    browser
        .wait_for(
            "the Add agent dialog",
            "const d = document.getElementById('add-agent-dialog'); return d !== null && d.open",
        )
        .await;
    browser.type_into("#agent-name", "nested").await;
    browser.click("#agent-create").await;
    let command = browser
        .wait_for(
            "the agent command",
            "const c = document.getElementById('agent-command'); return c !== null && c.textContent",
        )
        .await;
    assert!(
        command
            .as_str()
            .expect("text")
            .starts_with(&format!("TAILMON_SERVER_URL='{site}/monitor' ")),
        "{command}"
    );
    browser.click("#agent-done").await;

    // The service worker takes the nested page too.
    browser
        .wait_for(
            "the service worker in control",
            "return navigator.serviceWorker.ready.then(r => r.scope)",
        )
        .await;
    let scope = browser
        .script("return navigator.serviceWorker.ready.then(r => r.scope)")
        .await;
    assert_eq!(scope, Ok(json!(format!("{site}/monitor"))));
    browser.goto(&format!("{site}/monitor")).await;
    browser
        .wait_for(
            "the page under the service worker",
            "return document.body.dataset.loaded === 'true' && navigator.serviceWorker.controller !== null",
        )
        .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_stream_the_fleet_view_polls() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let server = server_with_users();
    let ingest = server.ingest().clone();
    ingest
        .ingest(report("web-1", 12.0, 1000))
        .await
        .expect("valid report");
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    sign_in(&browser, &site, "ann").await;
    // A proxy that refuses event streams, say.
    browser
        .cdp("Network.enable", json!({}))
        .await
        .expect("network domain");
    browser
        .cdp(
            "Network.setBlockedURLs",
            json!({ "urls": ["*/api/v1/live*"] }),
        )
        .await
        .expect("blocked");
    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for(
            "polling instead of the stream",
            "return document.body.dataset.loaded === 'true' && document.body.dataset.mode === 'polling'",
        )
        .await;
    assert_eq!(browser.script(&mark_card("web-1")).await, Ok(json!(true)));
    ingest
        .ingest(report("web-1", 88.5, 1000))
        .await
        .expect("valid report");
    browser
        .wait_for(
            "the polled report on the same card",
            "const c = document.querySelector('article[data-device-id=\"web-1\"]'); \
             return c === window.tailmonMarked && c.innerText.includes('88.5%') \
                 && document.getElementById('stale-banner').hidden",
        )
        .await;
    browser.quit().await;
}

/// Presses `key` (a DevTools key name: `Tab`, `Enter`) as the user would.
async fn press(browser: &Browser, key: &str, code: u32, shift: bool) {
    for kind in ["rawKeyDown", "keyUp"] {
        browser
            .cdp(
                "Input.dispatchKeyEvent",
                json!({
                    "type": kind,
                    "key": key,
                    "code": key,
                    "windowsVirtualKeyCode": code,
                    "modifiers": if shift { 8 } else { 0 },
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("pressing {key}: {e}"));
    }
    if key == "Enter" {
        // Enter also types a carriage return, which activates links.
        browser
            .cdp(
                "Input.dispatchKeyEvent",
                json!({"type": "char", "key": "Enter", "text": "\r", "windowsVirtualKeyCode": 13}),
            )
            .await
            .unwrap_or_else(|e| panic!("pressing Enter: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_reaches_every_control_and_opens_a_device() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let (_running, site) = serve(vec![report("web-1", 12.0, 1000)]).await;
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;
    sign_in(&browser, &site, "root").await;
    browser
        .script("document.activeElement.blur(); window.scrollTo(0, 0); return null")
        .await
        .expect("runs");

    // Tab through the page, noting what gets focus and whether it shows.
    let mut reached = Vec::new();
    for _ in 0..30 {
        press(&browser, "Tab", 9, false).await;
        let now = browser
            .script(
                "const e = document.activeElement; \
                 const s = getComputedStyle(e); const a = getComputedStyle(e, '::after'); \
                 const ring = s.outlineStyle !== 'none' || a.outlineStyle !== 'none'; \
                 return [e.id || e.className || e.tagName, ring]",
            )
            .await
            .expect("runs");
        let name = now[0].as_str().expect("name").to_owned();
        assert_eq!(now[1], json!(true), "{name} has focus but no visible ring");
        let done = name == "card-link";
        reached.push(name);
        if done {
            break;
        }
    }
    for control in [
        "theme-select",
        "admin-open",
        "change-password",
        "signout",
        "fleet-search",
        "fleet-sort",
        "fleet-order",
        "customize-open",
        "add-agent-open",
        "card-link",
    ] {
        assert!(
            reached.iter().any(|r| r == control),
            "Tab never reached {control}: {reached:?}"
        );
    }

    // Enter on the card opens the device page.
    press(&browser, "Enter", 13, false).await;
    browser
        .wait_for(
            "the device page",
            // The device page adds its range to the address once loaded.
            "return location.pathname === '/device.html' \
             && new URLSearchParams(location.search).get('id') === 'web-1'",
        )
        .await;
    browser.quit().await;
}
