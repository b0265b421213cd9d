//! `embed_server` nests Tailmon under `/monitor` of an application: its own
//! route answers, and in a real Chromium a signed-out visitor of the
//! dashboard lands on the nested login page, signs in as `admin` with the
//! password of `./tailmon-data/initial-admin-password`, and sees the
//! dashboard at `/monitor`.

use serde_json::json;
use tailmon_testkit::{Browser, RunningBinary, browser_tools, clean_command};

use crate::example_binary::example_binary;

/// The nested login page, with its script run.
const NESTED_LOGIN_PAGE: &str = "return location.pathname === '/monitor/login' \
    && document.readyState === 'complete' \
    && document.getElementById('login-form') !== null \
    && location.href";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nested_dashboard_signs_a_browser_in_under_its_prefix() {
    let Some((chromium, chromedriver)) = browser_tools() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tailmon-examples-embed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut example = RunningBinary::start(
        clean_command(example_binary("embed_server").to_str().unwrap())
            .arg("127.0.0.1:0")
            .current_dir(&dir),
    );
    let line = example.stdout_line_containing("application: ").await;
    let site = line
        .split_whitespace()
        .last()
        .and_then(|url| url.strip_suffix("/hello"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let password = std::fs::read_to_string(dir.join("tailmon-data/initial-admin-password"))
        .expect("the first start wrote admin's password");

    // The application's own route, beside Tailmon.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let hello = http.get(format!("{site}/hello")).send().await.unwrap();
    assert_eq!(
        hello.text().await.unwrap(),
        "Hello from the host application\n"
    );

    let mut browser = Browser::start(&chromium, &chromedriver).await;
    // What people type: `/monitor/`, redirected to `/monitor`, which sends a
    // signed-out browser to the login page under the same prefix.
    browser.goto(&format!("{site}/monitor/")).await;
    browser
        .wait_for("the nested login page", NESTED_LOGIN_PAGE)
        .await;
    browser.type_into("#username", "admin").await;
    browser.type_into("#password", password.trim()).await;
    browser.click("#login-submit").await;
    let user = browser
        .wait_for(
            "the nested dashboard with the user signed in",
            "const box = document.getElementById('user-box'); \
             return location.pathname === '/monitor' \
                 && box !== null && !box.hidden \
                 && document.getElementById('user-name').textContent",
        )
        .await;
    assert_eq!(user, json!("admin (admin)"));
    browser.quit().await;
    assert!(example.is_running(), "{}", example.stderr());
    example.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
