//! `GET /api/v1/live`: the fleet's changes as Server-Sent Events.
//!
//! The stream opens with `retry: 3000` and an `event: snapshot` (the JSON
//! array `/api/v1/devices` gives); then an `event: device` (one device's
//! summary) whenever a device's latest report or its status changes, an
//! `event: deleted` (`{"device_id":"…"}`) when one is deleted, and a
//! `: ping` comment every [`LIVE_PING_EVERY`]. Statuses that change with
//! time (a device going offline) are checked every [`LIVE_CHECK_EVERY`].
//! `?device=ID` keeps one device's events (its snapshot is a one-element
//! array, or empty).
//!
//! A reader too slow to keep up misses events; it is sent a fresh
//! snapshot instead. What waits for a reader is bounded: the shared
//! buffer of [`LIVE_EVENT_BUFFER`] events and the connection's send
//! buffer; a reader that stops reading is dropped by the send deadline
//! like any other client. The stream ends when the server shuts down.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::Response;
use futures_util::stream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::v1_api::V1State;
use crate::ApiError;
use crate::api::caller_org::CallerOrg;
use crate::api::fleet_snapshot::FleetView;
#[cfg(doc)]
use crate::ingest::fleet::LIVE_EVENT_BUFFER;
use crate::ingest::fleet::{Fleet, FleetEvent};
use tailmon_core::{ErrorBody, OrgId};

/// How often a live stream sends a `: ping` comment: every 15 s.
pub const LIVE_PING_EVERY: Duration = Duration::from_secs(15);
/// How often statuses that change with time are checked: every second.
pub const LIVE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The query of `GET /api/v1/live`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiveParams {
    device: Option<String>,
}

/// A live stream's state between events.
struct Live {
    state: V1State,
    /// The caller's organisation, and its fleet: the only one it sees.
    org: OrgId,
    fleet: Arc<Fleet>,
    device: Option<String>,
    events: broadcast::Receiver<FleetEvent>,
    queued: VecDeque<Bytes>,
    check: tokio::time::Interval,
    ping: tokio::time::Interval,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// `GET /api/v1/live[?device=ID]`.
#[utoipa::path(
    get, path = "/api/v1/live", tag = "live",
    params(("device" = Option<String>, Query, description = "Keep one device's events only.")),
    responses(
        (status = 200, description = "Server-Sent Events: `event: snapshot` (the array `/api/v1/devices` answers), then `event: device` (one device's summary) on each change, `event: deleted` (`{\"device_id\": …}`), and a `: ping` comment every 15 s. Never ends by itself.",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "A parameter is unknown or wrong.", body = ErrorBody),
        (status = 503, description = "The store cannot be read now.", body = ErrorBody),
    )
)]
pub(crate) async fn live(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    params: Result<Query<LiveParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|_| ApiError::BadParameter {
        message: "the only parameter is device=ID".into(),
        field: "query",
    })?;
    if let Some(device) = &params.device {
        tailmon_core::validate_device_id(device).map_err(|e| ApiError::BadParameter {
            message: e.to_string(),
            field: "device",
        })?;
    }
    let fleet = state.ingest.fleet(&org).await?;
    fleet.check_statuses(state.ingest.clock().now());
    // Subscribed before the snapshot is taken: nothing falls between.
    let events = fleet.subscribe();
    let mut live = Live {
        org,
        fleet,
        device: params.device,
        events,
        queued: VecDeque::new(),
        check: interval(LIVE_CHECK_EVERY),
        ping: interval(LIVE_PING_EVERY),
        closing: state.closing.clone(),
        state,
    };
    live.queued
        .push_back(Bytes::from_static(b"retry: 3000\n\n"));
    let snapshot = live.snapshot().await?;
    live.queued.push_back(snapshot);
    let body = stream::unfold(live, |mut live| async move {
        let next = live.next().await?;
        Some((Ok::<_, std::convert::Infallible>(next), live))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn interval(every: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

fn frame(event: &str, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + event.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out.into()
}

impl Live {
    /// The `snapshot` event: every device, or the one asked for.
    async fn snapshot(&self) -> Result<Bytes, ApiError> {
        let data = match &self.device {
            None => {
                self.state
                    .snapshots
                    .plain(FleetView::Devices, &self.org, &self.fleet)
                    .await
            }
            Some(device) => {
                let mut out = b"[".to_vec();
                if let Some(summary) = self.fleet.summary_of(device) {
                    out.extend_from_slice(&summary);
                }
                out.push(b']');
                out.into()
            }
        };
        Ok(frame("snapshot", &data))
    }

    fn wanted(&self, device_id: &str) -> bool {
        self.device.as_deref().is_none_or(|d| d == device_id)
    }

    /// The next bytes to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(bytes) = self.queued.pop_front() {
                return Some(bytes);
            }
            tokio::select! {
                _ = self.closing.changed() => return None,
                event = self.events.recv() => match event {
                    Ok(FleetEvent::Device { device_id, summary }) => {
                        if self.wanted(&device_id) {
                            return Some(frame("device", &summary));
                        }
                    }
                    Ok(FleetEvent::Deleted { device_id }) => {
                        if self.wanted(&device_id) {
                            let data = serde_json::json!({ "device_id": &*device_id }).to_string();
                            return Some(frame("deleted", data.as_bytes()));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a live reader fell behind; sending a snapshot");
                        // Only what comes after the snapshot is sent after it.
                        self.events = self.events.resubscribe();
                        return self.snapshot().await.ok();
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.check.tick() => {
                    self.fleet.check_statuses(self.state.ingest.clock().now());
                }
                _ = self.ping.tick() => return Some(Bytes::from_static(b": ping\n\n")),
            }
        }
    }
}
