//! A real headless Chromium, driven through ChromeDriver: the W3C WebDriver
//! protocol over HTTP on 127.0.0.1, spoken with reqwest. Every wait polls
//! the page every 100 ms up to a deadline; there are no fixed sleeps.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

/// The flags every browser test starts Chromium with (beside its headless
/// mode and a fresh `--user-data-dir`).
pub const CHROMIUM_FLAGS: [&str; 6] = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// Headless Chromium: `TAILMON_CHROMIUM`, else Debian's or Ubuntu's package.
pub fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TAILMON_CHROMIUM").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// Chromium and ChromeDriver, when both are installed. Without them a test
/// fails in CI (`CI` set; `.ci/run` installs them) and is skipped elsewhere,
/// saying so on stderr.
pub fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    if let (Some(chromium), Some(chromedriver)) = (chromium(), chromedriver()) {
        return Some((chromium, chromedriver));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have Chromium and ChromeDriver installed (.ci/run installs them)"
    );
    eprintln!(
        "skipping: no Chromium or ChromeDriver found; install Debian's chromium and \
         chromium-driver, or set TAILMON_CHROMIUM and TAILMON_CHROMEDRIVER"
    );
    None
}

/// How long any one wait (and any one WebDriver command) may take.
const DEADLINE: Duration = Duration::from_secs(20);
/// How often a wait polls the page.
const POLL: Duration = Duration::from_millis(100);
/// The key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// ChromeDriver: `TAILMON_CHROMEDRIVER`, else Debian's or Ubuntu's package.
pub fn chromedriver() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TAILMON_CHROMEDRIVER").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromedriver")),
        Some(PathBuf::from("/usr/lib/chromium/chromedriver")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// A ChromeDriver process with one browser session. Dropping it ends the
/// session (closing Chromium), kills ChromeDriver and removes the profile.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    http: reqwest::Client,
    /// The live session, if any: ended on drop when the test did not.
    session: Option<String>,
    dir: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver", &self.addr)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts ChromeDriver and, through it, a headless Chromium with
    /// [`CHROMIUM_FLAGS`] and a fresh profile.
    pub async fn start(chromium: &Path, chromedriver: &Path) -> Self {
        // A port that was free a moment ago; ChromeDriver binds it itself.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port");
        let dir = std::env::temp_dir().join(format!(
            "tailmon-chromedriver-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let driver = Command::new(chromedriver)
            .arg(format!("--port={}", addr.port()))
            .arg(format!(
                "--log-path={}",
                dir.join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut browser = Self {
            driver,
            addr,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(DEADLINE)
                .build()
                .expect("HTTP client"),
            session: None,
            dir,
        };
        browser.wait_ready().await;
        browser.new_session(chromium).await;
        browser
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default()
    }

    /// Polls `GET /status` until ChromeDriver says it is ready.
    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.driver.try_wait().expect("chromedriver status") {
                panic!("chromedriver exited ({status}):\n{}", self.driver_log());
            }
            let ready = match self
                .http
                .get(format!("{}/status", self.base()))
                .send()
                .await
            {
                Ok(res) => res
                    .json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == json!(true)),
                Err(_) => false,
            };
            if ready {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver not ready within {DEADLINE:?}:\n{}",
                self.driver_log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn new_session(&mut self, chromium: &Path) {
        let profile = self.dir.join("profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
        ];
        args.extend(CHROMIUM_FLAGS.map(str::to_owned));
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "timeouts": { "pageLoad": DEADLINE.as_millis(), "script": DEADLINE.as_millis() },
                }
            }
        });
        let value = self
            .request(Method::POST, "/session".into(), Some(capabilities))
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}\n{}", self.driver_log()));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {value}"));
        self.session = Some(id.to_owned());
    }

    /// One WebDriver request; the answer's `value`, or the error it reports.
    async fn request(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let res = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = res.status();
        let answer: Value = res
            .json()
            .await
            .map_err(|e| format!("{method} {path}: {status}, not JSON: {e}"))?;
        if status.is_success() {
            Ok(answer["value"].clone())
        } else {
            Err(format!(
                "{method} {path}: {status} {}: {}",
                answer["value"]["error"], answer["value"]["message"]
            ))
        }
    }

    /// A command of the session.
    async fn command(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let id = self.session.as_deref().expect("a live session");
        self.request(method, format!("/session/{id}{path}"), body)
            .await
    }

    /// Opens `url` and waits for its page to load.
    pub async fn goto(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Runs `body` as a function in the page; its return value.
    pub async fn script(&self, body: &str) -> Result<Value, String> {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": body, "args": [] })),
        )
        .await
    }

    /// Polls `body` (run as in [`Self::script`]) until it returns neither
    /// null nor false; errors (the page between two documents) count as "not yet".
    pub async fn wait_for(&self, what: &str, body: &str) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let last = match self.script(body).await {
                Ok(Value::Null | Value::Bool(false)) => "not yet".to_owned(),
                Ok(value) => return value,
                Err(e) => e,
            };
            if tokio::time::Instant::now() >= deadline {
                let url = self.script("return location.href").await;
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what} (last: {last}; at {url:?})"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The element `css` selects, as a WebDriver element id.
    pub async fn find(&self, css: &str) -> String {
        let value = self
            .command(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await
            .unwrap_or_else(|e| panic!("finding {css}: {e}"));
        value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element reference for {css} in {value}"))
            .to_owned()
    }

    /// Types `text` into the element `css` selects, after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("clearing {css}: {e}"));
        self.command(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await
        .unwrap_or_else(|e| panic!("typing into {css}: {e}"));
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// Runs a Chrome DevTools Protocol command (`cmd`, e.g.
    /// `Emulation.setEmulatedMedia`) through ChromeDriver; its result.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Result<Value, String> {
        self.command(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
        .await
    }

    /// Makes the page's viewport `width` × `height` CSS pixels; below 600
    /// pixels wide it is emulated as a phone (touch, mobile viewport).
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({
                "width": width,
                "height": height,
                "deviceScaleFactor": 1,
                "mobile": width < 600,
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("setting the viewport to {width}x{height}: {e}"));
    }

    /// Makes the page see `prefers-color-scheme: scheme` (`light` or `dark`).
    pub async fn set_color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await
        .unwrap_or_else(|e| panic!("emulating prefers-color-scheme: {scheme}: {e}"));
    }

    /// A PNG of the viewport, written to `target/screenshots/{name}.png` of
    /// the workspace (kept as a test artefact); the path written.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self
            .command(Method::GET, "/screenshot", None)
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let encoded = encoded
            .as_str()
            .unwrap_or_else(|| panic!("screenshot {name}: not a string"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|e| panic!("screenshot {name}: not base64: {e}"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Every cookie of the current page, HttpOnly ones included.
    pub async fn cookies(&self) -> Vec<Value> {
        match self.command(Method::GET, "/cookie", None).await {
            Ok(Value::Array(cookies)) => cookies,
            other => panic!("cookies: {other:?}"),
        }
    }

    /// The browser console since the last call (ChromeDriver's log endpoint).
    pub async fn console(&self) -> Vec<Value> {
        match self
            .command(Method::POST, "/se/log", Some(json!({ "type": "browser" })))
            .await
        {
            Ok(Value::Array(entries)) => entries,
            other => panic!("browser log: {other:?}"),
        }
    }

    /// Ends the session, closing Chromium.
    pub async fn quit(&mut self) {
        self.command(Method::DELETE, "", None)
            .await
            .unwrap_or_else(|e| panic!("ending the session: {e}"));
        self.session = None;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed half-way: end the session so that ChromeDriver
        // closes Chromium (killing ChromeDriver alone would leave it running).
        // Plain blocking HTTP, as drop cannot await.
        if let Some(id) = self.session.take() {
            let _ = (|| -> std::io::Result<()> {
                let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                write!(
                    stream,
                    "DELETE /session/{id} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.addr
                )?;
                // ChromeDriver answers once Chromium is closed.
                let _ = stream.read(&mut [0; 256])?;
                Ok(())
            })();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where [`Browser::screenshot`] writes: `target/screenshots` of the
/// workspace, or of `CARGO_TARGET_DIR` when set.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}
