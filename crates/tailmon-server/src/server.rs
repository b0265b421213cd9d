use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::json_body::BodyLimit;
use crate::{ApiError, Ingest, routes};

/// A built Tailmon server: a [`Router`] to serve or nest, and an [`Ingest`]
/// handle for in-process agents.
pub struct Server {
    ingest: Ingest,
    max_body_bytes: usize,
}

impl Server {
    pub(crate) fn new(ingest: Ingest, max_body_bytes: usize) -> Self {
        Self {
            ingest,
            max_body_bytes,
        }
    }

    /// The whole HTTP surface, state applied, ready to serve or to
    /// [`nest`](Router::nest) under a prefix of a host application.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/metrics", post(routes::legacy_api::post_metrics))
            .route("/api/all_metrics", get(routes::legacy_api::all_metrics))
            .route("/api/{*rest}", axum::routing::any(not_found))
            .route("/healthz", get(routes::health::healthz))
            .with_state(self.ingest.clone());
        api.merge(routes::dashboard::router())
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(self.max_body_bytes))
            .layer(axum::Extension(BodyLimit(self.max_body_bytes)))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                routes::panic::answer,
            ))
    }

    /// The handle in-process agents hand reports to, skipping HTTP.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// Serves [`router`](Self::router) on `listener` until `shutdown`
    /// completes, then finishes the requests under way.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = tailmon_server::ServerBuilder::new().build()?;
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// server.serve(listener, async { tokio::signal::ctrl_c().await.ok(); }).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
