//! A real Tailmon server run inside the test, on a loopback port.

use std::net::SocketAddr;

use tailmon_core::Report;
use tailmon_server::{Ingest, ServerBuilder};
use tokio::sync::oneshot;

/// A server serving on 127.0.0.1; stops when dropped.
pub(crate) struct InProcessServer {
    addr: SocketAddr,
    ingest: Ingest,
    _stop: oneshot::Sender<()>,
}

impl InProcessServer {
    /// Serves a default server on `listener`.
    pub(crate) fn serve(listener: tokio::net::TcpListener) -> Self {
        Self::serve_built(listener, ServerBuilder::new().open_access())
    }

    /// Serves the server `builder` makes on `listener`.
    fn serve_built(listener: tokio::net::TcpListener, builder: ServerBuilder) -> Self {
        let server = builder.build().expect("valid settings");
        let addr = listener.local_addr().expect("local addr");
        let ingest = server.ingest().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            ingest,
            _stop: stop,
        }
    }

    /// Binds 127.0.0.1:`port` (0 for any) and serves there.
    pub(crate) async fn start(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("binding 127.0.0.1:{port}: {e}"));
        Self::serve(listener)
    }

    /// A default server on a free port of 127.0.0.1 that also answers to
    /// the host name `host` (authentication is off, so it answers only to
    /// `localhost`, IP addresses and the names it is given).
    pub(crate) async fn start_answering_to(host: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("binding 127.0.0.1:0");
        Self::serve_built(
            listener,
            ServerBuilder::new()
                .open_access()
                .allowed_hosts(vec![host.to_owned()]),
        )
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The ingest URL an agent is given, as `TAILMON_SERVER_URL` has it.
    pub(crate) fn ingest_url(&self) -> String {
        format!("http://{}/api/metrics", self.addr)
    }

    /// The server's base URL, for a typed client.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The latest report of `device_id`, or what the store holds instead.
    pub(crate) async fn latest_of(&self, device_id: &str) -> Result<Report, String> {
        let latest = self
            .ingest
            .store()
            .latest()
            .await
            .map_err(|e| e.to_string())?;
        let ids: Vec<String> = latest.iter().map(|(_, r)| r.device_id.clone()).collect();
        latest
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.device_id == device_id)
            .ok_or_else(|| format!("the store holds {ids:?}"))
    }
}
