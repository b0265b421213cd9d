//! The dashboard's organisation switcher in a real headless Chromium
//! ([`tailmon_testkit::Browser`]): shown only to a user of two or more
//! organisations; switching makes the session act in the chosen one and
//! loads the page anew.
//!
//! Every wait polls the page up to a deadline; there are no fixed sleeps.

use std::sync::Arc;

use serde_json::json;
use tailmon_server::auth::{OrgId, Role};
use tailmon_server::views::{Owner, PreferenceStore, Preferences, Theme};
use tailmon_server::{Credentials, ServerBuilder};

use tailmon_testkit::{Browser, browser_tools};

use crate::support::{Running, report};

const PASSWORD: &str = "correct-horse-battery-9";

/// The login page, with its script run.
const LOGIN_PAGE_READY: &str = "return location.pathname === '/login' \
    && document.readyState === 'complete' \
    && document.getElementById('login-form') !== null \
    && !window.tailmonBeforeNavigation \
    && location.href";

/// The dashboard of a fresh page load with its header filled: who is
/// signed in, and whether the switcher shows (with its choice).
const HEADER: &str = "const box = document.getElementById('user-box'); \
    const orgs = document.getElementById('org-control'); \
    const select = document.getElementById('org-select'); \
    if (window.tailmonBeforeNavigation || box === null || box.hidden || orgs === null) return null; \
    return [document.getElementById('user-name').textContent, !orgs.hidden, \
            select ? select.value : null, \
            select ? Array.from(select.options).map(o => o.textContent) : null, \
            !document.getElementById('admin-open').hidden]";

/// The device cards of the fleet page, once there are some.
const CARDS: &str = "const ids = Array.from(document.querySelectorAll('article[data-device-id]')) \
    .map(c => c.dataset.deviceId); \
    return !window.tailmonBeforeNavigation && ids.length > 0 && ids";

async fn sign_in(browser: &Browser, site: &str, username: &str) {
    browser
        .script("window.tailmonBeforeNavigation = true; return null")
        .await
        .expect("script runs");
    browser.goto(&format!("{site}/")).await;
    browser.wait_for("the login page", LOGIN_PAGE_READY).await;
    browser.type_into("#username", username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switcher_shows_for_two_organisations_and_switches() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("root", PASSWORD, Role::Admin)
        .expect("user added");
    credentials
        .add_user("ann", PASSWORD, Role::Viewer)
        .expect("user added");
    credentials
        .create_org(&OrgId::new("acme").expect("name"), Some("ann"))
        .expect("organisation");
    // ann chose the dark theme in acme only.
    let preferences = Arc::new(PreferenceStore::in_memory());
    let mut dark = Preferences::default();
    dark.theme = Some(Theme::Dark);
    preferences
        .set_in(
            &OrgId::new("acme").expect("name"),
            &Owner::User("ann".into()),
            dark,
        )
        .expect("saved");
    let server = ServerBuilder::new()
        .credentials(credentials.clone())
        .preferences(preferences)
        .build()
        .expect("valid");
    server
        .ingest()
        .ingest(report("web-1", 10.0, 1000))
        .await
        .expect("valid report");
    server
        .ingest()
        .ingest_in(
            &OrgId::new("acme").expect("name"),
            report("acme-db", 20.0, 1000),
        )
        .await
        .expect("valid report");
    let running = Running::start(server).await;
    let site = running.url();
    let mut browser = Browser::start(&chromium, &chromedriver).await;
    browser.set_viewport(1280, 800).await;

    // root belongs to default only: the header of a single tenant.
    sign_in(&browser, &site, "root").await;
    let header = browser.wait_for("root's dashboard", HEADER).await;
    assert_eq!(
        header,
        json!(["root (admin)", false, null, null, true]),
        "no switcher for one organisation"
    );
    browser.click("#signout").await;

    // ann: viewer of default, admin of acme.
    sign_in(&browser, &site, "ann").await;
    let header = browser.wait_for("ann's dashboard", HEADER).await;
    let theme = browser
        .script("return document.documentElement.dataset.theme || null")
        .await;
    assert_eq!(theme, Ok(json!(null)), "nothing chosen in default");
    assert_eq!(
        header,
        json!([
            "ann (viewer)",
            true,
            "default",
            ["acme (admin)", "default"],
            false
        ])
    );
    browser.screenshot("organisations-switcher").await;
    assert_eq!(
        browser.wait_for("default's devices", CARDS).await,
        json!(["web-1"])
    );

    // Switching loads the page anew, acting in acme.
    browser
        .script(
            "window.tailmonBeforeNavigation = true; \
             const s = document.getElementById('org-select'); \
             s.value = 'acme'; s.dispatchEvent(new Event('change')); return null",
        )
        .await
        .expect("script runs");
    let header = browser.wait_for("the dashboard in acme", HEADER).await;
    assert_eq!(
        header,
        json!([
            "ann (admin)",
            true,
            "acme",
            ["acme (admin)", "default"],
            true
        ]),
        "acme's admin now"
    );
    let theme = browser
        .script("return document.documentElement.dataset.theme || null")
        .await;
    assert_eq!(
        theme,
        Ok(json!("dark")),
        "acme's saved choices, loaded anew"
    );
    assert_eq!(
        browser.wait_for("acme's devices", CARDS).await,
        json!(["acme-db"]),
        "acme's fleet only"
    );

    // From a device page, a switch goes to the fleet page.
    browser
        .script("window.tailmonBeforeNavigation = true; return null")
        .await
        .expect("script runs");
    browser.goto(&format!("{site}/device.html?id=web-1")).await;
    browser
        .wait_for(
            "the device page",
            "return !window.tailmonBeforeNavigation && document.getElementById('org-select') !== null \
             && document.body.dataset.page === 'device'",
        )
        .await;
    browser
        .script(
            "window.tailmonBeforeNavigation = true; \
             const s = document.getElementById('org-select'); \
             s.value = 'default'; s.dispatchEvent(new Event('change')); return null",
        )
        .await
        .expect("script runs");
    let page = browser
        .wait_for(
            "the fleet page in default",
            "const s = document.getElementById('org-select'); \
             return !window.tailmonBeforeNavigation && s !== null && document.body.dataset.page \
                 && [document.body.dataset.page, s.value]",
        )
        .await;
    assert_eq!(page, json!(["fleet", "default"]));

    browser.quit().await;
}
