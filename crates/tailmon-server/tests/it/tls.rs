//! HTTPS: a server on 127.0.0.1:0 with a certificate from a CA made for the
//! test, the typed client trusting that CA, and what happens to clients
//! that do not speak TLS or do not trust it.

use std::time::Duration;

use tailmon_client::Client;
use tailmon_server::http::{TlsConfig, TlsError};
use tailmon_server::{ServeOptions, ServerBuilder};
use tailmon_testkit::TestCertificates;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{Running, TestDirs, read_until_closed, report};

fn certificates(test: &str) -> TestCertificates {
    TestCertificates::generate(&TestDirs::new(test).fresh())
}

async fn start_tls(certs: &TestCertificates, options: ServeOptions) -> Running {
    let tls = TlsConfig::from_pem_files(&certs.cert_path, &certs.key_path).expect("valid PEM");
    let server = ServerBuilder::new().open_access().build().expect("valid");
    Running::start_with(server, options.tls(tls)).await
}

fn trusting_client(running: &Running, certs: &TestCertificates) -> Client {
    Client::builder(running.https_url())
        .ca_cert_pem(certs.ca_pem.as_bytes())
        .build()
        .expect("valid client")
}

/// A client that trusts the CA is still served, after whatever went wrong.
async fn assert_still_serving(running: &Running, certs: &TestCertificates) {
    let client = trusting_client(running, certs);
    let devices = client.all_metrics().await.expect("still serving");
    assert!(devices.is_empty(), "{devices:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_client_trusting_the_ca_sends_and_reads_back() {
    let certs = certificates("tls-round-trip");
    let running = start_tls(&certs, ServeOptions::new()).await;
    let client = trusting_client(&running, &certs);

    client
        .send(&report("tls-host", 12.5, 512))
        .await
        .expect("report accepted over TLS");
    let devices = client.all_metrics().await.expect("read back over TLS");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, "tls-host");
    assert_eq!(devices[0].cpu_usage, 12.5);

    // The CA from a file works the same.
    let from_file = Client::builder(running.https_url())
        .ca_cert_file(&certs.ca_path)
        .build()
        .expect("valid client");
    assert_eq!(from_file.all_metrics().await.expect("over TLS").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_fails_to_connect() {
    let certs = certificates("tls-untrusted");
    let running = start_tls(&certs, ServeOptions::new()).await;
    let client = Client::builder(running.https_url())
        .build()
        .expect("valid client");

    let error = client
        .send(&report("tls-host", 1.0, 1))
        .await
        .expect_err("the certificate is not trusted");
    assert!(error.is_connect(), "a transport error, got {error:?}");
    assert!(error.is_tls(), "a TLS mismatch, got {error:?}");
    assert_eq!(error.status(), None);

    // The failed handshake did not take the server down.
    assert_still_serving(&running, &certs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_is_not_served() {
    let certs = certificates("tls-plain-http");
    let running = start_tls(&certs, ServeOptions::new()).await;

    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send");
    let answer = read_until_closed(&mut stream).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "answered in plain HTTP: {:?}",
        String::from_utf8_lossy(&answer)
    );

    let plain = Client::builder(format!("http://{}", running.addr))
        .build()
        .expect("valid client");
    let error = plain.all_metrics().await.expect_err("not served");
    assert_eq!(error.status(), None, "{error:?}");
    // The agent tells this mistake apart: plain http:// to a TLS server.
    assert!(error.is_tls(), "{error:?}");

    assert_still_serving(&running, &certs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_cut_off_by_the_header_read_timeout() {
    let certs = certificates("tls-stalled-handshake");
    let options = ServeOptions::new().header_read_timeout(Duration::from_millis(300));
    let running = start_tls(&certs, options).await;

    // Connects and says nothing: no ClientHello ever comes.
    let mut stream = TcpStream::connect(running.addr).await.expect("connect");
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.is_empty(), "{answer:?}");
}

#[test]
fn tls_config_errors_name_the_file_and_the_fault() {
    let certs = certificates("tls-config-errors");
    let dir = certs.cert_path.parent().expect("a directory").to_owned();
    let message = |result: Result<TlsConfig, TlsError>| match result {
        Ok(_) => panic!("accepted"),
        Err(error) => (error.to_string(), error),
    };

    let missing = dir.join("missing.pem");
    let (text, error) = message(TlsConfig::from_pem_files(&missing, &certs.key_path));
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    assert!(text.contains("cannot read the certificate file"), "{text}");
    assert!(text.contains("missing.pem"), "{text}");
    let (text, _) = message(TlsConfig::from_pem_files(&certs.cert_path, &missing));
    assert!(text.contains("cannot read the private key file"), "{text}");

    let (text, error) = message(TlsConfig::from_pem_files(&certs.key_path, &certs.key_path));
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(text.contains("no certificate in"), "{text}");

    let (text, error) = message(TlsConfig::from_pem_files(
        &certs.cert_path,
        &certs.cert_path,
    ));
    assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
    assert!(text.contains("no private key in"), "{text}");

    let garbage = dir.join("garbage-key.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let (text, error) = message(TlsConfig::from_pem_files(&certs.cert_path, &garbage));
    assert!(
        matches!(error, TlsError::InvalidPrivateKey { .. }),
        "{error:?}"
    );
    assert!(text.contains("invalid private key in"), "{text}");

    let (text, error) = message(TlsConfig::from_pem_files(
        &certs.cert_path,
        &certs.other_key_path,
    ));
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    assert!(text.contains("does not match the certificate"), "{text}");

    let tls = TlsConfig::from_pem_files(&certs.cert_path, &certs.key_path).expect("valid");
    assert!(!format!("{tls:?}").contains("PRIVATE"));
}
