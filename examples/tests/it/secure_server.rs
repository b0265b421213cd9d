//! A Tailmon server as it is by default: authentication on, here over TLS
//! with a private CA, listening on 127.0.0.1.

use std::path::PathBuf;
use std::sync::Arc;

use tailmon_server::auth::NewToken;
use tailmon_server::http::TlsConfig;
use tailmon_server::{Credentials, Ingest, ServeOptions, ServerBuilder};
use tailmon_testkit::TestCertificates;
use tokio::sync::oneshot;

/// A running server; it stops when dropped.
pub(crate) struct SecureServer {
    /// `https://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The CA file that signed its certificate, for `TAILMON_CA_CERT`.
    pub(crate) ca_cert: PathBuf,
    /// Its in-process handle, to put reports in and read them back.
    pub(crate) ingest: Ingest,
    /// Who may use it.
    pub(crate) credentials: Arc<Credentials>,
    _stop: oneshot::Sender<()>,
}

impl SecureServer {
    /// Starts one, with its certificates in a fresh directory named after `test`.
    pub(crate) async fn start(test: &str) -> Self {
        Self::start_with_clock(test, Arc::new(tailmon_server::SystemClock)).await
    }

    /// Starts one reading `clock`.
    pub(crate) async fn start_with_clock(
        test: &str,
        clock: Arc<dyn tailmon_server::Clock>,
    ) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tailmon-examples-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let certificates = TestCertificates::generate(&dir);
        let tls =
            TlsConfig::from_pem_files(&certificates.cert_path, &certificates.key_path).unwrap();
        let credentials = Arc::new(Credentials::in_memory());
        let server = ServerBuilder::new()
            .credentials(credentials.clone())
            .clock(clock)
            .build()
            .unwrap();
        let ingest = server.ingest().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            server.serve_with(listener, ServeOptions::new().tls(tls), async move {
                let _ = stopped.await;
            }),
        );
        Self {
            url,
            ca_cert: certificates.ca_path,
            ingest,
            credentials,
            _stop: stop,
        }
    }

    /// A new token, for `TAILMON_TOKEN`.
    pub(crate) fn token(&self, new: NewToken) -> String {
        self.credentials.create_token(new).unwrap().token
    }
}
