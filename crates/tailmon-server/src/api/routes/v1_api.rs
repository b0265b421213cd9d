//! The versioned API: `/api/v1/devices…` and `/api/v1/reports`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tailmon_core::{
    BatchResult, DEFAULT_HISTORY_POINTS, DeviceSummary, ErrorBody, History, MAX_BATCH_REPORTS,
    MAX_HISTORY_POINTS, OffsetDateTime, Report, metric,
};

use crate::api::caller_org::CallerOrg;
use crate::api::devices_query::DevicesQuery;
use crate::api::fleet_snapshot::{FleetSnapshots, FleetView, X_TOTAL_COUNT, answer_once};
use crate::api::json_body::JsonBody;
use crate::api::report_refusals::ReportsRefused;
use crate::api::url_params::{Path, Query};
use crate::auth::access::Principal;
use crate::http::client_address::ClientAddress;
use crate::{ApiError, HistoryQuery, Ingest, StoreError, api::time_param};

/// The range a history covers unless asked otherwise: the last hour.
const DEFAULT_HISTORY_RANGE: time::Duration = time::Duration::HOUR;

/// What the v1 handlers share.
#[derive(Clone)]
pub(crate) struct V1State {
    pub(crate) ingest: Ingest,
    pub(crate) snapshots: Arc<FleetSnapshots>,
    /// Flips to `true` when the server shuts down: live streams end.
    pub(crate) closing: tokio::sync::watch::Receiver<bool>,
}

/// `GET /api/v1/devices?status=&q=&sort=&order=&limit=&offset=`: each
/// device's summary (the one status rule of [`DeviceSummary::new`]). With no
/// query, from the cached body; `X-Total-Count` says how many matched
/// before paging.
#[utoipa::path(
    get, path = "/api/v1/devices", tag = "devices",
    params(
        ("status" = Option<String>, Query, description = "A comma list of `ok`, `warning`, `critical`, `offline`: the statuses kept.", example = "warning,critical"),
        ("q" = Option<String>, Query, description = "Text the device id must hold (case-insensitive), at most 128 characters."),
        ("sort" = Option<String>, Query, description = "`name` (default), `status`, `cpu`, `ram`, `disk` or `last_seen`."),
        ("order" = Option<String>, Query, description = "`asc` (default) or `desc`."),
        ("limit" = Option<u32>, Query, description = "Most devices answered, 1 to 10000; all when absent."),
        ("offset" = Option<u32>, Query, description = "Devices skipped before the page, from 0."),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: 304 when nothing changed."),
    ),
    responses(
        (status = 200, description = "Each device's summary; `X-Total-Count` says how many matched before paging. Compressed (gzip, br) when `Accept-Encoding` asks.", body = Vec<DeviceSummary>,
            headers(("ETag" = String, description = "Changes with the answer."), ("X-Total-Count" = u64, description = "Devices that matched, before `limit` and `offset` (with a query)."))),
        (status = 304, description = "Not modified since the `ETag` in `If-None-Match`."),
        (status = 400, description = "A query parameter is unknown, repeated or wrong (`field` names it).", body = ErrorBody),
        (status = 503, description = "The store cannot be read now.", body = ErrorBody),
    )
)]
pub(crate) async fn devices(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = DevicesQuery::parse(&pairs)?;
    let fleet = state.ingest.fleet(&org).await?;
    fleet.check_statuses(state.ingest.clock().now());
    let answer = match query {
        None => {
            state
                .snapshots
                .answer(FleetView::Devices, &org, &fleet, &headers)
                .await
        }
        Some(query) => {
            let (total, body) = query.select(&fleet);
            answer_once(body, &headers, |h| {
                h.insert(X_TOTAL_COUNT.clone(), HeaderValue::from(total));
            })
            .await
        }
    };
    answer.map_err(answer_failed)
}

/// `GET /api/all_metrics`: the latest report of every device, sorted by
/// device id, from the cached body.
#[utoipa::path(
    get, path = "/api/all_metrics", tag = "devices",
    params(("If-None-Match" = Option<String>, Header, description = "An `ETag` of an earlier answer: 304 when nothing changed.")),
    responses(
        (status = 200, description = "Every device's latest report as it was sent, with the server's `received_at`, sorted by device id (the original Tailmon's answer, with extra fields; statuses are in `GET /api/v1/devices`). Compressed (gzip, br) when `Accept-Encoding` asks.", body = Vec<Report>,
            headers(("ETag" = String, description = "Changes with the answer."))),
        (status = 304, description = "Not modified since the `ETag` in `If-None-Match`."),
        (status = 503, description = "The store cannot be read now.", body = ErrorBody),
    )
)]
pub(crate) async fn all_metrics(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let fleet = state.ingest.fleet(&org).await?;
    fleet.check_statuses(state.ingest.clock().now());
    state
        .snapshots
        .answer(FleetView::AllMetrics, &org, &fleet, &headers)
        .await
        .map_err(answer_failed)
}

/// A body that could not be compressed: a 500, logged.
fn answer_failed(error: std::io::Error) -> ApiError {
    ApiError::Store(StoreError::Backend(Box::new(error)))
}

/// `GET /api/v1/devices/{id}/metrics`: the metric names the device's latest
/// report has, in [`metric::for_each`] order.
#[utoipa::path(
    get, path = "/api/v1/devices/{id}/metrics", tag = "devices",
    params(("id" = String, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The metric names of the device's latest report.", body = DeviceMetrics),
        (status = 404, description = "No such device.", body = ErrorBody),
    )
)]
pub(crate) async fn device_metrics(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    Path(device_id): Path<String>,
) -> Result<Json<DeviceMetrics>, ApiError> {
    let Some(report) = state.ingest.store().latest_of(&org, &device_id).await? else {
        return Err(ApiError::UnknownDevice(device_id));
    };
    let mut metrics = Vec::new();
    metric::for_each(&report, |name, _| metrics.push(name.to_owned()));
    Ok(Json(DeviceMetrics { device_id, metrics }))
}

/// The answer of `GET /api/v1/devices/{id}/metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceMetrics {
    device_id: String,
    metrics: Vec<String>,
}

/// Most metrics one `/histories` request may ask for: 256.
pub const MAX_HISTORIES_METRICS: usize = 256;

/// `GET /api/v1/devices/{id}/histories?metric=A&metric=B&from=&to=&points=`:
/// one [`History`] per metric, in the order asked.
#[utoipa::path(
    get, path = "/api/v1/devices/{id}/histories", tag = "history",
    params(
        ("id" = String, Path, description = "The device id."),
        ("metric" = Vec<String>, Query, style = Form, explode, description = "A metric name (`cpu_usage`, `disk_used_percent:/`, `custom:queue` …), repeated: 1 to 256."),
        ("from" = Option<String>, Query, description = "Start: RFC 3339 or Unix seconds; default an hour before `to`."),
        ("to" = Option<String>, Query, description = "End: RFC 3339 or Unix seconds; default now."),
        ("points" = Option<u32>, Query, description = "Most points per metric, 1 to 10000; default 1000."),
    ),
    responses(
        (status = 200, description = "One history per metric, in the order asked. Compressed (gzip, br) when `Accept-Encoding` asks.", body = Vec<History>),
        (status = 400, description = "A parameter is missing, unknown or wrong (`field` names it).", body = ErrorBody),
        (status = 404, description = "No such device.", body = ErrorBody),
    )
)]
pub(crate) async fn histories(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    Path(device_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<History>>, ApiError> {
    let mut metrics = Vec::new();
    let (mut from, mut to, mut points) = (None, None, None);
    for (name, value) in pairs {
        let slot = match name.as_str() {
            "metric" => {
                if !metric::is_known(&value) {
                    return Err(ApiError::BadParameter {
                        message: format!(
                            "unknown metric {:?}; GET /api/v1/devices/{{id}}/metrics lists a device's",
                            value.chars().take(160).collect::<String>()
                        ),
                        field: "metric",
                    });
                }
                metrics.push(value);
                if metrics.len() > MAX_HISTORIES_METRICS {
                    return Err(ApiError::BadParameter {
                        message: format!("at most {MAX_HISTORIES_METRICS} metrics a request"),
                        field: "metric",
                    });
                }
                continue;
            }
            "from" => &mut from,
            "to" => &mut to,
            "points" => &mut points,
            _ => {
                return Err(ApiError::BadParameter {
                    message: "known parameters: metric (repeated), from, to, points".into(),
                    field: "query",
                });
            }
        };
        *slot = Some(value);
    }
    if metrics.is_empty() {
        return Err(ApiError::BadParameter {
            message: "at least one metric parameter is required, e.g. metric=cpu_usage".into(),
            field: "metric",
        });
    }
    let now = state.ingest.clock().now();
    let (from, to) = range(
        from.as_deref(),
        to.as_deref(),
        now,
        now - DEFAULT_HISTORY_RANGE,
    )?;
    let max_points = points_param(points.as_deref())?;
    let answer = state
        .ingest
        .store()
        .histories(&org, &device_id, &metrics, from, to, max_points)
        .await?;
    let Some(out) = answer else {
        return Err(ApiError::UnknownDevice(device_id));
    };
    Ok(Json(out))
}

/// Parses `points`, defaulting to [`DEFAULT_HISTORY_POINTS`].
fn points_param(points: Option<&str>) -> Result<usize, ApiError> {
    match points {
        None => Ok(DEFAULT_HISTORY_POINTS),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY_POINTS).contains(n))
            .ok_or(ApiError::BadParameter {
                message: format!("points must be a whole number from 1 to {MAX_HISTORY_POINTS}"),
                field: "points",
            }),
    }
}

/// The query of a history request; every field is checked by hand so that a
/// bad one gets the API's JSON error.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryParams {
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    points: Option<String>,
}

/// The query of an export request.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportParams {
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/devices/{id}/history?metric=&from=&to=&points=`.
#[utoipa::path(
    get, path = "/api/v1/devices/{id}/history", tag = "history", operation_id = "device_history",
    params(
        ("id" = String, Path, description = "The device id."),
        ("metric" = String, Query, description = "The metric name, e.g. `cpu_usage`."),
        ("from" = Option<String>, Query, description = "Start: RFC 3339 or Unix seconds; default an hour before `to`."),
        ("to" = Option<String>, Query, description = "End: RFC 3339 or Unix seconds; default now."),
        ("points" = Option<u32>, Query, description = "Most points, 1 to 10000; default 1000."),
    ),
    responses(
        (status = 200, description = "The metric's points, from the finest tier that covers the range. Compressed (gzip, br) when `Accept-Encoding` asks.", body = History),
        (status = 400, description = "A parameter is missing or wrong (`field` names it).", body = ErrorBody),
        (status = 404, description = "No such device, or no such metric.", body = ErrorBody),
    )
)]
pub(crate) async fn history(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    Path(device_id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<History>, ApiError> {
    let metric_name = params.metric.ok_or(ApiError::BadParameter {
        message: "the metric parameter is required, e.g. metric=cpu_usage".into(),
        field: "metric",
    })?;
    if !metric::is_known(&metric_name) {
        return Err(ApiError::UnknownMetric(metric_name));
    }
    let now = state.ingest.clock().now();
    let (from, to) = range(
        params.from.as_deref(),
        params.to.as_deref(),
        now,
        now - DEFAULT_HISTORY_RANGE,
    )?;
    let max_points = points_param(params.points.as_deref())?;
    let query =
        HistoryQuery::new(device_id.clone(), metric_name, from, to).with_max_points(max_points);
    match state.ingest.store().history(&org, &query).await? {
        Some(history) => Ok(Json(history)),
        None => Err(ApiError::UnknownDevice(device_id)),
    }
}

/// `GET /api/v1/devices/{id}/export?format=csv|json&from=&to=`: the raw
/// reports, streamed as they are read.
#[utoipa::path(
    get, path = "/api/v1/devices/{id}/export", tag = "history",
    params(
        ("id" = String, Path, description = "The device id."),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`."),
        ("from" = Option<String>, Query, description = "Start: RFC 3339 or Unix seconds; default the oldest."),
        ("to" = Option<String>, Query, description = "End: RFC 3339 or Unix seconds; default now."),
    ),
    responses(
        (status = 200, description = "The raw reports kept, streamed as an attachment. Compressed (gzip, br) when `Accept-Encoding` asks.",
            content(
                (Vec<Report> = "application/json"),
                (String = "text/csv", example = "device_id,timestamp,metric,value\nweb-1,2026-11-28T08:00:00Z,cpu_usage,12.5\n"),
            ),
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"ID.json\"` or `.csv`."))),
        (status = 400, description = "A parameter is wrong (`field` names it).", body = ErrorBody),
        (status = 404, description = "No such device.", body = ErrorBody),
    )
)]
pub(crate) async fn export(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    Path(device_id): Path<String>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let csv = match params.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => {
            return Err(ApiError::BadParameter {
                message: "format must be csv or json".into(),
                field: "format",
            });
        }
    };
    let now = state.ingest.clock().now();
    let (from, to) = range(
        params.from.as_deref(),
        params.to.as_deref(),
        now,
        OffsetDateTime::UNIX_EPOCH,
    )?;
    let Some(reports) = state
        .ingest
        .store()
        .reports(&org, &device_id, from, to)
        .await?
    else {
        return Err(ApiError::UnknownDevice(device_id));
    };
    let (content_type, extension, body) = if csv {
        let header = futures_util::stream::once(async {
            Ok::<_, StoreError>(Bytes::from_static(b"device_id,timestamp,metric,value\n"))
        });
        let rows = reports.map(|report| report.map(|r| Bytes::from(csv_rows(&r))));
        (
            "text/csv; charset=utf-8",
            "csv",
            Body::from_stream(header.chain(rows)),
        )
    } else {
        let open =
            futures_util::stream::once(async { Ok::<_, StoreError>(Bytes::from_static(b"[")) });
        let mut first = true;
        let items = reports.map(move |report| {
            report.and_then(|r| {
                let mut bytes = if std::mem::take(&mut first) {
                    Vec::new()
                } else {
                    b",".to_vec()
                };
                serde_json::to_writer(&mut bytes, &r)
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                Ok(Bytes::from(bytes))
            })
        });
        let close =
            futures_util::stream::once(async { Ok::<_, StoreError>(Bytes::from_static(b"]")) });
        let body = open.chain(items).chain(close);
        ("application/json", "json", Body::from_stream(body))
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{device_id}.{extension}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// One CSV row per metric of `report`.
fn csv_rows(report: &Report) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(1024));
    let at = report
        .last_seen
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    metric::for_each(report, |name, value| {
        let _ = writer.write_record([report.device_id.as_str(), &at, name, &value.to_string()]);
    });
    writer.into_inner().unwrap_or_default()
}

/// `POST /api/v1/reports`: a JSON array of reports, each validated. A
/// refusal of the whole batch counts each of its reports as refused.
#[utoipa::path(
    post, path = "/api/v1/reports", tag = "reports",
    request_body(content = Vec<Report>, description = "At most 1000 reports, e.g. an agent's backlog."),
    responses(
        (status = 200, description = "How many were stored, and why any were refused.", body = BatchResult),
        (status = 422, description = "More reports than allowed.", body = ErrorBody),
        (status = 429, description = "A new device would pass the device cap (`Retry-After`).", body = ErrorBody),
        (status = 503, description = "The store cannot take reports now (`Retry-After`).", body = ErrorBody),
    )
)]
pub(crate) async fn reports(
    State(state): State<V1State>,
    Extension(principal): Extension<Principal>,
    ClientAddress(source): ClientAddress,
    JsonBody(reports): JsonBody<Vec<Report>>,
) -> Response {
    let len = reports.len();
    match take_reports(state, principal, source, reports).await {
        Ok(result) => result.into_response(),
        Err(error) => {
            let mut response = error.into_response();
            response
                .extensions_mut()
                .insert(ReportsRefused(len.max(1) as u64));
            response
        }
    }
}

async fn take_reports(
    state: V1State,
    principal: Principal,
    source: Option<std::net::IpAddr>,
    reports: Vec<Report>,
) -> Result<Json<BatchResult>, ApiError> {
    if reports.len() > MAX_BATCH_REPORTS {
        return Err(ApiError::TooManyReports {
            len: reports.len(),
            max: MAX_BATCH_REPORTS,
        });
    }
    // A token that may not write one of them gets the whole batch refused.
    // The places held are those of devices new to the token.
    let mut claims = Vec::new();
    for report in &reports {
        let claim = principal.claim_device(&report.device_id)?;
        if claim.device().is_some() {
            claims.push(claim);
        }
    }
    if claims.is_empty() {
        return Ok(Json(
            state
                .ingest
                .take_batch(&principal.org(), reports, source)
                .await?,
        ));
    }
    // Which claim holds the place of each report's device, if it is new.
    let claim_index: std::collections::HashMap<&str, usize> = claims
        .iter()
        .enumerate()
        .filter_map(|(index, claim)| Some((claim.device()?, index)))
        .collect();
    let claim_of: Vec<Option<usize>> = reports
        .iter()
        .map(|report| claim_index.get(report.device_id.as_str()).copied())
        .collect();
    drop(claim_index);
    let result = state
        .ingest
        .take_batch(&principal.org(), reports, source)
        .await?;
    // A new device counts against the token's cap once a report of it is
    // stored; the places of devices with no report stored are given back.
    let refused: std::collections::HashSet<usize> =
        result.rejected.iter().map(|r| r.index).collect();
    let kept: std::collections::HashSet<usize> = claim_of
        .iter()
        .enumerate()
        .filter(|(index, _)| !refused.contains(index))
        .filter_map(|(_, claim)| *claim)
        .collect();
    for (index, claim) in claims.into_iter().enumerate() {
        if kept.contains(&index) {
            claim.keep();
        }
    }
    Ok(Json(result))
}

/// `DELETE /api/v1/devices/{id}`: the device and all its history.
#[utoipa::path(
    delete, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "The device id.")),
    responses(
        (status = 204, description = "Deleted, with all its history."),
        (status = 404, description = "No such device.", body = ErrorBody),
    )
)]
pub(crate) async fn delete_device(
    State(state): State<V1State>,
    CallerOrg(org): CallerOrg,
    Path(device_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.ingest.delete_device_in(&org, &device_id).await? {
        tracing::info!(%device_id, "device deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::UnknownDevice(device_id))
    }
}

/// Parses `from` and `to`, defaulting to `default_from` and `now`.
fn range(
    from: Option<&str>,
    to: Option<&str>,
    now: OffsetDateTime,
    default_from: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), ApiError> {
    let parse = |text: Option<&str>, default: OffsetDateTime, field: &'static str| match text {
        None => Ok(default),
        Some(text) => time_param::parse(text).ok_or(ApiError::BadParameter {
            message: format!("{field} must be an RFC 3339 time or Unix seconds; got {text:?}"),
            field,
        }),
    };
    let to = parse(to, now, "to")?;
    let from = parse(from, default_from.min(to), "from")?;
    if from > to {
        return Err(ApiError::BadParameter {
            message: "from must not be after to".into(),
            field: "from",
        });
    }
    Ok((from, to))
}
