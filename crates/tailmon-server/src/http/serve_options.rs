use std::sync::Arc;
use std::time::Duration;

use crate::http::TlsConfig;
use crate::http::connection_drops::ConnectionDrops;

/// Most connections served at once: 10,000, one for each agent of a full
/// fleet ([`DEFAULT_MAX_DEVICES`](crate::limits::DEFAULT_MAX_DEVICES)), since agents
/// keep their connection open between reports. While that many are open
/// the server stops accepting; further clients wait in the listener's
/// backlog until one closes. Each needs a file descriptor.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Most connections one client address may hold at once: 256. One
/// slow-loris client cannot then take every slot; agents behind one NAT
/// address share it, so a larger fleet behind one address needs more.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;
/// How long a client may take to send a request's headers, and before that
/// to complete the TLS handshake: 10 s. It is also the longest an idle
/// keep-alive connection stays open.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's whole body, counted from
/// the end of its headers: 30 s. A body not in by then gets 408.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client that has stopped reading may hold up an answer: 30 s.
/// Within it, it must take [`MIN_SEND_PROGRESS`](crate::http::MIN_SEND_PROGRESS)
/// bytes of the answer, or all that is left; else the connection is dropped.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of requests read ahead of the one being answered (pipelined
/// requests waiting behind an answer the client does not read), and of one
/// request's headers: 64 KiB. Headers still without their end once this much
/// is buffered get 431; since one read may bring in up to this much more,
/// headers of up to twice it may pass.
pub const MAX_READ_AHEAD_BYTES: usize = 64 * 1024;
/// Most bytes of a request body the server reads and discards after
/// answering without it (413 over the body limit, 401, 415...): 8 MiB,
/// twice the largest batch. A client still sending its body then reads the
/// answer instead of a reset connection, as behind nginx's lingering close.
/// Discarding stops at the body read timeout too; a body beyond either
/// bound is cut, and the connection closed after the answer.
pub const MAX_DISCARDED_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How [`Server::serve_with`](crate::Server::serve_with) accepts and guards
/// connections: TLS, a cap on open connections, and bounds on how long a
/// client may take to send a request, so that slow or idle clients cannot
/// hold the server's connections hostage. Every setter documents its default.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tailmon_server::http::TlsConfig;
/// use tailmon_server::{ServeOptions, ServerBuilder};
///
/// let options = ServeOptions::new()
///     .tls(TlsConfig::from_pem_files("cert.pem", "key.pem")?)
///     .max_connections(4096)
///     .header_read_timeout(Duration::from_secs(5));
/// let server = ServerBuilder::new().build()?;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:3443").await?;
/// server
///     .serve_with(listener, options, async { tokio::signal::ctrl_c().await.ok(); })
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ServeOptions {
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_address: usize,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) send_timeout: Duration,
    /// Where the serve loop counts the connections it closes itself;
    /// [`Server::serve_with`](crate::Server::serve_with) puts the server's
    /// own here, which `GET /metrics` shows.
    pub(crate) drops: Arc<ConnectionDrops>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ServeOptions {
    /// Options with every setting at its default: plain HTTP,
    /// [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`],
    /// [`DEFAULT_HEADER_READ_TIMEOUT`], [`DEFAULT_BODY_READ_TIMEOUT`] and
    /// [`DEFAULT_SEND_TIMEOUT`].
    pub fn new() -> Self {
        Self {
            tls: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            drops: Arc::default(),
        }
    }

    /// Serves HTTPS with this certificate and key. Defaults to none: plain
    /// HTTP. A client whose handshake fails is logged at debug level and
    /// disconnected; the server goes on.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Most connections open at once; at the cap the server accepts no more
    /// until one closes. Defaults to [`DEFAULT_MAX_CONNECTIONS`]; 0 is taken
    /// as 1.
    ///
    /// Agents keep their connection open between reports, so a fleet larger
    /// than the cap queues behind it: size the cap to the fleet (and the
    /// process's open-file limit to the cap).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Most connections one client address may hold at once; a further one
    /// from that address is closed as soon as it is accepted, counted
    /// (`tailmon_connections_dropped_total{reason="address_cap"}` in
    /// `GET /metrics` when served by
    /// [`Server::serve_with`](crate::Server::serve_with)) and logged at
    /// most once a minute. Defaults to
    /// [`DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`]; 0 is taken as 1.
    pub fn max_connections_per_address(mut self, connections: usize) -> Self {
        self.max_connections_per_address = connections.max(1);
        self
    }

    /// How long a client may take to complete the TLS handshake, and then
    /// to send each request's headers; a connection that has not done so in
    /// time is closed. An idle keep-alive connection is closed after it too.
    /// Defaults to [`DEFAULT_HEADER_READ_TIMEOUT`].
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a client may take to send a request's whole body, counted
    /// from the end of its headers; past it the request is answered 408 and
    /// the connection closed. Defaults to [`DEFAULT_BODY_READ_TIMEOUT`].
    pub fn request_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// How long a client that does not read may hold up an answer: once
    /// sending blocks on it, it must take
    /// [`MIN_SEND_PROGRESS`](crate::http::MIN_SEND_PROGRESS) bytes (or the rest)
    /// within this, else the connection is dropped and its slot freed.
    /// Requests pipelined behind such an answer wait in a buffer of at most
    /// [`MAX_READ_AHEAD_BYTES`]. Defaults to [`DEFAULT_SEND_TIMEOUT`].
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.send_timeout = timeout;
        self
    }

    /// `"https"` when [`tls`](Self::tls) is set, `"http"` otherwise: the
    /// scheme of the URLs this server answers on.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }
}
