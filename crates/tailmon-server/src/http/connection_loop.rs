use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use dashmap::DashMap;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::ServeOptions;
use crate::http::client_address::limit_key;
use crate::http::connection_drops::ConnectionDrops;
use crate::http::connection_service::ConnectionService;
use crate::http::parse_error_answer::ParseErrorAnswer;
use crate::http::send_deadline::SendDeadline;
use crate::http::serve_options::MAX_READ_AHEAD_BYTES;

/// How long accepting pauses after an error that is not one connection's
/// own (out of file descriptors, say), so as not to spin on it: 1 s.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// What every connection task needs, shared.
struct Shared {
    router: Router,
    http: http1::Builder,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    send_timeout: Duration,
    /// Connections closed by the loop itself, by reason.
    drops: Arc<ConnectionDrops>,
    max_per_address: usize,
    /// Open connections by client address.
    per_address: DashMap<IpAddr, usize>,
}

/// One connection counted against its address; uncounted when dropped.
struct AddressSlot {
    shared: Arc<Shared>,
    address: IpAddr,
}

impl AddressSlot {
    /// Counts a connection from `address`, unless it holds its share already.
    fn take(shared: &Arc<Shared>, address: IpAddr) -> Option<Self> {
        let address = limit_key(address);
        let mut open = shared.per_address.entry(address).or_insert(0);
        if *open >= shared.max_per_address {
            return None;
        }
        *open += 1;
        drop(open);
        Some(Self {
            shared: Arc::clone(shared),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.shared
            .per_address
            .remove_if_mut(&self.address, |_, open| {
                *open = open.saturating_sub(1);
                *open == 0
            });
    }
}

/// Serves any [`Router`] as [`Server::serve_with`](crate::Server::serve_with)
/// serves Tailmon's own, for an application that
/// [nested](Router::nest) Tailmon's router in its own: HTTP/1.1, plain or
/// TLS, with the connection limits of `options`, until `shutdown`
/// completes. Then it stops accepting, lets the requests under way finish,
/// closes idle connections, and returns once every connection is closed.
///
/// At most [`max_connections`](ServeOptions::max_connections) connections
/// are open at once: at the cap, accepting waits for a slot to free. Each
/// request carries the client's address as
/// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) in its
/// extensions. The store's retention needs nothing from it: a built
/// server's [`router`](crate::Server::router) keeps it running.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, routing::get};
/// use tailmon_server::{ServeOptions, ServerBuilder, serve_router};
///
/// let tailmon = ServerBuilder::new().build()?;
/// let app = Router::new()
///     .route("/hello", get(|| async { "your own route" }))
///     .nest("/monitor", tailmon.router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// serve_router(listener, app, ServeOptions::new(), async {
///     tokio::signal::ctrl_c().await.ok();
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(MAX_READ_AHEAD_BYTES);
    let shared = Arc::new(Shared {
        router,
        http,
        tls: options
            .tls
            .map(|tls| TlsAcceptor::from(tls.server_config())),
        header_read_timeout: options.header_read_timeout,
        body_read_timeout: options.body_read_timeout,
        send_timeout: options.send_timeout,
        drops: options.drops,
        max_per_address: options.max_connections_per_address,
        per_address: DashMap::new(),
    });
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(counted) = AddressSlot::take(&shared, peer.ip()) else {
                    drop(stream);
                    shared
                        .drops
                        .over_address_cap(peer.ip(), shared.max_per_address);
                    continue;
                };
                let connection = serve_connection(
                    Arc::clone(&shared),
                    stream,
                    peer,
                    graceful.watcher(),
                    (slot, counted),
                );
                tokio::spawn(connection);
            }
            Err(error) if is_connection_error(&error) => {
                tracing::debug!(%error, "a connection failed before it was accepted");
            }
            Err(error) => {
                tracing::error!(%error, "accepting connections failed; trying again in 1 s");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves one connection to its end, then frees its slot.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    watcher: Watcher,
    slot: (OwnedSemaphorePermit, AddressSlot),
) {
    let service = ConnectionService::new(shared.router.clone(), peer, shared.body_read_timeout);
    let stream = SendDeadline::new(
        stream,
        shared.send_timeout,
        Arc::clone(&shared.drops.stalled_readers),
    );
    match &shared.tls {
        None => serve_http(&shared.http, answered(stream), service, watcher, peer).await,
        Some(acceptor) => {
            match tokio::time::timeout(shared.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    serve_http(&shared.http, answered(stream), service, watcher, peer).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
    // The socket is closed by now: only then may another client take the slot.
    drop(slot);
}

/// The connection as hyper sees it: its bare answers to requests it could
/// not parse are given a JSON body (see [`ParseErrorAnswer`]).
fn answered<S>(stream: S) -> TokioIo<ParseErrorAnswer<S>> {
    TokioIo::new(ParseErrorAnswer::new(stream))
}

/// HTTP/1.1 on an established connection, plain or TLS, until it closes or
/// graceful shutdown has it finish its request under way.
async fn serve_http<I>(
    http: &http1::Builder,
    io: I,
    service: ConnectionService,
    watcher: Watcher,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if let Err(error) = watcher.watch(http.serve_connection(io, service)).await {
        tracing::debug!(%peer, %error, "connection closed on an error");
    }
}

/// Errors of one incoming connection (it gave up before it was accepted),
/// as opposed to the listener's own.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
