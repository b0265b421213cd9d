//! `custom_collector` reports to the default secure server with
//! `TAILMON_TOKEN` and `TAILMON_CA_CERT`, its own collectors' values
//! included; without a token it says why nothing is delivered.

use tailmon_server::auth::NewToken;
use tailmon_server::store::OrgId;
use tailmon_testkit::{RunningBinary, clean_command};

use crate::example_binary::example_binary;
use crate::secure_server::SecureServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_with_its_own_collectors_through_a_token_and_a_private_ca() {
    let server = SecureServer::start("custom-collector").await;
    let token = server.token(NewToken::agent("example").device("collector-*"));
    let mut example = RunningBinary::start(
        clean_command(example_binary("custom_collector").to_str().unwrap())
            .env("TAILMON_SERVER_URL", format!("{}/api/metrics", server.url))
            .env("TAILMON_TOKEN", token)
            .env("TAILMON_CA_CERT", &server.ca_cert)
            .env("TAILMON_DEVICE_ID", "collector-1")
            .env("TAILMON_DEPLOYMENT", "prod"),
    );
    example
        .stdout_line_containing("first report delivered")
        .await;
    let report = server
        .ingest
        .store()
        .latest_of(&OrgId::default(), "collector-1")
        .await
        .unwrap()
        .expect("the example's report is stored");
    assert!(report.os_info.ends_with(" [prod]"), "{:?}", report.os_info);
    if cfg!(target_os = "linux") {
        let open_files = report.custom.as_ref().and_then(|c| c.get("open_files"));
        assert!(open_files.is_some_and(|n| *n >= 1.0), "{:?}", report.custom);
    }
    assert!(example.is_running(), "{}", example.stderr());
    example.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_it_says_why_nothing_is_delivered() {
    let server = SecureServer::start("custom-collector-no-token").await;
    let mut example = RunningBinary::start(
        clean_command(example_binary("custom_collector").to_str().unwrap())
            .env("TAILMON_SERVER_URL", format!("{}/api/metrics", server.url))
            .env("TAILMON_CA_CERT", &server.ca_cert)
            .env("TAILMON_DEVICE_ID", "collector-2"),
    );
    example
        .stdout_line_containing("first report not delivered")
        .await;
    example
        .stderr_line_containing("server wants a token and the agent has none")
        .await;
    assert!(server.ingest.store().latest().await.unwrap().is_empty());
    example.kill();
}
