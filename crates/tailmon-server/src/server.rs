use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tokio::net::TcpListener;

use crate::connection_loop;
use crate::json_body::BodyLimit;
use crate::routes::v1_api::{self as v1, V1State};
use crate::{ApiError, Ingest, ServeOptions, routes};

/// How often [`Server::serve`] applies the store's retention: every 10 minutes.
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// A built Tailmon server: a [`Router`] to serve or nest, and an [`Ingest`]
/// handle for in-process agents.
pub struct Server {
    ingest: Ingest,
    settings: ServerSettings,
}

/// What the builder checked and the router uses.
pub(crate) struct ServerSettings {
    pub(crate) max_body_bytes: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) offline_after: time::Duration,
    pub(crate) thresholds: tailmon_core::Thresholds,
}

impl Server {
    pub(crate) fn new(ingest: Ingest, settings: ServerSettings) -> Self {
        Self { ingest, settings }
    }

    /// The whole HTTP surface, state applied, ready to serve or to
    /// [`nest`](Router::nest) under a prefix of a host application.
    pub fn router(&self) -> Router {
        let s = &self.settings;
        let legacy = Router::new()
            .route("/api/metrics", post(routes::legacy_api::post_metrics))
            .route("/api/all_metrics", get(routes::legacy_api::all_metrics))
            .route("/api/{*rest}", axum::routing::any(not_found))
            .route("/healthz", get(routes::health::healthz))
            .with_state(self.ingest.clone());
        let batch = post(v1::reports)
            .layer::<_, std::convert::Infallible>(DefaultBodyLimit::max(s.max_batch_bytes))
            .layer::<_, std::convert::Infallible>(axum::Extension(BodyLimit(s.max_batch_bytes)));
        let v1_api = Router::new()
            .route("/api/v1/devices", get(v1::devices))
            .route("/api/v1/devices/{id}", delete(v1::delete_device))
            .route("/api/v1/devices/{id}/history", get(v1::history))
            .route("/api/v1/devices/{id}/export", get(v1::export))
            .route("/api/v1/reports", batch)
            .with_state(V1State {
                ingest: self.ingest.clone(),
                offline_after: s.offline_after,
                thresholds: s.thresholds,
            });
        legacy
            .merge(v1_api)
            .merge(routes::dashboard::router())
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(s.max_body_bytes))
            .layer(axum::Extension(BodyLimit(s.max_body_bytes)))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                routes::panic::answer,
            ))
    }

    /// The handle in-process agents hand reports to, skipping HTTP.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown`
    /// completes, then finishes the requests under way: plain HTTP with the
    /// default [`ServeOptions`]. See [`serve_with`](Self::serve_with) for
    /// TLS and the connection limits.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = tailmon_server::ServerBuilder::new().build()?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Retention runs beside it: at start and every
    /// [`RETENTION_EVERY`], the store drops what its tiers no longer keep.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_with(listener, ServeOptions::new(), shutdown)
            .await
    }

    /// Serves [`router`](Self::router) on `listener` as `options` say (TLS,
    /// most connections at once, how long a client may take to send a
    /// request) until `shutdown` completes; then stops accepting, finishes
    /// the requests under way and returns once every connection is closed.
    ///
    /// Each request carries the client's address as
    /// [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) in its
    /// extensions, for handlers and middleware to extract.
    ///
    /// Retention runs beside it, as with [`serve`](Self::serve).
    pub async fn serve_with(
        self,
        listener: TcpListener,
        options: ServeOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let retention = tokio::spawn(self.retention_loop());
        let served =
            connection_loop::serve_router(listener, self.router(), options, shutdown).await;
        retention.abort();
        served
    }

    /// Applies the store's retention now and every [`RETENTION_EVERY`];
    /// never returns. [`serve`](Self::serve) runs it; an application that
    /// serves [`router`](Self::router) itself spawns it.
    pub fn retention_loop(&self) -> impl Future<Output = ()> + Send + 'static {
        let ingest = self.ingest.clone();
        async move {
            let mut ticks = tokio::time::interval(RETENTION_EVERY);
            loop {
                ticks.tick().await;
                let now = ingest.clock().now();
                if let Err(error) = ingest.store().apply_retention(now).await {
                    tracing::warn!(%error, "retention failed; it is retried later");
                }
            }
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
