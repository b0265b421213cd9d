//! What the HTTP targets share: the server's router, built once per fuzzing
//! process (in-memory store, open access, a clock that stands still), and
//! one request through it at a time, as a client would send it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tailmon_core::{OffsetDateTime, OrgId};
use tailmon_server::{ManualClock, MemoryStore, Server, ServerBuilder};
use tower::ServiceExt;

/// The time the server's clock shows: reports stamped near it are current.
pub fn now() -> OffsetDateTime {
    // 2026-01-06T00:00:00Z, just after the seed reports' day.
    OffsetDateTime::from_unix_timestamp(1_767_657_600).expect("a valid time")
}

/// A server and the runtime that drives it.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    server: Server,
    router: axum::Router,
}

impl Harness {
    /// An open-access server with an in-memory store and a still clock.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime.block_on(async {
            ServerBuilder::new()
                .open_access()
                .store(MemoryStore::new())
                .clock(Arc::new(ManualClock::new(now())))
                .build()
                .expect("the server builds")
        });
        let router = runtime.block_on(async { server.router() });
        Self {
            runtime,
            server,
            router,
        }
    }

    /// POSTs `body` as JSON to `path`; the answer's status and body. Every
    /// device stored is deleted afterwards, so that each input meets the
    /// same empty server (and memory stays bounded).
    pub fn post_json(&self, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
        self.runtime.block_on(async {
            let request = Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_vec()))
                .expect("a request");
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router answers");
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("the answer's body")
                .to_bytes()
                .to_vec();
            self.server
                .ingest()
                .delete_org_devices(&OrgId::default())
                .await
                .expect("devices deleted");
            (status, body)
        })
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Panics unless the answer is what the API promises for any body: a
/// success, or a 4xx (never a 5xx: the server's catch-panic layer turns a
/// panicking handler into a 500, so a 500 here is a panic) with a JSON
/// `{"error": "..."}` body.
pub fn assert_client_answer(status: StatusCode, body: &[u8]) {
    if status.is_success() {
        return;
    }
    assert!(
        status.is_client_error(),
        "answered {status}: {}",
        String::from_utf8_lossy(body)
    );
    let message: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|error| {
        panic!(
            "a {status} without a JSON body ({error}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert!(
        message
            .get("error")
            .is_some_and(serde_json::Value::is_string),
        "a {status} without an error message: {message}"
    );
}

/// A file of this fuzzing process's own that each configuration input is
/// written to, for the binaries' loaders, which read `--config FILE`.
pub fn config_file(text: &[u8]) -> std::path::PathBuf {
    static DIR: std::sync::LazyLock<std::path::PathBuf> = std::sync::LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("tailmon-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir
    });
    let path = DIR.join("config.toml");
    std::fs::write(&path, text).expect("the configuration file is written");
    path
}
