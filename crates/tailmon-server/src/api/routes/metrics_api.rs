//! `GET /metrics`: Prometheus's view of the fleet and of the server.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::alerts::AlertEngine;
use crate::api::caller_org::CallerOrg;
use crate::api::metrics_exposition::{Health, MetricsExpositions};
use crate::http::connection_drops::ConnectionDrops;
use crate::{ApiError, Ingest};
use std::sync::Arc;

/// What `GET /metrics` reads.
#[derive(Clone)]
pub(crate) struct MetricsState {
    pub(crate) ingest: Ingest,
    pub(crate) alerts: AlertEngine,
    pub(crate) exposition: Arc<MetricsExpositions>,
    /// Connections the serve loop closed on its own.
    pub(crate) connections: Arc<ConnectionDrops>,
}

/// The latest value of every device's metrics and the server's own health,
/// in the text exposition format 0.0.4 (see `docs/prometheus.md`).
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    description = "The latest value of every device's metrics and the server's own health (reports received and refused by reason, ingest and store latencies, devices by status, alerts firing, notifications, process), in Prometheus's text exposition format 0.0.4; gzip when asked. The names are listed in docs/prometheus.md.",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", content_type = "text/plain; version=0.0.4", body = String),
    )
)]
pub(crate) async fn metrics(
    State(state): State<MetricsState>,
    CallerOrg(org): CallerOrg,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fleet = state.ingest.fleet(&org).await?;
    fleet.check_statuses(state.ingest.clock().now());
    // The server's own health is the operator's: the default organisation's.
    let health = org.is_default().then(|| Health {
        metrics: state.ingest.metrics().as_ref(),
        alerts: &state.alerts,
        connections: &state.connections,
    });
    state
        .exposition
        .of(&org)
        .answer(&fleet, health, &headers)
        .await
        .map_err(|error| ApiError::Internal(error.to_string()))
}
