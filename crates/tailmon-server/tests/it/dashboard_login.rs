//! Signing in and out of the dashboard in a real headless Chromium, driven
//! through ChromeDriver ([`tailmon_testkit::Browser`]).
//!
//! Every wait polls the page every 100 ms up to a deadline; there are no
//! fixed sleeps.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tailmon_server::auth::Role;
use tailmon_server::{Credentials, ServerBuilder};

use tailmon_testkit::{Browser, browser_tools};

use crate::support::{Running, report};

const PASSWORD: &str = "correct-horse-battery-9";
const DEVICE: &str = "web-1";
const SESSION_COOKIE: &str = "tailmon_session";
/// How long a wait of the test's own may take.
const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(100);

/// Console entries that report a Content-Security-Policy violation.
fn csp_violations(entries: &[Value]) -> Vec<&Value> {
    entries
        .iter()
        .filter(|e| {
            e["message"].as_str().is_some_and(|m| {
                m.contains("Content Security Policy") || m.contains("Content-Security-Policy")
            })
        })
        .collect()
}

/// Waits for the login page, with its script run (so that submitting the
/// form goes through `login.js`, not a plain form submission).
const LOGIN_PAGE_READY: &str = "return location.pathname === '/login' \
    && document.readyState === 'complete' \
    && document.getElementById('login-form') !== null \
    && !window.tailmonBeforeNavigation \
    && location.href";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sign_in_and_out_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };

    let credentials = Arc::new(Credentials::in_memory());
    credentials
        .add_user("root", PASSWORD, Role::Admin)
        .expect("user added");
    let server = ServerBuilder::new()
        .credentials(credentials)
        .build()
        .expect("valid");
    server
        .ingest()
        .ingest(report(DEVICE, 10.0, 1000))
        .await
        .expect("valid report");
    let running = Running::start(server).await;
    let site = running.url();

    let mut browser = Browser::start(&chromium, &chromedriver).await;
    let mut console = Vec::new();

    // Without a session, the dashboard sends the browser to the login page.
    browser.goto(&format!("{site}/")).await;
    browser.wait_for("the login page", LOGIN_PAGE_READY).await;
    browser.set_viewport(1280, 800).await;
    browser.screenshot("login-desktop").await;
    browser.set_viewport(360, 740).await;
    browser.screenshot("login-phone").await;
    browser.set_viewport(1280, 800).await;

    // A wrong password: an error on the page, still on the login page.
    browser.type_into("#username", "root").await;
    browser.type_into("#password", "not-the-password").await;
    browser.click("#login-submit").await;
    let error = browser
        .wait_for(
            "the sign-in error",
            "const e = document.getElementById('login-error'); \
             return !e.hidden && e.getClientRects().length > 0 && e.textContent",
        )
        .await;
    assert_eq!(error, json!("wrong username or password"));
    let url = browser.script("return location.pathname").await;
    assert_eq!(url, Ok(json!("/login")));

    // The right one: the dashboard, with the device and who is signed in.
    browser.type_into("#password", PASSWORD).await;
    browser.click("#login-submit").await;
    let user = browser
        .wait_for(
            "the dashboard with the device card and the user",
            &format!(
                "const box = document.getElementById('user-box'); \
                 return location.pathname === '/' \
                     && document.querySelector('article[data-device-id=\"{DEVICE}\"]') !== null \
                     && box !== null && !box.hidden \
                     && document.getElementById('user-name').textContent"
            ),
        )
        .await;
    assert_eq!(user, json!("root (admin)"));

    // The session cookie is there, but out of reach of scripts.
    let cookies = browser.cookies().await;
    let session = cookies
        .iter()
        .find(|c| c["name"] == json!(SESSION_COOKIE))
        .unwrap_or_else(|| panic!("no {SESSION_COOKIE} cookie in {cookies:?}"))
        .clone();
    assert_eq!(session["httpOnly"], json!(true), "{session}");
    assert_eq!(session["sameSite"], json!("Strict"), "{session}");
    let script_cookies = browser
        .script("return document.cookie")
        .await
        .expect("script runs");
    assert!(
        !script_cookies
            .as_str()
            .expect("a string")
            .contains(SESSION_COOKIE),
        "scripts can read the session cookie: {script_cookies}"
    );
    let cookie = format!(
        "{SESSION_COOKIE}={}",
        session["value"].as_str().expect("cookie value")
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(DEADLINE)
        .build()
        .expect("HTTP client");
    let session_of = |cookie: String| {
        let http = http.clone();
        let url = format!("{site}/api/v1/session");
        async move {
            http.get(url)
                .header(reqwest::header::COOKIE, cookie)
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .expect("server answers")
                .status()
        }
    };
    assert_eq!(session_of(cookie.clone()).await, StatusCode::OK);

    // Signing out: back on the login page, and the session is over on the
    // server, not only forgotten by the browser.
    console.extend(browser.console().await);
    browser
        .script("window.tailmonBeforeNavigation = true; return null")
        .await
        .expect("script runs");
    browser.click("#signout").await;
    browser
        .wait_for("the login page after signing out", LOGIN_PAGE_READY)
        .await;
    let cookies = browser.cookies().await;
    assert!(
        cookies.iter().all(|c| c["name"] != json!(SESSION_COOKIE)),
        "the browser kept the session cookie: {cookies:?}"
    );
    assert_eq!(
        session_of(cookie).await,
        StatusCode::UNAUTHORIZED,
        "the old session still works"
    );

    // The dashboard again: the login page again.
    console.extend(browser.console().await);
    browser
        .script("window.tailmonBeforeNavigation = true; return null")
        .await
        .expect("script runs");
    browser.goto(&format!("{site}/")).await;
    browser
        .wait_for("the login page after signing out", LOGIN_PAGE_READY)
        .await;

    // No page broke the Content-Security-Policy.
    console.extend(browser.console().await);
    let violations = csp_violations(&console);
    assert!(
        violations.is_empty(),
        "Content-Security-Policy violations: {violations:#?}\nwhole console: {console:#?}"
    );

    // A control: an inline script is refused and the refusal shows in the log,
    // so an empty list above means no violation rather than a deaf check.
    // (An allowed inline script would run at once, on appending.)
    let refused = browser
        .script(
            "const s = document.createElement('script'); \
             s.textContent = 'window.tailmonInline = true'; \
             document.head.appendChild(s); \
             return window.tailmonInline === undefined",
        )
        .await;
    assert_eq!(refused, Ok(json!(true)), "the inline script ran");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while csp_violations(&seen).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a refused inline script left no CSP message in the browser log: {seen:#?}"
        );
        tokio::time::sleep(POLL).await;
        seen.extend(browser.console().await);
    }

    browser.quit().await;
}
