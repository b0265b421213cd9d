//! The agent binary against a server with authentication and TLS on, as an
//! operator deploys it: `TAILMON_TOKEN`, `TAILMON_CA_CERT`, an https URL.

use std::sync::Arc;

use tailmon_server::auth::NewToken;
use tailmon_server::http::TlsConfig;
use tailmon_server::{Credentials, ServeOptions, ServerBuilder};
use tailmon_testkit::{RunningBinary, TestCertificates, clean_command, eventually};
use tokio::sync::oneshot;

fn agent_token(credentials: &Credentials, pattern: &str) -> String {
    credentials
        .create_token(NewToken::agent(pattern).device(pattern))
        .expect("token")
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_its_token_reports_over_tls_and_a_wrong_token_is_refused() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("agent-secured");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let certificates = TestCertificates::generate(&dir);
    let credentials = Arc::new(Credentials::in_memory());
    let good = agent_token(&credentials, "secure-*");
    let other = agent_token(&credentials, "elsewhere-*");

    let server = ServerBuilder::new()
        .credentials(credentials)
        .secure_cookies(true)
        .build()
        .expect("valid");
    let ingest = server.ingest().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "https://{}/api/metrics",
        listener.local_addr().expect("addr")
    );
    let tls = TlsConfig::from_pem_files(&certificates.cert_path, &certificates.key_path)
        .expect("test certificate");
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(
        server.serve_with(listener, ServeOptions::new().tls(tls), async move {
            let _ = stopped.await;
        }),
    );

    let start = |device: &str, token: &str| {
        let mut command = clean_command(env!("CARGO_BIN_EXE_tailmon-agent"));
        command
            .current_dir(&dir)
            .env("TAILMON_SERVER_URL", &url)
            .env("TAILMON_TOKEN", token)
            .env("TAILMON_CA_CERT", &certificates.ca_path)
            .env("TAILMON_INTERVAL", "0.2")
            .env("TAILMON_DEVICE_ID", device)
            .env("RUST_LOG", "debug");
        RunningBinary::start(&mut command)
    };
    let agent = start("secure-1", &good);
    let intruder = start("secure-2", &other);

    eventually("the agent's reports stored", async || {
        let devices = ingest.store().devices().await.map_err(|e| e.to_string())?;
        if devices.iter().any(|(_, d)| d == "secure-1") {
            Ok(())
        } else {
            Err(format!("devices {devices:?}; agent:\n{}", agent.stderr()))
        }
    })
    .await;
    // The token bound to elsewhere-* may not write secure-2: refused, kept, logged.
    let line = intruder
        .stderr_line_containing("refused the agent's token")
        .await;
    assert!(!line.contains(&other), "the token is never logged: {line}");
    let devices = ingest.store().devices().await.expect("devices");
    assert!(!devices.iter().any(|(_, d)| d == "secure-2"), "{devices:?}");
    for (process, token) in [(&agent, &good), (&intruder, &other)] {
        let log = process.stderr();
        assert!(!log.contains(token.as_str()), "a token in the log:\n{log}");
    }
    agent.stop_cleanly("agent stopped").await;
    intruder.stop_cleanly("agent stopped").await;
}
